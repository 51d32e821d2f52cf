// The figures of "circuits forming": the loss curve with the scrubbed step and the formation step
// marked, a layer × head heatmap of one head score (induction or previous-token), and one head's
// attention pattern on the probe text. All SVG, so "Save as SVG/PNG" keeps titles and labels.
import { css, INK, LINE, MASKED, MUTED, mix, OKABE_ITO } from "../lib/draw.js";
import { svg } from "../lib/dom.js";
import { heatmap } from "./experiment-heatmap.js";

// ---------------------------------------------------------------- the loss curve and its marks

// curve: [[step, loss], ...]; step: the scrubbed step; formed: {step, loss} or null.
// labels: {title, formed} words from the section's content file.
export function lossCurve({ id, curve, step, formed, labels, width = 480, height = 160 }) {
  const pad = { l: 40, r: 10, t: 22, b: 22 };
  const root = svg("svg", { id, class: "circ-curve", viewBox: `0 0 ${width} ${height}`, width, height,
    role: "img", "aria-label": labels.title });
  root.append(svg("text", { x: 0, y: 14, class: "xp-fig-title", fill: css(INK), text: labels.title }));
  if (!curve.length) return root;
  const steps = curve.map((p) => p[0]);
  const losses = curve.map((p) => p[1]);
  const [s0, s1] = [Math.min(...steps), Math.max(...steps, 1)];
  const [lo, hi] = [Math.min(...losses), Math.max(...losses)];
  const x = (s) => pad.l + ((s - s0) / Math.max(1, s1 - s0)) * (width - pad.l - pad.r);
  const y = (v) => pad.t + (1 - (v - lo) / Math.max(1e-9, hi - lo)) * (height - pad.t - pad.b);
  for (const v of lo.toFixed(2) === hi.toFixed(2) ? [lo] : [lo, hi]) { // one label when both read the same
    root.append(svg("text", { x: pad.l - 4, y: y(v) + 4, class: "xp-fig-label", "text-anchor": "end",
      fill: css(MUTED), text: v.toFixed(2) }));
  }
  root.append(svg("line", { x1: pad.l, x2: width - pad.r, y1: height - pad.b, y2: height - pad.b,
    stroke: css(LINE) }));
  // the first and last step, under the axis (one, when the run has a single snapshot so far)
  for (const [s, anchor] of s0 === s1 ? [[s0, "start"]] : [[s0, "start"], [s1, "end"]]) {
    root.append(svg("text", { x: x(s), y: height - 6, class: "xp-fig-label", "text-anchor": anchor,
      fill: css(MUTED), text: String(s) }));
  }
  const points = curve.map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  root.append(svg("polyline", { points, fill: "none", stroke: css(OKABE_ITO.blue), "stroke-width": 1.5 }));
  if (curve.length === 1) { // a line needs two points: the first snapshot shows as a dot
    root.append(svg("circle", { cx: x(s0), cy: y(losses[0]), r: 3, fill: css(OKABE_ITO.blue) }));
  }
  if (formed) {
    const fx = x(formed.step);
    root.append(svg("line", { x1: fx, x2: fx, y1: pad.t, y2: height - pad.b,
      stroke: css(OKABE_ITO.vermillion), "stroke-dasharray": "4 3", class: "circ-formed",
      "data-step": formed.step }));
    root.append(svg("text", { x: Math.min(fx + 4, width - 150), y: pad.t + 10, class: "xp-fig-label",
      fill: css(OKABE_ITO.vermillion), text: labels.formed }));
  }
  const cx = x(step);
  root.append(svg("line", { x1: cx, x2: cx, y1: pad.t - 4, y2: height - pad.b, stroke: css(INK),
    "stroke-width": 2, class: "circ-now", "data-step": step }));
  return root;
}

// ---------------------------------------------------------------- layer × head scores

// scores: L × H numbers in [0, 1]. picked: {layer, head} outlined. onPick(layer, head) picks a head.
export function scoreHeatmap({ id, title, caption, scores, hue, picked, onPick, describe }) {
  const rows = scores.length;
  const cols = scores[0].length;
  const map = heatmap({
    id, title, caption, rows, cols,
    rowLabels: scores.map((_, l) => `L${l}`), colLabels: scores[0].map((_, h) => `H${h}`),
    colour: (r, c) => mix(scores[r][c], OKABE_ITO[hue]),
    describe: (r, c) => describe(r, c, scores[r][c]),
    mark: (r, c) => picked && picked.layer === r && picked.head === c,
    data: (r, c) => ({ "data-score": scores[r][c] }),
    cell: { w: 40, h: 26 }, labelW: 30, onPick,
  });
  return map.root;
}

// ---------------------------------------------------------------- one head's attention on the probe text

// rows: row q holds the weights of keys 0..q (the causal half). tokens: the probe's tokens as text.
export function attentionPattern({ id, title, caption, rows, tokens, describe }) {
  const T = tokens.length;
  const shown = tokens.map((t) => t.replace(/ /g, "␣").replace(/\n/g, "↵"));
  return heatmap({
    id, title, caption, rows: T, cols: T, rowLabels: shown, colLabels: shown,
    colour: (q, k) => (k > q ? MASKED : mix(rows[q][k], OKABE_ITO.blue)),
    describe: (q, k) => (k > q ? "" : describe(q, k, rows[q][k])),
    cell: { w: 22, h: 18 }, labelW: 40, colLabelH: 34,
  }).root;
}
