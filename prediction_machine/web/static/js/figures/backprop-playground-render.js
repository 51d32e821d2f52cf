// The playground's view: the plane with the decision boundary and the points, the stats and loss
// chart, and the network diagram. It draws a session state the server sent and keeps none of its own,
// except the plane's keyboard cursor.
import { clear, codeLink, el, svg } from "../lib/dom.js";
import { css, INK, mix, OKABE_ITO, paintHeatmap, PAPER, WHITE } from "../lib/draw.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";
import { drawLossChart, lossLegend } from "./backprop-chart.js";
import { drawNetwork, networkKey } from "./backprop-network.js";

const say = words("backprop");

const BLUE = OKABE_ITO.blue; // class 0
const ORANGE = OKABE_ITO.orange; // class 1
const STATS = [["step", say("stat_step")], ["train-loss", say("train_loss")], ["test-loss", say("test_loss")],
  ["train-acc", say("train_accuracy")], ["test-acc", say("test_accuracy")], ["points", say("points")]];

// Lays the figure out in root under the controls; returns the view that draws into it.
export function buildView(root, controls) {
  const v = { extent: 1, cursor: { x: 0, y: 0, shown: false }, selected: null };
  v.canvas = el("canvas", { id: "bp-boundary", "data-tour-stop": "bp-boundary", width: "360", height: "360",
    tabindex: "0", role: "img", "aria-label": say("decision_boundary_data_points") });
  v.chart = el("canvas", { id: "bp-loss", "data-tour-stop": "bp-loss", width: "360", height: "170",
    "data-empty": "", role: "img",
    "aria-label": say("train_test_loss_over") });
  const stats = el("dl", { class: "bp-stats" });
  v.stats = {};
  for (const [key, label] of STATS) {
    v.stats[key] = el("dd", { "data-stat": key, "data-tour-stop": key, text: format.DASH });
    stats.append(el("div", {}, el("dt", { text: label }), v.stats[key]));
  }
  v.network = svg("svg", { class: "bp-network", viewBox: "0 0 360 220", role: "group",
    "aria-label": say("network_edge_colour_width") });
  v.info = el("p", { class: "bp-info", "aria-live": "polite", text: say("hover_focus_neuron_see") });
  v.warning = el("p", { class: "bp-warning", role: "alert", hidden: true });
  v.alertBox = el("div", { class: "bp-alert" });

  root.append(
    el("h4", { text: say("playground") }),
    ...controls.panel,
    v.alertBox,
    el("div", { class: "bp-panels" },
      el("figure", {}, v.canvas, el("figcaption", { class: "note", text: say("blue_class_circles_orange") })),
      el("div", {}, stats, v.chart, lossLegend(), v.warning),
      el("figure", {}, v.network, networkKey(),
        el("figcaption", { class: "note", text: say("small_square_hidden_neurons") }),
        v.info)),
    codeLink("prediction_machine.training.backprop.playground.Session.step"),
    codeLink("prediction_machine.training.backprop.vectorized.TensorMLP.gradients",
      say("same_network_tensors")),
    codeLink("prediction_machine.training.backprop.datasets.make", say("the_datasets")),
  );
  return v;
}

// Plane coordinates <-> canvas pixels: the plane shown is [-extent, extent]².
export function toCanvas(v, x, y) {
  const e = v.extent, W = v.canvas.width;
  return [((x + e) / (2 * e)) * W, ((e - y) / (2 * e)) * W];
}
export function fromCanvas(v, px, py) {
  const e = v.extent, W = v.canvas.width;
  return [(px / W) * 2 * e - e, e - (py / W) * 2 * e];
}

// Everything, from the latest session state and the loss history.
export function render(v, state, history, buttons) {
  if (state.grid) v.extent = state.grid.extent;
  drawBoundary(v, state);
  drawLossChart(v.chart, history);
  showNetwork(v, state);
  const last = state.latest;
  v.stats.step.textContent = String(state.step);
  for (const [key, value, pct] of [["train-loss", last.train_loss], ["test-loss", last.test_loss],
    ["train-acc", last.train_accuracy, true], ["test-acc", last.test_accuracy, true]]) {
    v.stats[key].textContent = value === null ? format.DASH : pct ? format.percent(value,
      1) : value.toFixed(4);
    v.stats[key].dataset.value = value === null ? "" : String(value);
  }
  v.stats.points.textContent = say("points_split", { train: state.n_train, test: state.n_test });
  v.canvas.dataset.step = String(state.step);
  v.canvas.dataset.points = String(state.points.length);
  if (state.paused) {
    clear(v.alertBox).append(el("p", { class: "error bp-paused", role: "alert", text: state.paused_reason }));
  } else v.alertBox.querySelector(".bp-paused")?.remove();
  // Diverging without overflowing: the server says so, naming the learning rate and a smaller one.
  if (state.warning !== undefined) {
    v.warning.hidden = !state.warning;
    if (state.warning && v.warning.textContent !== state.warning) v.warning.textContent = state.warning;
  }
  buttons.play.disabled = state.paused;
  buttons.step.disabled = state.paused;
}

export function drawBoundary(v, state) {
  const ctx = v.canvas.getContext("2d");
  const W = v.canvas.width;
  if (state.grid) {
    // One cell per grid point, tinted towards the class the network predicts there, then stretched smooth.
    const R = state.grid.resolution;
    const small = document.createElement("canvas");
    paintHeatmap(small, R, R, (r, c) => {
      const p = state.grid.values[r][c];
      const q = p === null ? 0.5 : p;
      return mix(Math.abs(q - 0.5) * 2 * 0.6, q > 0.5 ? ORANGE : BLUE, PAPER);
    });
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(small, 0, 0, W, W);
  }
  for (const p of state.points) {
    const [x, y] = toCanvas(v, p.x, p.y);
    ctx.beginPath();
    if (p.label === 0) ctx.arc(x, y, 4.5, 0, 2 * Math.PI);
    else ctx.rect(x - 4, y - 4, 8, 8);
    ctx.fillStyle = css(p.split === "test" ? WHITE : p.label ? ORANGE : BLUE);
    ctx.fill();
    ctx.lineWidth = p.user ? 2.5 : 1.2;
    ctx.strokeStyle = css(p.split === "test" ? (p.label ? ORANGE : BLUE) : INK);
    ctx.stroke();
  }
  if (v.cursor.shown) {
    const [x, y] = toCanvas(v, v.cursor.x, v.cursor.y);
    ctx.strokeStyle = css(INK);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(x - 9, y); ctx.lineTo(x + 9, y); ctx.moveTo(x, y - 9); ctx.lineTo(x, y + 9);
    ctx.stroke();
  }
}

// The network diagram; the weight or neuron the info line describes stays selected as training runs.
function showNetwork(v, state) {
  drawNetwork(v.network, state, { selected: v.selected, onSelect: (key,
    text) => { v.selected = key; v.info.textContent = text; } });
  v.network.dataset.step = String(state.step);
}
