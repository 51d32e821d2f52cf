// Plain words: each term of the trade gets a one-sentence explanation where it is first used,
// and the glossary at the end of the page (sections/glossary.js) lists them all, from the same definitions.
//
// term(word, explanation) returns an inline element: the word as a button that opens its
// explanation. It works with a mouse (hover or click), a finger (tap) and the keyboard (Tab to
// it, Enter or Space to open, Escape to close). Any section may import it.
import { el } from "./dom.js";
import { catalog } from "./words.js";

// One sentence each, for someone who has never read about language models (content/<language>/glossary.json).
const DEFINITIONS = new Map(Object.entries(catalog("glossary").terms || {}));

// The word a term shows in the page's language (glossary.json's "names"); an English term is its own
// name. A term asked for with a capital ("Temperature", opening a sentence) gets its name with a capital.
const NAMES = catalog("glossary").names || {};
export function shown(word) {
  if (NAMES[word]) return NAMES[word];
  const name = NAMES[word.toLowerCase()];
  return name ? name[0].toLocaleUpperCase() + name.slice(1) : word;
}

// A term may be asked for by its English key ("ablation") or by its name here ("ablación"): both find
// the one definition.
const KEYS = new Map(Object.entries(NAMES).map(([key, name]) => [name.toLowerCase(), key]));
const keyOf = (word) => KEYS.get(word.toLowerCase()) ?? word;

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
  const text = define(keyOf(word), explanation);
  const id = `term-${++counter}`;
  const note = el("span", { class: "term-note", id, role: "note", hidden: true, text });
  const button = el("button", { type: "button", class: "term-button", "aria-expanded": "false",
    "aria-controls": id,
    "aria-describedby": id, "data-term": word }, el("dfn", { text: shown(word) }));
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

export const definitions = () => new Map(DEFINITIONS);

// Calls fn whenever a section adds a definition, so the glossary list can redraw.
export const onDefine = (fn) => listeners.add(fn);
