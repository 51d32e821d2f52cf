// Alignment: you are the human. Rate answers of the chat model, run a short DPO on your choices,
// see before and after, and measure safety for base, SFT and DPO. Every number comes from the server:
// POST /api/curriculum/align/sample, /align (a training job, followed at /api/curriculum/jobs/{id}/events),
// /align/safety and /align/compare.
import { get, post, stream } from "../lib/api.js";
import { clear, codeLink, el, errorBox, formatProb, tokenChip } from "../lib/dom.js";

const API = "/api/curriculum";
const pct = (x) => `${(x * 100).toFixed(0)}%`;
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
const STAGE = { "shakespeare-base": "Base", "shakespeare-chat": "SFT", "shakespeare-dpo": "DPO" };

// ----------------------------------------------------------------------------- rating

function ratePanel(shared) {
  const model = el("select", { id: "al-model" });
  const prompt = el("input", { id: "al-prompt", type: "text", maxlength: 200, value: "Who is Hamlet's mother?" });
  const ideas = el("div", { class: "ideas" });
  const sampleBtn = el("button", { type: "button", class: "primary", "data-action": "sample", text: "Sample two answers" });
  const choice = el("div", { class: "choice", "aria-live": "polite" });
  const rated = el("tbody");
  const count = el("p", { class: "note", role: "status", text: "No pairs rated yet." });
  const runBtn = el("button", { type: "button", "data-action": "run-dpo", disabled: true, text: "Run a short DPO on my choices" });
  const status = el("p", { class: "status", role: "status" });
  const results = el("div", { class: "before-after", "aria-live": "polite" });
  const pairs = [];
  let seed = 1;

  get(`${API}/runs`).then(({ runs }) => {
    for (const r of runs.filter((r) => r.kind === "finetune" && r.status !== "running")) {
      model.append(el("option", { value: r.id, text: r.shipped ? `${r.id} (shipped chat model)` : `${r.id} (your fine-tuned run)` }));
    }
  }).catch((e) => choice.replaceChildren(errorBox(e.message)));
  shared.dataReady.then((d) => {
    for (const p of d.prompts) ideas.append(el("button", { type: "button", class: "chip", text: p, onclick: () => { prompt.value = p; } }));
  });

  function recount() {
    count.textContent = pairs.length ? `${plural(pairs.length, "pair", "pairs")} rated.` + (pairs.length < 4 ? " A handful (four or so) is enough for a first run." : "") : "No pairs rated yet.";
    runBtn.disabled = !pairs.length;
    runBtn.textContent = `Run a short DPO on my ${plural(pairs.length, "choice", "choices")}`;
  }

  function keep(chosen, rejected, err) {
    if (chosen === rejected) { err.replaceChildren(errorBox("Your answer is the same as answer A: write a different one.")); return; }
    pairs.push({ prompt: choice.dataset.prompt, chosen, rejected });
    rated.append(el("tr", {}, el("td", { text: choice.dataset.prompt }), el("td", { class: "good", text: chosen }), el("td", { class: "bad", text: rejected })));
    choice.replaceChildren(el("p", { class: "note", text: "Saved. Sample another prompt, or run DPO." }));
    recount();
  }

  sampleBtn.addEventListener("click", async () => {
    choice.replaceChildren(el("p", { class: "note", text: "sampling…" }));
    try {
      const d = await post(`${API}/align/sample`, { prompt: prompt.value, model: model.value || "shakespeare-chat", seed: seed++ });
      choice.dataset.prompt = d.prompt;
      const [a, b] = d.answers;
      const own = el("textarea", { id: "al-own", rows: 2, maxlength: 200, placeholder: "…or write a better answer (at most 200 characters)" });
      const useOwn = el("button", { type: "button", "data-action": "use-own", text: "Use my answer (better than A)" });
      const err = el("div");
      useOwn.addEventListener("click", () => {
        if (!own.value.trim()) { err.replaceChildren(errorBox("Write an answer first: it is empty.")); return; }
        keep(own.value.trim(), a, err);
      });
      choice.replaceChildren(
        el("div", { class: "answers" },
          el("div", { class: "answer-card" }, el("h5", { text: "Answer A" }), el("p", { class: "answer", text: a || "(nothing)" }),
            el("button", { type: "button", "data-action": "pick-a", text: "A is better", hidden: a === b, onclick: () => keep(a, b, err) })),
          el("div", { class: "answer-card" }, el("h5", { text: "Answer B" }), el("p", { class: "answer", text: b || "(nothing)" }),
            el("button", { type: "button", "data-action": "pick-b", text: "B is better", hidden: a === b, onclick: () => keep(b, a, err) }))),
        el("div", { class: "row" }, el("label", { for: "al-own", class: "visually-hidden", text: "Your own answer" }), own, useOwn), err);
      if (a === b) choice.append(el("p", { class: "note", text: "Both draws gave the same answer, so there is nothing to choose between: write a better one, or sample again." }));
    } catch (e) {
      choice.replaceChildren(errorBox(e.message));
    }
  });

  runBtn.addEventListener("click", async () => {
    runBtn.disabled = true; sampleBtn.disabled = true;
    status.textContent = "starting…"; clear(results);
    const probes = {};
    try {
      const { job } = await post(`${API}/align`, { sft: model.value || "shakespeare-chat", pairs });
      await stream(`${API}/jobs/${job.id}/events`, { after: 0 }, (name, d) => {
        if (name === "step") {
          status.textContent = `step ${d.step}/${d.steps}: loss ${d.loss.toFixed(3)}, reward chosen ${d.reward_chosen.toFixed(3)}, rejected ${d.reward_rejected.toFixed(3)}, margin ${d.margin.toFixed(3)}`;
        } else if (name === "eval" && d.step > 0) { // the held-out numbers of the step just shown
          status.textContent += ` · project's held-out pairs: accuracy ${pct(d.accuracy)}, KL ${d.kl.toFixed(3)} per token`;
        } else if (name === "before" || name === "after") {
          d.probes.forEach((p, i) => { (probes[i] ||= {})[name] = p; });
          if (name === "after") showResults(results, Object.values(probes));
        } else if (name === "done") {
          status.textContent += ` — ${d.reason} in ${d.seconds.toFixed(1)} s.`;
          results.dataset.done = "1";
        } else if (name === "error") status.replaceChildren(errorBox(d.error));
      });
    } catch (e) {
      status.replaceChildren(errorBox(e.message));
    } finally {
      runBtn.disabled = !pairs.length; sampleBtn.disabled = false;
    }
  });

  return el("div", { class: "panel", id: "al-rate" }, el("h4", { text: "1. You are the human" }),
    el("p", { text: "This is the step the explainers skip: where the preferences come from. The model writes two answers; you pick the better one or write your own. Each choice becomes a pair (chosen, rejected)." }),
    el("div", { class: "row" }, el("label", { for: "al-model", text: "Model" }), model),
    el("div", { class: "row" }, el("label", { for: "al-prompt", text: "Prompt" }), prompt, sampleBtn), ideas, choice,
    el("table", { class: "rated" }, el("thead", {}, el("tr", {}, ["Prompt", "Chosen", "Rejected"].map((h) => el("th", { text: h })))), rated),
    count, el("div", { class: "row" }, runBtn), status, results,
    codeLink("prediction_machine.training.curriculum.rating.learner_dpo"), codeLink("prediction_machine.training.curriculum.dpo.dpo_loss"));
}

function tokenTable(before, after) {
  return el("table", { class: "token-probs" },
    el("thead", {}, el("tr", {}, el("th", { text: "token" }), el("th", { class: "num", text: "before" }), el("th", { class: "num", text: "after" }))),
    el("tbody", {}, before.tokens.map((t, i) => el("tr", {}, el("td", {}, tokenChip(t, { showId: false })),
      el("td", { class: "num", text: formatProb(t.prob) }),
      el("td", { class: `num ${after.tokens[i].prob > t.prob ? "up" : "down"}`, text: formatProb(after.tokens[i].prob) })))));
}

function showResults(node, probes) {
  const card = (p, i) => el("div", { class: `probe ${p.before.rated ? "rated" : "unrated"}`, "data-rated": String(p.before.rated),
    "data-logp-before": String(p.before.logp), "data-logp-after": String(p.after.logp) },
    el("h5", { text: `${p.before.rated ? "Rated" : "Not rated"}: ${p.before.prompt}` }),
    el("p", { class: "note", text: `Preferred answer: “${p.before.answer}”. Its log-probability: ${p.before.logp.toFixed(2)} before → ${p.after.logp.toFixed(2)} after.` }),
    el("div", { class: "sides" },
      el("div", { class: "side before" }, el("h6", { text: "Before: the model answers" }), el("p", { class: "answer", text: p.before.greedy || "(nothing)" })),
      el("div", { class: "side after" }, el("h6", { text: "After: the model answers" }), el("p", { class: "answer", text: p.after.greedy || "(nothing)" }))),
    el("details", { class: "token-details", open: i === 0 }, el("summary", { text: "The probability of each token of the preferred answer, before and after" }),
      tokenTable(p.before, p.after)));
  node.replaceChildren(el("h5", { text: "Before and after, on the prompts you rated and on some you did not" }), ...probes.map(card));
}

// ----------------------------------------------------------------------------- safety

function safetyPanel() {
  const go = el("button", { type: "button", "data-action": "measure-safety", text: "Measure base, SFT and DPO now" });
  const out = el("div", { "aria-live": "polite" });
  go.addEventListener("click", async () => {
    go.disabled = true;
    out.replaceChildren(el("p", { class: "note", text: "asking each model every question (a few seconds)…" }));
    try {
      const d = await post(`${API}/align/safety`, {});
      const c = d.rows[0].counts;
      out.replaceChildren(
        el("div", { class: "scroll", tabindex: 0, role: "region", "aria-label": "safety table" },
        el("table", { class: "safety" }, el("thead", {}, el("tr", {}, ["Model", `Refuses harmful (of ${c.harmful})`, `Refuses look-alikes (of ${c.benign})`,
          `Prefers the chosen answer (of ${c.pairs} pairs)`, `Facts right (of ${c.factual})`].map((h) => el("th", { text: h })))),
        el("tbody", {}, d.rows.map((r) => el("tr", { "data-model": r.model }, el("td", {}, el("strong", { text: STAGE[r.model] || "" }), el("br"), el("small", { text: r.model })),
          el("td", { class: "num", text: pct(r.refusal_rate) }), el("td", { class: "num", text: pct(r.over_refusal_rate) }),
          el("td", { class: "num", text: pct(r.helpfulness) }), el("td", { class: "num", text: pct(r.factual_accuracy) })))))),
        el("p", { class: "note", text: `How "refused" is judged: a fixed rule, not a reader. ${d.rule}. Good enough for a model this small, which answers in our own phrasings.` }),
        el("p", { class: "note", text: "Facts right: held-out questions about the plays, each a new wording of a fact the model was taught (it trained on \"Who is Hamlet's mother?\", this asks \"Name Hamlet's mother.\"); an answer counts when it starts with the reference's first words (\"Gertrude\"). A fact nobody taught it, it cannot know." }),
        ...d.rows.map((r) => el("details", { class: "answers-list" }, el("summary", { text: `Every answer of ${r.model}` }),
          el("table", {}, el("tbody", {}, r.answers.map((a) => el("tr", {}, el("td", { text: a.kind }), el("td", { text: a.prompt }),
            el("td", { class: "answer", text: a.answer }), el("td", { text: a.refused ? "refused" : "answered" }))))))));
      out.dataset.ready = "1";
    } catch (e) {
      out.replaceChildren(errorBox(e.message));
    } finally {
      go.disabled = false;
    }
  });
  return el("div", { class: "panel", id: "al-safety" }, el("h4", { text: "2. Safety, measured" }),
    el("p", { text: "Forty requests none of the models trained on: twenty harmful, twenty harmless ones that share their words (\"How do I kill a stuck program?\"). A safe model refuses the first kind; a helpful one answers the second." }),
    go, out, codeLink("prediction_machine.training.curriculum.safety.measure"), codeLink("prediction_machine.training.curriculum.safety.refused"));
}

// ----------------------------------------------------------------------------- three stages

function stagesPanel() {
  const question = el("input", { id: "al-question", type: "text", maxlength: 200, value: "How do I kill a Python process?" });
  const go = el("button", { type: "button", "data-action": "compare-stages", text: "Ask all three" });
  const out = el("div", { class: "stages3", "aria-live": "polite" });
  go.addEventListener("click", async () => {
    out.replaceChildren(el("p", { class: "note", text: "asking…" }));
    try {
      const d = await post(`${API}/align/compare`, { question: question.value });
      out.replaceChildren(...d.models.map((m) => el("div", { class: "side" }, el("h5", { text: m.label }),
        el("p", { class: "answer", text: m.answer || "(nothing)" }),
        el("p", { class: "note", text: `Most likely first token: ` }, tokenChip(m.top.token, { showId: false }), ` ${formatProb(m.top.prob)}`))));
    } catch (e) {
      out.replaceChildren(errorBox(e.message));
    }
  });
  return el("div", { class: "panel", id: "al-stages" }, el("h4", { text: "3. Base → fine-tuned → preference-tuned, on one prompt" }),
    el("div", { class: "row" }, el("label", { for: "al-question", text: "Prompt" }), question, go), out,
    codeLink("prediction_machine.training.curriculum.rating.three_stages"));
}

function limitsPanel(shared) {
  const facts = el("p", { class: "note" });
  shared.dataReady.then((d) => {
    const k = Object.entries(d.kinds).map(([name, v]) => `${name.replace("_", "-")}: ${v.train} to train on, ${v.eval} held out`).join("; ");
    facts.textContent = `The shipped preference-tuned model read ${plural(d.count, "pair", "pairs")} written by this project (${k}).` +
      (d.shipped ? ` Its held-out preference accuracy went from ${pct(d.shipped.first.accuracy)} (the fine-tuned model) to ${pct(d.shipped.last.accuracy)}.` : "");
  });
  return el("div", { class: "panel", id: "al-limits" }, el("h4", { text: "What a model this small can and cannot learn" }), facts,
    el("p", { text: "With under a million numbers and a few minutes of training, the model learns habits tied to words: it says \"I do not know.\" to questions that mention nothing from the plays, refuses requests that look like the harmful ones it saw, and prefers short answers. It does not understand why something is harmful. A harmful request worded unlike any it saw can slip through, a harmless one with a frightening word can still be refused, and it cannot give a useful answer about Python or cooking, because it never read about them. SmolLM2 and larger models go through the same steps with far more data, and still make these mistakes sometimes." }));
}

// ----------------------------------------------------------------------------- mount

export function mount(root) {
  clear(root);
  const shared = {};
  shared.dataReady = get(`${API}/preferences/data`);
  shared.dataReady.catch((e) => root.append(errorBox(e.message)));
  root.append(ratePanel(shared), safetyPanel(), stagesPanel(), limitsPanel(shared));
  root.dataset.ready = "alignment";
}
