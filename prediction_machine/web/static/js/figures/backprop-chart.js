// The playground's loss chart: train and test loss over the steps, drawn on a canvas, with an HTML
// legend whose colour keys match the lines (solid ink = train, dashed vermillion = test). Not blue:
// in the playground blue means class 0 (and a neuron's low output), nothing else.
import { el } from "../lib/dom.js";
import { css, INK, LINE, MUTED, OKABE_ITO, WHITE } from "../lib/draw.js";
import { words } from "../lib/words.js";

const say = words("backprop");

const SERIES = [
  { key: "train_loss", label: say("train_loss"), colour: INK, dash: [] },
  { key: "test_loss", label: say("test_loss"), colour: OKABE_ITO.vermillion, dash: [6, 4] },
];

// The legend: a short sample of each line, drawn the way the chart draws it.
export function lossLegend() {
  return el("p", { class: "note bp-legend" }, ...SERIES.map((s) => {
    const key = el("canvas", { class: "bp-key", width: "28", height: "10", "aria-hidden": "true" });
    const ctx = key.getContext("2d");
    ctx.strokeStyle = css(s.colour);
    ctx.lineWidth = 3;
    ctx.setLineDash(s.dash);
    ctx.beginPath(); ctx.moveTo(0, 5); ctx.lineTo(28, 5); ctx.stroke();
    return el("span", { class: "bp-legend-item", "data-series": s.key }, key, ` ${s.label}`);
  }));
}

export function drawLossChart(chart, history) {
  const ctx = chart.getContext("2d");
  const W = chart.width;
  const H = chart.height;
  ctx.fillStyle = css(WHITE);
  ctx.fillRect(0, 0, W, H);
  const rows = history.filter((r) => r.train_loss !== null);
  chart.toggleAttribute("data-empty", !rows.length); // nothing to save yet (lib/export.js)
  if (!rows.length) return;
  if (rows.length === 1) {
    ctx.fillStyle = css(MUTED);
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillText(say("step_train_loss_value", { value: rows[0].train_loss.toFixed(3) }), 10, H / 2);
    return;
  }
  const top = Math.max(0.8, ...rows.map((r) => Math.max(r.train_loss,
    r.test_loss ?? 0)).filter(Number.isFinite));
  const last = Math.max(1, rows[rows.length - 1].step);
  const X = (s) => 34 + (s / last) * (W - 44);
  const Y = (v) => 10 + (1 - Math.min(v, top) / top) * (H - 30);
  ctx.strokeStyle = css(LINE);
  ctx.fillStyle = css(MUTED);
  ctx.font = "11px system-ui, sans-serif";
  for (const v of [0, top / 2, top]) {
    ctx.beginPath(); ctx.moveTo(34, Y(v)); ctx.lineTo(W - 10, Y(v)); ctx.stroke();
    ctx.fillText(v < 10 ? v.toFixed(2) : v.toFixed(0), 2, Y(v) + 4);
  }
  ctx.fillText(say("chart_step", { step: last }), W - 70, H - 4);
  for (const { key, colour, dash } of SERIES) {
    ctx.strokeStyle = css(colour);
    ctx.setLineDash(dash);
    ctx.lineWidth = 2;
    ctx.beginPath();
    rows.forEach((r, i) => (r[key] === null ? null : i ? ctx.lineTo(X(r.step),
      Y(r[key])) : ctx.moveTo(X(r.step), Y(r[key]))));
    ctx.stroke();
  }
  ctx.setLineDash([]);
}
