// The playground: an MLP learning a 2-D dataset live. The server trains
// (prediction_machine.training.backprop.playground.Session); this module only draws what each step returns.
import { ApiError, del, post } from "../lib/api.js";
import { clear, codeLink, el, errorBox, reducedMotion, svg } from "../lib/dom.js";
import { css, INK, mix, OKABE_ITO, onArrowKeys, paintHeatmap, PAPER, WHITE } from "../lib/draw.js";
import { sharedState, shareState } from "../lib/share.js";
import { drawLossChart, lossLegend } from "./backprop-chart.js";
import { drawNetwork } from "./backprop-network.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("backprop");

const API = "/api/backprop/sessions";
const BLUE = OKABE_ITO.blue; // class 0
const ORANGE = OKABE_ITO.orange; // class 1
const STEPS_PER_FRAME = 3;
const GRID = 30;
const NEURON_GRID = 16; // each hidden neuron's picture: 16 × 16 cells
const DATASETS = ["moons", "circles", "xor", "spiral"];

const choice = (id, label, options, value) => {
  const select = el("select", { id, "data-tour-stop": id }, ...options.map((o) => el("option", { value: String(o), text: String(o) })));
  select.value = String(value);
  return [select, el("label", { for: id }, label, select)];
};

// A shared link's value for `key` if it is one of `options`, else the default (a link is untrusted input).
function fromLink(shared, key, options, fallback) {
  const v = shared && shared[key];
  return v !== undefined && options.map(String).includes(v) ? v : fallback;
}

export function mountPlayground(root) {
  const shared = sharedState("backprop");
  const OPTIONS = {
    dataset: DATASETS, layers: [0, 1, 2, 3, 4], width: [1, 2, 3, 4, 6, 8, 12, 16], activation: ["tanh", "relu", "sigmoid"],
    lr: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10], batch: [1, 8, 32, 128, 600], l2: [0, 0.0001, 0.001, 0.01, 0.1],
  };
  const pick = (key, fallback) => fromLink(shared, key, OPTIONS[key], fallback);
  const [dataset, datasetLabel] = choice("bp-dataset", "dataset", OPTIONS.dataset, pick("dataset", "moons"));
  const [layers, layersLabel] = choice("bp-layers", "hidden layers", OPTIONS.layers, pick("layers", 2));
  const [width, widthLabel] = choice("bp-width", say("neurons_per_layer"), OPTIONS.width, pick("width", 8));
  const [activation, activationLabel] = choice("bp-act", "activation", OPTIONS.activation, pick("activation", "tanh"));
  const [lr, lrLabel] = choice("bp-lr", "learning rate", OPTIONS.lr, pick("lr", 0.3));
  const [batch, batchLabel] = choice("bp-batch", "batch size", OPTIONS.batch, pick("batch", 32));
  const [l2, l2Label] = choice("bp-l2", say("l_weight_decay"), OPTIONS.l2, pick("l2", 0));
  const [mode, modeLabel] = choice("bp-mode", say("click_plane"), [say("adds_class_blue_circle"), say("adds_class_orange_square"), say("removes_nearest_point")], say("adds_class_blue_circle"));

  const buttons = {
    play: el("button", { type: "button", class: "primary", "data-tour-stop": "bp-play", "aria-pressed": "false", text: "Play" }),
    step: el("button", { type: "button", text: "Step" }),
    reset: el("button", { type: "button", text: "Reset" }),
    fresh: el("button", { type: "button", text: "New weights" }),
  };
  const canvas = el("canvas", { id: "bp-boundary", "data-tour-stop": "bp-boundary", width: "360", height: "360", tabindex: "0", role: "img",
    "aria-label": say("decision_boundary_data_points") });
  const chart = el("canvas", { id: "bp-loss", "data-tour-stop": "bp-loss", width: "360", height: "170", role: "img", "aria-label": say("train_test_loss_over") });
  const stats = el("dl", { class: "bp-stats" });
  const statValues = {};
  for (const [key, label] of [["step", "step"], ["train-loss", "train loss"], ["test-loss", "test loss"], ["train-acc", "train accuracy"], ["test-acc", "test accuracy"], ["points", "points"]]) {
    statValues[key] = el("dd", { "data-stat": key, "data-tour-stop": key, text: format.DASH });
    stats.append(el("div", {}, el("dt", { text: label }), statValues[key]));
  }
  const network = svg("svg", { class: "bp-network", viewBox: "0 0 360 220", role: "group", "aria-label": say("network_edge_colour_width") });
  const info = el("p", { class: "bp-info", "aria-live": "polite", text: say("hover_focus_neuron_see") });
  const warning = el("p", { class: "bp-warning", role: "alert", hidden: true });
  const alertBox = el("div", { class: "bp-alert" });

  root.append(
    el("h4", { text: "The playground" }),
    el("div", { class: "bp-controls" }, datasetLabel, layersLabel, widthLabel, activationLabel, lrLabel, batchLabel, l2Label, modeLabel),
    el("div", { class: "row bp-buttons" }, ...Object.values(buttons)),
    alertBox,
    el("div", { class: "bp-panels" },
      el("figure", {}, canvas, el("figcaption", { class: "note", text: say("blue_class_circles_orange") })),
      el("div", {}, stats, chart, lossLegend(), warning),
      el("figure", {}, network,
        el("figcaption", { class: "note", text: say("small_square_hidden_neurons") }),
        info)),
    codeLink("prediction_machine.training.backprop.playground.Session.step"),
    codeLink("prediction_machine.training.backprop.vectorized.TensorMLP.gradients", say("same_network_tensors")),
    codeLink("prediction_machine.training.backprop.datasets.make", "the datasets"),
  );

  let state = null; // the latest full session state from the server
  let history = [];
  let playing = false;
  let busy = false;
  let cursor = { x: 0, y: 0, shown: false };
  let selected = null; // the weight or neuron the info line describes, kept current as training runs
  let extent = 1; // the plane shown is [-extent, extent]²; the server sends it with every grid

  // ------------------------------------------------------------------------- talking to the server

  // A shared link's initial weights (a number the server checks), used once: the first session.
  let linkedSeed = shared && /^\d{1,10}$/.test(shared.seed || "") && Number(shared.seed) < 2 ** 31 ? Number(shared.seed) : null;

  async function create() {
    const old = state && state.id;
    stop();
    try {
      const hidden = Array(Number(layers.value)).fill(Number(width.value));
      state = await post(API, { dataset: dataset.value, hidden, activation: activation.value,
        learning_rate: Number(lr.value), batch_size: Number(batch.value), l2: Number(l2.value),
        init_seed: linkedSeed ?? undefined });
      linkedSeed = null;
      root.dataset.session = state.id;
      share();
      history = state.history;
      selected = null;
      info.textContent = say("hover_focus_neuron_see");
      clear(alertBox);
      render();
    } catch (error) {
      showError(error);
    }
    if (old) remove(old);
  }

  function remove(id) {
    del(`${API}/${id}`, { keepalive: true }).catch(() => {});
  }

  async function call(path, body) {
    try {
      return await post(`${API}/${state.id}${path}`, body);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        alertBox.append(errorBox(say("session_expired_after_being")));
        await create();
        return null;
      }
      throw error;
    }
  }

  async function step(n) {
    await settingsApplied;
    if (!state || busy) return;
    busy = true;
    try {
      const frame = await call("/step", { steps: n, grid: GRID, neurons: NEURON_GRID });
      if (frame) {
        state = { ...state, ...frame };
        history = history.concat(frame.rows);
        render();
        if (frame.paused) stop();
      }
    } catch (error) {
      showError(error);
      stop();
    } finally {
      busy = false;
    }
  }

  async function replace(path, body = {}) {
    stop();
    try {
      const fresh = await call(path, body);
      if (fresh) {
        state = fresh;
        history = fresh.history;
        share();
        clear(alertBox);
        render();
      }
    } catch (error) {
      showError(error);
    }
  }

  // Settings changes go out one after another (two in flight could land in the wrong order), and a
  // training step waits for any still on its way, so it never runs on stale settings.
  let settingsApplied = Promise.resolve();
  function settings() {
    settingsApplied = settingsApplied.then(applySettings);
    return settingsApplied;
  }

  async function applySettings() {
    try {
      const summary = await call("/settings", { learning_rate: Number(lr.value), batch_size: Number(batch.value), l2: Number(l2.value) });
      if (summary) {
        state = { ...state, ...summary };
        render();
      }
    } catch (error) {
      showError(error);
    }
  }

  function showError(error) {
    clear(alertBox).append(errorBox(error.message));
  }

  // The view lives in the address bar, so a copied link opens this dataset, network, learning rate and
  // the same initial weights. Only once the learner has changed something: the first session of a page
  // must not overwrite a link that names another section.
  let touched = false;
  function share() {
    if (!touched || !state) return;
    shareState("backprop", { dataset: dataset.value, layers: layers.value, width: width.value, activation: activation.value,
      lr: lr.value, batch: batch.value, l2: l2.value, seed: state.config.init_seed });
  }
  root.addEventListener("change", () => { touched = true; }, true);
  root.addEventListener("click", (e) => { if (e.target.closest("button")) touched = true; }, true);

  // ------------------------------------------------------------------------- play / pause

  async function loop() {
    while (playing) {
      await step(STEPS_PER_FRAME);
      await new Promise((resolve) => requestAnimationFrame(resolve));
    }
  }

  function play() {
    if (playing || !state) return;
    if (state.paused) return;
    playing = true;
    buttons.play.textContent = "Pause";
    buttons.play.setAttribute("aria-pressed", "true");
    loop();
  }

  function stop() {
    playing = false;
    buttons.play.textContent = "Play";
    buttons.play.setAttribute("aria-pressed", "false");
  }

  // ------------------------------------------------------------------------- drawing

  function render() {
    if (state.grid) extent = state.grid.extent;
    drawBoundary();
    drawChart();
    showNetwork();
    const last = state.latest;
    statValues.step.textContent = String(state.step);
    for (const [key, value, pct] of [["train-loss", last.train_loss], ["test-loss", last.test_loss], ["train-acc", last.train_accuracy, true], ["test-acc", last.test_accuracy, true]]) {
      statValues[key].textContent = value === null ? format.DASH : pct ? format.percent(value, 1) : value.toFixed(4);
      statValues[key].dataset.value = value === null ? "" : String(value);
    }
    statValues.points.textContent = `${state.n_train} train, ${state.n_test} test`;
    canvas.dataset.step = String(state.step);
    canvas.dataset.points = String(state.points.length);
    if (state.paused) clear(alertBox).append(el("p", { class: "error bp-paused", role: "alert", text: state.paused_reason }));
    else alertBox.querySelector(".bp-paused")?.remove();
    // Diverging without overflowing: the server says so, naming the learning rate and a smaller one.
    if (state.warning !== undefined) {
      warning.hidden = !state.warning;
      if (state.warning && warning.textContent !== state.warning) warning.textContent = state.warning;
    }
    buttons.play.disabled = state.paused;
    buttons.step.disabled = state.paused;
  }

  function drawBoundary() {
    const ctx = canvas.getContext("2d");
    const W = canvas.width;
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
      const [x, y] = toCanvas(p.x, p.y);
      ctx.beginPath();
      if (p.label === 0) ctx.arc(x, y, 4.5, 0, 2 * Math.PI);
      else ctx.rect(x - 4, y - 4, 8, 8);
      ctx.fillStyle = css(p.split === "test" ? WHITE : p.label ? ORANGE : BLUE);
      ctx.fill();
      ctx.lineWidth = p.user ? 2.5 : 1.2;
      ctx.strokeStyle = css(p.split === "test" ? (p.label ? ORANGE : BLUE) : INK);
      ctx.stroke();
    }
    if (cursor.shown) {
      const [x, y] = toCanvas(cursor.x, cursor.y);
      ctx.strokeStyle = css(INK);
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(x - 9, y); ctx.lineTo(x + 9, y); ctx.moveTo(x, y - 9); ctx.lineTo(x, y + 9);
      ctx.stroke();
    }
  }

  function toCanvas(x, y) {
    const e = extent;
    const W = canvas.width;
    return [((x + e) / (2 * e)) * W, ((e - y) / (2 * e)) * W];
  }

  function fromCanvas(px, py) {
    const e = extent;
    const W = canvas.width;
    return [(px / W) * 2 * e - e, e - (py / W) * 2 * e];
  }

  function drawChart() {
    drawLossChart(chart, history);
  }

  function showNetwork() {
    drawNetwork(network, state, { selected, onSelect: (key, text) => { selected = key; info.textContent = text; } });
    network.dataset.step = String(state.step);
  }

  // ------------------------------------------------------------------------- points

  async function clickAt(x, y, otherClass) {
    if (!state) return;
    const m = mode.selectedIndex;
    let body;
    if (m === 2) {
      let best = -1;
      let bestD = 0.15 ** 2;
      state.points.forEach((p, i) => {
        const d = (p.x - x) ** 2 + (p.y - y) ** 2;
        if (d < bestD) { best = i; bestD = d; }
      });
      if (best < 0) return;
      body = { remove: [best] };
    } else {
      body = { add: [{ x: clamp(x), y: clamp(y), label: otherClass ? 1 - m : m }] };
    }
    try {
      const fresh = await call("/points", body);
      if (fresh) {
        state = { ...state, ...fresh, history: undefined };
        render();
      }
    } catch (error) {
      showError(error);
    }
  }

  const clamp = (v) => Math.max(-extent, Math.min(extent, Number(v.toFixed(4))));

  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    const [x, y] = fromCanvas(((event.clientX - box.left) / box.width) * canvas.width, ((event.clientY - box.top) / box.height) * canvas.height);
    clickAt(x, y, event.shiftKey);
  });
  onArrowKeys(canvas, (dRow, dCol) => { // a row down the screen is y going down
    if (!state) return;
    cursor = { x: clamp(cursor.x + 0.1 * dCol), y: clamp(cursor.y - 0.1 * dRow), shown: true };
    drawBoundary();
  });
  canvas.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      cursor.shown = true;
      clickAt(cursor.x, cursor.y, event.shiftKey);
      event.preventDefault();
    }
  });
  canvas.addEventListener("blur", () => { cursor.shown = false; if (state) drawBoundary(); });

  // ------------------------------------------------------------------------- wiring

  buttons.play.addEventListener("click", () => (playing ? stop() : play()));
  buttons.step.addEventListener("click", () => { stop(); step(1); });
  buttons.reset.addEventListener("click", () => replace("/reset"));
  buttons.fresh.addEventListener("click", () => replace("/new-weights"));
  for (const input of [dataset, layers, width, activation]) input.addEventListener("change", create);
  for (const input of [lr, batch, l2]) input.addEventListener("change", settings);
  for (const input of [lr, batch, l2]) input.addEventListener("change", share);
  window.addEventListener("pagehide", () => state && remove(state.id));
  if (reducedMotion()) info.textContent += say("reduced_motion_press_step");
  create();
}
