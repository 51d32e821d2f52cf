// "Why it makes things up", second half: what helps (the fact given in the prompt; a lower temperature)
// and where "I do not know" comes from (counted in the training data, measured on the tiny models).
import { post } from "../lib/api.js";
import { el } from "../lib/dom.js";
import { fixed, percent, probability } from "../lib/format.js";
import { words } from "../lib/words.js";
import { runner, verdictLine } from "./makes-up.js";

const say = words("makes_up");

const FIRST_QUESTION = "Who is Hamlet's mother?";

// ----------------------------------------------------------------------------- what helps

export function helpsPanel(data) {
  const questions = data.sets.general;
  const pick = el("select", { id: "mu-helps-question" }, questions.map((q) => el("option",
    { value: String(q.id), text: q.question, selected: q.question === FIRST_QUESTION })));
  const chosen = () => questions.find((q) => String(q.id) === pick.value) || questions[0];
  const fact = el("p", { class: "note", id: "mu-fact" });
  const showFact = () => { fact.textContent = say("the_fact", { fact: chosen().fact }); };
  pick.addEventListener("change", showFact);
  showFact();

  const ask = el("button", { type: "button", id: "mu-context", "data-tour-stop": "mu-context",
    text: say("ask_both_ways") });
  const askStatus = el("p", { class: "note", role: "status" });
  const sides = el("div", { class: "sides", id: "mu-sides", "data-tour-stop": "mu-sides" });
  runner(ask, askStatus, sides, async () => {
    const q = chosen();
    const without = await post("/api/makes-up/answer", { question: q.question });
    const given = await post("/api/makes-up/answer", { question: q.question, context: q.fact });
    sides.append(side(say("from_memory"), without, "without"), side(say("from_context"), given, "with"));
  });

  const sample = el("button", { type: "button", id: "mu-sample", "data-tour-stop": "mu-temperature",
    text: say("sample_temperatures") });
  const sampleStatus = el("p", { class: "note", role: "status" });
  const table = el("div", { id: "mu-temperatures", "data-tour-stop": "mu-temperatures" });
  runner(sample, sampleStatus, table, async () => {
    const d = await post("/api/makes-up/samples", { question: chosen().question });
    table.append(temperatureTable(d));
  });

  return el("div", { class: "panel", id: "mu-helps" },
    el("h4", { text: say("helps_title") }),
    el("p", { text: say("helps_intro") }),
    el("div", { class: "row" }, el("label", { for: "mu-helps-question", text: say("question") }), pick),
    fact,
    el("h5", { text: say("context_title") }), ask, askStatus, sides,
    el("h5", { text: say("temperature_title") }), el("p", { text: say("temperature_intro") }),
    sample, sampleStatus, table);
}

function side(title, d, which) {
  return el("div", { class: `side ${which}`, "data-side": which },
    el("h6", { text: title }),
    el("p", { class: "answer" }, el("bdi", { text: d.answer })),
    el("p", { class: "note", text: say("first_token_was", { token: d.tokens[0]?.text ?? "",
      prob: d.first_token_probability === null ? "–" : probability(d.first_token_probability) }) }),
    verdictLine(d.verdict));
}

function temperatureTable(d) {
  const row = (r) => el("tr", { "data-temperature": String(r.temperature) },
    el("td", { class: "num", text: fixed(r.temperature, 1) }),
    el("td", { class: "num",
      text: r.right === null ? "–" : say("of", { right: r.right, count: d.samples }) }),
    el("td", { class: "num", text: String(r.distinct) }),
    el("td", {}, el("ol", { class: "mu-samples" }, r.answers.map((a) => el("li", {
      class: a.verdict ? (a.verdict.right ? "right" : "wrong") : "" }, el("bdi", { text: a.answer }))))));
  return el("table", { id: "mu-temperature-table" },
    el("caption", { text: say("samples_caption", { n: d.samples, last: d.samples - 1,
      question: d.question }) }),
    el("thead", {}, el("tr", {}, el("th", { class: "num", text: say("temperature") }),
      el("th", { class: "num", text: say("right_answers") }),
      el("th", { class: "num", text: say("different") }),
      el("th", { text: say("answers") }))),
    el("tbody", {}, d.rows.map(row)));
}

// ----------------------------------------------------------------------------- "I do not know"

export function dontKnowPanel(data) {
  const counts = data.dont_know_data;
  const go = el("button", { type: "button", id: "mu-dont-know-run", "data-tour-stop": "mu-dont-know",
    text: say("ask_tiny_models") });
  const status = el("p", { class: "note", role: "status" });
  const out = el("div", { id: "mu-dont-know" });
  runner(go, status, out, async () => {
    const rows = [];
    for (const model of ["shakespeare-chat", "shakespeare-dpo"]) {
      rows.push(await post("/api/makes-up/dont-know", { model }));
    }
    out.append(dontKnowTable(rows));
  });
  return el("div", { class: "panel", id: "mu-idk" },
    el("h4", { text: say("dont_know_title") }),
    el("p", { text: say("dont_know_intro") }),
    el("p", { id: "mu-idk-data", text: say("dont_know_data", { sft: counts.finetune.dont_know,
      examples: counts.finetune.examples, pref: counts.preferences.dont_know, pairs: counts.preferences.pairs,
      train: counts.preferences.train, eval: counts.preferences.eval,
      example: counts.preferences.example ?? "" }) }),
    go, status, out);
}

function dontKnowTable(rows) {
  const line = (d) => el("tr", { "data-model": d.model },
    el("td", { text: d.model }),
    el("td", { class: "num", text: say("of", { right: d.dont_know, count: d.count }) }),
    el("td", { class: "num", text: String(d.by_split.train) }),
    el("td", { class: "num", text: String(d.by_split.eval) }));
  const answers = rows.map((d) => el("details", {}, el("summary", { text: say("every_answer_of",
    { model: d.model }) }), el("ul", {}, d.rows.map((r) => el("li", {}, `${r.prompt} → `,
    el("bdi", { text: r.answer }))))));
  const split = (name) => rows[0].rows.filter((r) => r.split === name).length;
  const said = rows.reduce((n, d) => n + d.dont_know, 0);
  const total = rows.reduce((n, d) => n + d.count, 0);
  return el("div", {},
    el("table", { id: "mu-dont-know-table" },
      el("thead", {}, el("tr", {}, el("th", { text: say("model") }),
        el("th", { class: "num", text: say("says_it") }), el("th", { class: "num",
        text: say("of_trained", { n: split("train") }) }),
        el("th", { class: "num", text: say("of_held_out", { n: split("eval") }) }))),
      el("tbody", {}, rows.map(line))),
    el("p", { class: "note", text: say("dont_know_rule", { rule: rows[0].rule }) }),
    el("p", { id: "mu-dont-know-reading",
      text: say("dont_know_measured", { share: percent(said / total) }) }),
    ...answers);
}
