// The calibration chart: confidence against correctness, one figure in two parts.
// Top, the reliability diagram: the questions grouped into bands of first-token probability, each bar as
// high as the share of that band's answers that were right; the dashed diagonal is where a perfectly
// calibrated model's bars would end (right 70% of the time when 70% sure). Below, every question as a
// dot on one of two lines, right or wrong, at its first-token probability, so no answer hides in an average.
import { svg } from "../lib/dom.js";
import { css, INK, LINE, MUTED, OKABE_ITO } from "../lib/draw.js";
import { percent } from "../lib/format.js";

const LEFT = 64, RIGHT = 16, TOP = 58, PLOT = 150, STRIP = 22;

// result: the answer of POST /api/makes-up/calibration. names: {title, subtitle, x, y, right, wrong,
// ideal}, and count(n), the words under a band ("3 answers").
// width: the room on screen (a phone gets a narrower figure with the same text size).
export function calibrationChart(result, names, width = 560) {
  const W = Math.max(300, Math.min(640, width));
  const H = TOP + PLOT + 40 + 2 * STRIP + 34;
  const span = W - LEFT - RIGHT;
  const X = (p) => LEFT + p * span;
  const Y = (share) => TOP + (1 - share) * PLOT;
  const root = svg("svg", { id: "mu-chart-svg", class: "mu-chart", viewBox: `0 0 ${W} ${H}`, width: W,
    role: "img", "aria-label": `${names.title}: ${names.subtitle}` });
  const text = (x, y, t, extra = {}) => svg("text", { x, y, fill: css(INK), class: "mu-fig-label", text: t,
    ...extra });
  root.append(svg("text", { x: 0, y: 16, class: "mu-fig-title", fill: css(INK), text: names.title }),
    text(0, 34, names.subtitle, { fill: css(MUTED) }));

  // axes and grid: 0, 50% and 100% on both
  for (const v of [0, 0.5, 1]) {
    root.append(svg("line", { x1: LEFT, x2: W - RIGHT, y1: Y(v), y2: Y(v), stroke: css(LINE) }),
      text(LEFT - 6, Y(v) + 4, percent(v), { "text-anchor": "end", fill: css(MUTED) }));
  }
  root.append(text(12, TOP + PLOT / 2, names.y, { transform: `rotate(-90 12 ${TOP + PLOT / 2})`,
    "text-anchor": "middle" }));

  // the bands' bars, each labelled with how many answers fell in it
  for (const b of result.bands) {
    const x = X(b.low) + 2, w = X(b.high) - X(b.low) - 4;
    if (b.count) {
      root.append(svg("rect", { x, y: Y(b.accuracy), width: w, height: Math.max(1, Y(0) - Y(b.accuracy)),
        fill: css(OKABE_ITO.sky), "fill-opacity": "0.55", class: "mu-band",
        "data-count": b.count, "data-right": b.right }));
    }
    // a narrow band (a phone) shows the bare count, so the labels do not run into each other
    root.append(text(x + w / 2, TOP + PLOT + 14, w < 64 ? String(b.count) : names.count(b.count),
      { "text-anchor": "middle", fill: css(MUTED) }));
  }
  root.append(svg("line", { x1: X(0), y1: Y(0), x2: X(1), y2: Y(1), stroke: css(MUTED),
    "stroke-dasharray": "5 4", "stroke-width": 1.5 }),
  text(X(0.03), Y(0.93), names.ideal, { fill: css(MUTED) }));

  // every answer as a dot on its line, with its question and answer as a tooltip
  const lanes = [[true, names.right, OKABE_ITO.blue], [false, names.wrong, OKABE_ITO.vermillion]];
  lanes.forEach(([right, label, colour], lane) => {
    const y = TOP + PLOT + 34 + lane * STRIP;
    root.append(svg("line", { x1: LEFT, x2: W - RIGHT, y1: y, y2: y, stroke: css(LINE) }),
      text(LEFT - 6, y + 4, label, { "text-anchor": "end" }));
    for (const p of result.points.filter((q) => q.right === right)) {
      root.append(svg("circle", { cx: X(p.confidence), cy: y, r: 4, fill: css(colour), "fill-opacity": "0.6",
        class: "mu-dot", "data-confidence": p.confidence, "data-right": String(p.right) },
      svg("title", { text: `${p.question} → ${p.stem ? `${p.stem} ` : ""}${p.answer.trim()}` })));
    }
  });
  const bottom = TOP + PLOT + 34 + 2 * STRIP;
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    root.append(text(X(v), bottom + 2, percent(v), { "text-anchor": "middle", fill: css(MUTED) }));
  }
  root.append(text(LEFT + span / 2, bottom + 20, names.x, { "text-anchor": "middle" }));
  return root;
}
