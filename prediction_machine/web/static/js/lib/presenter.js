// The presenter setting, for a projector: larger text in the figures and no "view code" links.
// It is a class on <body> ("presenter"), so any view (the teacher's included) can follow it, and the
// browser remembers it (localStorage) for the next visit. The page's CSS does the rest (css/base.css).
import { el } from "./dom.js";
import { words } from "./words.js";

const say = words("page");
const KEY = "prediction-machine-presenter";

function remembered() {
  try { return localStorage.getItem(KEY) === "1"; } catch { return false; } // storage may be off
}

export function presenterToggle() {
  const box = el("input", { type: "checkbox", id: "presenter-toggle" });
  const apply = (on) => {
    document.body.classList.toggle("presenter", on);
    box.checked = on;
  };
  apply(remembered());
  box.addEventListener("change", () => {
    apply(box.checked);
    try { localStorage.setItem(KEY, box.checked ? "1" : "0"); } catch { /* kept for this visit only */ }
  });
  return el("p", { class: "presenter-setting" }, el("label", { for: "presenter-toggle",
    title: say("presenter_explained") }, box, ` ${say("presenter")}`));
}
