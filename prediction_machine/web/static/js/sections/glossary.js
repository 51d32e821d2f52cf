// The glossary section at the end of the page: every term the guide explains, in one place.
import { el } from "../lib/dom.js";
import { LANGUAGE } from "../lib/format.js";
import { definitions, onDefine, shown } from "../lib/glossary.js";
import { words } from "../lib/words.js";

const say = words("glossary");

// Every definition, in alphabetical order.
export function mount(root) {
  const list = el("dl", { class: "glossary-list", id: "glossary-list" });
  const draw = () => {
    const sorted = [...definitions().entries()].sort(([a], [b]) => shown(a).localeCompare(shown(b), LANGUAGE,
      { sensitivity: "base" }));
    list.replaceChildren(...sorted.flatMap(([word, text]) => [
      el("dt", { id: `glossary-${word.replace(/\W+/g, "-").toLowerCase()}`, text: shown(word) }), el("dd",
        { text })]));
  };
  onDefine(draw);
  draw();
  root.replaceChildren(el("h2", { id: "glossary-title", text: say("title") }),
    el("p", { class: "note", text: say("note") }),
    list);
  root.closest("section")?.setAttribute("aria-labelledby", "glossary-title");
  root.dataset.ready = "1";
}
