// One sentence, many languages: the same sentence in seven languages, each cut into tokens by the
// model's own tokenizer (POST /api/tokenize), with the counts side by side. Same meaning, different
// numbers of tokens: a token is the unit of compute and of the context window, so a language that needs
// more tokens pays more for the same answer and fits less of itself in the model's context.
import * as api from "../lib/api.js";
import { el, errorBox, tokenChip } from "../lib/dom.js";
import { int, LANGUAGE } from "../lib/format.js";
import { NUMBERS } from "../lib/language.js";
import { words } from "../lib/words.js";

const say = words("languages");

// The sentence the model reads, in each language. It is the model's input, not the page's words, so
// every page shows these same seven whatever language the page is in.
export const SENTENCES = [
  ["en", "The weather is nice today."],
  ["es", "Hoy hace buen tiempo."],
  ["fr", "Il fait beau aujourd'hui."],
  ["ru", "Сегодня хорошая погода."],
  ["hi", "आज मौसम अच्छा है।"],
  ["ar", "الطقس جميل اليوم."],
  ["zh", "今天天气很好。"],
];

// A language's name in the page's own language ("ar" -> "Arabic" on the English page, "árabe" in Spanish).
const names = new Intl.DisplayNames([LANGUAGE], { type: "language" });

// One row: the language, its sentence and its tokens, and a bar as long as its count.
function row(code, text, answer, most) {
  const bar = el("span", { class: "lang-bar", "aria-hidden": "true" });
  bar.style.width = `${(answer.count / most) * 100}%`;
  return el("tr", { "data-language": code },
    el("th", { scope: "row", text: names.of(code) }),
    el("td", {},
      el("div", { class: "lang-sentence", lang: code, dir: "auto", text }),
      el("div", { class: "chips lang-tokens" }, answer.tokens.map((t) => tokenChip(t, { showId: false })))),
    el("td", { class: "num" }, el("strong", { class: "lang-count", text: int(answer.count) }),
      el("span", { class: "lang-bar-track" }, bar)),
    el("td", { class: "num lang-chars", text: int([...text].length) }));
}

// Draws the table into a <details> box under the tokenizer stage; the counts are fetched once, when the
// learner opens it, so the page's first load asks the server for nothing more.
export function languages() {
  const body = el("div", { class: "lang-body" }, el("p", { class: "note", text: say("loading") }));
  const box = el("details", { class: "languages", id: "languages" },
    el("summary", { text: say("title") }), el("p", { text: say("intro") }), body);
  let asked = false;
  box.addEventListener("toggle", async () => {
    if (!box.open || asked) return;
    asked = true;
    try {
      const answers = await Promise.all(SENTENCES.map(([, text]) => api.post("/api/tokenize", { text })));
      const counts = answers.map((a) => a.count);
      const most = Math.max(...counts), least = Math.min(...counts);
      const order = SENTENCES.map((s, i) => i).sort((a, b) => counts[a] - counts[b]);
      const head = el("tr", {}, ["language", "sentence", "tokens", "characters"].map((key) =>
        el("th", { scope: "col", class: key === "characters" ? "lang-chars" : null, text: say(key) })));
      body.replaceChildren(
        el("div", { class: "table-wrap" }, el("table", { class: "lang-table" },
          el("caption", { class: "sr-only", text: say("counts_label") }), el("thead", {}, head),
          el("tbody", {}, order.map((i) => row(...SENTENCES[i], answers[i], most))))),
        el("p", { class: "lang-lesson", text: say("lesson", {
          most: names.of(SENTENCES[counts.indexOf(most)][0]),
          fewest: names.of(SENTENCES[counts.indexOf(least)][0]),
          ratio: (most / least).toLocaleString(NUMBERS, { maximumFractionDigits: 1 }) }) }));
      box.dataset.ready = "1";
    } catch (error) {
      body.replaceChildren(errorBox(say("failed", { message: error.message })));
    }
  });
  return box;
}
