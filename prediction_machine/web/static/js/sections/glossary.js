// The glossary section at the end of the page: every term the guide explains, in one place.
import { el } from "../lib/dom.js";
import { definitions, onDefine } from "../lib/glossary.js";

// The glossary section at the end of the page: every definition, in alphabetical order.
export function mount(root) {
  const list = el("dl", { class: "glossary-list", id: "glossary-list" });
  const draw = () => {
    list.replaceChildren(...[...definitions().entries()].sort(([a], [b]) => a.localeCompare(b, "en", { sensitivity: "base" }))
      .flatMap(([word, text]) => [el("dt", { id: `glossary-${word.replace(/\W+/g, "-").toLowerCase()}`, text: word }), el("dd", { text })]));
  };
  onDefine(draw);
  draw();
  root.replaceChildren(el("h2", { id: "glossary-title", text: "Glossary" }),
    el("p", { class: "note", text: "The words this guide uses, each in one sentence. In the text, click or tap an underlined word to read its explanation where it is used." }),
    list);
  root.closest("section")?.setAttribute("aria-labelledby", "glossary-title");
  root.dataset.ready = "1";
}
