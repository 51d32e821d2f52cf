// Before and after, side by side: the next-token probabilities of the unchanged run (blue) and of the
// changed one (orange), one pair of bars per token. The tokens are the union of both top lists, in the
// order of the run before; the token the experiment follows is drawn in bold.
import { css, INK, MUTED, OKABE_ITO } from "../lib/draw.js";
import { svg, visibleText } from "../lib/dom.js";
import { probability } from "../lib/format.js";

const ROW = 30, LABEL = 96, VALUE = 116, TOP = 44;

// before, after: [{id, token, model_prob}] sorted by model_prob. names: {title, before, after}.
// width: the room on screen, so that on a phone the words keep their size and the bars get shorter.
export function beforeAfterBars({ id, before, after, target, names, rows = 10, width = 520 }) {
  const W = Math.max(330, Math.min(560, width));
  const seen = new Map();
  for (const t of [...before, ...after]) if (!seen.has(t.id)) seen.set(t.id, t.token);
  const prob = (list, tid) => list.find((t) => t.id === tid)?.model_prob ?? null;
  const ids = [...seen.keys()].slice(0, rows);
  if (target && !ids.includes(target.id)) ids.push(target.id);
  const H = TOP + ids.length * ROW + 6;
  const root = svg("svg", { id, class: "xp-bars", viewBox: `0 0 ${W} ${H}`, width: W, role: "img",
    "aria-label": names.title });
  root.append(svg("text", { x: 0, y: 15, class: "xp-fig-title", fill: css(INK), text: names.title }));
  const key = (x, colour, text) => [svg("rect", { x, y: 24, width: 12, height: 12, fill: css(colour) }),
    svg("text", { x: x + 16, y: 35, class: "xp-fig-label", fill: css(INK), text })];
  root.append(...key(LABEL, OKABE_ITO.blue, names.before),
    ...key(LABEL + 110, OKABE_ITO.orange, names.after));
  const span = W - LABEL - VALUE;
  ids.forEach((tid, i) => {
    const y = TOP + i * ROW;
    const strong = target && tid === target.id;
    root.append(svg("text", { x: LABEL - 6, y: y + 18, "text-anchor": "end",
      class: `xp-fig-token${strong ? " strong" : ""}`, fill: css(INK), text: visibleText(seen.get(tid)) }));
    const b = prob(before, tid), a = prob(after, tid);
    [[b, OKABE_ITO.blue, 2], [a, OKABE_ITO.orange, 14]].forEach(([p, colour, dy]) => {
      if (p !== null) root.append(svg("rect", { x: LABEL, y: y + dy, width: Math.max(1, p * span),
        height: 11, fill: css(colour) }));
    });
    const said = `${b === null ? "–" : probability(b)} → ${a === null ? "–" : probability(a)}`;
    root.append(svg("text", { x: W - VALUE + 6, y: y + 18, class: "xp-fig-label", fill: css(MUTED),
      text: said }));
  });
  return root;
}
