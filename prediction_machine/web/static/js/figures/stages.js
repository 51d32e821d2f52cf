// The six stages of the inference walkthrough, each drawn from API data and nothing else.
// Stages 2 and 3 have files of their own (stages-embedding.js, stages-transformer.js).
// Every stage draws one step of the generation: the record that step left (inference.js keeps it).
import { clear, el, svg, tokenChip, visibleProse, visibleText } from "../lib/dom.js";
import { css, LINE, SERIES } from "../lib/draw.js";
import { term } from "../lib/glossary.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("inference");

export { embedding } from "./stages-embedding.js";
export { transformer } from "./stages-transformer.js";

export const label = (token) => (token.partial ? token.text : visibleText(token.text));
// The model's own probability (temperature 1, no filters). Older servers only sent raw_prob.
export const modelProb = (row) => row.model_prob ?? row.raw_prob;

export function bar(p, cls = "") {
  const fill = el("span", { class: `fill ${cls}` });
  fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
  return el("span", { class: "bar", "aria-hidden": "true" }, fill);
}

// ---------------------------------------------------------------- 1. tokenizer
// `data` is /api/tokenize's answer for the prompt; `read`, once a step is shown, says what it read:
// { step, total, promptCount, generated: [token, ...] } (the tokens generated before that step).
export function tokenizer(panel, data, read = null) {
  clear(panel);
  if (!data) return panel.append(el("p", { class: "note", text: say("type_prompt_see_tokens") }));
  const yours = el("div", { class: "chips", id: "prompt-tokens" }, data.tokens.map((t, i) => tokenChip(t,
    { extraClass: `c${i % 4}` })));
  panel.append(el("p", {}, el("strong", { id: "token-count", "data-tour-stop": "token-count",
    text: String(data.count) }), say("tokens_in_text", { n: data.count })), yours);
  const partial = data.tokens.filter((t) => t.partial).length;
  if (partial) {
    panel.append(el("p", { class: "note", text: say("partial_character_dashed_outline",
      { partial: say("n_single_bytes", { n: partial }) }) }));
  }
  if (data.chat) {
    const added = data.chat.count - data.count;
    panel.append(
      el("p", { class: "note", text: say("chat_template_model_reads", { n: data.chat.count, added }) }),
      el("details", { class: "chat-tokens-box" }, el("summary", { text: say("show_templates_tokens") }),
        el("div", { class: "chips chat-tokens", id: "chat-tokens" },
          data.chat.tokens.map((t) => tokenChip(t)))),
    );
  }
  if (read) {
    const n = read.generated.length;
    panel.append(el("div", { class: "step-read", id: "step-read" },
      el("p", { text: say("step_step_reads_n", { step: read.step, n: read.promptCount + n,
        promptCount: read.promptCount, value: n ? say("n_tokens_generated_before", { n }) : "" }) }),
      n ? el("div", { class: "chips", id: "read-generated" }, read.generated.map((t) => tokenChip(t,
        { extraClass: "generated" }))) : null));
  }
}

// ---------------------------------------------------------------- 4. prediction
// `chosen`: the id this step took, marked in the table (null before the first step).
// `token`: the chosen token itself, so a token outside the table is named, not only numbered.
export function prediction(panel, pred, caption, vocabSize = null, chosen = null, token = null) {
  clear(panel);
  const rows = pred.rows.map((r, i) => el("tr", { class: `pred-row ${r.id === chosen ? "chosen" : ""}`,
    "data-id": r.id },
    el("td", { class: "num", text: String(i + 1) }),
    el("td", {}, tokenChip(r.token), r.id === chosen ? el("span", { class: "chosen-tag",
      text: say("chosen") }) : null),
    el("td", { class: "bar-cell" }, bar(modelProb(r)), el("span", { class: "num prob",
      text: format.probability(modelProb(r)) })),
    el("td", { class: "num", text: r.logit.toFixed(2) }),
  ));
  const inTable = pred.rows.find((r) => r.id === chosen);
  const outside = Math.max(0, 1 - pred.rows.reduce((s, r) => s + modelProb(r), 0));
  panel.append(
    el("p", { class: "caption", text: caption }),
    el("div", { class: "table-wrap" }, el("table", { class: "probs", id: "prediction-table",
      "data-tour-stop": "prediction-table" },
      el("thead", {}, el("tr", {}, el("th", { class: "num", text: "#" }), el("th", { text: say("token") }),
        el("th", { text: say("models_probability") }), el("th", { class: "num", text: say("logit") }))),
      el("tbody", {}, rows))),
    chosen === null ? null : el("p", { class: "note", id: "prediction-chosen" },
      inTable ? say("step_took") : say("step_took_token_outside"),
        inTable ? tokenChip(inTable.token) : token ? tokenChip(token) : `id ${chosen}`,
      inTable ? say("row_marked", { row: pred.rows.indexOf(inTable) + 1 }) : "."),
    el("p", { class: "note", id: "prediction-summary" },
      say("everything_outside_top_length", { length: pred.rows.length,
        outside: format.probability(outside) }), term("probability mass"), ". ",
      term("Entropy"), say("models_distribution_model_entropy",
        { model_entropy_bits: pred.model_entropy_bits.toFixed(2) }), term("bits"),
      say("certain_note", { every: vocabSize
        ? say("value_every_token_equally", { value: Math.log2(vocabSize).toFixed(1) }) : "" })),
  );
}

// ---------------------------------------------------------------- 5. sampling
// One distribution and one draw. `prefix` keeps the ids apart: "sampling" for the step taken,
// "preview" for what the next draw would use with the sliders as they are now.
export function sampling(box, pred, draw, caption, greedy = false, prefix = "sampling") {
  clear(box);
  const rows = pred.rows.map((r) => el("tr",
    { class: `sample-row ${draw && draw.id === r.id ? "chosen" : ""}`, "data-id": r.id },
    el("td", {}, tokenChip(r.token)),
    el("td", { class: "num col-scaled", text: greedy ? format.DASH : r.scaled.toFixed(2) }),
    el("td", { class: "bar-cell" }, bar(modelProb(r), "ghost"), el("span", { class: "num",
      text: format.probability(modelProb(r)) })),
    el("td", { class: "bar-cell" }, bar(r.prob), el("span", { class: "num sample-prob",
      text: format.probability(r.prob) })),
    el("td", { class: "num", text: r.cumulative.toFixed(3) }),
  ));
  box.append(
    el("p", { class: "caption", text: caption }),
    el("div", { class: "table-wrap" }, el("table", { class: "probs sampling", id: `${prefix}-table` },
      el("thead", {}, el("tr", {}, el("th", { text: say("token") }), el("th", { class: "num col-scaled",
        text: say("logit_t") }),
        el("th", { text: say("models_probability") }), el("th", { text: say("after_settings") }), el("th",
          { class: "num", text: say("cumulative") }))),
      el("tbody", {}, rows))),
    el("p", { class: "note", id: `${prefix}-summary`, text: say("n_tokens_can_still", { n: pred.candidates,
      entropy_bits: pred.entropy_bits.toFixed(2) }) }),
    cumulativeBar(pred, draw, prefix),
  );
}

function cumulativeBar(pred, draw, prefix) {
  const W = 640, H = 56;
  const drawn = draw && draw.u !== null && draw.u !== undefined;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "cumulative",
    id: prefix === "sampling" ? "draw-figure" : `${prefix}-draw-figure`, role: "img",
    "aria-label": drawn ? say("draw_u_u_lands", { u: draw.u.toFixed(4),
      text: visibleText(draw.token.text) }) : say("cumulative_probability_bar") });
  let x = 0;
  pred.rows.forEach((r, i) => {
    const w = r.prob * W;
    if (w <= 0) return;
    chart.append(svg("rect", { x, y: 8, width: w, height: 28, fill: css(SERIES[i % SERIES.length]),
      class: draw && draw.id === r.id ? "chosen" : "" },
      svg("title",
        { text: `${visibleText(r.token.text)}: ${format.probability(r.prob)} `
          + say("from_to", { from: Math.max(0, r.cumulative - r.prob).toFixed(3),
            to: r.cumulative.toFixed(3) }) })));
    x += w;
  });
  if (x < W) chart.append(svg("rect", { x, y: 8, width: W - x, height: 28, fill: css(LINE) }, svg("title",
    { text: say("all_other_tokens") })));
  const text = el("p", { class: "draw-text",
    id: prefix === "sampling" ? "draw-text" : `${prefix}-draw-text` });
  if (drawn) {
    const ux = draw.u * W;
    const after = draw.cumulative_before + draw.prob;
    chart.append(svg("line", { x1: ux, x2: ux, y1: 2, y2: 42, class: "u-marker" }));
    chart.append(svg("text", { x: Math.min(W - 60, ux + 4), y: 52, class: "u-label",
      text: `u = ${draw.u.toFixed(4)}` }));
    Object.assign(text.dataset, { id: draw.id, u: draw.u, from: draw.cumulative_before, to: after });
    const own = draw.model_prob ?? pred.rows.find((r) => r.id === draw.id)?.raw_prob;
    text.append(say("random_number_u_u", { u: draw.u.toFixed(4),
      cumulative_before: draw.cumulative_before.toFixed(4), after: after.toFixed(4) }), tokenChip(draw.token),
      say("probability_prob_after_settings", { prob: format.probability(draw.prob),
        value: own === undefined ? "" : say("models_own_own", { own: format.probability(own) }) }));
  } else if (draw) {
    text.dataset.id = draw.id;
    text.append(say("temperature_no_random_number"), tokenChip(draw.token), say("is_taken"));
  } else {
    text.append(say("set_seed_see_where"));
  }
  return el("div", { class: "draw" }, chart, text);
}

// ---------------------------------------------------------------- 6. generation
export function generation(panel, steps, selected, onSelect) {
  // Redrawing replaces the chips: the one the keyboard was on gets the focus back, not <body>.
  const focused = panel.contains(document.activeElement) ? document.activeElement.dataset.index : undefined;
  clear(panel);
  if (!steps.length) return panel.append(el("p", { class: "note", text: say("no_tokens_generated_yet") }));
  const text = steps.map((s) => s.text).join("");
  const step = steps[selected] || steps[steps.length - 1];
  const timeline = el("ol", { class: "timeline", id: "timeline", "data-tour-stop": "timeline",
    "aria-label": say("generated_tokens_choose_see") },
    steps.map((s, i) => el("li", {}, el("button", {
      type: "button", class: `step-chip ${i === selected ? "selected" : ""}`,
        "aria-pressed": String(i === selected), "data-index": i, "data-id": s.id,
      "aria-label": say("step_chip", { step: i + 1, token: visibleText(s.token.text) }),
      title: say("step_value_probability_prob", { value: i + 1, prob: format.probability(s.prob),
        value2: s.model_prob === undefined ? "" : say("models_prob", { p: format.probability(s.model_prob) }),
        ms: s.ms.toFixed(0), n: s.cached }),
      onclick: () => onSelect(i),
    }, tokenChip(s.token, { showId: false })))));
  const times = steps.slice(1).map((s) => s.ms).sort((a, b) => a - b);
  const median = times.length ? times[Math.floor(times.length / 2)] : steps[0].ms;
  const before = steps.slice(0, step.index).map((s) => s.text).join("");
  panel.append(
    el("div", { class: "output", id: "generated-text", "data-tour-stop": "generated-text" }, el("bdi",
      { text: visibleProse(text) })),
    el("p", { class: "step-appended" }, say("step_appended", { step: step.index + 1 }), el("span",
      { id: "appended-token" }, tokenChip(step.token)),
      say("n_characters_before_giving", { n: [...before].length }),
      el("span", { class: "output inline", id: "appended-text" }, el("bdi", { class: "before",
        text: visibleProse(before) }),
        el("mark", { text: visibleProse(step.text) }))),
    timeline,
    el("p", { class: "note", id: "loop-stats" }, say("tokens_so_far", { n: steps.length }), term("KV cache"),
      say("step_value_n_positions", { value: step.index + 1, n: step.cached, value2: steps[0].ms.toFixed(0),
        median: median.toFixed(0) })),
  );
  const chip = focused === undefined ? null : timeline.querySelector(`[data-index="${focused}"]`);
  chip?.focus({ preventScroll: true });
}
