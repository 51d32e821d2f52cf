// The playground: an MLP learning a 2-D dataset live. The server trains
// (prediction_machine.training.backprop.playground.Session); this module keeps the session it sent,
// talks to the server and wires the pieces together:
//   backprop-playground-controls.js  the pickers and buttons
//   backprop-playground-render.js    the plane, the stats and loss chart, the network diagram
import { ApiError, del, post } from "../lib/api.js";
import { clear, errorBox, reducedMotion } from "../lib/dom.js";
import { onArrowKeys } from "../lib/draw.js";
import { shareState } from "../lib/share.js";
import { words } from "../lib/words.js";
import { buildControls } from "./backprop-playground-controls.js";
import { buildView, drawBoundary, fromCanvas, render } from "./backprop-playground-render.js";

const say = words("backprop");

const API = "/api/backprop/sessions";
const STEPS_PER_FRAME = 3;
const GRID = 30;
const NEURON_GRID = 16; // each hidden neuron's picture: 16 × 16 cells

export function mountPlayground(root) {
  const c = buildControls();
  const v = buildView(root, c);

  let state = null; // the latest full session state from the server
  let history = [];
  let playing = false;
  let busy = false;
  const draw = () => render(v, state, history, c.buttons);
  const showError = (error) => { clear(v.alertBox).append(errorBox(error.message)); };

  // ------------------------------------------------------------------------- talking to the server

  async function create() {
    const old = state && state.id;
    stop();
    try {
      state = await post(API, { ...c.session(), init_seed: c.linkedSeed ?? undefined });
      c.linkedSeed = null;
      root.dataset.session = state.id;
      share();
      history = state.history;
      v.selected = null;
      v.info.textContent = say("hover_focus_neuron_see");
      clear(v.alertBox);
      draw();
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
        v.alertBox.append(errorBox(say("session_expired_after_being")));
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
        draw();
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
        clear(v.alertBox);
        draw();
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
      const summary = await call("/settings", c.training());
      if (summary) {
        state = { ...state, ...summary };
        draw();
      }
    } catch (error) {
      showError(error);
    }
  }

  // The view lives in the address bar, so a copied link opens this dataset, network, learning rate and
  // the same initial weights. Only once the learner has changed something: the first session of a page
  // must not overwrite a link that names another section.
  let touched = false;
  function share() {
    if (!touched || !state) return;
    shareState("backprop", { ...c.link(), seed: state.config.init_seed });
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
    c.setPlaying(true);
    loop();
  }

  function stop() {
    playing = false;
    c.setPlaying(false);
  }

  // ------------------------------------------------------------------------- points

  async function clickAt(x, y, otherClass) {
    if (!state) return;
    const m = c.mode.selectedIndex;
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
        draw();
      }
    } catch (error) {
      showError(error);
    }
  }

  const clamp = (x) => Math.max(-v.extent, Math.min(v.extent, Number(x.toFixed(4))));

  v.canvas.addEventListener("click", (event) => {
    const box = v.canvas.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * v.canvas.width;
    const py = ((event.clientY - box.top) / box.height) * v.canvas.height;
    const [x, y] = fromCanvas(v, px, py);
    clickAt(x, y, event.shiftKey);
  });
  onArrowKeys(v.canvas, (dRow, dCol) => { // a row down the screen is y going down
    if (!state) return;
    v.cursor = { x: clamp(v.cursor.x + 0.1 * dCol), y: clamp(v.cursor.y - 0.1 * dRow), shown: true };
    drawBoundary(v, state);
  });
  v.canvas.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      v.cursor.shown = true;
      clickAt(v.cursor.x, v.cursor.y, event.shiftKey);
      event.preventDefault();
    }
  });
  v.canvas.addEventListener("blur", () => { v.cursor.shown = false; if (state) drawBoundary(v, state); });

  // ------------------------------------------------------------------------- wiring

  c.buttons.play.addEventListener("click", () => (playing ? stop() : play()));
  c.buttons.step.addEventListener("click", () => { stop(); step(1); });
  c.buttons.reset.addEventListener("click", () => replace("/reset"));
  c.buttons.fresh.addEventListener("click", () => replace("/new-weights"));
  for (const input of [c.dataset, c.layers, c.width, c.activation]) input.addEventListener("change", create);
  for (const input of [c.lr, c.batch, c.l2]) input.addEventListener("change", settings);
  for (const input of [c.lr, c.batch, c.l2]) input.addEventListener("change", share);
  window.addEventListener("pagehide", () => state && remove(state.id));
  if (reducedMotion()) v.info.textContent += say("reduced_motion_press_step");
  create();
}
