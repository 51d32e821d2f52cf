// The inference walkthrough's controls: the prompt and its examples, the chat template switch, the
// length limit, Generate / Step / Play / Reset, and the sampling sliders with the seed. They keep no
// record of the run; inference.js listens to them.
import { el, setBusy } from "../lib/dom.js";
import { words } from "../lib/words.js";

const say = words("inference");

// Prompts are what the model reads, so they stay as written; only their labels are page text.
const EXAMPLES = [
  { label: say("capital_france"), prompt: "What is the capital of France?", chat: true },
  { label: say("haiku"), prompt: "Write a haiku about the sea.", chat: true },
  { label: say("story_opening_raw"), prompt: "Once upon a time, in a small village by the sea,",
    chat: false },
  { label: say("code_raw"), prompt: "def fibonacci(n):\n    ", chat: false },
  { label: say("emoji_cjk"), prompt: "Say hello in Japanese: こんにちは 🙂", chat: true },
];

// A range input with its live value. show(v) is the text shown beside it.
function slider(name, text, [min, max, step, value], show, onInput) {
  const input = el("input", { type: "range", id: `slider-${name}`, "data-tour-stop": name, name, min, max,
    step,
    value });
  const out = el("output", { for: `slider-${name}`, id: `slider-${name}-value` });
  const update = () => { out.textContent = show(Number(input.value)); };
  update();
  input.addEventListener("input", () => { update(); onInput(); });
  return {
    input, label: el("label", { class: "slider" }, `${text} `, input, out),
    value: () => Number(input.value), set: (v) => { input.value = v; update(); },
  };
}

// onSettings: a slider or the seed moved; onExample: an example prompt was chosen.
export function buildControls({ onSettings, onExample }) {
  const c = {};
  c.prompt = el("textarea", { id: "prompt", "data-tour-stop": "prompt", rows: 3, maxlength: 4000,
    "aria-label": say("prompt"), spellcheck: "false" });
  c.prompt.value = EXAMPLES[0].prompt;
  c.chat = el("input", { type: "checkbox", id: "chat-toggle", checked: true });
  c.maxTokens = el("input", { type: "number", id: "max-tokens", min: 1, max: 512, value: 48,
    "aria-label": say("maximum_new_tokens") });
  c.genButton = el("button", { class: "primary", id: "generate", "data-tour-stop": "generate",
    text: say("generate") });
  c.stepButton = el("button", { id: "step", "data-tour-stop": "step", text: say("step") });
  c.playButton = el("button", { id: "play", text: say("play"), "aria-pressed": "false" });
  c.resetButton = el("button", { id: "reset", text: say("reset") });
  c.status = el("p", { class: "note", id: "status", role: "status", "aria-live": "polite" });
  c.errors = el("div", { id: "inference-errors" });

  const fixed = (v) => v.toFixed(2);
  c.sliders = {
    // Range and start come from the server (applyServerSampling); until it answers, greedy.
    temperature: slider("temperature", say("temperature"), [0, 1, 0.05, 0],
      (v) => (v === 0 ? say("greedy_zero") : fixed(v)),
      onSettings),
    top_k: slider("top_k", "Top-k", [0, 100, 1, 0], (v) => (v === 0 ? say("off") : String(v)), onSettings),
    top_p: slider("top_p", "Top-p", [0.05, 1, 0.01, 1], (v) => (v >= 1 ? say("off") : fixed(v)), onSettings),
    min_p: slider("min_p", "Min-p", [0, 0.5, 0.01, 0], (v) => (v === 0 ? say("off") : fixed(v)), onSettings),
  };
  // The server's sampling defaults (GET /api/settings): the temperature's maximum, and its default
  // unless the learner (or a shared link) has already chosen one.
  // `chosen`: the temperature a shared link or the learner set before the server answered, or null.
  c.applyServerSampling = (sampling, chosen) => {
    c.sliders.temperature.input.max = sampling.max_temperature;
    c.sliders.temperature.set(chosen ?? sampling.temperature);
  };
  c.seed = el("input", { type: "number", id: "seed", min: 0, value: 42, "aria-label": say("random_seed") });
  c.seed.addEventListener("input", onSettings);

  const examples = el("details", { class: "examples-box" }, el("summary", { text: say("example_prompts") }),
    el("div", { class: "row examples" }, EXAMPLES.map((ex) => el("button", { class: "example", text: ex.label,
      onclick: () => { c.prompt.value = ex.prompt; c.chat.checked = ex.chat; onExample(); } }))));
  // Wide screens open the examples; on a phone they stay one line until asked for.
  examples.open = !window.matchMedia("(max-width: 600px)").matches;

  c.panel = el("div", { class: "controls" },
    el("label", { for: "prompt", text: say("your_prompt") }), c.prompt, examples,
    el("div", { class: "row" }, el("label", { class: "toggle" }, c.chat, say("use_chat_template")),
      el("label", {}, say("max_new_tokens"), c.maxTokens)),
    el("div", { class: "row buttons" }, c.genButton, c.stepButton, c.playButton, c.resetButton),
    c.status, c.errors);
  // Shown inside the sampling stage, beside the distribution it changes.
  c.samplingExtra = [
    el("div", { class: "sliders" }, Object.values(c.sliders).map((s) => s.label), el("label", {}, say("seed"),
      c.seed)),
    el("p", { class: "note", text: say("same_seed_settings_give") })];

  c.params = () => Object.fromEntries(Object.entries(c.sliders).map(([k, s]) => [k, s.value()]));
  c.seedValue = () => (c.seed.value === "" ? null : Number(c.seed.value));
  c.settings = () => ({ ...c.params(), seed: c.seedValue() });
  c.setRunning = (running) => {
    setBusy(c.genButton, running);
    setBusy(c.stepButton, running);
    c.playButton.textContent = running ? say("pause") : say("play");
    c.playButton.setAttribute("aria-pressed", String(running));
  };
  return c;
}
