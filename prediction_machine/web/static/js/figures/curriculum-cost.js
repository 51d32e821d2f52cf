// The curriculum lab's last two panels: the guide's comparison of the three training stages with this
// machine's measured cost beside each, and what "very high cost" means at the scale of real models
// (GET /api/curriculum/scale, prediction_machine.training.curriculum.scale).
import { get } from "../lib/api.js";
import { clear, codeLink, el, errorBox } from "../lib/dom.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("curriculum");

const API = "/api/curriculum";

// ----------------------------------------------------------------------------- cost table and scale

// The three runs shown side by side, one chain: the learner's newest fine-tune (else the shipped one),
// the run its run.json says it started from, and the newest preference run started from that fine-tune
// (the shipped one beside the shipped chat model). A learner's pre-training with no fine-tune of it yet
// stands alone. Read from the runs on disk (GET /runs), so a reload keeps them.
export function costChain(runs, shippedDpo) {
  const done = runs.filter((r) => r.status !== "running");
  const mine = (kind, from) => done.find((r) => r.kind === kind && !r.shipped && (!from || r.base === from));
  const named = (id) => done.find((r) => r.id === id);
  const tuned = mine("finetune");
  if (!tuned && mine("pretrain")) return { p: mine("pretrain"), f: null, a: null };
  const f = tuned || named("shakespeare-chat");
  const p = f && f.base ? named(f.base) : null;
  const own = f && mine("dpo", f.id);
  const a = own ? { ...own, count: own.data?.train, first: own.first_eval, last: own.last_eval }
    : (f && f.shipped ? shippedDpo : null);
  return { p, f, a };
}

// shared: the lab's runs (sections/curriculum.js); it calls refreshCost when they change.
export function costPanel(shared) {
  const body = el("tbody");
  const stages = [say("stage_pretraining"), say("stage_finetuning"), say("stage_preference")];
  const table = el("table", { class: "cost" }, el("thead", {}, el("tr", {}, ["",
    ...stages].map((h) => el("th", { scope: "col", text: h })))), body);
  // The guide's own words for each stage, beside what this machine measured.
  const cell = (words, measured) => el("td", {}, el("strong", { class: "guide-words", text: words }),
    el("br"), el("span", { class: "note", text: measured }));
  get(`${API}/preferences/data`).then((d) => { shared.dpoRun = d.shipped && { ...d.shipped,
    count: d.count }; shared.refreshCost(); }).catch(() => {});
  shared.refreshCost = () => {
    const { p, f, a } = costChain(shared.runs || [], shared.dpoRun);
    const which = (r) => (r ? r.id || "shakespeare-dpo" : format.DASH);
    table.dataset.runs = [p, f, a].map(which).join(" ");
    const cost = (r) => (r ? say("cost_here", { seconds: format.seconds(r.seconds),
      flops: format.scientific(r.flops) }) : format.DASH);
    clear(body);
    body.append(
      el("tr", {}, el("th", { scope: "row", text: say("cost_run") }),
        ...[p, f, a].map((r) => el("td", { class: "run-id", text: which(r) }))),
      el("tr", {}, el("th", { scope: "row", text: say("data_size") }),
        cell(say("guide_massive"), p ? say(p.corpus?.name === "your text" ? "tokens_tokens_own_text"
          : "tokens_tokens_shakespeare", { tokens: format.int(p.tokens) }) : say("run_above")),
        cell(say("guide_curated"), f ? say("tokens_tokens_value_conversations",
          { tokens: format.int(f.tokens), value: shared.ftCount || say("few_hundred") }) : say("run_above")),
        cell(say("guide_curated"), a ? say("tokens_tokens_count_chosenvsrejected",
          { tokens: format.int(a.tokens), count: a.count }) : format.DASH)),
      el("tr", {}, el("th", { scope: "row", text: say("cost") }), cell(say("guide_very_high"), cost(p)),
        cell(say("guide_lower"), cost(f)), cell(say("guide_lower"), cost(a))),
      el("tr", {}, el("th", { scope: "row", text: say("goal") }),
        cell(say("guide_general"), say("predict_next_token_spelling")),
        cell(say("guide_alignment"), say("answer_questions_briefly_stop")),
        cell(say("guide_alignment"), a ? say("prefer_chosen_answer_heldout",
          { accuracy: format.percent(a.first.accuracy),
          accuracy2: format.percent(a.last.accuracy) }) : format.DASH)),
    );
  };
  return el("div", { class: "panel", id: "cur-cost" }, el("h4", { text: say("data_size_cost_goal") }),
    el("p", { text: say("guides_comparison_table_own") }), table);
}

export function scalePanel() {
  const out = el("div", { "aria-live": "polite" }, el("p", { class: "note",
    text: say("measuring_machine") }));
  get(`${API}/scale`).then((d) => {
    out.replaceChildren(
      el("p", { class: "rate", text: say("machine_flops_per_s", { flops_per_s: format.si(d.flops_per_s),
        method: d.method, n: d.threads }) }),
      el("table", { class: "scale" }, el("thead", {}, el("tr", {}, [say("model"), say("training_budget"),
        say("time_machine"), say("source")].map((h) => el("th", { text: h })))),
        el("tbody", {}, d.rows.map((r) => el("tr", {}, el("td", { text: r.name }),
          el("td", { text: (r.tokens ? say("budget_tokens", { tokens: format.si(r.tokens) }) : "")
            + say("budget_flops", { flops: format.scientific(r.flops) }) }),
          el("td", { class: "num", text: r.time_here }), el("td", { class: "source", text: r.source }))))),
      el("p", { class: "note", text: say("rule_times_assume_matmul", { rule: d.rule }) }));
  }).catch((e) => out.replaceChildren(errorBox(e.message)));
  return el("div", { class: "panel", id: "cur-scale", "data-tour-stop": "cur-scale" }, el("h4",
    { text: say("scale_what_very_high") }), out,
    codeLink("prediction_machine.training.curriculum.scale.panel"));
}
