// The page's words. Every sentence a section shows lives in a content file, one per section and
// language: static/content/<language>/<section>.json, a flat object of key -> text. A writer or a
// translator edits those files and never this code; the JS only says which text goes where.
//
// A text may hold {name} slots that the figure fills with numbers or names: "Step {step} of {steps}".
// A slot's value may also be an element (a glossary term), and then the text comes back as a list of
// pieces for el(...) to append. A text that agrees with a count is an object of plural forms,
// {"one": "{n} pair rated.", "other": "{n} pairs rated."}, picked by the language's plural rules
// for the value named n.
//
// The language is the one lib/language.js chose. A key its files lack (English gained a sentence the
// translation has not caught up with) shows in English rather than as a hole, and the console says so.
// The words written in index.html itself (headings, each section's opening paragraphs, the footer) are
// in content/<language>/index.json, and replace the HTML's English when the page opens (see below).
//
// The files load once, before any module that imports this one runs (a top-level await), so a section
// can ask for its words at any time.
import { int, plural } from "./format.js";
import { LANGUAGE } from "./language.js";

// One file per page section, plus "page" for the words every section shares (errors, the tour's buttons),
// "index" for the words in index.html, and "languages" for the picker's figure of one sentence in many.
export const CONTENT = ["page", "sequences", "backprop", "attention", "curriculum", "alignment", "inside",
  "inference", "experiments", "makes_up", "glossary", "index", "languages", "rounds", "teacher", "questions",
  "replay", "class_rating"];

const catalogs = new Map();
const english = new Map();  // the fallback, loaded only when the page is in another language

async function load(name, language, into) {
  const response = await fetch(`/static/content/${language}/${name}.json`);
  if (!response.ok) throw new Error(`${language}/${name}.json: status ${response.status}`);
  into.set(name, await response.json());
}

// A file that fails to load leaves its keys showing as [section.key], and the console says why.
const loads = CONTENT.map((name) => load(name, LANGUAGE, catalogs));
if (LANGUAGE !== "en") loads.push(...CONTENT.map((name) => load(name, "en", english)));
const failed = (await Promise.allSettled(loads)).filter((r) => r.status === "rejected");
for (const { reason } of failed) console.error("The page's words did not load:", reason);

// A slot's value; the count a plural text agrees with is written as a count (1,024).
const slot = (values, name) => (name === "n" && typeof values.n === "number" ? int(values.n)
  : values[name] ?? `{${name}}`);

// The text for one key of one section, with its {name} slots filled from values.
export function lookup(section, key, values = {}) {
  const text = catalogs.get(section)?.[key] ?? english.get(section)?.[key];
  if (catalogs.get(section)?.[key] === undefined && text !== undefined) {
    console.warn(`No ${LANGUAGE} words for ${section}.${key}: showing English`);
  }
  if (text === undefined) {
    console.error(`No words for ${section}.${key}`);
    return `[${section}.${key}]`;
  }
  return fill(text, values);
}

// A text (or its plural forms) with its {name} slots filled from values.
export function fill(text, values = {}) {
  if (typeof text === "object") text = plural(values.n, text);
  const pieces = text.split(/\{(\w+)\}/);  // even indices: text; odd indices: slot names
  const filled = pieces.map((piece, i) => (i % 2 === 0 ? piece : slot(values, piece)));
  return filled.some((piece) => piece instanceof Node) ? filled.filter((p) => p !== "") : filled.join("");
}

// words("inference") -> say, where say("generate") is lookup("inference", "generate").
export const words = (section) => (key, values) => lookup(section, key, values);

// A section's whole file, for texts that come as a list (the tour's stops) or a table (the glossary's terms).
export const catalog = (section) => ({ ...english.get(section), ...catalogs.get(section) });

// ---------------------------------------------------------------- the words in index.html
// An element with data-words="key" takes index.json's text for key; data-words-label="key" sets its
// aria-label. Inline elements keep their place in the text as tags: "a <strong>small</strong> model".
// Each tag takes the attributes (a link's href) of the HTML's own element of that name, in order, and
// only its words from the file: nothing in a content file is ever parsed as HTML.
const TAG = /<(\w+)>([^<]*)<\/\1>/;

function translate(node, text) {
  const originals = [...node.children];
  const pieces = text.split(TAG);  // text, tag, inner text, text, tag, inner text, ..., text
  const out = [];
  for (let i = 0; i < pieces.length; i += 3) {
    out.push(pieces[i]);
    if (i + 1 >= pieces.length) break;
    const at = originals.findIndex((child) => child.localName === pieces[i + 1]);
    const inline = at < 0 ? null : originals.splice(at, 1)[0];
    if (inline) inline.textContent = pieces[i + 2];
    out.push(inline || pieces[i + 2]);
  }
  node.replaceChildren(...out);
}

for (const node of document.querySelectorAll("[data-words]")) {
  translate(node, lookup("index", node.dataset.words));
}
for (const node of document.querySelectorAll("[data-words-label]")) {
  node.setAttribute("aria-label", lookup("index", node.dataset.wordsLabel));
}
