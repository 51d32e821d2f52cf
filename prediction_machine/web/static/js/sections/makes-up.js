// "Why it makes things up": a made-up answer token by token, and the calibration chart. The panels on
// what helps and on where "I do not know" comes from are in makes-up-helps.js. Every number comes from
// /api/makes-up/... (inference/makes_up.py and inference/calibration.py), computed when asked.
import { get, post } from "../lib/api.js";
import { codeLink, el, errorBox, tokenChip, visibleText } from "../lib/dom.js";
import { percent, probability } from "../lib/format.js";
import { term } from "../lib/glossary.js";
import { words } from "../lib/words.js";
import { calibrationChart } from "../figures/calibration-chart.js";
import { dontKnowPanel, helpsPanel } from "./makes-up-helps.js";

const say = words("makes_up");

const FIRST_QUESTION = "Who is Hamlet's mother?";

export async function mount(root) {
  root.replaceChildren();
  const data = await get("/api/makes-up/questions");
  root.append(likelyPanel(data), calibrationPanel(), helpsPanel(data), dontKnowPanel(data));
}

// A button that runs `work` once per press, with a status line, and shows an error instead of failing.
export function runner(button, status, out, work) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = say("computing");
    try {
      out.replaceChildren();
      await work();
      status.textContent = "";
    } catch (error) {
      status.textContent = "";
      out.replaceChildren(errorBox(error.message));
    } finally {
      button.disabled = false;
      button.focus({ preventScroll: true });
    }
  });
}

// A verdict line: right or wrong by the stated rule, for a question from the project's sets.
export function verdictLine(verdict) {
  if (!verdict) return el("p", { class: "note", text: say("not_judged") });
  return el("p", { class: `note verdict ${verdict.right ? "right" : "wrong"}`,
    "data-right": String(verdict.right),
    text: say(verdict.right ? "judged_right" : "judged_wrong", { accepted: verdict.accepted.join(", "),
      rule: verdict.rule }) });
}

// ----------------------------------------------------------------------------- likely, not true

function likelyPanel(data) {
  const input = el("input", { type: "text", id: "mu-question", value: FIRST_QUESTION,
    maxlength: String(data.limits.question), "aria-label": say("your_question") });
  const go = el("button", { type: "button", id: "mu-answer", class: "primary", "data-tour-stop": "mu-answer",
    text: say("answer_it") });
  const status = el("p", { class: "note", role: "status" });
  const out = el("div", { id: "mu-tokens", "data-tour-stop": "mu-tokens" });
  runner(go, status, out, async () => {
    const d = await post("/api/makes-up/answer", { question: input.value });
    out.append(answerTokens(d));
  });
  return el("div", { class: "panel", id: "mu-likely" },
    el("h4", { text: say("likely_title") }),
    el("p", {}, ...[say("likely_intro", { term: term("hallucination") })].flat()),
    el("div", { class: "row" }, el("label", { for: "mu-question", text: say("question") }), input, go),
    status, out,
    codeLink("prediction_machine.inference.makes_up.answer", say("view_answer_code")));
}

function answerTokens(d) {
  const cards = d.tokens.map((t) => el("div", { class: "mu-token", "data-prob": String(t.prob) },
    tokenChip(t, { showId: false }),
    el("span", { class: "mu-prob", text: probability(t.prob) }),
    el("span", { class: "mu-bar", "aria-hidden": "true" },
      el("span", { style: { width: percent(t.prob, 1) } })),
    el("small", { class: "mu-alternatives", text: t.alternatives.length ? say("or_instead", {
      list: t.alternatives.map((a) => `“${visibleText(a.text)}” ${probability(a.prob)}`).join(", ") })
      : "" })));
  const least = d.tokens.reduce((a, b) => (b.prob < a.prob ? b : a), d.tokens[0]);
  return el("div", {},
    el("p", { class: "mu-answer-text" }, el("strong", { text: say("model_said", { model: d.model }) }),
      el("bdi", { text: d.answer })),
    verdictLine(d.verdict),
    el("div", { class: "mu-token-row" }, cards),
    least ? el("p", { class: "note", id: "mu-least", text: say("least_likely",
      { token: visibleText(least.text), prob: probability(least.prob) }) }) : null);
}

// ----------------------------------------------------------------------------- confidence and correctness

function calibrationPanel() {
  const status = el("p", { class: "note", role: "status" });
  const out = el("div", { id: "mu-chart", "data-tour-stop": "mu-chart" });
  const page = el("button", { type: "button", id: "mu-measure", "data-tour-stop": "mu-measure",
    text: say("measure_page_model") });
  const tiny = el("button", { type: "button", id: "mu-measure-tiny", text: say("measure_tiny_model") });
  const chart = el("div", { id: "mu-chart-figure" });
  let shown = null; // the result drawn, and the width it was drawn at
  const draw = (d) => {
    const width = out.getBoundingClientRect().width || 560;
    shown = { d, width };
    chart.replaceChildren(calibrationChart(d, { title: say("chart_title"),
      subtitle: say("chart_subtitle", { model: d.model, n: d.count }),
      x: say("chart_x"), y: say("chart_y"), right: say("right"), wrong: say("wrong"),
      ideal: say("chart_ideal"), count: (n) => say("chart_count", { n }) }, width));
  };
  // A phone turned sideways (or a narrower window) gets the chart redrawn to fit, its text kept readable.
  new ResizeObserver(() => {
    if (shown && Math.abs(out.getBoundingClientRect().width - shown.width) > 40) draw(shown.d);
  }).observe(out);
  const measure = (model) => async () => {
    const d = await post("/api/makes-up/calibration", model ? { model } : {});
    out.append(chart, ...summary(d));
    draw(d);
  };
  runner(page, status, out, measure(null));
  runner(tiny, status, out, measure("shakespeare-chat"));
  return el("div", { class: "panel", id: "mu-calibration" },
    el("h4", { text: say("calibration_title") }),
    el("p", {}, ...[say("calibration_intro", { term: term("calibration") })].flat()),
    el("div", { class: "row" }, page, tiny), status, out,
    el("p", { class: "note", text: say("read_the_chart") }),
    codeLink("prediction_machine.inference.calibration.calibration", say("view_calibration_code")));
}

function summary(d) {
  const share = (x) => (x === null ? "–" : percent(x, 1));
  const lines = [
    say("right_of", { model: d.model, right: d.right, count: d.count, share: percent(d.accuracy) }),
    say("mean_confidence", { right: share(d.mean_confidence_right), wrong: share(d.mean_confidence_wrong) })];
  const gap = (d.mean_confidence_right ?? 0) - (d.mean_confidence_wrong ?? 0);
  if (d.mean_confidence_right !== null && d.mean_confidence_wrong !== null) {
    lines.push(say(gap > 0.1 ? "more_sure_when_right" : "as_sure_when_wrong"));
  }
  const sure = d.points.filter((p) => !p.right && p.confidence >= 0.5)
    .sort((a, b) => b.confidence - a.confidence);
  lines.push(say("confident_wrong", { n: sure.length }));
  if (sure.length) {
    const p = sure[0];
    lines.push(say("most_confident_wrong", { question: p.question,
      answer: `${p.stem ? `${p.stem} ` : ""}${p.answer.trim()}`, prob: percent(p.confidence, 1) }));
  }
  if (d.set === "plays") {
    const of = (kind) => {
      const ps = d.points.filter((p) => p.kind === kind);
      return say("of", { right: ps.filter((p) => p.right).length, count: ps.length });
    };
    lines.push(say("plays_kinds", { taught: of("taught"), reworded: of("reworded"), unseen: of("unseen") }));
  }
  const rows = d.points.map((p) => el("tr", { class: p.right ? "right" : "wrong" },
    el("td", { text: p.question }),
    el("td", {}, el("bdi", { text: `${p.stem ? `${p.stem} ` : ""}${p.answer}` })),
    el("td", { class: "num", text: percent(p.confidence, 1) }),
    el("td", { text: say(p.right ? "right" : "wrong") })));
  return [el("div", { id: "mu-summary" }, lines.map((text) => el("p", { text }))),
    el("p", { class: "note", text: say("rule", { rule: d.rule }) }),
    el("details", { class: "mu-all" }, el("summary", { text: say("every_answer", { n: d.count }) }),
      el("div", { class: "scroll-box", tabindex: "0", role: "region", "aria-label": say("every_answer",
        { n: d.count }) },
      el("table", { id: "mu-points" }, el("thead", {}, el("tr", {}, el("th", { text: say("question") }),
        el("th", { text: say("answer") }), el("th", { class: "num", text: say("first_token") }),
        el("th", { text: say("verdict") }))), el("tbody", {}, rows))))];
}
