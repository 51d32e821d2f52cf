// Alignment: you are the human. Rate answers of the chat model, run a short DPO on your choices,
// see before and after, and measure safety for base, SFT and DPO. Every number comes from the server:
// POST /api/curriculum/align/sample, /align (a training job, followed at /api/curriculum/jobs/{id}/events),
// /align/safety and /align/compare.
import { get, post, stream } from "../lib/api.js";
import { clear, codeLink, el, errorBox, shownAnswer, tokenChip, visibleProse } from "../lib/dom.js";
import * as format from "../lib/format.js";
import { sharedState, shareState } from "../lib/share.js";
import { words } from "../lib/words.js";

const say = words("alignment");

const API = "/api/curriculum";
// A shared link's view (#alignment?model=...&prompt=...&seed=...&question=...&asked=1): untrusted input,
// so a seed is a whole number in range, a prompt at most 200 characters, a model one the list holds.
const link = sharedState("alignment") || {};
const linkSeed = /^\d{1,10}$/.test(link.seed ?? "") && Number(link.seed) < 2 ** 31 ? Number(link.seed) : null;
const STAGE = { "shakespeare-base": say("stage_base"), "shakespeare-chat": "SFT", "shakespeare-dpo": "DPO" };

// ----------------------------------------------------------------------------- rating

function ratePanel(shared) {
  const model = el("select", { id: "al-model" });
  const prompt = el("input", { id: "al-prompt", "data-tour-stop": "al-prompt", type: "text", maxlength: 200,
    value: (link.prompt ?? "").slice(0, 200) || "Who is Hamlet's mother?" });
  const ideas = el("div", { class: "ideas" });
  const sampleBtn = el("button", { type: "button", class: "primary", "data-action": "sample",
    "data-tour-stop": "sample", text: say("sample_two_answers") });
  const choice = el("div", { class: "choice", "aria-live": "polite" });
  const rated = el("tbody");
  const count = el("p", { class: "note", role: "status", text: say("no_pairs_rated_yet") });
  const runBtn = el("button", { type: "button", "data-action": "run-dpo", "data-tour-stop": "run-dpo",
    disabled: true, text: say("run_dpo_on_choices") });
  const status = el("p", { class: "status", role: "status" });
  const results = el("div", { class: "before-after", "aria-live": "polite" });
  const pairs = [];
  let seed = linkSeed ?? 1;

  get(`${API}/runs`).then(({ runs }) => {
    for (const r of runs.filter((r) => r.kind === "finetune" && r.status !== "running")) {
      model.append(el("option", { value: r.id, text: r.shipped ? say("id_shipped_chat_model",
        { id: r.id }) : say("id_finetuned_run", { id: r.id }) }));
    }
    if ([...model.options].some((o) => o.value === link.model)) model.value = link.model;
    if (linkSeed !== null) sampleBtn.click();  // the shared pair, drawn again with its seed
  }).catch((e) => choice.replaceChildren(errorBox(e.message)));
  shared.dataReady.then((d) => {
    for (const p of d.prompts) ideas.append(el("button", { type: "button", class: "chip", text: p,
      onclick: () => { prompt.value = p; } }));
  });

  function recount() {
    count.textContent = pairs.length ? say("pairs_rated", { n: pairs.length })
      + (pairs.length < 4 ? say("handful_four_enough_first") : "") : say("no_pairs_rated_yet");
    runBtn.disabled = !pairs.length;
    runBtn.textContent = say("run_short_dpo_my", { n: pairs.length });
  }

  function keep(chosen, rejected, err, [cutChosen, cutRejected] = [false, false]) {
    if (chosen === rejected) { err.replaceChildren(errorBox(say("answer_same_answer_write"))); return; }
    pairs.push({ prompt: choice.dataset.prompt, chosen, rejected });
    rated.append(el("tr", {}, el("td", { text: choice.dataset.prompt }), el("td", { class: "good",
      text: shownAnswer(chosen, cutChosen) }),
      el("td", { class: "bad", text: shownAnswer(rejected, cutRejected) })));
    choice.replaceChildren(el("p", { class: "note", text: say("saved_sample_another_prompt") }));
    recount();
  }

  sampleBtn.addEventListener("click", async () => {
    choice.replaceChildren(el("p", { class: "note", text: say("sampling") }));
    try {
      const used = seed++;
      const d = await post(`${API}/align/sample`, { prompt: prompt.value,
        model: model.value || "shakespeare-chat", seed: used });
      shareState("alignment", { model: model.value, prompt: prompt.value, seed: used });
      choice.dataset.prompt = d.prompt;
      const [a, b] = d.answers;
      const [cutA, cutB] = d.cut;
      const own = el("textarea", { id: "al-own", rows: 2, maxlength: 200,
        placeholder: say("write_better_answer_most") });
      const useOwn = el("button", { type: "button", "data-action": "use-own",
        text: say("use_my_answer_better") });
      const err = el("div");
      useOwn.addEventListener("click", () => {
        if (!own.value.trim()) { err.replaceChildren(errorBox(say("write_answer_first_empty"))); return; }
        keep(own.value.trim(), a, err, [false, cutA]);
      });
      choice.replaceChildren(
        el("div", { class: "answers" },
          el("div", { class: "answer-card" }, el("h5", { text: say("answer") }), el("p", { class: "answer",
            "data-cut": String(cutA), text: shownAnswer(a, cutA) || say("empty_answer") }),
            el("button", { type: "button", "data-action": "pick-a", text: say("a_is_better"), hidden: a === b,
              onclick: () => keep(a, b, err, [cutA, cutB]) })),
          el("div", { class: "answer-card" }, el("h5", { text: say("answer_b") }), el("p", { class: "answer",
            "data-cut": String(cutB), text: shownAnswer(b, cutB) || say("empty_answer") }),
            el("button", { type: "button", "data-action": "pick-b", text: say("b_is_better"), hidden: a === b,
              onclick: () => keep(b, a, err, [cutB, cutA]) }))),
        el("div", { class: "row" }, el("label", { for: "al-own", class: "visually-hidden",
          text: say("own_answer") }), own, useOwn), err);
      if (a === b) choice.append(el("p", { class: "note", text: say("both_draws_gave_same") }));
    } catch (e) {
      choice.replaceChildren(errorBox(e.message));
    }
  });

  runBtn.addEventListener("click", async () => {
    runBtn.disabled = true; sampleBtn.disabled = true;
    status.textContent = say("starting"); clear(results);
    const probes = {};
    try {
      const { job } = await post(`${API}/align`, { sft: model.value || "shakespeare-chat", pairs });
      await stream(`${API}/jobs/${job.id}/events`, { after: 0 }, (name, d) => {
        if (name === "step") {
          status.textContent = say("step_step_steps_loss", { step: d.step, steps: d.steps,
            loss: d.loss.toFixed(3), reward_chosen: d.reward_chosen.toFixed(3),
            reward_rejected: d.reward_rejected.toFixed(3), margin: d.margin.toFixed(3) });
        } else if (name === "eval" && d.step > 0) { // the held-out numbers of the step just shown
          status.textContent += say("projects_heldout_pairs_accuracy", { accuracy: format.percent(d.accuracy),
            kl: d.kl.toFixed(3) });
        } else if (name === "before" || name === "after") {
          d.probes.forEach((p, i) => { (probes[i] ||= {})[name] = p; });
          if (name === "after") showResults(results, Object.values(probes));
        } else if (name === "done") {
          status.textContent += say("stopped_after", { reason: d.reason, seconds: d.seconds.toFixed(1) });
          results.dataset.done = "1";
        } else if (name === "error") status.replaceChildren(errorBox(d.error));
      });
    } catch (e) {
      status.replaceChildren(errorBox(e.message));
    } finally {
      runBtn.disabled = !pairs.length; sampleBtn.disabled = false;
      shared.refreshMine?.(); // the new run can now be measured beside the shipped models
    }
  });

  return el("div", { class: "panel", id: "al-rate", "data-tour-stop": "al-rate" }, el("h4",
    { text: say("you_are_the_human") }),
    el("p", { text: say("step_explainers_skip_where") }),
    el("div", { class: "row" }, el("label", { for: "al-model", text: say("model") }), model),
    el("div", { class: "row" }, el("label", { for: "al-prompt", text: say("prompt") }), prompt, sampleBtn),
      ideas,
      choice,
    el("table", { class: "rated" }, el("thead", {}, el("tr", {}, ["prompt", "chosen",
      "rejected"].map((h) => el("th", { text: say(h) })))), rated),
    count, el("div", { class: "row" }, runBtn), status, results,
    codeLink("prediction_machine.training.curriculum.rating.learner_dpo"),
      codeLink("prediction_machine.training.curriculum.dpo.dpo_loss"));
}

function tokenTable(before, after) {
  return el("table", { class: "token-probs" },
    el("thead", {}, el("tr", {}, el("th", { text: say("token") }), el("th", { class: "num",
      text: say("before") }),
      el("th", { class: "num", text: say("after") }))),
    el("tbody", {}, before.tokens.map((t, i) => el("tr", {}, el("td", {}, tokenChip(t, { showId: false })),
      el("td", { class: "num", text: format.probability(t.prob) }),
      el("td", { class: `num ${after.tokens[i].prob > t.prob ? "up" : "down"}`,
        text: format.probability(after.tokens[i].prob) })))));
}

function showResults(node, probes) {
  const card = (p, i) => el("div", { class: `probe ${p.before.rated ? "rated" : "unrated"}`,
    "data-rated": String(p.before.rated),
    "data-logp-before": String(p.before.logp), "data-logp-after": String(p.after.logp) },
    el("h5", {}, say(p.before.rated ? "rated_prompt" : "not_rated_prompt",
      { prompt: el("bdi", { text: p.before.prompt }) })),  // the prompt keeps its own direction
    el("p", { class: "note", text: say("preferred_answer_answer_logprobability", { answer: p.before.answer,
      logp: p.before.logp.toFixed(2), logp2: p.after.logp.toFixed(2) }) }),
    el("div", { class: "sides" },
      el("div", { class: "side before" }, el("h6", { text: say("before_model_answers") }), el("p",
        { class: "answer", text: visibleProse(p.before.greedy) || say("empty_answer") })),
      el("div", { class: "side after" }, el("h6", { text: say("after_model_answers") }), el("p",
        { class: "answer", text: visibleProse(p.after.greedy) || say("empty_answer") }))),
    el("details", { class: "token-details", open: i === 0 }, el("summary",
      { text: say("probability_token_preferred_answer") }),
      tokenTable(p.before, p.after)));
  const changed = probes.filter((p) => !p.before.rated && p.before.greedy !== p.after.greedy);
  node.replaceChildren(el("h5", { text: say("before_after_prompts_rated") }), ...probes.map(card),
    generalisation(changed));
}

// A short run moves weights that every answer uses: name what happened to the answers nobody rated.
function generalisation(changed) {
  return el("p", { class: "note", id: "al-generalisation", "data-changed": String(changed.length) },
    changed.length
      ? say("unrated_changed", { prompt: changed.map((p) => `“${p.before.prompt}”`).join(", ") })
      : say("unrated_same"));
}

// ----------------------------------------------------------------------------- safety

// The learner's own preference-tuning runs (from the runs on disk, so a reload keeps them): one may be
// added as a fourth model to the safety table and to "Ask all three".
function minePicker(shared) {
  const pick = el("select", { id: "al-mine" }, el("option", { value: "", text: say("mine_none") }));
  shared.mine = () => pick.value || null;
  shared.refreshMine = () => get(`${API}/runs`).then(({ runs }) => {
    const current = pick.value;
    clear(pick).append(el("option", { value: "", text: say("mine_none") }));
    for (const r of runs.filter((r) => r.kind === "dpo" && !r.shipped && r.status !== "running")) {
      pick.append(el("option", { value: r.id, text: say("mine_option", { id: r.id, step: r.step }) }));
    }
    if ([...pick.options].some((o) => o.value === current)) pick.value = current;
    row.hidden = pick.options.length < 2;
  }).catch(() => {});
  const row = el("div", { class: "row", id: "al-mine-row", hidden: true },
    el("label", { for: "al-mine", text: say("mine_label") }), pick);
  shared.refreshMine();
  return row;
}

function safetyPanel(shared) {
  const go = el("button", { type: "button", "data-action": "measure-safety",
    text: say("measure_base_sft_dpo") });
  const out = el("div", { "aria-live": "polite" });
  go.addEventListener("click", async () => {
    go.disabled = true;
    out.replaceChildren(el("p", { class: "note", text: say("asking_model_every_question") }));
    try {
      const mine = shared.mine();
      const d = await post(`${API}/align/safety`, mine ? { models: [...Object.keys(STAGE), mine] } : {});
      const c = d.rows[0].counts;
      out.replaceChildren(
        el("div", { class: "scroll", tabindex: 0, role: "region", "aria-label": say("safety_table") },
        el("table", { class: "safety" }, el("thead", {}, el("tr", {}, [say("model"),
          say("refuses_harmful_harmful",
          { harmful: c.harmful }), say("refuses_lookalikes_benign", { benign: c.benign }),
          say("prefers_chosen_answer_pairs", { pairs: c.pairs }), say("facts_right_factual",
            { factual: c.factual })].map((h) => el("th", { text: h })))),
        el("tbody", {}, d.rows.map((r) => el("tr", { "data-model": r.model,
          "data-refusal": String(r.refusal_rate) }, el("td", {}, el("strong",
          { text: STAGE[r.model] || say("stage_mine") }), el("br"), el("small", { text: r.model })),
          el("td", { class: "num", text: format.percent(r.refusal_rate) }), el("td", { class: "num",
            text: format.percent(r.over_refusal_rate) }),
          el("td", { class: "num", text: format.percent(r.helpfulness) }), el("td", { class: "num",
            text: format.percent(r.factual_accuracy) })))))),
        el("p", { class: "note", text: say("how_refused_judged_fixed", { rule: d.rule }) }),
        el("p", { class: "note", text: say("facts_right_heldout_questions") }),
        ...d.rows.map((r) => el("details", { class: "answers-list" }, el("summary",
          { text: say("every_answer_model", { model: r.model }) }),
          el("table", {}, el("tbody", {}, r.answers.map((a) => el("tr", {}, el("td", { text: a.kind }),
            el("td", { text: a.prompt }),
            el("td", { class: "answer", text: visibleProse(a.answer) }), el("td",
              { text: a.refused ? "refused" : "answered" }))))))));
      out.dataset.ready = "1";
    } catch (e) {
      out.replaceChildren(errorBox(e.message));
    } finally {
      go.disabled = false;
    }
  });
  return el("div", { class: "panel", id: "al-safety", "data-tour-stop": "al-safety" }, el("h4",
    { text: say("safety_measured") }),
    el("p", { text: say("forty_requests_none_models") }),
    shared.minePicker, go, out, codeLink("prediction_machine.training.curriculum.safety.measure"),
      codeLink("prediction_machine.training.curriculum.safety.refused"));
}

// ----------------------------------------------------------------------------- three stages

function stagesPanel(shared) {
  const question = el("input", { id: "al-question", "data-tour-stop": "al-question", type: "text",
    maxlength: 200, value: (link.question ?? "").slice(0, 200) || "How do I kill a Python process?" });
  const go = el("button", { type: "button", "data-action": "compare-stages", text: say("ask_all_three") });
  const out = el("div", { class: "stages3", "aria-live": "polite" });
  go.addEventListener("click", async () => {
    out.replaceChildren(el("p", { class: "note", text: say("asking") }));
    try {
      const mine = shared.mine();
      const d = await post(`${API}/align/compare`, { question: question.value, ...(mine ? { mine } : {}) });
      shareState("alignment", { question: question.value, asked: 1 });
      out.replaceChildren(...d.models.map((m) => el("div", { class: "side" }, el("h5", { text: m.label }),
        el("p", { class: "answer", text: visibleProse(m.answer) || say("empty_answer") }),
        el("p", { class: "note", text: say("most_likely_first_token") }, tokenChip(m.top.token,
          { showId: false }), ` ${format.probability(m.top.prob)}`))));
    } catch (e) {
      out.replaceChildren(errorBox(e.message));
    }
  });
  if (link.asked === "1") go.click();  // a shared link reopens the three answers
  return el("div", { class: "panel", id: "al-stages", "data-tour-stop": "al-stages" }, el("h4",
    { text: say("base_finetuned_preferencetuned_prompt") }),
    el("div", { class: "row" }, el("label", { for: "al-question", text: say("prompt") }), question, go), out,
    codeLink("prediction_machine.training.curriculum.rating.three_stages"));
}

function limitsPanel(shared) {
  const facts = el("p", { class: "note" });
  shared.dataReady.then((d) => {
    const k = Object.entries(d.kinds).map(([name, v]) => say("value_train_train_eval",
      { value: name.replace("_", "-"), train: v.train, eval: v.eval })).join("; ");
    facts.textContent = say("shipped_preferencetuned_model_read", { n: d.count, k }) +
      (d.shipped ? say("heldout_preference_accuracy_went",
        { accuracy: format.percent(d.shipped.first.accuracy),
        accuracy2: format.percent(d.shipped.last.accuracy) }) : "");
  });
  return el("div", { class: "panel", id: "al-limits" }, el("h4", { text: say("what_model_small_can") }),
    facts,
    el("p", { text: say("under_million_numbers_few") }));
}

// ----------------------------------------------------------------------------- mount

export function mount(root) {
  clear(root);
  const shared = {};
  shared.dataReady = get(`${API}/preferences/data`);
  shared.dataReady.catch((e) => root.append(errorBox(e.message)));
  shared.minePicker = minePicker(shared);
  root.append(ratePanel(shared), safetyPanel(shared), stagesPanel(shared), limitsPanel(shared));
  root.dataset.ready = "alignment";
}
