// The playground: an MLP learning a 2-D dataset live. The server trains
// (prediction_machine.training.backprop.playground.Session); this module only draws what each step returns.
import { ApiError, del, post } from "./api.js";
import { clear, codeLink, el, errorBox, reducedMotion, svg } from "./dom.js";
import { css, INK, LINE, mix, MUTED, OKABE_ITO, onArrowKeys, paintHeatmap, PAPER, WHITE } from "./draw.js";
import { fmt } from "./backprop-neuron.js";

const API = "/api/backprop/sessions";
const BLUE = OKABE_ITO.blue; // class 0
const ORANGE = OKABE_ITO.orange; // class 1
const STEPS_PER_FRAME = 3;
const GRID = 30;

const choice = (id, label, options, value) => {
  const select = el("select", { id }, ...options.map((o) => el("option", { value: String(o), text: String(o) })));
  select.value = String(value);
  return [select, el("label", { for: id }, label, select)];
};

export function mountPlayground(root) {
  const [dataset, datasetLabel] = choice("bp-dataset", "dataset", ["moons", "circles", "xor", "spiral"], "moons");
  const [layers, layersLabel] = choice("bp-layers", "hidden layers", [0, 1, 2, 3, 4], 2);
  const [width, widthLabel] = choice("bp-width", "neurons per layer", [1, 2, 3, 4, 6, 8, 12, 16], 8);
  const [activation, activationLabel] = choice("bp-act", "activation", ["tanh", "relu", "sigmoid"], "tanh");
  const [lr, lrLabel] = choice("bp-lr", "learning rate", [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10], 0.3);
  const [batch, batchLabel] = choice("bp-batch", "batch size", [1, 8, 32, 128, 600], 32);
  const [l2, l2Label] = choice("bp-l2", "L2", [0, 0.0001, 0.001, 0.01, 0.1], 0);
  const [mode, modeLabel] = choice("bp-mode", "a click on the plane", ["adds class 0 (blue circle)", "adds class 1 (orange square)", "removes the nearest point"], "adds class 0 (blue circle)");

  const buttons = {
    play: el("button", { type: "button", class: "primary", "aria-pressed": "false", text: "Play" }),
    step: el("button", { type: "button", text: "Step" }),
    reset: el("button", { type: "button", text: "Reset" }),
    fresh: el("button", { type: "button", text: "New weights" }),
  };
  const canvas = el("canvas", { id: "bp-boundary", width: "360", height: "360", tabindex: "0", role: "img",
    "aria-label": "Decision boundary and data points. Click to add a point; with the keyboard, arrow keys move the cursor and Enter applies the click action." });
  const chart = el("canvas", { id: "bp-loss", width: "360", height: "170", role: "img", "aria-label": "Train and test loss over the steps" });
  const stats = el("dl", { class: "bp-stats" });
  const statValues = {};
  for (const [key, label] of [["step", "step"], ["train-loss", "train loss"], ["test-loss", "test loss"], ["train-acc", "train accuracy"], ["test-acc", "test accuracy"], ["points", "points"]]) {
    statValues[key] = el("dd", { "data-stat": key, text: "—" });
    stats.append(el("div", {}, el("dt", { text: label }), statValues[key]));
  }
  const network = svg("svg", { class: "bp-network", viewBox: "0 0 360 220", role: "group", "aria-label": "The network: edge colour and width show each weight" });
  const info = el("p", { class: "bp-info", "aria-live": "polite", text: "Hover or focus a neuron to see its weights and their gradients." });
  const alertBox = el("div", { class: "bp-alert" });

  root.append(
    el("h4", { text: "The playground" }),
    el("div", { class: "bp-controls" }, datasetLabel, layersLabel, widthLabel, activationLabel, lrLabel, batchLabel, l2Label, modeLabel),
    el("div", { class: "row bp-buttons" }, ...Object.values(buttons)),
    alertBox,
    el("div", { class: "bp-panels" },
      el("figure", {}, canvas, el("figcaption", { class: "note", text: "Blue = class 0 (circles), orange = class 1 (squares); hollow marks are test points. Shift-click adds the other class." })),
      el("div", {}, stats, chart, el("p", { class: "note bp-legend", text: "— train loss   - - test loss" })),
      el("figure", {}, network, info)),
    codeLink("prediction_machine.training.backprop.playground.Session.step"),
    codeLink("prediction_machine.training.backprop.vectorized.TensorMLP.gradients", "the same network as tensors"),
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

  async function create() {
    const old = state && state.id;
    stop();
    try {
      const hidden = Array(Number(layers.value)).fill(Number(width.value));
      state = await post(API, { dataset: dataset.value, hidden, activation: activation.value,
        learning_rate: Number(lr.value), batch_size: Number(batch.value), l2: Number(l2.value) });
      history = state.history;
      selected = null;
      info.textContent = "Hover or focus a neuron to see its weights and their gradients.";
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
        alertBox.append(errorBox("This session expired after being idle; a new one has started."));
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
      const frame = await call("/step", { steps: n, grid: GRID });
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
    drawNetwork();
    const last = state.latest;
    statValues.step.textContent = String(state.step);
    for (const [key, value, pct] of [["train-loss", last.train_loss], ["test-loss", last.test_loss], ["train-acc", last.train_accuracy, true], ["test-acc", last.test_accuracy, true]]) {
      statValues[key].textContent = value === null ? "—" : pct ? `${(value * 100).toFixed(1)}%` : value.toFixed(4);
      statValues[key].dataset.value = value === null ? "" : String(value);
    }
    statValues.points.textContent = `${state.n_train} train, ${state.n_test} test`;
    canvas.dataset.step = String(state.step);
    canvas.dataset.points = String(state.points.length);
    if (state.paused) clear(alertBox).append(el("p", { class: "error bp-paused", role: "alert", text: state.paused_reason }));
    else alertBox.querySelector(".bp-paused")?.remove();
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
    const ctx = chart.getContext("2d");
    const W = chart.width;
    const H = chart.height;
    ctx.fillStyle = css(WHITE);
    ctx.fillRect(0, 0, W, H);
    const rows = history.filter((r) => r.train_loss !== null);
    if (!rows.length) return;
    if (rows.length === 1) {
      ctx.fillStyle = css(MUTED);
      ctx.font = "12px system-ui, sans-serif";
      ctx.fillText(`step 0: train loss ${rows[0].train_loss.toFixed(3)}. Press Play or Step.`, 10, H / 2);
      return;
    }
    const top = Math.max(0.8, ...rows.map((r) => Math.max(r.train_loss, r.test_loss ?? 0)).filter(Number.isFinite));
    const last = Math.max(1, rows[rows.length - 1].step);
    const X = (s) => 34 + (s / last) * (W - 44);
    const Y = (v) => 10 + (1 - Math.min(v, top) / top) * (H - 30);
    ctx.strokeStyle = css(LINE);
    ctx.fillStyle = css(MUTED);
    ctx.font = "11px system-ui, sans-serif";
    for (const v of [0, top / 2, top]) {
      ctx.beginPath(); ctx.moveTo(34, Y(v)); ctx.lineTo(W - 10, Y(v)); ctx.stroke();
      ctx.fillText(v.toFixed(2), 2, Y(v) + 4);
    }
    ctx.fillText(`step ${last}`, W - 70, H - 4);
    for (const [key, colour, dash] of [["train_loss", OKABE_ITO.blue, []], ["test_loss", OKABE_ITO.vermillion, [6, 4]]]) {
      ctx.strokeStyle = css(colour);
      ctx.setLineDash(dash);
      ctx.lineWidth = 2;
      ctx.beginPath();
      rows.forEach((r, i) => (r[key] === null ? null : i ? ctx.lineTo(X(r.step), Y(r[key])) : ctx.moveTo(X(r.step), Y(r[key]))));
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }

  function drawNetwork() {
    clear(network);
    const sizes = [2, ...state.config.hidden, 1];
    const W = 360;
    const H = 220;
    const pos = sizes.map((n, l) => Array.from({ length: n }, (_, i) => [20 + (l * (W - 40)) / (sizes.length - 1), H / 2 + (i - (n - 1) / 2) * Math.min(24, (H - 24) / n)]));
    const maxW = Math.max(1e-9, ...state.network.flatMap((L) => L.weights.flat().map((w) => Math.abs(w ?? 0))));
    state.network.forEach((layer, l) => {
      layer.weights.forEach((row, j) => row.forEach((w, i) => {
        const grad = layer.weight_grads ? layer.weight_grads[j][i] : null;
        const text = `weight from ${name(l, i)} to ${name(l + 1, j)}: ${fmt(w)}; gradient ${grad === null ? "(no step yet)" : fmt(grad)}`;
        const ends = { x1: pos[l][i][0], y1: pos[l][i][1], x2: pos[l + 1][j][0], y2: pos[l + 1][j][1] };
        // A thin edge is hard to point at: a wide transparent twin underneath catches the mouse.
        const edge = svg("g", { class: "bp-edge" },
          svg("line", { ...ends, class: "bp-hit" }),
          svg("line", { ...ends, class: `bp-weight ${w !== null && w >= 0 ? "pos" : "neg"}`, "stroke-width": (0.5 + (4 * Math.abs(w ?? 0)) / maxW).toFixed(2) }),
          svg("title", { text }));
        const key = `w${l}:${j}:${i}`;
        edge.addEventListener("mouseenter", () => { selected = key; info.textContent = text; });
        if (selected === key) info.textContent = text;
        network.append(edge);
      }));
    });
    sizes.forEach((n, l) => pos[l].forEach(([x, y], i) => {
      const incoming = l === 0 ? null : state.network[l - 1];
      const text = l === 0 ? `${name(l, i)}: the point's ${i ? "y" : "x"} coordinate`
        : `${name(l, i)}: bias ${fmt(incoming.bias[i])}; incoming weights ${incoming.weights[i].map(fmt).join(", ")}; ` +
          `their gradients ${incoming.weight_grads ? incoming.weight_grads[i].map(fmt).join(", ") : "(no step yet)"}`;
      const dot = svg("circle", { cx: x, cy: y, r: 7, class: "bp-neuron", tabindex: "0", role: "img", "aria-label": text }, svg("title", { text }));
      const key = `n${l}:${i}`;
      const show = () => { selected = key; info.textContent = text; };
      if (selected === key) info.textContent = text;
      dot.addEventListener("mouseenter", show);
      dot.addEventListener("focus", show);
      network.append(dot);
    }));
    function name(l, i) {
      return l === 0 ? `input ${i ? "y" : "x"}` : l === sizes.length - 1 ? "output" : `neuron ${i + 1} of layer ${l}`;
    }
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
  window.addEventListener("pagehide", () => state && remove(state.id));
  if (reducedMotion()) info.textContent += " (Reduced motion: press Step, or Play for continuous training.)";
  create();
}
