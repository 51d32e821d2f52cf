// "Where did it learn that?": a line a tiny model writes (a /api/generate stream), looked up in the text
// it was trained on with /api/curriculum/source (training/curriculum/corpus_index.py): the longest
// verbatim matches with their play, line and speaker, the memorisation score beside held-out text's, and
// for a chat answer the nearest fine-tuning conversations and preference pairs (nearest_examples.py).
import { post, stream } from "../lib/api.js";
import { el, errorBox, setBusy } from "../lib/dom.js";
import { fixed, int, percent } from "../lib/format.js";
import { words } from "../lib/words.js";
import { term } from "../lib/glossary.js";

const say = words("inside");
const MODELS = ["shakespeare-base", "shakespeare-chat", "shakespeare-dpo"];
const PROMPTS = { base: "Romeo:\n", chat: "Who is Hero's father?" };
const MAX_TEXT = 2000;  // corpus_index.MAX_TEXT: the API refuses longer texts with a 422 saying so
// The term this panel explains (glossary.json).
const memorisationTerm = () => term("Memorisation");  // opens a sentence: capitalised

export function sourcePanel(state, remember) {
  const model = el("select", { id: "inside-model" },
    ...MODELS.map((m) => el("option", { value: m, text: m })));
  model.value = MODELS.includes(state.model) ? state.model : MODELS[0];
  const isChat = () => model.value !== MODELS[0];
  const prompt = el("textarea", { id: "inside-prompt", rows: "2", maxlength: "200" });
  prompt.value = state.prompt || (isChat() ? PROMPTS.chat : PROMPTS.base);
  const seed = Number.isInteger(Number(state.seed)) && state.seed !== undefined ? Number(state.seed) : 10;
  let seedNow = seed;
  const write = el("button", { type: "button", id: "inside-write", "data-tour-stop": "inside-write",
    text: say("write") });
  const text = el("textarea", { id: "inside-text", rows: "4", maxlength: String(MAX_TEXT) });
  const look = el("button", { type: "button", class: "primary", id: "inside-look", text: say("look_up") });
  const status = el("p", { class: "note", role: "status" });
  const out = el("div", { id: "inside-matches", "data-tour-stop": "inside-matches", "aria-live": "polite" });

  model.addEventListener("change", () => {
    prompt.value = isChat() ? PROMPTS.chat : PROMPTS.base;
    remember({ model: model.value, prompt: prompt.value });
  });
  write.addEventListener("click", async () => {
    setBusy(write, true);
    status.textContent = say("writing");
    remember({ model: model.value, prompt: prompt.value, seed: seedNow });
    try {
      let written = "";
      await stream("/api/generate", { prompt: prompt.value, chat: isChat(), model: model.value,
        max_new_tokens: 40, temperature: isChat() ? 0 : 0.8, seed: seedNow }, (name, data) => {
        if (name === "done") written = data.text;
        if (name === "error") throw new Error(data.message || data.error);
      });
      text.value = isChat() ? written.trim() : prompt.value + written;
      seedNow += 1;  // the next press writes another line; the link keeps the seed of this one
      status.textContent = "";
      await lookUp();
    } catch (error) {
      status.textContent = "";
      out.replaceChildren(errorBox(error.message));
    } finally {
      setBusy(write, false);
    }
  });

  async function lookUp() {
    if (!text.value.trim()) return;
    setBusy(look, true);
    status.textContent = say("looking");
    try {
      const body = { text: text.value, model: model.value };
      if (isChat() && prompt.value.trim()) body.question = prompt.value.trim();
      out.replaceChildren(...render(await post("/api/curriculum/source", body)));
      status.textContent = "";
    } catch (error) {
      status.textContent = "";
      out.replaceChildren(errorBox(error.message));
    } finally {
      setBusy(look, false);
    }
  }
  look.addEventListener("click", lookUp);

  return el("div", { class: "panel", id: "inside-source-panel" },
    el("h4", { text: say("source_title") }),
    el("p", { text: say("source_intro") }),
    el("div", { class: "row" }, el("label", { for: "inside-model", text: say("model") }), model),
    el("label", { for: "inside-prompt", text: say("prompt") }), prompt,
    el("div", { class: "row" }, write),
    el("label", { for: "inside-text", text: say("text") }), text,
    el("div", { class: "row" }, look), status, out,
    el("h5", { text: say("smollm2_title") }), el("p", { id: "inside-smollm2", text: say("smollm2") }));
}

function render(d) {
  const m = d.memorisation, base = d.baseline;
  const score = m.score === null ? say("memorised_short", { term: memorisationTerm() })
    : say("memorised", { term: memorisationTerm(), found: int(m.found), ngrams: int(m.ngrams),
      score: percent(m.score), words: int(base.words), baseline: percent(base.score, 1) });
  const parts = [el("p", { id: "inside-memorised", "data-score": String(m.score) }, ...[score].flat())];
  if (!d.matches.length) parts.push(el("p", { class: "note", text: say("no_matches") }));
  else parts.push(el("h5", { text: say("matches_title") }), el("ol", { class: "inside-match-list" },
    ...d.matches.map(matchItem)));
  parts.push(el("p", { class: "note", text: say("index_note", { chars: int(d.corpus.chars),
    ms: fixed(d.lookup_ms, 1) }) }));
  if (d.nearest) parts.push(nearestPart(d.nearest));
  return parts;
}

function matchItem(m) {
  const head = say("match_line", { length: m.length, count: say("times", { n: m.count }), source: m.source,
    line: int(m.line) }) + (m.speaker ? say("match_speaker", { speaker: m.speaker }) : "");
  return el("li", { class: "inside-match", "data-source": m.source, "data-line": String(m.line) },
    el("q", { class: "inside-quote", text: m.text }), el("p", { class: "note", text: head }),
    el("pre", { class: "inside-lines", text: m.lines.join("\n") }));
}

function nearestPart(n) {
  const key = { seen: "wording_seen", reworded: "wording_reworded", new: "wording_new" }[n.wording];
  const wording = say(key, { nearest: n.nearest_training_question, where: n.found_in,
    similarity: fixed(n.similarity, 2) });
  // A box that may scroll takes the keyboard's focus, so it can be scrolled without a mouse (axe).
  const table = (rows, cols, label) => el("div", { class: "scroll-box", tabindex: "0", role: "region",
    "aria-label": label }, el("table", {},
    el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", { scope: "col", text: say(c) })))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...cols.map((c) => el("td", {
      class: c === "similarity" ? "num" : "", text: c === "similarity" ? fixed(r[c], 2) : r[c] })))))));
  return el("div", { id: "inside-nearest", "data-wording": n.wording },
    el("h5", { text: say("nearest_title") }), el("p", { text: wording }),
    el("p", { class: "note", text: say("measure", { measure: n.measure }) }),
    el("h5", { text: say("conversations") }),
    table(n.conversations, ["similarity", "split", "user", "assistant"], say("conversations")),
    el("h5", { text: say("pairs") }),
    table(n.pairs.map((p) => ({ ...p, user: p.prompt })), ["similarity", "user", "chosen", "rejected"],
      say("pairs")));
}
