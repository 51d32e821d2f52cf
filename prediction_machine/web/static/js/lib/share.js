// A section's view lives in the URL fragment, so a copied link opens that exact view.
// The fragment names one section and its settings: #attention?layer=13&head=8&sentence=...
// Each section reads its state once when it mounts (sharedState) and writes it whenever the
// learner changes something (shareState). Values are strings; each section parses its own.
// Each section's guide bar has a "Copy link" button (copyLinkButton) that puts that address on the clipboard.
import { el } from "./dom.js";
import { words } from "./words.js";

const say = words("page");

function parseFragment() {
  const raw = decodeURIComponent(location.hash.slice(1).split("?")[0] || "");
  const query = location.hash.includes("?") ? location.hash.slice(location.hash.indexOf("?") + 1) : "";
  return { section: raw, params: new URLSearchParams(query) };
}

// The state a shared link carries for `section`, as a plain object, or null if the link is not about it.
export function sharedState(section) {
  const { section: named, params } = parseFragment();
  if (named !== section || ![...params.keys()].length) return null;
  return Object.fromEntries(params.entries());
}

// Until the learner first does something (a key, a press, an edit), only a shared link's own section may
// write: a figure that records its defaults while the page loads must neither replace the view someone
// shared nor turn a plain visit into a link that scrolls to that figure.
let acted = false;
for (const name of ["pointerdown", "keydown", "input", "change"]) {
  addEventListener(name, () => { acted = true; }, { capture: true, passive: true, once: true });
}

// Record the section's current view in the address bar without adding a history entry
// (every slider move would otherwise fill the Back button). Keys the call does not name are kept when
// the address already holds this section's view, so two figures of one section can share it; a key
// given as null or "" is removed.
export function shareState(section, state) {
  const current = parseFragment();
  if (!acted && !(current.section === section && [...current.params.keys()].length)) return;
  const params = current.section === section ? current.params : new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
    else params.delete(key);
  }
  const query = params.toString();
  history.replaceState(null, "", `#${section}${query ? `?${query}` : ""}`);
}

// After a shared link opens, bring its section into view (the browser cannot: "#s?x=1" is no element id).
export function scrollToSharedSection() {
  const { section, params } = parseFragment();
  if (![...params.keys()].length) return;
  document.getElementById(section)?.scrollIntoView();
}

// "Copy link": the address of this section's view, the state it wrote, or the section alone when the
// address bar holds another section's view. Where the clipboard is refused, the link is shown to copy.
export function copyLinkButton(section) {
  const status = el("span", { class: "copy-status", role: "status" });
  const button = el("button", { type: "button", class: "copy-link", "data-copy-link": section,
    text: say("copy_link") });
  button.addEventListener("click", async () => {
    const url = parseFragment().section === section ? location.href
      : `${location.href.split("#")[0]}#${section}`;
    try {
      await navigator.clipboard.writeText(url);
      status.textContent = say("link_copied");
    } catch {
      status.textContent = say("copy_this_link", { url });
    }
  });
  return el("span", { class: "copy-link-box" }, button, status);
}
