// The class rating round on a student's page (classroom mode only), and the class run's results, which
// the teacher's view shows too. round.js asks GET /api/class/now every few seconds and hands its "rating"
// here: the pairs the server drew once for the whole class, this student's own choices, and, once the
// teacher closed the votes, the class's counts pair by pair ("14 of 20 chose A"). When the class's one DPO
// run has ended, GET /api/class/ratings/{number}/run gives its before and after answers and its safety
// table. Every answer is the model's text, set as text.
import { get, post } from "../lib/api.js";
import { clear, el, errorBox, shownAnswer } from "../lib/dom.js";
import { percent } from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("class_rating");
const alignment = words("alignment");  // the alignment section's own words for the same rating cards
const ENDED = ["finished", "stopped", "error", "forgotten"];

// ---------------------------------------------------------------------------------- shared with the teacher

// "14 of 20 chose A (70%)", or why a pair trains nothing.
export function agreementText(count) {
  if (!count.votes) return say("no_votes");
  if (count.choice === null) return say("tie", { a: count.a, b: count.b });
  const agree = Math.max(count.a, count.b);
  return say("agreement", { agree, votes: count.votes, side: count.choice === 0 ? "A" : "B",
    share: percent(agree / count.votes) });
}

function answerCard(title, text, className, cut = false) {
  return el("div", { class: `answer-card ${className}` }, el("h5", { text: title }),
    el("p", { class: "answer", "data-cut": String(cut),
      text: shownAnswer(text, cut) || alignment("empty_answer") }));
}

// Before and after, prompt by prompt: the greedy answers of the model the class started from and of the
// model the class made. The same probes the alignment section's own run measures.
function beforeAfter(result) {
  return result.before.map((b, i) => {
    const a = result.after[i];
    return el("div", { class: `probe ${b.rated ? "rated" : "unrated"}`, "data-rated": String(b.rated) },
      el("h5", {}, alignment(b.rated ? "rated_prompt" : "not_rated_prompt",
        { prompt: el("bdi", { text: b.prompt }) })),  // the prompt keeps its own direction
      el("div", { class: "sides" },
        answerCard(alignment("before_model_answers"), b.greedy, "side before"),
        answerCard(alignment("after_model_answers"), a.greedy, "side after")));
  });
}

function safetyTable(safety) {
  const c = safety.rows[0].counts;
  const heads = [alignment("model"), alignment("refuses_harmful_harmful", { harmful: c.harmful }),
    alignment("refuses_lookalikes_benign", { benign: c.benign }),
    alignment("prefers_chosen_answer_pairs", { pairs: c.pairs }),
    alignment("facts_right_factual", { factual: c.factual })];
  const label = (i) => say(i === 0 ? "stage_start" : "stage_class");
  return el("div", { class: "scroll", tabindex: 0, role: "region", "aria-label": say("safety_title") },
    el("table", { class: "safety" },
      el("caption", { text: say("safety_title") }),
      el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...safety.rows.map((r, i) => el("tr", { "data-model": r.model },
        el("th", { scope: "row" }, label(i), el("br"), el("small", { text: r.model })),
        ...["refusal_rate", "over_refusal_rate", "helpfulness", "factual_accuracy"].map((k) =>
          el("td", { class: "num", text: percent(r[k]) })))))));
}

// The class run's results (GET /api/class/ratings/{number}/run), or why there are none.
export function runResult(result) {
  const box = el("div", { class: "class-run-result", "data-run": result.run.job });
  if (!result.before || !result.after) {
    box.append(el("p", { text: say("run_failed", { status: result.run.status }) }));
    return box;
  }
  box.dataset.done = "1";
  box.append(el("p", { text: say("run_done") }), ...beforeAfter(result));
  if (result.safety) box.append(safetyTable(result.safety));
  return box;
}

export function runStatus(run) {
  if (!run) return say("run_waiting");
  return say("run_status", { status: run.status, step: run.step ?? 0, steps: run.steps ?? "?" });
}

// ---------------------------------------------------------------------------------- the student's side

let box = null;
let shown = { number: null, closed: false, ran: null };

function pairCard(rating, pair) {
  const mine = rating.mine[String(pair.pair)];
  const count = rating.counts?.[pair.pair];
  const pick = (choice, key) => el("button", { type: "button", "data-choice": String(choice),
    "aria-pressed": String(mine === choice), disabled: !rating.open, text: alignment(key),
    onclick: () => vote(rating.number, pair.pair, choice) });
  return el("div", { class: "rating-pair", "data-pair": String(pair.pair) },
    // The prompt keeps its own direction (bdi): an English question's "?" stays at its end on an Arabic page.
    el("h4", {}, say("pair_heading", { number: pair.pair + 1 }), " ", el("bdi", { text: pair.prompt })),
    el("div", { class: "answers" },
      answerCard(alignment("answer"), pair.answers[0], mine === 0 ? "picked" : "", pair.cut[0]),
      answerCard(alignment("answer_b"), pair.answers[1], mine === 1 ? "picked" : "", pair.cut[1])),
    el("div", { class: "row" }, pick(0, "a_is_better"), pick(1, "b_is_better")),
    count ? el("p", { class: "agreement", "data-a": String(count.a), "data-b": String(count.b) },
      agreementText(count)) : "");
}

async function vote(number, pair, choice) {
  const status = box.querySelector(".rating-status");
  try {
    const r = await post(`/api/class/ratings/${number}/vote`, { pair, choice });
    for (const card of box.querySelectorAll(".rating-pair")) {
      const mine = r.mine[card.dataset.pair];
      card.querySelectorAll("button[data-choice]").forEach((b) => {
        b.setAttribute("aria-pressed", String(Number(b.dataset.choice) === mine));
      });
      card.querySelectorAll(".answer-card").forEach((c, i) => c.classList.toggle("picked", i === mine));
    }
    status.textContent = say("rated", { n: Object.keys(r.mine).length, total: box.dataset.pairs });
  } catch (error) {
    clear(status).append(errorBox(error.message));
  }
}

async function showRun(rating) {
  const out = box.querySelector(".rating-run");
  out.textContent = runStatus(rating.run);
  if (!rating.run || !ENDED.includes(rating.run.status)) return;
  shown.ran = rating.run.job;
  try {
    clear(out).append(runResult(await get(`/api/class/ratings/${rating.number}/run`)));
  } catch (error) {
    shown.ran = null;  // asked again at the next poll
    clear(out).append(errorBox(error.message));
  }
}

// Called by round.js with every GET /api/class/now answer; `body` is the class panel's body.
export function renderRating(rating, body, details) {
  if (!rating) return;
  const fresh = rating.number !== shown.number;
  const closedNow = !rating.open && !shown.closed;
  if (fresh || closedNow) {
    box?.remove();
    box = el("section", { class: "class-rating", "data-rating": String(rating.number),
      "data-pairs": String(rating.pairs.length), "aria-labelledby": "class-rating-title" },
      el("h3", { id: "class-rating-title", text: say("title") }),
      el("p", { class: "note", text: say(rating.open ? "intro" : "closed") }),
      ...rating.pairs.map((pair) => pairCard(rating, pair)),
      el("p", { class: "rating-status", role: "status" }),
      rating.open ? "" : el("p", { class: "note disagree", text: say("disagree") }),
      el("p", { class: "note", text: say("rule") }),
      el("div", { class: "rating-run", "aria-live": "polite" }));
    body.prepend(box);
    if (fresh && rating.open) details.open = true;
    shown = { number: rating.number, closed: !rating.open, ran: null };
  }
  if (!rating.open && shown.ran !== rating.run?.job) showRun(rating);
}
