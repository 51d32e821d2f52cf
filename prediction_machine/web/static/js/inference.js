// The inference walkthrough: a prompt goes through six stages, one token at a time.
// This module owns the controls and the state; each stage draws itself (stages.js).
// Every number comes from the API: /api/tokenize, /api/trace, /api/sample/preview, /api/generate.
import * as api from "./api.js";
import { clear, codeLink, el, errorBox } from "./dom.js";
import * as stages from "./stages.js";

const EXAMPLES = [
  { label: "Capital of France", prompt: "What is the capital of France?", chat: true },
  { label: "A haiku", prompt: "Write a haiku about the sea.", chat: true },
  { label: "Story opening (raw)", prompt: "Once upon a time, in a small village by the sea,", chat: false },
  { label: "Code (raw)", prompt: "def fibonacci(n):\n    ", chat: false },
  { label: "Emoji and CJK", prompt: "Say hello in Japanese: こんにちは 🙂", chat: true },
];

// The six stages as data: [id, title, view-code links, text]. Each id is the name of the Python module
// that computes the stage, and each link opens a function in that module (web/code_links.py serves them).
const STAGES = [
  ["tokenizer", "1. Tokenization", ["prediction_machine.inference.tokenizer.merge_word"],
    (m) => `The text is cut into tokens: whole words, pieces of words, single bytes. Each token is just an id, a row number in the model's vocabulary${m ? ` of ${m.vocab_size.toLocaleString("en")} tokens` : ""}. The model never sees letters.`],
  ["embedding", "2. Embedding", ["prediction_machine.inference.embedding.describe"],
    (m) => `Each id looks up a learned vector of ${m ? m.d_model : "a few hundred"} numbers. Tokens used in similar ways end up with similar vectors: that is where meaning starts.`],
  ["transformer", "3. The transformer", ["prediction_machine.model.transformer.Block.forward"],
    (m) => `${m ? `${m.n_layers} layers` : "Layer after layer"} of attention and small neural networks refine the vectors, each layer adding to a shared stream. Reading that stream after each layer (the "logit lens") shows the model's guess for the next token taking shape.`],
  ["prediction", "4. Prediction", ["prediction_machine.inference.prediction.predict"],
    (m) => `The last vector is compared with every token's embedding, giving one score (logit) per token. Softmax turns the ${m ? m.vocab_size.toLocaleString("en") : "vocabulary's"} scores into probabilities that sum to 1.`],
  ["sampling", "5. Sampling", ["prediction_machine.inference.sampling.distribution", "prediction_machine.inference.sampling.draw"],
    () => "Now one token is chosen. Temperature sharpens or flattens the distribution; top-k, top-p and min-p cut off the unlikely tail. Then a random number between 0 and 1 is drawn and the token whose slice of the cumulative bar it lands in wins. Temperature 0 skips the dice and takes the top token."],
  ["generation", "6. Repetition", ["prediction_machine.inference.generation.generate"],
    () => "The chosen token is appended and the whole process runs again. Thanks to the KV cache, the model only computes the new position each time; it stops at the end-of-turn token or the length limit."],
];

export function mount(root) {
  clear(root);
  const state = {
    trace: null, steps: [], selected: null, controller: null, running: false, finish: null, traceKey: null,
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

  const examples = el("div", { class: "row examples" }, el("span", { class: "note", text: "Try:" }),
    EXAMPLES.map((ex) => el("button", { class: "example", text: ex.label, onclick: () => {
      prompt.value = ex.prompt; chat.checked = ex.chat; reset(); refreshTokens();
    } })));

  root.append(
    el("div", { class: "controls" },
      el("label", { for: "prompt", text: "Your prompt" }), prompt, examples,
      el("div", { class: "row" },
        el("label", { class: "toggle" }, chat, " Use the chat template"),
        el("label", {}, "Max new tokens ", maxTokens)),
      el("div", { class: "row buttons" }, genButton, stepButton, playButton, resetButton),
      status, errors),
  );

  // ---------------------------------------------------------------- stage panels
  const panels = {}, texts = {};
  for (const [id, title, code, text] of STAGES) {
    const body = el("div", { class: "stage-body", id: `stage-${id}-body` });
    panels[id] = body;
    root.append(el("article", { class: "stage", id: `stage-${id}`, "aria-labelledby": `stage-${id}-title` },
      el("h3", { id: `stage-${id}-title`, text: title }),
      texts[id] = el("p", { class: "stage-text", text: text(null) }),
      id === "sampling" ? el("div", { class: "sliders" }, Object.values(sliders).map((s) => s.label),
        el("label", {}, "Seed ", seed)) : null,
      id === "sampling" ? el("p", { class: "note", text: "The same seed and settings give the same tokens. Step and Play carry on with seed + the number of tokens so far, so above temperature 0, stepping can pick differently from one uninterrupted Generate." }) : null,
      body, code.map((name) => codeLink(name))));
  }

  // ---------------------------------------------------------------- helpers
  function slider(name, label, min, max, step, value, show) {
    const input = el("input", { type: "range", id: `slider-${name}`, name, min, max, step, value });
    const out = el("output", { for: `slider-${name}`, id: `slider-${name}-value` });
    const update = () => { out.textContent = show(Number(input.value)); };
    update();
    input.addEventListener("input", () => { update(); schedulePreview(); });
    return { input, label: el("label", { class: "slider" }, `${label} `, input, out), value: () => Number(input.value) };
  }

  function params() {
    return {
      temperature: sliders.temperature.value(), top_k: sliders.top_k.value(),
      top_p: sliders.top_p.value(), min_p: sliders.min_p.value(),
    };
  }
  const continuation = () => state.steps.map((s) => s.id);
  const showError = (error) => { clear(errors).append(errorBox(error.message || String(error))); };
  const clearError = () => clear(errors);

  function setRunning(running) {
    state.running = running;
    genButton.disabled = stepButton.disabled = running;
    playButton.textContent = running ? "Pause" : "Play";
    playButton.setAttribute("aria-pressed", String(running));
    root.dataset.running = running ? "1" : "0";
  }

  // ---------------------------------------------------------------- stage 1, live while typing
  let tokenTimer = null;
  async function refreshTokens() {
    clearTimeout(tokenTimer);
    if (!prompt.value) { stages.tokenizer(panels.tokenizer, null); return; }
    try {
      const data = await api.post("/api/tokenize", { text: prompt.value, chat: chat.checked });
      stages.tokenizer(panels.tokenizer, data);
      clearError();
    } catch (error) { showError(error); }
  }
  prompt.addEventListener("input", () => { reset(); clearTimeout(tokenTimer); tokenTimer = setTimeout(refreshTokens, 250); });
  chat.addEventListener("change", () => { reset(); refreshTokens(); });

  // ---------------------------------------------------------------- stages 2-4 from one traced pass
  async function ensureTrace() {
    const key = JSON.stringify([prompt.value, chat.checked]);
    if (state.trace && state.traceKey === key) return;
    status.textContent = "Running one instrumented forward pass…";
    state.trace = await api.post("/api/trace", { prompt: prompt.value, chat: chat.checked });
    state.traceKey = key;
    stages.embedding(panels.embedding, state.trace);
    stages.transformer(panels.transformer, state.trace);
    for (const [id, , , text] of STAGES) texts[id].textContent = text(state.trace.model);  // this model's sizes
    stages.prediction(panels.prediction, state.trace.prediction, "Next-token probabilities after the prompt",
      "raw_prob", state.trace.model.vocab_size);
    await preview();
  }

  // ---------------------------------------------------------------- stage 5, live with the sliders
  let previewTimer = null;
  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => preview().catch(showError), 120);
  }
  async function preview() {
    if (!state.trace) return;
    const body = { prompt: prompt.value, chat: chat.checked, continuation: continuation(), ...params(), k: 10 };
    const seedValue = seed.value === "" ? null : Number(seed.value);
    if (seedValue !== null) body.seed = seedValue + continuation().length;
    const data = await api.post("/api/sample/preview", body);
    if (state.running) return; // a live step is on screen; don't cover it
    stages.sampling(panels.sampling, data.prediction, data.draw || null, "What the next draw would use, with these settings", data.greedy);
  }

  // ---------------------------------------------------------------- stage 6: the loop
  async function run(maxNew) {
    clearError();
    setRunning(true);
    state.controller = new AbortController();
    try {
      await ensureTrace();
      const remaining = Number(maxTokens.value) - state.steps.length;
      if (state.finish || remaining <= 0) { status.textContent = "Finished. Reset to start again."; return; }
      const seedValue = seed.value === "" ? null : Number(seed.value) + state.steps.length;
      const body = { prompt: prompt.value, chat: chat.checked, continuation: continuation(), ...params(),
        max_new_tokens: Math.min(maxNew, remaining), seed: seedValue, top_n: 10 };
      status.textContent = "Generating…";
      await api.stream("/api/generate", body, onEvent, { signal: state.controller.signal });
    } catch (error) {
      if (error.name !== "AbortError") showError(error);
    } finally {
      setRunning(false);
      state.controller = null;
      if (state.finish) showStep(); // the last draw stays on screen
      else {
        status.textContent = state.steps.length ? `Paused after ${state.steps.length} tokens.` : status.textContent;
        preview().catch(() => {}); // what the next draw would be, from here
      }
    }
  }

  function onEvent(name, data) {
    if (name === "queued") status.textContent = `Waiting for the model: position ${data.position} in the queue…`;
    else if (name === "start") status.textContent = `Generating with ${data.model.name} (${data.model.precision})…`;
    else if (name === "step") {
      state.steps.push(data);
      state.selected = state.steps.length - 1;
      if (data.finish && data.finish !== "length") state.finish = data.finish;
      if (data.finish === "length" && state.steps.length >= Number(maxTokens.value)) state.finish = "length";
      showStep();
    } else if (name === "done") {
      status.textContent = state.finish
        ? `Done: ${data.finish === "stop" ? "the model ended its turn" : "reached the token limit"} (${state.steps.length} tokens).`
        : `Paused after ${state.steps.length} tokens.`;
      root.dataset.done = state.finish ? "1" : "0";
    } else if (name === "error") showError(new Error(data.error || "generation failed"));
  }

  function showStep() {
    const step = state.steps[state.selected];
    stages.generation(panels.generation, state.steps, state.selected, (i) => { state.selected = i; showStep(); });
    if (!step) return;
    stages.prediction(panels.prediction, step.prediction, `Step ${step.index + 1}: what the model predicted`, "raw_prob",
      state.trace?.model.vocab_size);
    stages.sampling(panels.sampling, step.prediction, { ...step.draw, id: step.id, token: step.token, prob: step.prob },
      `Step ${step.index + 1}: the draw that chose this token`, step.draw.u === null);
  }

  function reset() {
    if (state.controller) state.controller.abort();
    Object.assign(state, { trace: null, traceKey: null, steps: [], selected: null, finish: null });
    for (const id of ["embedding", "transformer", "prediction", "sampling", "generation"]) {
      clear(panels[id]).append(el("p", { class: "note", text: "Press Generate or Step to compute this stage." }));
    }
    root.dataset.done = "0";
    status.textContent = "";
  }

  genButton.addEventListener("click", () => { reset(); run(Number(maxTokens.value)); });
  stepButton.addEventListener("click", () => run(1));
  playButton.addEventListener("click", () => {
    if (state.running && state.controller) state.controller.abort();
    else run(Number(maxTokens.value));
  });
  resetButton.addEventListener("click", () => { reset(); refreshTokens(); });

  reset();
  refreshTokens();
  root.dataset.ready = "1";
}

