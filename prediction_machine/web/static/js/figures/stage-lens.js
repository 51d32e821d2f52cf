// The logit lens of one token in several models: its probability after each layer, one line per model.
// An SVG with a title, axis words and a key, so "Save as SVG/PNG" keeps them.
import { css, INK, LINE, MUTED, OKABE_ITO } from "../lib/draw.js";
import { svg } from "../lib/dom.js";

const COLOURS = [OKABE_ITO.orange, OKABE_ITO.blue, OKABE_ITO.green];
const W = 360, H = 210, L = 44, R = 12, T = 30, B = 40;

// lines: [{name, probs}] with probs[layer] in 0..1. title, xLabel, yLabel: words.
export function stageLens({ id, title, lines, xLabel, yLabel }) {
  const n = Math.max(...lines.map((l) => l.probs.length));
  const x = (i) => L + (n > 1 ? (i / (n - 1)) * (W - L - R) : 0);
  const y = (p) => T + (1 - p) * (H - T - B);
  const root = svg("svg", { id, class: "inside-lens", viewBox: `0 0 ${W} ${H + 16 * lines.length}`,
    width: W, height: H + 16 * lines.length, role: "img", "aria-label": title });
  root.append(svg("text", { x: 0, y: 15, class: "inside-fig-title", fill: css(INK), text: title }));
  for (const p of [0, 0.5, 1]) {
    root.append(svg("line", { x1: L, x2: W - R, y1: y(p), y2: y(p), stroke: css(LINE) }),
      svg("text", { x: L - 6, y: y(p) + 4, "text-anchor": "end", class: "inside-fig-label", fill: css(MUTED),
        text: String(p) }));
  }
  for (let i = 0; i < n; i++) {
    root.append(svg("text", { x: x(i), y: H - B + 16, "text-anchor": "middle", class: "inside-fig-label",
      fill: css(MUTED), text: String(i) }));
  }
  root.append(svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", class: "inside-fig-label",
    fill: css(MUTED), text: xLabel }));
  root.append(svg("text", { x: 10, y: T + (H - T - B) / 2, class: "inside-fig-label", fill: css(MUTED),
    transform: `rotate(-90 10 ${T + (H - T - B) / 2})`, "text-anchor": "middle", text: yLabel }));
  lines.forEach((line, k) => {
    const colour = css(COLOURS[k % COLOURS.length]);
    const points = line.probs.map((p, i) => `${x(i)},${y(p)}`).join(" ");
    root.append(svg("polyline", { points, fill: "none", stroke: colour, "stroke-width": 2.5,
      "stroke-dasharray": k === 1 ? "6 3" : "none", "data-stage": line.name }));
    line.probs.forEach((p, i) => root.append(svg("circle", { cx: x(i), cy: y(p), r: 3, fill: colour })));
    const ky = H + 12 + 16 * k;
    root.append(svg("line", { x1: L, x2: L + 22, y1: ky - 4, y2: ky - 4, stroke: colour, "stroke-width": 2.5,
      "stroke-dasharray": k === 1 ? "6 3" : "none" }),
    svg("text", { x: L + 28, y: ky, class: "inside-fig-label", fill: css(INK), text: line.name }));
  });
  return root;
}
