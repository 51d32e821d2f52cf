// The inference walkthrough: a prompt goes through six stages, one token at a time.
// This module owns the controls and the state; each stage draws itself (stages.js).
// Every number comes from the API: /api/tokenize, /api/trace, /api/sample/preview, /api/generate.
//
// One step, one story: each generated token keeps its whole record (the tokens it read, the
// prediction, the distribution under the settings it used, the random number, the token appended,
// the KV cache). The timeline selects a step and all six stages show that step's record.
import * as api from "../lib/api.js";
import { clear, codeLink, el, errorBox } from "../lib/dom.js";
import { count, term } from "../lib/glossary.js";
import { sharedState, shareState } from "../lib/share.js";
import * as stages from "../figures/stages.js";

const EXAMPLES = [
  { label: "Capital of France", prompt: "What is the capital of France?", chat: true },
  { label: "A haiku", prompt: "Write a haiku about the sea.", chat: true },
  { label: "Story opening (raw)", prompt: "Once upon a time, in a small village by the sea,", chat: false },
  { label: "Code (raw)", prompt: "def fibonacci(n):\n    ", chat: false },
  { label: "Emoji and CJK", prompt: "Say hello in Japanese: こんにちは 🙂", chat: true },
];

// The six stages as data: [id, title, view-code links, text]. Each id is the name of the Python module
// that computes the stage, and each link opens a function in that module (web/code_links.py serves them).
// A stage's text is a list of strings and glossary terms: each term is explained at its first use.
const STAGES = [
  ["tokenizer", "1. Tokenization", ["prediction_machine.inference.tokenizer.merge_word"],
    (m) => ["The text is cut into ", term("token"), `s: whole words, pieces of words, single bytes. Each token is just an id, a row number in the model's vocabulary${m ? ` of ${m.vocab_size.toLocaleString("en")} tokens` : ""}. The model never sees letters.`]],
  ["embedding", "2. Embedding", ["prediction_machine.inference.embedding.describe"],
    (m) => ["Each id looks up a learned vector of ", `${m ? m.d_model : "a few hundred"} numbers, its `, term("embedding"), ". Tokens used in similar ways end up with similar vectors: that is where meaning starts."]],
  ["transformer", "3. The transformer", ["prediction_machine.model.transformer.Block.forward"],
    (m) => [`${m ? `${m.n_layers} layers` : "Layer after layer"} of attention and small neural networks refine the vectors, each layer adding to a shared stream. Reading that stream after each layer shows the model's guess for the next token taking shape.`]],
  ["prediction", "4. Prediction", ["prediction_machine.inference.prediction.predict"],
    (m) => ["The last vector is compared with every token's embedding, giving one score, a ", term("logit"), ", per token. ", term("Softmax"), ` turns the ${m ? m.vocab_size.toLocaleString("en") : "vocabulary's"} scores into probabilities that sum to 1.`]],
  ["sampling", "5. Sampling", ["prediction_machine.inference.sampling.distribution", "prediction_machine.inference.sampling.draw"],
    () => ["Now one token is chosen. ", term("Temperature"), " sharpens or flattens the distribution; ", term("top-k"), ", ", term("top-p"), " and ", term("min-p"),
      " cut off the unlikely tail. Then a random number u between 0 and 1 is drawn, and the token whose slice of the cumulative bar it lands in wins. Temperature 0 skips the dice and takes the top token."]],
  ["generation", "6. Repetition", ["prediction_machine.inference.generation.generate"],
    () => ["The chosen token is appended and the whole process runs again. Thanks to the ", term("KV cache"), ", the model only computes the new position each time; it stops at the end-of-turn token or the length limit."]],
];

export function mount(root) {
  clear(root);
  const state = {
    trace: null, steps: [], selected: null, pinned: false, controller: null, running: false, finish: null,
    tokens: null, run: null, showTemplate: false, traces: new Map(), traceWant: null, traceBusy: false, touched: false,
  };

  // ---------------------------------------------------------------- controls
  const prompt = el("textarea", { id: "prompt", rows: 3, maxlength: 4000, "aria-label": "Prompt", spellcheck: "false" });
  prompt.value = EXAMPLES[0].prompt;
  const chat = el("input", { type: "checkbox", id: "chat-toggle", checked: true });
  const maxTokens = el("input", { type: "number", id: "max-tokens", min: 1, max: 512, value: 48, "aria-label": "Maximum new tokens" });
  const genButton = el("button", { class: "primary", id: "generate", text: "Generate" });
  const stepButton = el("button", { id: "step", text: "Step" });
  const playButton = el("button", { id: "play", text: "Play", "aria-pressed": "false" });
  const resetButton = el("button", { id: "reset", text: "Reset" });
  const status = el("p", { class: "note", id: "status", role: "status", "aria-live": "polite" });
  const errors = el("div", { id: "inference-errors" });

  const sliders = {
    temperature: slider("temperature", "Temperature", 0, 2, 0.05, 0.0, (v) => (v === 0 ? "0 (greedy)" : v.toFixed(2))),
    top_k: slider("top_k", "Top-k", 0, 100, 1, 0, (v) => (v === 0 ? "off" : String(v))),
    top_p: slider("top_p", "Top-p", 0.05, 1, 0.01, 1, (v) => (v >= 1 ? "off" : v.toFixed(2))),
    min_p: slider("min_p", "Min-p", 0, 0.5, 0.01, 0, (v) => (v === 0 ? "off" : v.toFixed(2))),
  };
  const seed = el("input", { type: "number", id: "seed", min: 0, value: 42, "aria-label": "Random seed" });
  seed.addEventListener("input", () => { touch(); schedulePreview(); });

  const examples = el("details", { class: "examples-box" }, el("summary", { text: "Example prompts" }),
    el("div", { class: "row examples" }, EXAMPLES.map((ex) => el("button", { class: "example", text: ex.label, onclick: () => {
      prompt.value = ex.prompt; chat.checked = ex.chat; touch(); reset(); refreshTokens();
    } }))));
  // Wide screens open the examples; on a phone they stay one line until asked for.
  examples.open = !window.matchMedia("(max-width: 600px)").matches;

  root.append(el("div", { class: "controls" },
    el("label", { for: "prompt", text: "Your prompt" }), prompt, examples,
    el("div", { class: "row" }, el("label", { class: "toggle" }, chat, " Use the chat template"), el("label", {}, "Max new tokens ", maxTokens)),
    el("div", { class: "row buttons" }, genButton, stepButton, playButton, resetButton),
    status, errors));

  // ---------------------------------------------------------------- stage panels
  const panels = {}, texts = {}, tags = {};
  for (const [id, title, code, text] of STAGES) {
    panels[id] = el("div", { class: "stage-body", id: `stage-${id}-body` });
    tags[id] = el("span", { class: "step-tag", id: `stage-${id}-step` });
    texts[id] = el("p", { class: "stage-text" }, text(null));
    let extra = null;
    if (id === "sampling") {
      extra = [el("div", { class: "sliders" }, Object.values(sliders).map((s) => s.label), el("label", {}, "Seed ", seed)),
        el("p", { class: "note", text: "The same seed and settings give the same tokens: Step, Play and Generate all continue one seeded run, so stepping picks exactly what one uninterrupted Generate picks. Change a setting halfway and the next steps use it (with a fresh random sequence, seed + the number of tokens so far)." })];
    }
    root.append(el("article", { class: "stage", id: `stage-${id}`, "aria-labelledby": `stage-${id}-title` },
      el("h3", { id: `stage-${id}-title` }, title, " ", tags[id]), texts[id], extra, panels[id], code.map((name) => codeLink(name))));
  }
  const record = el("div", { id: "sampling-record" }), nextDraw = el("div", { id: "sampling-next", class: "next-draw" });
  panels.sampling.append(record, nextDraw);

  // ---------------------------------------------------------------- helpers
  function slider(name, text, min, max, step, value, show) {
    const input = el("input", { type: "range", id: `slider-${name}`, name, min, max, step, value });
    const out = el("output", { for: `slider-${name}`, id: `slider-${name}-value` });
    const update = () => { out.textContent = show(Number(input.value)); };
    update();
    input.addEventListener("input", () => { update(); touch(); schedulePreview(); });
    return { input, label: el("label", { class: "slider" }, `${text} `, input, out), value: () => Number(input.value), set: (v) => { input.value = v; update(); } };
  }
  const params = () => Object.fromEntries(Object.entries(sliders).map(([k, s]) => [k, s.value()]));
  const seedValue = () => (seed.value === "" ? null : Number(seed.value));
  const greedy = (p) => p.temperature < 1e-5;
  const sameRun = (a, b) => a && b && JSON.stringify(a) === JSON.stringify(b);
  const settingsNow = () => ({ ...params(), seed: seedValue() });
  const continuation = (n = state.steps.length) => state.steps.slice(0, n).map((s) => s.id);
  const showError = (error) => { clear(errors).append(errorBox(error.message || String(error))); };
  const clearError = () => clear(errors);
  const promptCount = () => (state.trace ? state.trace.tokens.length - (state.trace.embedding.sources || []).filter((s) => s === "generated").length : 0);

  // How the next step will draw: continuing the seeded run (the seed's next random number), or afresh.
  function drawPlan() {
    const s = settingsNow(), n = state.steps.length;
    if (s.seed === null || greedy(s)) return { mode: "continue", seed: s.seed, draws: 0 };
    if (!n || sameRun(state.run, s)) return { mode: "replay", seed: s.seed, draws: n };
    return { mode: "continue", seed: s.seed + n, draws: 0 };
  }

  function setRunning(running) {
    state.running = running;
    genButton.disabled = stepButton.disabled = running;
    playButton.textContent = running ? "Pause" : "Play";
    playButton.setAttribute("aria-pressed", String(running));
    root.dataset.running = running ? "1" : "0";
  }

  // The view in the address bar, so a copied link opens it (after the learner changed something).
  function touch() { state.touched = true; }
  function share() {
    if (!state.touched) return;
    const p = params();
    shareState("inference", { prompt: prompt.value, chat: chat.checked ? 1 : 0, max: maxTokens.value, seed: seed.value,
      t: p.temperature, k: p.top_k, p: p.top_p, m: p.min_p, n: state.steps.length || null, step: state.selected === null ? null : state.selected + 1 });
  }

  // ---------------------------------------------------------------- stage 1, live while typing
  let tokenTimer = null;
  async function refreshTokens() {
    clearTimeout(tokenTimer);
    if (!prompt.value) { state.tokens = null; stages.tokenizer(panels.tokenizer, null); return; }
    try {
      state.tokens = await api.post("/api/tokenize", { text: prompt.value, chat: chat.checked });
      drawTokenizer();
      clearError();
    } catch (error) { showError(error); }
  }
  prompt.addEventListener("input", () => { touch(); reset(); clearTimeout(tokenTimer); tokenTimer = setTimeout(refreshTokens, 250); });
  chat.addEventListener("change", () => { touch(); reset(); refreshTokens(); });
  maxTokens.addEventListener("change", () => { touch(); share(); });

  function drawTokenizer() {
    const step = state.steps[state.selected];
    const read = step && state.trace ? { step: step.index + 1, promptCount: promptCount(), generated: state.steps.slice(0, step.index).map((s) => s.token) } : null;
    stages.tokenizer(panels.tokenizer, state.tokens, read);
  }

  // ---------------------------------------------------------------- stages 2-3: one traced pass per step
  // The trace of step i reads the prompt and the i tokens before it, and follows the token step i chose.
  async function ensureTrace() {
    if (state.trace) return;
    status.textContent = "Running one instrumented forward pass…";
    state.trace = await api.post("/api/trace", { prompt: prompt.value, chat: chat.checked });
    state.traces.set(0, state.trace);
    for (const [id, , , text] of STAGES) clear(texts[id]).append(...text(state.trace.model));  // this model's sizes
    drawTraced(0, state.trace);
  }

  function requestTrace() {
    const i = state.selected ?? 0;
    const cached = state.traces.get(i);
    if (cached && (state.steps[i] ? cached.transformer.chosen.id === state.steps[i].id : true)) { drawTraced(i, cached); return; }
    for (const id of ["embedding", "transformer"]) tags[id].textContent = `· updating to step ${i + 1}…`;
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
        const key = JSON.stringify([prompt.value, chat.checked]);
        const t = await api.post("/api/trace", { prompt: prompt.value, chat: chat.checked, continuation: continuation(i), target: step.id });
        if (key !== JSON.stringify([prompt.value, chat.checked]) || state.steps[i] !== step) continue; // reset meanwhile
        if (state.traces.size > 12) state.traces.delete(state.traces.keys().next().value);
        state.traces.set(i, t);
        if ((state.selected ?? 0) === i) drawTraced(i, t);
      }
    } catch (error) { showError(error); } finally { state.traceBusy = false; }
  }

  function drawTraced(i, t) {
    const step = state.steps[i];
    stages.embedding(panels.embedding, t, { showTemplate: state.showTemplate, onToggle: (on) => { state.showTemplate = on; drawTraced(i, t); } });
    stages.transformer(panels.transformer, t, Boolean(step));
    for (const id of ["embedding", "transformer"]) tags[id].textContent = tagText(step);
  }

  const tagText = (step) => (step ? `· Step ${step.index + 1} of ${state.steps.length}` : "· before the first step");

  // ---------------------------------------------------------------- stage 5's second half: the next draw
  let previewTimer = null;
  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => preview().catch(showError), 120);
  }
  async function preview() {
    const newest = state.steps[state.steps.length - 1];
    const changed = !newest || !sameRun(newest.settings, settingsNow());
    const ended = state.finish && state.finish !== "length"; // at the length limit, a larger limit goes on
    if (!state.trace || state.running || !changed || ended) { clear(nextDraw); share(); return; }
    const next = drawPlan();
    const body = { prompt: prompt.value, chat: chat.checked, continuation: continuation(), ...params(), k: 10, draws_before: next.draws };
    if (next.seed !== null) body.seed = next.seed;
    const data = await api.post("/api/sample/preview", body);
    if (state.running) return;
    const n = state.steps.length;
    stages.sampling(nextDraw, data.prediction, data.draw || null,
      `What the next draw would use (step ${n + 1}), with the settings on the sliders now${n ? ": not a record of any step taken" : ""}`, data.greedy, "preview");
    share();
  }

  // ---------------------------------------------------------------- stage 6: the loop
  // A seeded run with unchanged settings is replayed from its start (fast: a handful of tokens), so
  // every step draws the random number an uninterrupted Generate would draw.
  async function run(maxNew) {
    clearError();
    setRunning(true);
    clear(nextDraw);
    state.controller = new AbortController();
    try {
      await ensureTrace();
      const have = state.steps.length;
      const remaining = Number(maxTokens.value) - have;
      if (state.finish === "length" && remaining > 0) state.finish = null; // the learner raised the limit
      if (state.finish || remaining <= 0) { status.textContent = "Finished. Reset to start again."; return; }
      const want = Math.min(maxNew, remaining), next = drawPlan(), settings = settingsNow();
      const replay = next.mode === "replay";
      state.run = replay ? settings : null; // once a setting changed mid-run, no replay can rebuild the run
      const body = { prompt: prompt.value, chat: chat.checked, continuation: replay ? [] : continuation(), ...params(),
        max_new_tokens: replay ? have + want : want, seed: next.seed, top_n: 10 };
      const offset = replay ? 0 : have;
      status.textContent = "Generating…";
      await api.stream("/api/generate", body, (name, data) => onEvent(name, data, offset, settings, next), { signal: state.controller.signal });
    } catch (error) {
      if (error.name !== "AbortError") showError(error);
    } finally {
      setRunning(false);
      state.controller = null;
      if (!state.finish) status.textContent = state.steps.length ? `Paused after ${count(state.steps.length, "token")}.` : status.textContent;
      preview().catch(() => {});
    }
  }

  function onEvent(name, data, offset, settings, next) {
    if (name === "queued") status.textContent = `Waiting for the model: position ${data.position} in the queue…`;
    else if (name === "start") status.textContent = `Generating with ${data.model.name} (${data.model.precision})…`;
    else if (name === "step") {
      const index = offset + data.index;
      const old = state.steps[index];
      if (old && old.id === data.id) return; // a replayed step: its record is already kept
      // Which random number of which seed this step drew: the (data.index + 1)-th of the request's seed.
      const dice = next.seed === null || greedy(settings) ? null : { seed: next.seed, number: data.index + 1 };
      const step = { ...data, index, settings, dice };
      state.steps.length = index; // a replay that differs replaces everything after it
      state.steps.push(step);
      if (data.finish && data.finish !== "length") state.finish = data.finish;
      if (data.finish === "length" && state.steps.length >= Number(maxTokens.value)) state.finish = "length";
      if (!state.pinned) state.selected = state.steps.length - 1;
      showStep();
    } else if (name === "done") {
      status.textContent = state.finish
        ? `Done: ${state.finish === "stop" ? "the model ended its turn" : "reached the token limit"} (${count(state.steps.length, "token")}).`
        : `Paused after ${count(state.steps.length, "token")}.`;
      root.dataset.done = state.finish ? "1" : "0";
    } else if (name === "error") showError(new Error(data.error || "generation failed"));
  }

  // All six stages show the selected step.
  function select(i) {
    state.selected = i;
    state.pinned = i !== state.steps.length - 1; // choosing the newest step follows new steps again
    touch();
    showStep();
  }

  function showStep() {
    const step = state.steps[state.selected];
    stages.generation(panels.generation, state.steps, state.selected, select);
    if (!step) return;
    const tag = tagText(step), s = step.settings;
    for (const id of ["tokenizer", "prediction", "sampling", "generation"]) tags[id].textContent = tag;
    drawTokenizer();
    stages.prediction(panels.prediction, step.prediction, `Step ${step.index + 1} of ${state.steps.length}: what the model predicted`, state.trace?.model.vocab_size, step.id);
    const used = `temperature ${s.temperature}, top-k ${s.top_k || "off"}, top-p ${s.top_p >= 1 ? "off" : s.top_p}, min-p ${s.min_p || "off"}`;
    const dice = step.dice ? `, random number #${step.dice.number} from seed ${step.dice.seed}` : "";
    stages.sampling(record, step.prediction, { ...step.draw, id: step.id, token: step.token, prob: step.prob, model_prob: step.model_prob },
      `Step ${step.index + 1} of ${state.steps.length}: the draw that chose this token (${used}${dice})`, step.draw.u === null);
    requestTrace();
    share();
  }

  function reset() {
    if (state.controller) state.controller.abort();
    Object.assign(state, { trace: null, steps: [], selected: null, pinned: false, finish: null, run: null, traces: new Map(), traceWant: null });
    for (const id of ["embedding", "transformer", "prediction", "generation"]) {
      clear(panels[id]).append(el("p", { class: "note", text: "Press Generate or Step to compute this stage." }));
    }
    clear(record).append(el("p", { class: "note", text: "Press Generate or Step to compute this stage." }));
    clear(nextDraw);
    for (const tag of Object.values(tags)) tag.textContent = "";
    root.dataset.done = "0";
    status.textContent = "";
  }

  genButton.addEventListener("click", () => { touch(); reset(); run(Number(maxTokens.value)); });
  stepButton.addEventListener("click", () => { touch(); run(1); });
  playButton.addEventListener("click", () => {
    touch();
    if (state.running && state.controller) state.controller.abort();
    else run(Number(maxTokens.value));
  });
  resetButton.addEventListener("click", () => { touch(); reset(); refreshTokens(); share(); });

  // ---------------------------------------------------------------- a shared link: the same view again
  reset();
  const shared = sharedState("inference");
  if (shared) {
    if (shared.prompt) prompt.value = shared.prompt;
    chat.checked = shared.chat !== "0";
    if (shared.max) maxTokens.value = shared.max;
    if (shared.seed !== undefined) seed.value = shared.seed;
    for (const [key, name] of [["t", "temperature"], ["k", "top_k"], ["p", "top_p"], ["m", "min_p"]]) {
      if (shared[key] !== undefined && Number.isFinite(Number(shared[key]))) sliders[name].set(Number(shared[key]));
    }
    state.touched = true;
  }
  refreshTokens();
  const n = shared ? Math.min(Number(shared.n) || 0, Number(maxTokens.value)) : 0;
  if (n > 0) {
    run(n).then(() => { // seeded, so the same tokens come back
      const step = Math.min(Number(shared.step) || n, state.steps.length);
      if (step >= 1) select(step - 1);
      root.dataset.shared = "1";
    });
  } else if (shared) root.dataset.shared = "1";
  root.dataset.ready = "1";
}
