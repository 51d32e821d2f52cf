// A notebook output's figure, drawn by the page's own figure modules (bundle.py inlines them).
// `payload.kind` names the figure and `payload.data` holds the numbers, in the JSON shapes the page's API
// answers, computed by the kernel; the words are the page's content files. Nothing here draws by itself:
// it makes the page's containers, calls the page's figure functions and wires one choice (the step).
import * as stages from "../web/static/js/figures/stages.js";
import { mount as attentionExplorer } from "../web/static/js/sections/attention.js";
import { beforeAfterBars } from "../web/static/js/figures/experiment-bars.js";
import { partName, points } from "../web/static/js/sections/experiments-ablation.js";
import { el, visibleText } from "../web/static/js/lib/dom.js";
import { probability } from "../web/static/js/lib/format.js";
import { words } from "../web/static/js/lib/words.js";

const say = words("inference");
const xp = words("experiments");

// The page's markup around a figure (<section id> <div class="figure"> <article class="stage">), so
// the page's stylesheets apply unchanged inside the output's shadow root.
function stage(section, ...ids) {
  const bodies = ids.map((id) => el("div", { class: "stage-body", id: `stage-${id}-body` }));
  const figure = el("div", { class: "figure" }, ids.map((id, i) => el("article", { class: "stage",
    id: `stage-${id}` }, bodies[i])));
  section.append(figure);
  return bodies;
}

const settingsText = (s) => say("temperature_temperature_topk_value", { temperature: s.temperature,
  value: s.top_k || "off", value2: s.top_p >= 1 ? "off" : s.top_p, value3: s.min_p || "off" });

// One step of a generation: its prediction table and the draw that chose its token.
function showStep(predictionBody, samplingBody, steps, i, vocabSize) {
  const step = steps[i], of = { value: i + 1, length: steps.length };
  if (!step.prediction) return;
  stages.prediction(predictionBody, step.prediction, say("step_value_length_what", of), vocabSize, step.id);
  const dice = step.dice ? say("random_number_number_seed", step.dice) : "";
  stages.sampling(samplingBody, step.prediction, { ...step.draw, id: step.id, token: step.token,
    prob: step.prob, model_prob: step.model_prob },
  say("step_value_length_draw", { ...of, used: settingsText(step.settings), dice }), step.draw.u === null);
}

const FIGURES = {
  trace(section, d) {
    const [tokens, embedding] = stage(section, "tokenizer", "embedding");
    stages.tokenizer(tokens, d.tokenize);
    const view = { showTemplate: false, onToggle: (on) => {
      view.showTemplate = on;
      stages.embedding(embedding, d.trace, view);
    } };
    stages.embedding(embedding, d.trace, view);
  },
  lens(section, d) {
    const [body] = stage(section, "transformer");
    stages.transformer(body, d.trace, d.target !== null);
  },
  prediction(section, d) {
    const [table, draw] = stage(section, "prediction", "sampling");
    stages.prediction(table, d.preview.prediction, say("step_value_length_what", { value: 1, length: 1 }),
      d.vocab_size, d.preview.draw ? d.preview.draw.id : null);
    stages.sampling(draw, d.preview.prediction, d.preview.draw || null, settingsText(d.settings),
      d.preview.greedy);
  },
  generation(section, d) {
    const [timeline, table, draw] = stage(section, "generation", "prediction", "sampling");
    const select = (i) => {
      stages.generation(timeline, d.steps, i, select);
      showStep(table, draw, d.steps, i, d.model.vocab_size);
    };
    select(d.steps.length - 1);
  },
  attention(section) {
    const root = el("div", { class: "figure" });
    section.append(root);
    attentionExplorer(root);
  },
  // The experiments section's ablation result: the line, the before/after bars and the method's note.
  ablation(section, d) {
    const root = el("div", { class: "figure" });
    section.append(root);
    const name = partName(d.part), before = d.target_prob.before, after = d.target_prob.after;
    root.append(
      el("p", { class: "xp-line" }, xp("ablation_result", { part: name, token: visibleText(d.target.token),
        before: probability(before), after: probability(after), change: points(before, after) })),
      beforeAfterBars({ id: "xp-ablate-bars", before: d.before.top, after: d.after.top, target: d.target,
        width: root.clientWidth - 4 || 560,
        names: { title: xp("ablation_bars_title", { part: name }), before: xp("before"),
          after: xp("after_off", { part: name }) } }),
      el("p", { class: "note" }, xp(d.method === "zero" ? "method_zero" : "method_other",
        { method: d.method })));
  },
};

// Called once per output: the output's element, what to draw, and the page's CSS for its shadow root.
export function show(outer, payload, css) {
  const shadow = outer.attachShadow({ mode: "open" });
  const section = el("section", { id: payload.section, class: "pm-notebook" });
  shadow.append(el("style", { text: css }), section);
  FIGURES[payload.kind](section, payload.data);
  outer.dataset.drawn = payload.kind;
}
