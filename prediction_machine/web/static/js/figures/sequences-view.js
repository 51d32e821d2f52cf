// Pieces both sequence figures share: the next-element distribution as bars, the random draw
// on the cumulative strip (as on the text model's sampling stage), a tiny digit picture, plurals.
import { clear, el, svg } from "../lib/dom.js";
import { css, LINE, SERIES } from "../lib/draw.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("sequences");


// bars: [{label, prob, swatch?}], in their natural order (grey levels 0..16, or pitches low to high).
// chosen: the index taken by this step (or -1). Returns an <svg> whose bars carry data-prob.
export function distributionChart(bars, chosen, { caption = "", height = 150 } = {}) {
  const W = Math.max(300, bars.length * 22), H = height, B = 34, T = 16;
  const bw = W / bars.length;
  const top = Math.max(0.05, ...bars.map((b) => b.prob));
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "dist-chart", role: "img",
    "aria-label": caption || say("probability_choice") });
  bars.forEach((b, i) => {
    const h = ((H - B - T) * b.prob) / top;
    const x = i * bw;
    root.append(svg("rect", { x: x + 2, y: H - B - h, width: bw - 4, height: Math.max(0, h),
      class: `dist-bar ${i === chosen ? "chosen" : ""}`, "data-prob": b.prob.toFixed(6) },
      svg("title", { text: `${b.label}: ${format.probability(b.prob)}` })));
    if (b.swatch) root.append(svg("rect", { x: x + 3, y: H - B + 4, width: bw - 6, height: 12, fill: b.swatch,
      class: "swatch" }));
    root.append(svg("text", { x: x + bw / 2, y: H - 4, "text-anchor": "middle",
      class: `dist-label ${i === chosen ? "chosen" : ""}`, text: b.short ?? b.label }));
  });
  // Values over the tall bars, likeliest first, each only where it covers none already written: a
  // value is wider than its bar (10 px monospace, about 6 units a character, css/sequences.css).
  const placed = [];
  bars.map((b, i) => [b, i]).filter(([b]) => b.prob >= top * 0.5).sort(([a], [b]) => b.prob - a.prob)
    .forEach(([b, i]) => {
      const text = format.probability(b.prob), w = text.length * 6, cx = i * bw + bw / 2;
      const y = H - B - ((H - B - T) * b.prob) / top - 3;
      if (placed.some((p) => Math.abs(p.cx - cx) < (p.w + w) / 2 + 2 && Math.abs(p.y - y) < 12)) return;
      placed.push({ cx, w, y });
      root.append(svg("text", { x: cx, y, "text-anchor": "middle", class: "dist-value", text }));
    });
  return root;
}

// The draw: the choices lined up from most to least likely, each a slice of [0, 1]; u lands in one.
// rows: [{label, prob}], chosen: the label taken; u: the uniform number (null when greedy).
export function drawStrip(rows, chosen, u, cumulativeBefore, prob) {
  const W = 640, H = 56;
  const sorted = [...rows].filter((r) => r.prob > 0).sort((a, b) => b.prob - a.prob);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "cumulative", role: "img",
    "aria-label": u == null ? say("greedy_likeliest_choice_chosen", { chosen }) : say("draw_u_u_lands",
      { u: u.toFixed(4), chosen }) });
  let x = 0;
  sorted.forEach((r, i) => {
    const w = r.prob * W;
    chart.append(svg("rect", { x, y: 8, width: w, height: 28, fill: css(SERIES[i % SERIES.length]),
      class: r.label === chosen ? "chosen" : "" },
      svg("title", { text: `${r.label}: ${format.probability(r.prob)}` })));
    x += w;
  });
  if (x < W - 0.5) chart.append(svg("rect", { x, y: 8, width: W - x, height: 28, fill: css(LINE) }));
  const text = el("p", { class: "draw-text" });
  if (u == null) {
    text.textContent = say("temperature_no_random_number", { chosen });
  } else {
    const ux = u * W;
    chart.append(svg("line", { x1: ux, x2: ux, y1: 2, y2: 42, class: "u-marker" }));
    chart.append(svg("text", { x: Math.min(W - 60, ux + 4), y: 52, class: "u-label",
      text: `u = ${u.toFixed(4)}` }));
    text.textContent = say("random_number_u_u", { u: u.toFixed(4),
      cumulativeBefore: cumulativeBefore.toFixed(4) }) +
      say("value_slice_chosen_probability", { value: (cumulativeBefore + prob).toFixed(4), chosen,
        prob: format.probability(prob) });
    Object.assign(text.dataset, { u, chosen });
  }
  // The key: which colour is which choice, for the slices wide enough to see (the rest are slivers).
  const wide = sorted.slice(0, 8).filter((r) => r.prob >= 0.02);
  const key = el("ul", { class: "strip-key" }, wide.map((r, i) =>
    el("li", { class: r.label === chosen ? "chosen" : "" }, el("span", { class: "strip-swatch",
      style: { background: css(SERIES[i % SERIES.length]) } }),
    ` ${r.label} ${format.probability(r.prob)}`)));
  return el("div", { class: "draw" }, chart, key, text);
}

// A grey level (0 = paper, 16 = ink) as a colour.
export function shade(level) {
  const t = level / 16;
  const c = [253, 252, 249].map((p, i) => Math.round(p + ([29, 29, 31][i] - p) * t));
  return css(c);
}

// A small canvas of one 8x8 drawing (the training samples and the classifier's view).
export function digitCanvas(pixels, size = 48, label = say("drawn_digit")) {
  const canvas = el("canvas", { width: 8, height: 8, class: "digit-thumb", role: "img",
    "aria-label": label });
  canvas.style.width = canvas.style.height = `${size}px`;
  const ctx = canvas.getContext("2d");
  pixels.forEach((p, i) => { ctx.fillStyle = shade(p); ctx.fillRect(i % 8, Math.floor(i / 8), 1, 1); });
  return canvas;
}

export function setStatus(node, text) {
  clear(node).append(text);
}
