// Each section's guide bar: a "Skip to" list of its main controls and figures, and a guided tour
// that walks its live controls one stop at a time (like Transformer Explainer's textbook mode).
// The tour is keyboard-operable: focus moves to each stop's heading; Tab reaches Next, "Use this
// control", Back and End; Enter activates; Escape ends it. Progress is remembered per browser.
//
// The stops are declared in two halves. The figure that creates a control marks it with a name,
// data-tour-stop="generate", next to the code that builds it. The section's content file
// (content/<language>/<section>.json) lists the tour in order: {stop, label, title, text}, and
// optionally `watch` (the named result to look at), `keep_clear` (a named element the learner uses
// at this stop besides the control, such as the prompt box above Generate) and `look_at` with `look`,
// a sentence filled with that named element's text when the stop opens ("Top row now: {text}.").
// `tour_skip` adds more names to the "Skip to" list. A stop whose control has not appeared yet still
// opens and says so.
import { el } from "./dom.js";
import { addQuestions } from "./questions.js";
import { catalog, fill, words } from "./words.js";

const say = words("page");

const KEY = (section) => `prediction-machine:tour:${section}`;
const FOCUSABLE = ["a[href]", "button:not([disabled])", "input:not([disabled])", "select:not([disabled])",
  "textarea:not([disabled])", "summary", "[tabindex]:not([tabindex='-1'])"].join(", ");

function load(section) {
  try { return JSON.parse(localStorage.getItem(KEY(section))) || {}; } catch { return {}; }
}
function save(section, value) {
  try { localStorage.setItem(KEY(section),
    JSON.stringify(value)); } catch { /* private mode: not remembered */ }
}

// The element a section's figure marked with this stop name, if it has appeared yet.
const named = (section, name) => (name ? section.querySelector(`[data-tour-stop="${name}"]`) : null);

// The stop's `look` sentence, filled from the named element's text (a table gives its top body row).
function lookAt(section, stop) {
  const node = named(section, stop.look_at);
  const text = (node?.querySelector("tbody tr") || node)?.textContent.replace(/\s+/g, " ").trim();
  return text ? fill(stop.look, { text, n: Number(text) }) : "";
}

const visible = (node) => Boolean(node && node.isConnected && node.getClientRects().length);

// Brings a control into view and gives it focus; an element that cannot take focus (a figure)
// gets tabindex=-1 first, so keyboard users land on it and Tab continues from there.
export function focusTarget(node) {
  const inner = node.matches(FOCUSABLE) ? node : [...node.querySelectorAll(FOCUSABLE)].find(visible);
  const goal = inner || node;
  if (!goal.matches(FOCUSABLE) && !goal.hasAttribute("tabindex")) goal.setAttribute("tabindex", "-1");
  goal.scrollIntoView({ block: "center", behavior: "instant" });
  goal.focus({ preventScroll: true });
  return goal;
}

// Adds the guide bar after the section's heading. Returns nothing; safe to call before the figure mounts.
export function addGuide(section) {
  const id = section.id;
  const stops = catalog(id).tour;
  if (!stops) return;
  const heading = section.querySelector(`#${id}-title`) || section.querySelector("h2, h3");
  const links = [...stops, ...(catalog(id).tour_skip || [])].map((stop) =>
    el("li", {}, el("a", { href: `#${id}`, "data-target": stop.stop, text: stop.label, onclick: (event) => {
      event.preventDefault(); // the fragment holds shared state (share.js); leave it alone
      const node = named(section, stop.stop);
      focusTarget(visible(node) ? node : section);
    } })));
  const button = el("button", { type: "button", class: "tour-start", "data-tour": id });
  const bar = el("nav", { class: "section-guide", "aria-label": say("skip_value",
    { value: heading ? heading.textContent.replace(/^\d+\.\s*/, "") : id }), tabindex: "-1" },
    el("span", { class: "guide-label", text: say("skip") }), el("ul", { class: "skip-list" }, links), button);
  const label = () => {
    const seen = load(id);
    button.textContent = seen.done ? say("take_tour_again")
      : seen.stop ? say("continue_tour_stop_value", { value: seen.stop + 1, length: stops.length })
        : say("take_guided_tour_length", { length: stops.length });
  };
  label();
  button.addEventListener("click", () => {
    const seen = load(id);
    // A finished tour ends at the section's questions (questions.js), where it has some.
    start(section, stops, seen.done ? 0 : seen.stop || 0, (done) => {
      label();
      if (done && questions) questions.open(); else button.focus();
    });
  });
  if (heading) heading.after(bar); else section.prepend(bar);
  const questions = addQuestions(section);
}

let active = null; // the open tour, if any: only one at a time

function start(section, stops, first, onEnd) {
  if (active) active.end();
  const id = section.id;
  const panel = el("div", { class: "tour-panel", role: "dialog", "aria-modal": "false",
    "aria-labelledby": "tour-title", "data-tour-panel": id });
  const count = el("p", { class: "tour-count" });
  const title = el("h4", { id: "tour-title", tabindex: "-1" });
  const body = el("p", { class: "tour-text" });
  const look = el("p", { class: "tour-look", "aria-live": "polite" });
  const next = el("button", { type: "button", class: "primary", "data-tour-action": "next" });
  const use = el("button", { type: "button", "data-tour-action": "use", text: say("use_control") });
  const back = el("button", { type: "button", "data-tour-action": "back", text: say("back") });
  const end = el("button", { type: "button", "data-tour-action": "end", text: say("end_tour") });
  panel.append(count, title, body, look, el("div", { class: "row tour-buttons" }, next, use, back, end),
    el("p", { class: "note tour-keys", text: say("keys_tab_moves_between") }));
  document.body.append(panel);
  let index = first;
  let marked = [];
  let used = false; // the learner went to this stop's control with "Use this control"

  const unmark = () => { marked.forEach(([node, cls]) => node.classList.remove(cls)); marked = []; };
  const mark = (node, cls) => { if (node) { node.classList.add(cls); marked.push([node, cls]); } };
  const target = () => named(section, stops[index].stop);
  // What the panel keeps clear of besides the control: the result to watch, and what else the learner uses.
  const others = (stop) => [named(section, stop.watch), named(section, stop.keep_clear)];

  function show() {
    unmark();
    used = false;
    const stop = stops[index];
    const node = target();
    const ready = visible(node);
    mark(ready ? node : null, "tour-target");
    mark(named(section, stop.watch), "tour-watch");
    mark(named(section, stop.keep_clear), "tour-clear");
    count.textContent = say("tour_section_stop_value", { value: index + 1, length: stops.length });
    title.textContent = stop.title;
    body.textContent = stop.text + (ready ? "" : say("control_appears_once_figure"));
    const said = stop.look ? lookAt(section, stop) : "";
    look.textContent = said;
    look.hidden = !said;
    next.textContent = say(index === stops.length - 1 ? "tour_finish" : "tour_next");
    back.disabled = index === 0;
    use.disabled = !ready;
    panel.dataset.stop = String(index);
    panel.dataset.stops = String(stops.length);
    save(id, { stop: index });
    place(ready ? node : section, others(stop));
    title.focus({ preventScroll: true });
  }

  // The panel never covers the control, nor the result the stop asks the learner to watch, nor what it
  // must keep clear: it goes beside them where the screen has room, else below them (all centred on screen
  // together). When they are too tall for that, it goes above them, and the page scrolls so the panel and
  // the top of the topmost show. The jump is instant (not the page's smooth scroll), so the panel lands
  // where they end up.
  function place(node, near, scroll = true) {
    const W = document.documentElement.clientWidth;
    const width = Math.min(400, W - 16);
    panel.style.width = `${width}px`;
    const height = panel.offsetHeight;
    const shown = [node, ...near.filter(visible)];
    const around = () => { // the box holding the control and what the panel keeps clear of, on screen
      const boxes = shown.map((n) => n.getBoundingClientRect());
      return { top: Math.min(...boxes.map((b) => b.top)), bottom: Math.max(...boxes.map((b) => b.bottom)),
        left: Math.min(...boxes.map((b) => b.left)), right: Math.max(...boxes.map((b) => b.right)) };
    };
    let u = around();
    const side = W - u.right - 20 >= width ? "right" : u.left - 20 >= width ? "left" : null;
    const fits = u.bottom - u.top + 12 + height <= innerHeight - 16;
    const above = !side && !fits && u.top + scrollY - height - 12 >= 8;
    if (scroll) {
      const tall = side ? u.bottom - u.top : fits ? u.bottom - u.top + 12 + height : innerHeight;
      const goal = above ? u.top - height - 20 : u.top - Math.max(8, (innerHeight - tall) / 2);
      window.scrollTo({ top: scrollY + goal, behavior: "instant" });
      u = around();
    }
    let left = Math.max(8, Math.min(u.left, W - width - 8)), top = u.bottom + 12;
    if (side) {
      left = side === "right" ? u.right + 12 : u.left - 12 - width;
      top = Math.min(Math.max(8, u.top), innerHeight - height - 8);
    } else if (above) top = u.top - height - 12;
    panel.style.left = `${left + scrollX}px`;
    panel.style.top = `${top + scrollY}px`;
  }

  function finish(done) {
    unmark();
    panel.remove();
    document.removeEventListener("keydown", keys, true);
    removeEventListener("resize", replace);
    active = null;
    save(id, done ? { done: true } : { done: true, skipped: index });
    onEnd(done);
  }

  // Escape ends the tour from anywhere; Tab past the highlighted control comes back to the panel.
  function keys(event) {
    if (event.key === "Escape") { event.preventDefault(); finish(false); return; }
    if (event.key !== "Tab" || event.shiftKey) return;
    const node = target();
    // A control that disables itself while busy (Generate) drops focus to the body: come back here too.
    if (document.activeElement === document.body && used) { event.preventDefault(); next.focus(); return; }
    if (!node || !node.contains(document.activeElement)) return;
    const inside = [...(node.matches(FOCUSABLE) ? [node] : []),
      ...node.querySelectorAll(FOCUSABLE)].filter(visible);
    if (inside.at(-1) === document.activeElement) { event.preventDefault(); next.focus(); }
  }
  document.addEventListener("keydown", keys, true);
  // A phone turned sideways keeps the panel by its control (without scrolling: a phone's address bar
  // resizes the window as the learner scrolls).
  const replace = () => {
    const node = target();
    place(visible(node) ? node : section, others(stops[index]), false);
  };
  addEventListener("resize", replace);

  next.addEventListener("click",
    () => { if (index === stops.length - 1) finish(true); else { index += 1; show(); } });
  back.addEventListener("click", () => { index = Math.max(0, index - 1); show(); });
  use.addEventListener("click",
    () => { const node = target(); if (visible(node)) { used = true; focusTarget(node); } });
  end.addEventListener("click", () => finish(false));
  active = { end: () => finish(false) };
  show();
}
