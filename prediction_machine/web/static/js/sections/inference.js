// The inference walkthrough: a prompt goes through six stages, one token at a time.
// Every number comes from the API: /api/tokenize, /api/trace, /api/sample/preview, /api/generate.
// This module asks for them and wires the pieces together:
//   inference-state.js     the run so far and the rules that move it on
//   inference-controls.js  the prompt, the buttons and the sampling sliders
//   inference-render.js    the six stage panels, each drawn for the selected step
// The timeline selects a step and all six stages show that step's record.
import * as api from "../lib/api.js";
import { clear, errorBox } from "../lib/dom.js";
import { replayRow } from "../lib/replay.js";
import { sharedState, shareState } from "../lib/share.js";
import { words } from "../lib/words.js";
import { buildControls } from "./inference-controls.js";
import * as render from "./inference-render.js";
import { continuation, drawPlan, newState, recordStep, resetState, sameRun,
  selectStep, useServerSampling } from "./inference-state.js";

const say = words("inference");

export function mount(root) {
  clear(root);
  const state = newState();
  root.live = state; // the tour's questions check answers against the run shown (lib/question-checks.js)
  const touch = () => { state.touched = true; };
  const c = buildControls({
    onSettings: () => { touch(); schedulePreview(); },
    onExample: () => { touch(); reset(); refreshTokens(); },
  });
  // A recorded generation (lib/replay.js), drawn by the same handlers as a live one; defined below.
  const recorded = replayRow("generation", (recording) => replay(recording));
  root.append(c.panel, recorded.node);
  const view = render.buildStages(root, c.samplingExtra);

  const request = () => ({ prompt: c.prompt.value, chat: c.chat.checked });
  const showError = (error) => { clear(c.errors).append(errorBox(error.message || String(error))); };
  const clearError = () => clear(c.errors);
  const paused = () => say("paused_after", { n: state.steps.length });

  function setRunning(running) {
    state.running = running;
    c.setRunning(running);
    root.dataset.running = running ? "1" : "0";
  }

  // The view in the address bar, so a copied link opens it (after the learner changed something).
  function share() {
    if (!state.touched) return;
    const p = c.params();
    shareState("inference", { prompt: c.prompt.value, chat: c.chat.checked ? 1 : 0, max: c.maxTokens.value,
      seed: c.seed.value, t: p.temperature, k: p.top_k, p: p.top_p, m: p.min_p, n: state.steps.length || null,
      step: state.selected === null ? null : state.selected + 1 });
  }

  // ---------------------------------------------------------------- stage 1, live while typing
  let tokenTimer = null;
  async function refreshTokens() {
    clearTimeout(tokenTimer);
    if (!c.prompt.value) { state.tokens = null; render.drawTokenizer(view, state); return; }
    try {
      state.tokens = await api.post("/api/tokenize", { text: c.prompt.value, chat: c.chat.checked });
      render.drawTokenizer(view, state);
      clearError();
    } catch (error) { showError(error); }
  }
  c.prompt.addEventListener("input", () => {
    touch(); reset(); clearTimeout(tokenTimer); tokenTimer = setTimeout(refreshTokens, 250);
  });
  c.chat.addEventListener("change", () => { touch(); reset(); refreshTokens(); });
  c.maxTokens.addEventListener("change", () => { touch(); share(); });

  // ---------------------------------------------------------------- stages 2-3: one traced pass per step
  // The trace of step i reads the prompt and the i tokens before it, and follows the token step i chose.
  const drawTraced = (i, trace) => render.drawTraced(view, state, i, trace,
    (on) => { state.showTemplate = on; drawTraced(i, trace); });

  async function ensureTrace() {
    if (state.trace) return;
    c.status.textContent = say("running_instrumented_forward_pass");
    state.trace = await api.post("/api/trace", request());
    state.traces.set(0, state.trace);
    render.showSizes(view, state.trace.model);
    drawTraced(0, state.trace);
  }

  function requestTrace() {
    const i = state.selected ?? 0;
    const cached = state.traces.get(i);
    if (cached && (state.steps[i] ? cached.transformer.chosen.id === state.steps[i].id : true)) {
      drawTraced(i, cached);
      return;
    }
    for (const id of ["embedding", "transformer"]) view.tags[id].textContent = say("updating_step_value",
      { value: i + 1 });
    state.traceWant = i;
    if (!state.traceBusy) pumpTraces();
  }
  async function pumpTraces() {
    state.traceBusy = true;
    try {
      while (state.traceWant !== null) {
        const i = state.traceWant, step = state.steps[i];
        state.traceWant = null;
        if (!step) continue;
        const key = JSON.stringify(request());
        const t = await api.post("/api/trace", { ...request(), continuation: continuation(state, i),
          target: step.id });
        if (key !== JSON.stringify(request()) || state.steps[i] !== step) continue; // reset meanwhile
        if (state.traces.size > 12) state.traces.delete(state.traces.keys().next().value);
        state.traces.set(i, t);
        if ((state.selected ?? 0) === i) drawTraced(i, t);
      }
    } catch (error) { showError(error); } finally { state.traceBusy = false; }
  }

  // ---------------------------------------------------------------- stage 5's second half: the next draw
  let previewTimer = null;
  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => preview().catch(showError), 120);
  }
  async function preview() {
    const newest = state.steps[state.steps.length - 1];
    const changed = !newest || !sameRun(newest.settings, c.settings());
    const ended = state.finish && state.finish !== "length"; // at the length limit, a larger limit goes on
    if (!state.trace || state.running || !changed || ended) { clear(view.nextDraw); share(); return; }
    const next = drawPlan(state, c.settings());
    const body = { ...request(), continuation: continuation(state), ...c.params(), k: 10,
      draws_before: next.draws };
    if (next.seed !== null) body.seed = next.seed;
    const data = await api.post("/api/sample/preview", body);
    if (state.running) return;
    render.drawPreview(view, state, data);
    share();
  }

  // ---------------------------------------------------------------- stage 6: the loop
  // A seeded run with unchanged settings is replayed from its start (fast: a handful of tokens), so
  // every step draws the random number an uninterrupted Generate would draw.
  async function run(maxNew) {
    clearError();
    // A run without a seed draws one here and shows it, so the link it leaves replays the same tokens.
    if (c.seedValue() === null) c.seed.value = String(Math.floor(Math.random() * 2 ** 31));
    setRunning(true);
    clear(view.nextDraw);
    state.controller = new AbortController();
    try {
      await ensureTrace();
      const have = state.steps.length;
      const remaining = Number(c.maxTokens.value) - have;
      if (state.finish === "length" && remaining > 0) state.finish = null; // the learner raised the limit
      if (state.finish
        || remaining <= 0) { c.status.textContent = say("finished_reset_start_again"); return; }
      const want = Math.min(maxNew, remaining), settings = c.settings(), plan = drawPlan(state, settings);
      const replay = plan.mode === "replay";
      state.run = replay ? settings : null; // once a setting changed mid-run, no replay can rebuild the run
      const body = { ...request(), continuation: replay ? [] : continuation(state), ...c.params(),
        max_new_tokens: replay ? have + want : want, seed: plan.seed, top_n: 10 };
      const step = { offset: replay ? 0 : have, settings, plan, maxTokens: Number(c.maxTokens.value) };
      c.status.textContent = say("generating");
      await api.stream("/api/generate", body, (name, data) => onEvent(name, data, step),
        { signal: state.controller.signal });
    } catch (error) {
      if (error.name !== "AbortError") showError(error);
    } finally {
      setRunning(false);
      state.controller = null;
      if (!state.finish && state.steps.length) c.status.textContent = paused();
      preview().catch(() => {});
    }
  }

  function onEvent(name, data, step) {
    if (name === "queued") {
      c.status.textContent = say("waiting_model_position_position", { position: data.position });
    } else if (name === "start") {
      c.status.textContent = say("generating_with", { name: data.model.name,
        precision: data.model.precision });
    } else if (name === "step") {
      if (recordStep(state, data, step)) showStep();
    } else if (name === "done") {
      const why = state.finish === "stop" ? say("model_ended_turn") : say("reached_token_limit");
      // The stages follow the newest step, which is then the end-of-turn token: say so, and where to look.
      const last = state.finish === "stop" && !state.pinned ? say("stages_show_end_marker") : "";
      c.status.textContent = state.finish ? say("done_why", { why, n: state.steps.length }) + last : paused();
      root.dataset.done = state.finish ? "1" : "0";
    } else if (name === "error") showError(new Error(data.error || say("generation_failed")));
  }

  // All six stages show the selected step.
  function select(i) {
    selectStep(state, i);
    showStep();
  }
  function showStep() {
    if (!render.drawStep(view, state, select)) return;
    requestTrace();
    share();
  }

  function reset() {
    recorded.clear();
    resetState(state);
    render.clearStages(view);
    root.dataset.done = "0";
    c.status.textContent = "";
  }

  // The recording's settings go into the controls, then its events into onEvent as if streamed now. Only
  // stages 2-3 still ask the server (one traced forward pass for the step shown).
  async function replay(recording) {
    const r = recording.request;
    touch(); reset();
    c.prompt.value = r.prompt;
    c.chat.checked = r.chat;
    c.maxTokens.value = String(r.max_new_tokens);
    c.seed.value = String(r.seed);
    for (const name of ["temperature", "top_k", "top_p", "min_p"]) c.sliders[name].set(r[name]);
    await refreshTokens();
    await ensureTrace().catch(showError);
    const settings = c.settings();
    const step = { offset: 0, settings, plan: drawPlan(state, settings), maxTokens: r.max_new_tokens };
    for (const [name, data] of recording.events) onEvent(name, data, step);
    preview().catch(() => {});
  }

  c.genButton.addEventListener("click", () => { touch(); reset(); run(Number(c.maxTokens.value)); });
  c.stepButton.addEventListener("click", () => { touch(); run(1); });
  c.playButton.addEventListener("click", () => {
    touch();
    if (state.running && state.controller) state.controller.abort();
    else run(Number(c.maxTokens.value));
  });
  c.resetButton.addEventListener("click", () => { touch(); reset(); refreshTokens(); share(); });

  // ---------------------------------------------------------------- a shared link: the same view again
  reset();
  // A shared link's temperature may pass the slider's range until the server states the maximum.
  let sharedTemperature = null;
  const chosenTemperature = () => sharedTemperature ?? c.sliders.temperature.value();
  const shared = sharedState("inference");
  if (shared) {
    if (shared.prompt) c.prompt.value = shared.prompt;
    c.chat.checked = shared.chat !== "0";
    if (shared.max) c.maxTokens.value = shared.max;
    c.seed.value = shared.seed ?? ""; // a link without a seed draws a new one, and says which (never 42)
    for (const [key, name] of [["t", "temperature"], ["k", "top_k"], ["p", "top_p"], ["m", "min_p"]]) {
      if (shared[key] !== undefined
        && Number.isFinite(Number(shared[key]))) c.sliders[name].set(Number(shared[key]));
    }
    if (Number.isFinite(Number(shared.t))) sharedTemperature = Number(shared.t);
    state.touched = true;
  }
  // The first tokens wait for the server's sampling settings, so the sliders are the server's
  // before anything is drawn.
  const settled = api.get("/api/settings").then(({ sampling }) => {
    useServerSampling(sampling);
    c.applyServerSampling(sampling, state.touched ? chosenTemperature() : null);
  }).catch(showError).finally(refreshTokens);
  const n = shared ? Math.min(Number(shared.n) || 0, Number(c.maxTokens.value)) : 0;
  if (n > 0) {
    settled.then(() => run(n)).then(() => { // seeded, so the same tokens come back
      const step = Math.min(Number(shared.step) || n, state.steps.length);
      if (step >= 1) select(step - 1);
      root.dataset.shared = "1";
    });
  } else if (shared) root.dataset.shared = "1";
  root.dataset.ready = "1";
}
