// The six stages of the inference walkthrough, each drawn from API data and nothing else.
// Stages 2 and 3 have files of their own (stages-embedding.js, stages-transformer.js).
// Every stage draws one step of the generation: the record that step left (inference.js keeps it).
import { clear, el, formatProb, svg, tokenChip, visibleProse, visibleText } from "../lib/dom.js";
import { css, LINE, SERIES } from "../lib/draw.js";
import { count, term } from "../lib/glossary.js";

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
  if (!data) return panel.append(el("p", { class: "note", text: "Type a prompt to see its tokens." }));
  const yours = el("div", { class: "chips", id: "prompt-tokens" }, data.tokens.map((t, i) => tokenChip(t, { extraClass: `c${i % 4}` })));
  panel.append(el("p", {}, el("strong", { id: "token-count", text: String(data.count) }), ` ${data.count === 1 ? "token" : "tokens"} in your text.`), yours);
  const partial = data.tokens.filter((t) => t.partial).length;
  if (partial) {
    panel.append(el("p", { class: "note", text: `${count(partial, "token is a single byte", "tokens are single bytes")} of a character (dashed outline, shown as <0x..>): the vocabulary has no piece for the whole character, so it is spelled out in UTF-8 bytes.` }));
  }
  if (data.chat) {
    const added = data.chat.count - data.count;
    panel.append(
      el("p", { class: "note", text: `With the chat template the model reads ${count(data.chat.count, "token")}: ${added} more, marking the system message, your turn and the start of the assistant's turn. Dark chips are control tokens that no typed text can produce.` }),
      el("details", { class: "chat-tokens-box" }, el("summary", { text: "Show the template's tokens" }),
        el("div", { class: "chips chat-tokens", id: "chat-tokens" }, data.chat.tokens.map((t) => tokenChip(t)))),
    );
  }
  if (read) {
    const n = read.generated.length;
    panel.append(el("div", { class: "step-read", id: "step-read" },
      el("p", { text: `Step ${read.step} reads ${count(read.promptCount + n, "token")}: the prompt's ${read.promptCount}${n ? ` and the ${count(n, "token")} generated before it` : ""}.` }),
      n ? el("div", { class: "chips", id: "read-generated" }, read.generated.map((t) => tokenChip(t, { extraClass: "generated" }))) : null));
  }
}

// ---------------------------------------------------------------- 4. prediction
// `chosen`: the id this step took, marked in the table (null before the first step).
export function prediction(panel, pred, caption, vocabSize = null, chosen = null) {
  clear(panel);
  const rows = pred.rows.map((r, i) => el("tr", { class: `pred-row ${r.id === chosen ? "chosen" : ""}`, "data-id": r.id },
    el("td", { class: "num", text: String(i + 1) }),
    el("td", {}, tokenChip(r.token), r.id === chosen ? el("span", { class: "chosen-tag", text: " chosen" }) : null),
    el("td", { class: "bar-cell" }, bar(modelProb(r)), el("span", { class: "num prob", text: formatProb(modelProb(r)) })),
    el("td", { class: "num", text: r.logit.toFixed(2) }),
  ));
  const inTable = pred.rows.find((r) => r.id === chosen);
  const outside = Math.max(0, 1 - pred.rows.reduce((s, r) => s + modelProb(r), 0));
  panel.append(
    el("p", { class: "caption", text: caption }),
    el("div", { class: "table-wrap" }, el("table", { class: "probs", id: "prediction-table" },
      el("thead", {}, el("tr", {}, el("th", { class: "num", text: "#" }), el("th", { text: "token" }), el("th", { text: "model's probability" }), el("th", { class: "num", text: "logit" }))),
      el("tbody", {}, rows))),
    chosen === null ? null : el("p", { class: "note", id: "prediction-chosen" },
      inTable ? "This step took " : "This step took a token outside this table: ", inTable ? tokenChip(inTable.token) : `id ${chosen}`,
      inTable ? ` (row ${pred.rows.indexOf(inTable) + 1}, marked).` : "."),
    el("p", { class: "note", id: "prediction-summary" },
      `Everything outside this top ${pred.rows.length}: ${formatProb(outside)} of the `, term("probability mass"), ". ",
      term("Entropy"), ` of the model's distribution: ${pred.model_entropy_bits.toFixed(2)} `, term("bits"),
      ` (0 = certain${vocabSize ? `; ${Math.log2(vocabSize).toFixed(1)} = every token equally likely` : ""}).`),
  );
}

// ---------------------------------------------------------------- 5. sampling
// One distribution and one draw. `prefix` keeps the ids apart: "sampling" for the step taken,
// "preview" for what the next draw would use with the sliders as they are now.
export function sampling(box, pred, draw, caption, greedy = false, prefix = "sampling") {
  clear(box);
  const rows = pred.rows.map((r) => el("tr", { class: `sample-row ${draw && draw.id === r.id ? "chosen" : ""}`, "data-id": r.id },
    el("td", {}, tokenChip(r.token)),
    el("td", { class: "num col-scaled", text: greedy ? "—" : r.scaled.toFixed(2) }),
    el("td", { class: "bar-cell" }, bar(modelProb(r), "ghost"), el("span", { class: "num", text: formatProb(modelProb(r)) })),
    el("td", { class: "bar-cell" }, bar(r.prob), el("span", { class: "num sample-prob", text: formatProb(r.prob) })),
    el("td", { class: "num", text: r.cumulative.toFixed(3) }),
  ));
  box.append(
    el("p", { class: "caption", text: caption }),
    el("div", { class: "table-wrap" }, el("table", { class: "probs sampling", id: `${prefix}-table` },
      el("thead", {}, el("tr", {}, el("th", { text: "token" }), el("th", { class: "num col-scaled", text: "logit ÷ T" }),
        el("th", { text: "model's probability" }), el("th", { text: "after your settings" }), el("th", { class: "num", text: "cumulative" }))),
      el("tbody", {}, rows))),
    el("p", { class: "note", id: `${prefix}-summary`, text: `${count(pred.candidates, "token")} can still be chosen. Entropy after the settings: ${pred.entropy_bits.toFixed(2)} bits.` }),
    cumulativeBar(pred, draw, prefix),
  );
}

function cumulativeBar(pred, draw, prefix) {
  const W = 640, H = 56;
  const drawn = draw && draw.u !== null && draw.u !== undefined;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "cumulative", id: prefix === "sampling" ? "draw-figure" : `${prefix}-draw-figure`, role: "img",
    "aria-label": drawn ? `The draw u = ${draw.u.toFixed(4)} lands on ${visibleText(draw.token.text)}` : "The cumulative probability bar" });
  let x = 0;
  pred.rows.forEach((r, i) => {
    const w = r.prob * W;
    if (w <= 0) return;
    chart.append(svg("rect", { x, y: 8, width: w, height: 28, fill: css(SERIES[i % SERIES.length]), class: draw && draw.id === r.id ? "chosen" : "" },
      svg("title", { text: `${visibleText(r.token.text)}: ${formatProb(r.prob)} (from ${Math.max(0, r.cumulative - r.prob).toFixed(3)} to ${r.cumulative.toFixed(3)})` })));
    x += w;
  });
  if (x < W) chart.append(svg("rect", { x, y: 8, width: W - x, height: 28, fill: css(LINE) }, svg("title", { text: "all other tokens" })));
  const text = el("p", { class: "draw-text", id: prefix === "sampling" ? "draw-text" : `${prefix}-draw-text` });
  if (drawn) {
    const ux = draw.u * W;
    const after = draw.cumulative_before + draw.prob;
    chart.append(svg("line", { x1: ux, x2: ux, y1: 2, y2: 42, class: "u-marker" }));
    chart.append(svg("text", { x: Math.min(W - 60, ux + 4), y: 52, class: "u-label", text: `u = ${draw.u.toFixed(4)}` }));
    Object.assign(text.dataset, { id: draw.id, u: draw.u, from: draw.cumulative_before, to: after });
    const own = draw.model_prob ?? pred.rows.find((r) => r.id === draw.id)?.raw_prob;
    text.append(`The random number u = ${draw.u.toFixed(4)} falls between ${draw.cumulative_before.toFixed(4)} and ${after.toFixed(4)}, the slice of `, tokenChip(draw.token),
      ` (probability ${formatProb(draw.prob)} after your settings${own === undefined ? "" : `; the model's own: ${formatProb(own)}`}).`);
  } else if (draw) {
    text.dataset.id = draw.id;
    text.append("Temperature 0: no random number is drawn; the most likely token, ", tokenChip(draw.token), ", is taken.");
  } else {
    text.append("Set a seed to see where a random draw would land.");
  }
  return el("div", { class: "draw" }, chart, text);
}

// ---------------------------------------------------------------- 6. generation
export function generation(panel, steps, selected, onSelect) {
  clear(panel);
  if (!steps.length) return panel.append(el("p", { class: "note", text: "No tokens generated yet." }));
  const text = steps.map((s) => s.text).join("");
  const step = steps[selected] || steps[steps.length - 1];
  const timeline = el("ol", { class: "timeline", id: "timeline", "aria-label": "Generated tokens; choose one to see all six stages for that step" },
    steps.map((s, i) => el("li", {}, el("button", {
      type: "button", class: `step-chip ${i === selected ? "selected" : ""}`, "aria-pressed": String(i === selected), "data-index": i, "data-id": s.id,
      "aria-label": `step ${i + 1}: ${visibleText(s.token.text)}`,
      title: `step ${i + 1}: probability ${formatProb(s.prob)} after your settings${s.model_prob === undefined ? "" : ` (model's: ${formatProb(s.model_prob)})`}, ${s.ms.toFixed(0)} ms, ${count(s.cached, "position")} cached`,
      onclick: () => onSelect(i),
    }, tokenChip(s.token, { showId: false })))));
  const times = steps.slice(1).map((s) => s.ms).sort((a, b) => a - b);
  const median = times.length ? times[Math.floor(times.length / 2)] : steps[0].ms;
  const before = steps.slice(0, step.index).map((s) => s.text).join("");
  panel.append(
    el("div", { class: "output", id: "generated-text" }, el("bdi", { text: visibleProse(text) })),
    el("p", { class: "step-appended" }, `Step ${step.index + 1} appended `, el("span", { id: "appended-token" }, tokenChip(step.token)),
      ` to the ${count([...before].length, "character")} before it, giving: `,
      el("span", { class: "output inline", id: "appended-text" }, el("bdi", { class: "before", text: visibleProse(before) }),
        el("mark", { text: visibleProse(step.text) }))),
    timeline,
    el("p", { class: "note", id: "loop-stats" }, `${count(steps.length, "token")}. `, term("KV cache"),
      ` at step ${step.index + 1}: ${count(step.cached, "position")} held. First step (reading the whole prompt): ${steps[0].ms.toFixed(0)} ms; each later step (one new position): ${median.toFixed(0)} ms median.`),
  );
}
