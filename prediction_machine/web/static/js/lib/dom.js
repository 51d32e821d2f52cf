// Small DOM helpers. Model text is only ever set as text (textContent), never parsed as HTML.
import { get } from "./api.js";
import { words } from "./words.js";

const say = words("page");

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "style" && typeof value === "object") Object.assign(node.style, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// Invisible characters get visible stand-ins, so a token is never an empty-looking chip.
const NAMED = { " ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍" };
export function visibleText(text) {
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (NAMED[ch]) out += NAMED[ch];
    else if (code < 0x20 || code === 0x7f || (code >= 0x80 && code < 0xa0)) out += `⟨U+${hex(code)}⟩`;
    else if (/\p{Cf}|\p{Zl}|\p{Zp}/u.test(ch) || code === 0xa0) out += `⟨U+${hex(code)}⟩`;
    else out += ch;
  }
  return out;
}

function hex(code) {
  return code.toString(16).toUpperCase().padStart(4, "0");
}

// A token as an element: visible whitespace, bidi-isolated, with its id and bytes on hover.
export function tokenChip(token, { showId = true, extraClass = "" } = {}) {
  const label = token.partial ? token.text : visibleText(token.text);
  const bytes = token.bytes ? say("token_bytes", { bytes: token.bytes.match(/../g).join(" ") }) : "";
  const title = `id ${token.id}` + bytes +
    (token.partial ? say("part_multibyte_character") : "") + (token.special ? say("control_token") : "");
  return el(
    "span",
    { class: `token ${token.special ? "special" : ""} ${token.partial ? "partial" : ""} ${extraClass}`,
      title },
    el("bdi", { class: "token-text", text: label }),
    showId ? el("small", { class: "token-id", text: String(token.id) }) : null,
  );
}

// "View code": the real source of the Python function that computed a figure. The server serves only
// the names listed in prediction_machine/web/code_links.py; tests/test_code_links.py keeps the two in step.
export function codeLink(qualname, label = say("view_code")) {
  const pre = el("pre", { class: "code" });
  const details = el("details", { class: "code-link" }, el("summary", {}, `${label}: `, el("code",
    { text: qualname })), pre);
  details.addEventListener("toggle", async () => {
    if (!details.open || pre.dataset.loaded) return;
    pre.textContent = say("loading");
    try {
      const data = await get(`/api/source?name=${encodeURIComponent(qualname)}`);
      pre.dataset.file = data.file;
      pre.textContent = `# ${data.file}, line ${data.line}\n${data.source}`;
      pre.dataset.loaded = "1";
      // Where the server runs a batched twin of this code, one line says so (and which test checks it).
      if (data.note) details.append(el("p", { class: "note code-note", text: data.note }));
    } catch (error) {
      pre.textContent = say("could_not_load_source", { message: error.message });
    }
  });
  return details;
}

export function errorBox(message) {
  return el("p", { class: "error", role: "alert", text: message });
}

export const reducedMotion = () => window.matchMedia("(prefers-reduced-motion: reduce)").matches;

// Prose keeps its spaces and line breaks, but invisible format and control characters (U+202E
// right-to-left override, U+200B zero-width space...) become visible, so they cannot reorder or hide text.
export function visibleProse(text) {
  return text.replace(/[\p{Cf}\p{Zl}\p{Zp}]|(?![\n\t])\p{Cc}/gu, (ch) => `⟨U+${hex(ch.codePointAt(0))}⟩`);
}

// A model's answer as shown: one cut at its token budget (cut true) ends in "…"; its text stays as drawn.
export const shownAnswer = (text, cut) => `${visibleProse(text)}${cut ? " …" : ""}`;

// A busy button stays focusable: it says aria-disabled and ignores presses, instead of `disabled`.
// A disabled button drops the keyboard's focus to <body>, where the next Space scrolls the page
// instead of pressing the button again.
export function setBusy(button, busy) {
  if (!button.dataset.busyGuard) {
    button.dataset.busyGuard = "1";
    // Capturing listeners on the target run before the button's own click handlers.
    button.addEventListener("click", (event) => {
      if (button.getAttribute("aria-disabled") === "true") event.stopImmediatePropagation();
    }, true);
  }
  button.setAttribute("aria-disabled", String(busy));
}
