// The questions that end each section's tour. Each answer is checked against what this learner's page
// shows at the moment they press Check (question-checks.js), not against a fixed key: another prompt, seed,
// sentence or run has another right answer. A wrong answer brings the question's hint. Progress is
// remembered in this browser, and in classroom mode it is also sent to the teacher's view
// (POST /api/class/progress: the section, whether its tour was finished, questions right out of total).
//
// The questions are data: content/<language>/questions.json lists each section's
// {id, check, answer, ask, wait, hint, right}, where `answer` is the kind of input (text, yesno,
// number, layer_head, or choice with its `choices`: [{value, label}]) and `right` a sentence filled with
// what the page showed.
import { get, post } from "./api.js";
import { el } from "./dom.js";
import { CHECKS } from "./question-checks.js";
import { catalog, fill, words } from "./words.js";

const say = words("questions");
const KEY = (section) => `prediction-machine:questions:${section}`;
const TOUR_KEY = (section) => `prediction-machine:tour:${section}`;

function load(key) {
  try { return JSON.parse(localStorage.getItem(key)) || {}; } catch { return {}; }
}
function save(key, value) {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* private mode: not remembered */ }
}

// Classroom mode is when the class routes answer (GET /api/class/now); asked once per page.
let classroom = null;
const inClassroom = () => (classroom ??= get("/api/class/now").then(() => true, () => false));

export function report(section) {
  const list = catalog("questions").questions?.[section] || [];
  const right = Object.values(load(KEY(section)).right || {}).filter(Boolean).length;
  const body = { section, tour_done: Boolean(load(TOUR_KEY(section)).done), questions_right: right,
    questions_total: list.length };
  inClassroom().then((yes) => (yes ? post("/api/class/progress", body) : null)).catch(() => {});
}

// One input per kind of answer; value() reads it, null when nothing was given.
function answerInput(kind, id, choices = []) {
  if (kind === "yesno") {
    const radios = ["yes", "no"].map((v) => el("input", { type: "radio", name: id, value: v,
      id: `${id}-${v}` }));
    const options = radios.map((r) => el("span", {}, r, el("label", { for: r.id, text: say(r.value) })));
    return { node: el("span", { class: "question-choices" }, options),
      value: () => radios.find((r) => r.checked)?.value ?? null };
  }
  if (kind === "choice") { // one of the question's own choices: [{value, label}], the label in its words
    const radios = choices.map((c) => el("input", { type: "radio", name: id, value: c.value,
      id: `${id}-${c.value}` }));
    const labelled = radios.map((r, i) => el("span", {}, r,
      el("label", { for: r.id, text: choices[i].label })));
    return { node: el("span", { class: "question-choices" }, labelled),
      value: () => radios.find((r) => r.checked)?.value ?? null };
  }
  if (kind === "layer_head") {
    const field = (name) => el("input", { type: "number", min: 0, max: 99, step: 1, id: `${id}-${name}`,
      class: "question-number" });
    const layer = field("layer"), head = field("head");
    const num = (input) => (input.value === "" ? null : Number(input.value));
    const node = el("span", { class: "question-choices" }, el("label", { for: layer.id, text: say("layer") }),
      layer, el("label", { for: head.id, text: say("head") }), head);
    const both = () => ({ layer: num(layer), head: num(head) });
    return { node, value: () => (num(layer) === null || num(head) === null ? null : both()) };
  }
  const number = kind === "number";
  const input = el("input", { type: number ? "number" : "text", step: number ? "any" : null, id,
    maxlength: number ? null : "80", autocomplete: "off",
    class: number ? "question-number" : "question-text" });
  const label = el("label", { for: id, class: "sr-only", text: say("your_answer") });
  return { node: el("span", {}, label, input),
    value: () => (input.value.trim() === "" ? null : number ? Number(input.value) : input.value) };
}

function question(section, root, q, progress, changed) {
  const id = `q-${section}-${q.id}`;
  const input = answerInput(q.answer, id, q.choices);
  const result = el("p", { class: "question-result", role: "status" });
  const form = el("form", { class: "question", "data-question": q.id },
    el("fieldset", {}, el("legend", { text: q.ask }), el("div", { class: "row" }, input.node,
      el("button", { type: "submit", class: "primary", text: say("check") }))), result);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const answer = input.value();
    if (answer === null) { result.textContent = say("empty"); result.dataset.verdict = "empty"; return; }
    const verdict = CHECKS[q.check](root, answer);
    if (verdict === null) {
      result.textContent = say("not_yet") + q.wait;
      result.dataset.verdict = "wait";
      return;
    }
    progress.tries[q.id] = (progress.tries[q.id] || 0) + 1;
    if (verdict.ok) {
      progress.right[q.id] = true;
      result.textContent = say("right") + fill(q.right, verdict.shown);
    } else {
      progress.right[q.id] = false;
      result.textContent = say("wrong") + say("hint") + q.hint; // a hint from the first wrong answer on
    }
    result.dataset.verdict = verdict.ok ? "right" : "wrong";
    changed();
  });
  return form;
}

// Adds the section's questions at its end, folded away until the tour finishes (or the learner opens them).
// Returns { open } for the tour, or null when the section has no questions.
export function addQuestions(section) {
  const id = section.id;
  const list = catalog("questions").questions?.[id];
  if (!list) return null;
  const root = section.querySelector("[data-mount]") || section;
  const stored = load(KEY(id));
  const progress = { right: stored.right || {}, tries: stored.tries || {} };
  const summary = el("summary", { class: "questions-summary" });
  const count = () => {
    const right = list.filter((q) => progress.right[q.id]).length;
    summary.textContent = say("questions_summary", { right, n: list.length });
  };
  const changed = () => { save(KEY(id), progress); count(); report(id); };
  const box = el("details", { class: "questions", "data-questions": id }, summary,
    el("p", { class: "note", text: say("checked_against_page") }),
    list.map((q) => question(id, root, q, progress, changed)));
  count();
  section.append(box);
  return {
    open() {
      box.open = true;
      summary.scrollIntoView({ block: "start", behavior: "instant" });
      summary.focus({ preventScroll: true });
      report(id);
    },
  };
}
