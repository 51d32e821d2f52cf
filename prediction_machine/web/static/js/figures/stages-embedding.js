// Stage 2, the embedding: each token read looks up a vector. A heatmap with one labelled row per
// token, and a 2-D picture of the tokens among their nearest vocabulary neighbours.
// By default only the learner's own tokens (and the generated ones) are shown; the chat template's
// tokens wait behind a toggle, so the default picture is not a pile of labels.
import { clear, el, svg, visibleText } from "../lib/dom.js";
import { clampIndex, diverging, onArrowKeys, paintHeatmap } from "../lib/draw.js";
import { labelAxes } from "../lib/export.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("inference");
// Whose each token is, as the trace says it, and the words for it.
const SOURCES = { yours: "source_yours", template: "source_template", generated: "source_generated" };

const label = (token) => (token.partial ? token.text : visibleText(token.text));
const ROW_PX = 16; // each heatmap row is tall enough for its label

// `view.showTemplate` and `view.onToggle(checked)` keep the toggle's state in inference.js across steps.
export function embedding(panel, trace, view = { showTemplate: false, onToggle: () => {} }) {
  clear(panel);
  const sources = trace.embedding.sources || trace.tokens.map(() => "yours");
  const templateCount = sources.filter((s) => s === "template").length;
  const rows = trace.tokens.map((_, i) => i).filter((i) => view.showTemplate || sources[i] !== "template");
  const shown = rows.length ? rows : trace.tokens.map((_, i) => i);
  const toggle = templateCount ? el("label", { class: "toggle" },
    el("input", { type: "checkbox", id: "embedding-template-toggle", checked: view.showTemplate,
      onchange: (e) => view.onToggle(e.target.checked) }),
    say("show_n_tokens_chat", { n: templateCount })) : null;
  panel.append(
    el("p", { class: "note", text: say("row_tokens_vector_dims", { dims: trace.embedding.dims,
      value: view.showTemplate || !templateCount ? "" : say("only_own_tokens_generated") }) }),
    toggle, heatmap(trace, shown, sources), projection(trace, shown, sources));
}

function heatmap(trace, shown, sources) {
  const vectors = trace.embedding.vectors;
  const R = shown.length, D = trace.embedding.dims;
  const flat = shown.flatMap((i) => vectors[i]).map(Math.abs).sort((a, b) => a - b);
  const scale = flat[Math.floor(flat.length * 0.98)] || 1;
  const canvas = el("canvas", { class: "heatmap", id: "embedding-heatmap", tabindex: 0, role: "img",
    "aria-label": say("heatmap_n_token_vectors", { n: R, D }) });
  paintHeatmap(canvas, R, D, (r, d) => diverging(vectors[shown[r]][d], scale));
  canvas.style.height = `${R * ROW_PX}px`;
  labelAxes(canvas, { rows: shown.map((i) => label(trace.tokens[i])), ends: ["0", String(D - 1)],
    y: say("heatmap_axis_rows"), x: say("heatmap_axis_columns", { D }) });
  const labels = el("div", { class: "heatmap-labels", "aria-hidden": "true" }, shown.map((i) =>
    el("span", { class: `row-label ${sources[i]}`, style: { height: `${ROW_PX}px` },
      title: say("embedding_row", { i, id: trace.tokens[i].id,
        source: say(SOURCES[sources[i]] || "source_yours") }), text: label(trace.tokens[i]) })));
  const readout = el("p", { class: "readout", id: "embedding-readout", "aria-live": "polite",
    text: say("hover_heatmap_focus_use") });
  let cursor = { r: 0, d: 0 };
  const show = () => {
    const i = shown[cursor.r], token = trace.tokens[i];
    readout.textContent = say("token_i_token_id", { i, token: label(token), id: token.id, d: cursor.d,
      value: vectors[i][cursor.d].toFixed(4) });
  };
  canvas.addEventListener("mousemove", (e) => {
    const box = canvas.getBoundingClientRect();
    cursor = { r: clampIndex(Math.floor(((e.clientY - box.top) / box.height) * R), R),
      d: clampIndex(Math.floor(((e.clientX - box.left) / box.width) * D), D) };
    show();
  });
  onArrowKeys(canvas, (dr, dd) => { cursor = { r: clampIndex(cursor.r + dr, R), d: clampIndex(cursor.d + dd,
    D) }; show(); });
  return el("div", {}, el("div", { class: "heatmap-grid" }, labels, canvas), readout);
}

// Labels are placed one by one, each where it overlaps no label placed before it; a neighbour
// label that finds no free place is left out (its point keeps a tooltip), so labels never pile up.
function placer(W, H) {
  const boxes = [];
  const free = (b) => b.x >= 0 && b.x + b.w <= W && b.y >= 0 && b.y + b.h <= H &&
    boxes.every((o) => b.x + b.w <= o.x || o.x + o.w <= b.x || b.y + b.h <= o.y || o.y + o.h <= b.y);
  return (x, y, text, px, force = false) => {
    const w = [...text].length * px * 0.62 + 2, h = px + 2;
    const spots = [[x + 6, y - h - 1], [x + 6, y + 2], [x - w - 6, y - h - 1], [x - w - 6, y + 2], [x - w / 2,
      y - h - 6], [x - w / 2, y + 6]];
    for (const [bx, by] of spots) {
      const b = { x: bx, y: by, w, h };
      if (free(b)) { boxes.push(b); return b; }
    }
    if (!force) return null;
    const b = { x: Math.min(Math.max(0, x + 6), W - w), y: Math.min(Math.max(0, y + 2), H - h), w, h };
    boxes.push(b);
    return b;
  };
}

function projection(trace, shown, sources) {
  // A phone gets a taller, narrower picture, so its labels stay readable once it is scaled to the screen.
  const narrow = document.documentElement.clientWidth < 600;
  const [W, H, pad] = narrow ? [360, 440, 16] : [640, 360, 24];
  const points = trace.embedding.projection.points;
  const first = new Map(); // one point per distinct token: "the" twice is one dot
  for (const i of shown) if (!first.has(points[i].id)) first.set(points[i].id, i);
  const mine = [...first.values()];
  const near = new Map();
  for (const i of mine) for (const n of points[i].neighbours) if (!first.has(n.id)
    && !near.has(n.id)) near.set(n.id, n);
  const all = [...mine.map((i) => points[i]), ...near.values()];
  const xs = all.map((p) => p.x), ys = all.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * pad);
  const sy = (y) => H - pad - ((y - y0) / (y1 - y0 || 1)) * (H - 2 * pad);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "projection", id: "embedding-projection",
    role: "img",
    "aria-label": say("n_tokens_read_step", { n: mine.length }) });
  const links = svg("g", {}), dots = svg("g", {}), texts = svg("g", {});
  for (const i of mine) for (const n of points[i].neighbours) {
    links.append(svg("line", { x1: sx(points[i].x), y1: sy(points[i].y), x2: sx(n.x), y2: sy(n.y),
      class: "link" }));
  }
  const place = placer(W, H);
  for (const i of mine) {
    const p = points[i], token = trace.tokens[i];
    dots.append(svg("circle", { cx: sx(p.x), cy: sy(p.y), r: 5, class: `prompt-point ${sources[i]}` },
      svg("title", { text: `${visibleText(token.text)} (id ${token.id})` })));
    const b = place(sx(p.x), sy(p.y), label(token), 12, true);
    texts.append(svg("text", { x: b.x, y: b.y + b.h - 3, class: `prompt-label ${sources[i]}`,
      text: label(token) }));
  }
  for (const n of near.values()) {
    dots.append(svg("circle", { cx: sx(n.x), cy: sy(n.y), r: 3, class: "neighbour" },
      svg("title", { text: say("text_id_id_cosine", { text: visibleText(n.token.text), id: n.id,
        similarity: n.similarity.toFixed(2) }) })));
    const b = place(sx(n.x), sy(n.y), label(n.token), 11);
    if (b) texts.append(svg("text", { x: b.x, y: b.y + b.h - 3, class: "neighbour-label",
      text: label(n.token) }));
  }
  chart.append(links, dots, texts);
  const [e1, e2] = trace.embedding.projection.explained;
  return el("figure", { class: "projection-figure" }, chart,
    el("figcaption", { class: "note" }, say("tokens_blue_generated_ones"),
      say("d_model_dimensions_drawn", { d_model: trace.model.d_model, e1: format.percent(e1, 1),
        e2: format.percent(e2, 1) })));
}
