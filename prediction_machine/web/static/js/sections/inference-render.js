// The inference walkthrough's six stage panels, and what each shows for the selected step. Each stage
// draws itself (figures/stages.js); this module lays them out and hands each its part of the record.
import { clear, codeLink, el } from "../lib/dom.js";
import { term } from "../lib/glossary.js";
import * as stages from "../figures/stages.js";
import { languages } from "../figures/stages-languages.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";
import { promptCount } from "./inference-state.js";

const say = words("inference");

// The six stages as data: [id, title, view-code links, text]. Each id is the name of the Python module
// that computes the stage, and each link opens a function in that module (web/code_links.py serves them).
// A stage's text is a list of strings and glossary terms: each term is explained at its first use.
// m is the model's sizes once a trace has arrived (null before).
const STAGES = [
  ["tokenizer", "title_tokenizer", ["prediction_machine.inference.tokenizer.merge_word"],
    (m) => say("stage_tokenizer", { token: term("token"),
      vocabulary: m ? say("vocabulary_of", { n: m.vocab_size }) : "" })],
  ["embedding", "title_embedding", ["prediction_machine.inference.embedding.describe"],
    (m) => say("stage_embedding", { size: m ? m.d_model : say("few_hundred"),
      embedding: term("embedding") })],
  ["transformer", "title_transformer", ["prediction_machine.model.transformer.Block.forward"],
    (m) => say("stage_transformer", {
      layers: m ? say("n_layers", { n: m.n_layers }) : say("layer_after_layer") })],
  ["prediction", "title_prediction", ["prediction_machine.inference.prediction.predict"],
    (m) => say("stage_prediction", { logit: term("logit"), softmax: term("Softmax"),
      size: m ? format.int(m.vocab_size) : say("vocabularys") })],
  ["sampling", "title_sampling", ["prediction_machine.inference.sampling.distribution",
    "prediction_machine.inference.sampling.draw"],
  () => say("stage_sampling", { temperature: term("Temperature"), top_k: term("top-k"), top_p: term("top-p"),
    min_p: term("min-p") })],
  ["generation", "title_generation", ["prediction_machine.inference.generation.generate"],
    () => say("stage_generation", { kv_cache: term("KV cache") })],
];

// Appends the six stage articles to root; samplingExtra (the sliders) goes inside the sampling stage.
export function buildStages(root, samplingExtra) {
  const view = { panels: {}, texts: {}, tags: {} };
  for (const [id, title, code, text] of STAGES) {
    view.panels[id] = el("div", { class: "stage-body", id: `stage-${id}-body` });
    view.tags[id] = el("span", { class: "step-tag", id: `stage-${id}-step` });
    view.texts[id] = el("p", { class: "stage-text" }, text(null));
    root.append(el("article", { class: "stage", id: `stage-${id}`, "data-tour-stop": `stage-${id}`,
      "aria-labelledby": `stage-${id}-title` },
    el("h3", { id: `stage-${id}-title` }, say(title), " ", view.tags[id]), view.texts[id],
    id === "sampling" ? samplingExtra : null, view.panels[id], id === "tokenizer" ? languages() : null,
    code.map((name) => codeLink(name))));
  }
  view.record = el("div", { id: "sampling-record" });
  view.nextDraw = el("div", { id: "sampling-next", class: "next-draw" });
  view.panels.sampling.append(view.record, view.nextDraw);
  return view;
}

// The stage texts again, with this model's sizes.
export function showSizes(view, model) {
  for (const [id, , , text] of STAGES) clear(view.texts[id]).append(...text(model));
}

export const tagText = (state, step) => (step
  ? say("step_tag", { step: step.index + 1, steps: state.steps.length }) : say("before_first_step"));

// Stage 1: the prompt's tokens, and for a selected step the tokens generated before it.
export function drawTokenizer(view, state) {
  const step = state.steps[state.selected];
  const read = step && state.trace ? { step: step.index + 1, promptCount: promptCount(state),
    generated: state.steps.slice(0, step.index).map((s) => s.token) } : null;
  stages.tokenizer(view.panels.tokenizer, state.tokens, read);
}

// Stages 2-3 from the traced pass of step i.
export function drawTraced(view, state, i, trace, onToggle) {
  const step = state.steps[i];
  stages.embedding(view.panels.embedding, trace, { showTemplate: state.showTemplate, onToggle });
  stages.transformer(view.panels.transformer, trace, Boolean(step));
  for (const id of ["embedding", "transformer"]) view.tags[id].textContent = tagText(state, step);
}

// Stages 1, 4, 5 and 6 for the selected step (2 and 3 wait for its trace).
export function drawStep(view, state, onSelect) {
  const step = state.steps[state.selected];
  stages.generation(view.panels.generation, state.steps, state.selected, onSelect);
  if (!step) return false;
  const tag = tagText(state, step), s = step.settings, of = { value: step.index + 1,
    length: state.steps.length };
  for (const id of ["tokenizer", "prediction", "sampling", "generation"]) view.tags[id].textContent = tag;
  drawTokenizer(view, state);
  stages.prediction(view.panels.prediction, step.prediction, say("step_value_length_what", of),
    state.trace?.model.vocab_size, step.id, step.token);
  const used = say("temperature_temperature_topk_value", { temperature: s.temperature,
    value: s.top_k || say("off"),
    value2: s.top_p >= 1 ? say("off") : s.top_p, value3: s.min_p || say("off") });
  const dice = step.dice ? say("random_number_number_seed", { number: step.dice.number,
    seed: step.dice.seed }) : "";
  const drawn = { ...step.draw, id: step.id, token: step.token, prob: step.prob,
    model_prob: step.model_prob };
  stages.sampling(view.record, step.prediction, drawn, say("step_value_length_draw", { ...of, used, dice }),
    step.draw.u === null);
  return true;
}

// The next draw under the sliders' settings, before it is taken (stage 5's second half).
export function drawPreview(view, state, data) {
  const n = state.steps.length;
  stages.sampling(view.nextDraw, data.prediction, data.draw || null,
    say("what_next_draw_would", { value: n + 1, value2: n ? say("not_record_any_step") : "" }), data.greedy,
    "preview");
}

// Every stage back to "press Generate".
export function clearStages(view) {
  for (const id of ["embedding", "transformer", "prediction", "generation"]) {
    clear(view.panels[id]).append(el("p", { class: "note", text: say("press_generate_step_compute") }));
  }
  clear(view.record).append(el("p", { class: "note", text: say("press_generate_step_compute") }));
  clear(view.nextDraw);
  for (const tag of Object.values(view.tags)) tag.textContent = "";
}
