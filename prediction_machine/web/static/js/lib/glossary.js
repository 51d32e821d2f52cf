// Plain words: each term of the trade gets a one-sentence explanation where it is first used,
// and the glossary at the end of the page (sections/glossary.js) lists them all, from the same definitions.
//
// term(word, explanation) returns an inline element: the word as a button that opens its
// explanation. It works with a mouse (hover or click), a finger (tap) and the keyboard (Tab to
// it, Enter or Space to open, Escape to close). Any section may import it.
import { el } from "./dom.js";

// One sentence each, for someone who has never read about language models.
const DEFINITIONS = new Map(Object.entries({
  token: "A piece of text the model reads or writes as one unit: a whole word, part of a word, a punctuation mark or a single byte.",
  embedding: "The list of numbers (a vector) the model looks up for each token; tokens used in similar ways get similar lists.",
  "logit lens": "A way to peek inside: read the model's intermediate state after a layer as if it were the last one, and see which token it would guess.",
  logit: "The raw score the model gives each possible next token; higher means more likely, and softmax turns the scores into probabilities.",
  softmax: "The formula that turns a list of scores into probabilities that are all positive and add up to 1: bigger scores get much bigger shares.",
  entropy: "How unsure a distribution is, measured in bits: 0 bits means one token is certain, 1 bit is like a fair coin toss between two tokens.",
  bits: "The unit of entropy: each extra bit doubles the number of equally likely choices, so 3 bits is as unsure as 8 equal options.",
  "probability mass": "A share of the total probability of 1, spread over the tokens: moving mass to a token makes it more likely and the rest less.",
  temperature: "Divides the scores before softmax: below 1 it makes the likely tokens even likelier, above 1 it flattens the choice, 0 always takes the top token.",
  "top-k": "Keeps only the k most likely tokens and gives the rest zero chance before the draw.",
  "top-p": "Keeps the smallest set of most likely tokens whose probabilities add up to at least p (nucleus sampling), and drops the rest.",
  "min-p": "Drops every token less likely than min-p times the most likely token, so the cut-off follows how sure the model is.",
  "KV cache": "The keys and values that attention computed for earlier tokens, kept in memory so each new token only needs its own position computed.",
  "attention sink": "A token, usually the first one, that many attention heads look at when they have nothing useful to attend to: a place to park attention.",
}));

const listeners = new Set();

// Definitions added by other sections (term(word, explanation) with a new word) join the glossary.
function define(word, explanation) {
  if (explanation && !DEFINITIONS.has(word)) {
    DEFINITIONS.set(word, explanation);
    for (const fn of listeners) fn();
  }
  return explanation || DEFINITIONS.get(word) || DEFINITIONS.get(word.toLowerCase()) || "";
}

let counter = 0;

// The word as a <dfn> inside a toggle button, with its explanation in a small popover.
export function term(word, explanation = null) {
  const text = define(word, explanation);
  const id = `term-${++counter}`;
  const note = el("span", { class: "term-note", id, role: "note", hidden: true, text });
  const button = el("button", { type: "button", class: "term-button", "aria-expanded": "false", "aria-controls": id,
    "aria-describedby": id, "data-term": word }, el("dfn", { text: word }));
  const wrap = el("span", { class: "term" }, button, note);
  const show = (open) => {
    note.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (!open) return;
    note.style.left = "0px"; // then slide it back inside the screen if it would run off an edge
    const r = note.getBoundingClientRect(), edge = document.documentElement.clientWidth - 8;
    if (r.right > edge) note.style.left = `${Math.max(8 - (r.left - note.offsetLeft), edge - r.right)}px`;
  };
  let pinned = false;
  button.addEventListener("click", () => { pinned = !pinned; show(pinned); });
  wrap.addEventListener("mouseenter", () => show(true));
  wrap.addEventListener("mouseleave", () => show(pinned));
  button.addEventListener("keydown", (e) => { if (e.key === "Escape") { pinned = false; show(false); } });
  button.addEventListener("blur", () => { if (!wrap.matches(":hover")) { pinned = false; show(false); } });
  return wrap;
}

// "1 token", "2 tokens": the count and the word that agrees with it.
export function count(n, one, many = `${one}s`) {
  return `${Number(n).toLocaleString("en")} ${n === 1 ? one : many}`;
}

export const definitions = () => new Map(DEFINITIONS);

// Calls fn whenever a section adds a definition, so the glossary list can redraw.
export const onDefine = (fn) => listeners.add(fn);
