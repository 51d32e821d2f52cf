// Where a logit comes from: one row per layer, the attention part and the MLP part as bars on either
// side of a zero line (orange pushes the token up, blue pushes it down), and the embedding's part on top.
// All bars share one scale, so a long bar is a large part wherever it is.
import { css, INK, LINE, MUTED, OKABE_ITO } from "../lib/draw.js";
import { svg } from "../lib/dom.js";
import { fixed } from "../lib/format.js";

const ROW = 14, LABEL = 64, TOP = 42, W = 520;

// data: the /api/experiments/attribute answer. names: {title, attention, mlp, embed, layer(n)}.
export function attributionBars({ id, data, names }) {
  const rows = [{ label: names.embed, attn: data.embed, mlp: null },
    ...data.layers.map((l) => ({ label: names.layer(l.layer), attn: l.attn, mlp: l.mlp }))];
  const scale = Math.max(1e-9, ...rows.flatMap((r) => [Math.abs(r.attn), Math.abs(r.mlp ?? 0)]));
  const H = TOP + rows.length * ROW + 8;
  const col = (W - LABEL) / 2; // two columns: attention, then MLP
  const root = svg("svg", { id, class: "xp-attr", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": names.title });
  root.append(svg("text", { x: 0, y: 15, class: "xp-fig-title", fill: css(INK), text: names.title }));
  [names.attention, names.mlp].forEach((text, k) => root.append(svg("text", { x: LABEL + k * col + col / 2,
    y: 34, "text-anchor": "middle", class: "xp-fig-label", fill: css(INK), text })));
  for (let k = 0; k < 2; k++) {
    const x = LABEL + k * col + col / 2;
    root.append(svg("line", { x1: x, x2: x, y1: TOP - 2, y2: H - 6, stroke: css(LINE) }));
  }
  rows.forEach((r, i) => {
    const y = TOP + i * ROW;
    root.append(svg("text", { x: LABEL - 4, y: y + ROW - 3, "text-anchor": "end", class: "xp-fig-label",
      fill: css(MUTED), text: r.label }));
    [r.attn, r.mlp].forEach((v, k) => {
      if (v === null) return;
      const zero = LABEL + k * col + col / 2, len = (Math.abs(v) / scale) * (col / 2 - 4);
      const bar = svg("rect", { x: v < 0 ? zero - len : zero, y: y + 2, width: Math.max(0.5, len),
        height: ROW - 4, fill: css(v < 0 ? OKABE_ITO.blue : OKABE_ITO.orange) });
      bar.append(svg("title", { text: `${r.label} · ${k ? names.mlp : names.attention}: ${fixed(v, 3)}` }));
      root.append(bar);
    });
  });
  return root;
}
