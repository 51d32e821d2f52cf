// The playground's network diagram: edges coloured and sized by weight, and each hidden neuron drawn
// as a small picture of its own output over the plane (TensorFlow Playground's best teaching device).
// Every number comes from the session's step answers (Session.network, Session.neuron_grids).
import { clear, el, svg } from "../lib/dom.js";
import { clampIndex, diverging, mix, OKABE_ITO, onArrowKeys, paintHeatmap, WHITE } from "../lib/draw.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("backprop");

const W = 360; // viewBox width; the height grows with the widest layer
const UNIT = 28; // side of a hidden neuron's picture, in viewBox units (≥ 24 px on a phone: a touch target)
const GAP = 8;

// The name a reader sees for neuron i of layer l (layer 0 is the input, the last one the output).
export function unitName(sizes, l, i) {
  if (l === 0) return say("input_n", { name: i ? "y" : "x" });
  return l === sizes.length - 1 ? say("output") : say("neuron_value_layer_l", { value: i + 1, l });
}

// One hidden neuron's output grid as a PNG data URL: orange where it outputs high, blue where low.
// tanh outputs lie in [-1, 1] and sigmoid in [0, 1] (centre 0.5); ReLU has no top, so it is scaled
// to its own largest value and says so in the caption.
function picture(values, activation) {
  const R = values.length;
  const centre = activation === "sigmoid" ? 0.5 : 0;
  const scale = activation === "relu" ? Math.max(1e-9,
    ...values.flat().map((v) => Math.abs(v ?? 0))) : activation === "sigmoid" ? 0.5 : 1;
  const canvas = document.createElement("canvas");
  paintHeatmap(canvas, R, R, (r, c) => (values[r][c] === null ? WHITE : activation === "relu"
    ? mix(values[r][c] / scale, OKABE_ITO.orange) : diverging(values[r][c] - centre, scale)));
  return canvas.toDataURL();
}

// The diagram's key: what each colour means here. Edges are weights, green positive and purple dashed
// negative (the key's lines take the edges' CSS classes, so one rule colours both); a neuron's picture
// runs from blue (low) through white to orange (high), the plane's colours for class 0 and class 1.
export function networkKey() {
  const line = (sign) => svg("svg", { class: "bp-key", viewBox: "0 0 28 10", "aria-hidden": "true" },
    svg("line", { x1: 0, y1: 5, x2: 28, y2: 5, class: `bp-weight ${sign}`, "stroke-width": 3 }));
  const ramp = el("canvas", { class: "bp-key", "aria-hidden": "true" });
  paintHeatmap(ramp, 1, 28, (r, c) => diverging((2 * c) / 27 - 1, 1)); // -1 (blue) .. 1 (orange)
  const item = (key, mark, text) => el("span", { class: "bp-legend-item", "data-key": key }, mark,
    ` ${text}`);
  return el("p", { class: "note bp-legend bp-network-key" },
    item("positive", line("pos"), say("positive_weight")),
    item("negative", line("neg"), say("negative_weight")),
    item("output", ramp, say("neuron_output_low_high")));
}

// Draws the whole diagram into `node` (it keeps which unit has the keyboard, across redraws);
// `onSelect(key, text)` hears hovers and focus; `selected` is
// the key described so far, so its text stays current as training runs.
export function drawNetwork(node, state, { selected, onSelect }) {
  const refocus = node.contains(document.activeElement) ? document.activeElement.dataset.unit : null;
  clear(node);
  const sizes = [2, ...state.config.hidden, 1];
  const [fl, fi] = (node.dataset.focus || "0:0").split(":").map(Number);
  // new, or the network changed shape
  if (!node.dataset.focus || !(fl < sizes.length && fi < sizes[fl])) node.dataset.focus = "0:0";
  const widest = Math.max(...sizes);
  const H = Math.max(220, widest * (UNIT + GAP) + 24);
  node.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const x = (l) => 26 + (l * (W - 52)) / (sizes.length - 1);
  const pos = sizes.map((n, l) => Array.from({ length: n }, (_, i) => [x(l),
    H / 2 + (i - (n - 1) / 2) * (UNIT + GAP)]));
  const maxW = Math.max(1e-9, ...state.network.flatMap((L) => L.weights.flat().map((w) => Math.abs(w ?? 0))));
  const grids = state.neurons;
  const edges = [];

  state.network.forEach((layer, l) => {
    layer.weights.forEach((row, j) => row.forEach((w, i) => {
      const grad = layer.weight_grads ? layer.weight_grads[j][i] : null;
      const text = say("weight_sizes_sizes_w", { sizes: unitName(sizes, l, i), sizes2: unitName(sizes, l + 1,
        j), w: format.value(w), value: grad === null ? say("no_step_yet") : format.value(grad) });
      const ends = { x1: pos[l][i][0], y1: pos[l][i][1], x2: pos[l + 1][j][0], y2: pos[l + 1][j][1] };
      // A thin edge is hard to point at: a wide transparent twin underneath catches the mouse.
      const edge = svg("g", { class: "bp-edge", "data-from": `${l}:${i}`, "data-to": `${l + 1}:${j}` },
        svg("line", { ...ends, class: "bp-hit" }),
        svg("line", { ...ends, class: `bp-weight ${w !== null && w >= 0 ? "pos" : "neg"}`,
          "stroke-width": (0.5 + (4 * Math.abs(w ?? 0)) / maxW).toFixed(2) }),
        svg("title", { text }));
      const key = `w${l}:${j}:${i}`;
      edge.addEventListener("mouseenter", () => onSelect(key, text));
      if (selected === key) onSelect(key, text);
      edges.push(edge);
    }));
  });
  node.append(...edges);

  // Units last, so they sit on top of the edges; appended column by column, top to bottom, which is
  // also the order Tab visits them (reading order: inputs, then each layer, then the output).
  sizes.forEach((n, l) => pos[l].forEach(([cx, cy], i) => {
    const incoming = l === 0 ? null : state.network[l - 1];
    const hidden = l > 0 && l < sizes.length - 1;
    const name = unitName(sizes, l, i);
    const values = (list) => list.map(format.value).join(", ");
    const text = l === 0 ? say("sizes_points_value_coordinate", { sizes: name, value: i ? "y" : "x" })
      : say("unit_bias_weights", { unit: name, bias: format.value(incoming.bias[i]),
        weights: values(incoming.weights[i]),
        grads: incoming.weight_grads ? values(incoming.weight_grads[i]) : say("no_step_yet") });
    const key = `n${l}:${i}`;
    // One Tab stop for the whole diagram (the unit last visited); arrow keys move between units.
    const current = node.dataset.focus;
    const unit = svg("g", { class: `bp-unit${hidden ? " hidden-unit" : ""}`, "data-unit": `${l}:${i}`,
      tabindex: current === `${l}:${i}` ? "0" : "-1", role: "img", "aria-label": text },
      svg("title", { text }));
    if (hidden && grids) {
      const h = UNIT / 2;
      unit.append(
        svg("image", { x: cx - h, y: cy - h, width: UNIT, height: UNIT, href: picture(grids.values[l - 1][i],
          grids.activation), preserveAspectRatio: "none", class: "bp-unit-map" }),
        svg("rect", { x: cx - h, y: cy - h, width: UNIT, height: UNIT, rx: 3, class: "bp-neuron" }));
    } else {
      unit.append(svg("circle", { cx, cy, r: 14, class: "bp-neuron" }));
      if (l === 0) unit.append(svg("text", { x: cx, y: cy + 4, "text-anchor": "middle",
        class: "bp-unit-label", text: i ? "y" : "x" }));
    }
    const show = () => { onSelect(key, text); highlight(node, `${l}:${i}`); };
    unit.addEventListener("mouseenter", show);
    unit.addEventListener("focus", show);
    unit.addEventListener("mouseleave", () => highlight(node, null));
    unit.addEventListener("blur", () => highlight(node, null));
    // Up and down move within a layer, left and right to the neighbouring layer (same row, or the nearest).
    onArrowKeys(unit, (dRow, dCol) => {
      const nl = clampIndex(l + dCol, sizes.length);
      const ni = clampIndex(dCol ? Math.round((i / Math.max(1, n - 1)) * (sizes[nl] - 1)) : i + dRow,
        sizes[nl]);
      const next = node.querySelector(`[data-unit="${nl}:${ni}"]`);
      next.focus();
    });
    unit.addEventListener("focus", () => {
      node.dataset.focus = `${l}:${i}`;
      for (const u of node.querySelectorAll(".bp-unit")) u.setAttribute("tabindex", u === unit ? "0" : "-1");
    });
    if (selected === key) onSelect(key, text);
    node.append(unit);
  }));
  if (node.dataset.active) highlight(node, node.dataset.active); // a redraw keeps the highlight
  if (refocus) node.querySelector(`[data-unit="${refocus}"]`)?.focus(); // ... and the keyboard's place
}

// The hovered or focused unit stands out: its edges in and out stay, every other edge fades.
function highlight(node, id) {
  node.dataset.active = id ?? "";
  node.classList.toggle("focusing", id !== null);
  for (const unit of node.querySelectorAll(".bp-unit")) unit.classList.toggle("active",
    unit.dataset.unit === id);
  for (const edge of node.querySelectorAll(".bp-edge")) edge.classList.toggle("lit",
    edge.dataset.from === id || edge.dataset.to === id);
}
