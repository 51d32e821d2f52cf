// Number formats for every figure, each written once: the "no value" dash, integers, percentages,
// durations, large counts, and the form of a word that agrees with a count (words.js uses it).

// The page's language (lib/language.js chooses it): it picks the content files (words.js), digit grouping
// and plural rules.
import { LANGUAGE, NUMBERS } from "./language.js";

export { LANGUAGE };

// What a figure shows where a number is missing (a diverged run sends null, not NaN).
export const DASH = "–";

const missing = (x) => x === null || x === undefined;

// 1234.5 -> "1,235" (grouped the way the page's language groups digits).
export const int = (n) => (missing(n) ? DASH : Math.round(n).toLocaleString(NUMBERS));

// A number with a fixed count of decimals: fixed(0.73914, 3) -> "0.739".
export const fixed = (x, digits) => (missing(x) ? DASH : x.toFixed(digits));

// A share of 1 as a percentage: percent(0.4567) -> "46%", percent(0.4567, 1) -> "45.7%".
export const percent = (x, digits = 0) => (missing(x) ? DASH : `${(x * 100).toFixed(digits)}%`);

// A probability for a table cell: 0.4567 -> "45.7%", tiny ones in scientific notation (3.2e-5).
export function probability(p) {
  if (p >= 0.001) return percent(p, 1);
  return p === 0 ? "0%" : p.toExponential(1);
}

// Seconds for a person: 42.3 -> "42.3 s", 300 -> "5.0 min".
export const seconds = (s) => (missing(s) ? DASH : s < 120 ? `${s.toFixed(1)} s`
  : `${(s / 60).toFixed(1)} min`);

// A big count with an SI prefix: 3.2e12 -> "3.20 T" (the unit follows: "3.20 TFLOPs").
export function si(n) {
  if (missing(n)) return DASH;
  const units = [[1e24, "Y"], [1e21, "Z"], [1e18, "E"], [1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"],
    [1e3, "k"]];
  for (const [size, unit] of units) if (Math.abs(n) >= size) return `${(n / size).toFixed(2)} ${unit}`;
  return n.toFixed(0);
}

// Scientific notation a reader can say aloud: 3.2e21 -> "3.20 × 10^21".
export const scientific = (x) => (missing(x) ? DASH : x.toExponential(2).replace("e+", " × 10^"));

// The form of a word that agrees with n, by the language's own plural rules: English has "one" and
// "other", Arabic six forms. forms: {one: "token", other: "tokens"}; a missing form falls back to "other".
const rules = new Intl.PluralRules(LANGUAGE);
export const plural = (n, forms) => forms[rules.select(n)] ?? forms.other;

// A value for a label: 4 decimals, or scientific notation when it is very large or very small.
export const value = (v) => (missing(v) ? DASH
  : Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : v.toFixed(4));

// A value to type into an input box: three decimals are plenty to read and to edit (0.738, not 0.738139).
export const rounded = (v) => String(Number(v.toFixed(3)));

// A short local derivative for an edge label: 3 significant digits.
export const short = (v) => (Number.isInteger(v) ? String(v) : Number(v.toPrecision(3)).toString());
