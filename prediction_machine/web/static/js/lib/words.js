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
// The files load once, before any module that imports this one runs (a top-level await), so a section
// can ask for its words at any time.
import { int, LANGUAGE, plural } from "./format.js";

// One file per page section, plus "page" for the words every section shares (errors, the tour's buttons).
export const CONTENT = ["page", "sequences", "backprop", "attention", "curriculum", "alignment", "inference",
  "glossary"];

const catalogs = new Map();

async function load(name) {
  const response = await fetch(`/static/content/${LANGUAGE}/${name}.json`);
  if (!response.ok) throw new Error(`${name}.json: status ${response.status}`);
  catalogs.set(name, await response.json());
}

// A file that fails to load leaves its keys showing as [section.key], and the console says why.
const failed = (await Promise.allSettled(CONTENT.map(load))).filter((r) => r.status === "rejected");
for (const { reason } of failed) console.error("The page's words did not load:", reason);

// A slot's value; the count a plural text agrees with is written as a count (1,024).
const slot = (values, name) => (name === "n" && typeof values.n === "number" ? int(values.n)
  : values[name] ?? `{${name}}`);

// The text for one key of one section, with its {name} slots filled from values.
export function lookup(section, key, values = {}) {
  const text = catalogs.get(section)?.[key];
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
export const catalog = (section) => catalogs.get(section) || {};
