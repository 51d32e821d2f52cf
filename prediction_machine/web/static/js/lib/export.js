// "Save as PNG" (and "Save as SVG" for drawings) under every figure, for teachers' slides.
// Figures are found by scanning each section's live area whenever it changes, so sections need
// no code for this. The page's CSP allows data: images but not blob:, so every file is a data: URL.
// An SVG is saved with its computed styles written into it (the page's CSS does not travel with
// the file); its PNG is that SVG drawn onto a canvas at twice its size.
// A figure with nothing drawn yet says so with a data-empty attribute; its buttons wait until it has.
import { el } from "./dom.js";
import { words } from "./words.js";

const say = words("page");

const MIN_W = 140, MIN_H = 70; // smaller drawings are icons or thumbnails, not figures
const STYLE_PROPS = ["fill", "fill-opacity", "stroke", "stroke-width", "stroke-opacity", "stroke-dasharray",
  "opacity", "font-family", "font-size", "font-weight", "font-style", "text-anchor", "dominant-baseline",
  "visibility", "display", "color"];
const bars = new Map(); // figure element -> its button bar

function isFigure(node) {
  if (node.closest("button, summary, a, .figure-export, .tour-panel")) return false;
  if (node.parentElement?.closest("svg")) return false; // nested svg: its outer svg is the figure
  const r = node.getBoundingClientRect();
  return r.width >= MIN_W && r.height >= MIN_H;
}

function nameOf(node) {
  const section = node.closest("section[id]")?.id || "figure";
  const own = node.id || node.getAttribute("aria-label") || node.getAttribute("class")
    || node.tagName.toLowerCase();
  return `${section}-${own}`.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 60);
}

// The words a saved figure carries above it, so a slide needs no caption typed by hand: the heading of
// the panel it sits in (an inference stage's heading names the step it shows) and the figure's own label.
function titleOf(node) {
  const panel = node.closest(".stage, .panel, details, section");
  const heading = panel?.querySelector("h3, h4, h5, summary")?.textContent;
  const label = node.getAttribute("aria-label");
  return [heading?.replace(/\s+/g, " ").trim(), label].filter(Boolean).join(" — ");
}

// A figure's viewBox as [x, y, width, height], or its size on screen where it has none.
function box(svgNode) {
  const r = svgNode.getBoundingClientRect();
  const v = (svgNode.getAttribute("viewBox") || "").split(/[\s,]+/).map(Number);
  return v.length === 4 && v.every(Number.isFinite) ? v : [0, 0, Math.round(r.width), Math.round(r.height)];
}

const BAND = 28; // css pixels of title above a saved figure
const TITLE_FONT = "system-ui, sans-serif";

function download(url, filename) {
  const a = el("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
}

// A standalone copy of an SVG: sizes fixed, computed styles inlined, namespaces declared, its title
// written above it (as a <title> and as visible text), and a white background exactly the figure's size.
export function svgMarkup(svgNode) {
  const r = svgNode.getBoundingClientRect();
  const copy = svgNode.cloneNode(true);
  const from = [svgNode, ...svgNode.querySelectorAll("*")];
  const to = [copy, ...copy.querySelectorAll("*")];
  from.forEach((node, i) => {
    const style = getComputedStyle(node);
    const inline = STYLE_PROPS.map((p) => `${p}:${style.getPropertyValue(p)}`).join(";");
    to[i].style.cssText = inline; // CSSOM, which the CSP allows; it serializes as a style attribute
    to[i].removeAttribute("class");
  });
  const [x, y, w, h] = box(svgNode);
  const unit = h / Math.max(1, r.height); // viewBox units per css pixel
  const band = BAND * unit;
  copy.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  copy.setAttribute("width", String(Math.round(r.width)));
  copy.setAttribute("height", String(Math.round(r.height + BAND)));
  copy.setAttribute("viewBox", `${x} ${y - band} ${w} ${h + band}`);
  const make = (tag, attrs, text = "") => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, String(v)));
    node.textContent = text;
    return node;
  };
  const title = titleOf(svgNode);
  // A long title gets smaller letters rather than run past the figure (measured in the same font).
  const measure = document.createElement("canvas").getContext("2d");
  measure.font = `bold 14px ${TITLE_FONT}`;
  const wide = measure.measureText(title).width * unit; // in viewBox units, at 14 px
  const size = 14 * unit * Math.min(1, (0.95 * (w - 8 * unit)) / Math.max(wide, 1e-9));
  // slides are not always white; a saved figure should look as it did here
  copy.prepend(make("title", {}, title), make("rect", { x, y: y - band, width: w, height: h + band,
    fill: "#ffffff" }), make("text", { x: x + 4 * unit, y: y - band * 0.3, "font-size": size,
    "font-family": TITLE_FONT, "font-weight": "bold", fill: "#1a1a1a" }, title));
  return new XMLSerializer().serializeToString(copy);
}

const svgUrl = (markup) => `data:image/svg+xml;charset=utf-8,${encodeURIComponent(markup)}`;

// A white canvas with the figure's title written in a band above a w × h picture (`px`: pixels per css
// pixel). A title wider than the picture wraps onto more lines, and the picture is never cut.
function titled(node, w, h, px) {
  const out = document.createElement("canvas");
  let ctx = out.getContext("2d");
  const font = `bold ${Math.round(14 * px / 2)}px ${TITLE_FONT}`;
  ctx.font = font;
  const lines = [];
  for (const word of titleOf(node).split(" ")) {
    const last = lines.length ? `${lines[lines.length - 1]} ${word}` : word;
    if (lines.length && ctx.measureText(last).width <= w - 8 * px / 2) lines[lines.length - 1] = last;
    else lines.push(word);
  }
  const line = Math.round(BAND * px / 2), top = line * Math.max(1, lines.length);
  out.width = Math.max(w, 1);
  out.height = h + top;
  ctx = out.getContext("2d"); // resizing a canvas resets its state
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.fillStyle = "#1a1a1a";
  ctx.font = font;
  lines.forEach((text, i) => ctx.fillText(text, 4 * px / 2, line * (i + 0.7)));
  return { out, ctx, top };
}

// A canvas figure at (at least) twice its on-screen size, cells kept sharp, on white.
function canvasPng(canvas) {
  const r = canvas.getBoundingClientRect();
  const scale = Math.max(1, (2 * r.width) / canvas.width);
  const w = Math.round(canvas.width * scale), h = Math.round(canvas.height * scale);
  const { out, ctx, top } = titled(canvas, w, h, (2 * w) / Math.max(1, r.width));
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(canvas, 0, top, w, h);
  return out.toDataURL("image/png");
}

function svgPng(svgNode) {
  const r = svgNode.getBoundingClientRect();
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => { // the title is inside the SVG's markup, in its own band at the top
      const out = document.createElement("canvas");
      out.width = Math.round(r.width * 2);
      out.height = Math.round((r.height + BAND) * 2);
      out.getContext("2d").drawImage(img, 0, 0, out.width, out.height);
      resolve(out.toDataURL("image/png"));
    };
    img.onerror = () => reject(new Error(say("drawing_could_not_turned")));
    img.src = svgUrl(svgMarkup(svgNode));
  });
}

function barFor(node) {
  const base = nameOf(node);
  const taken = new Set([...bars.values()].map((bar) => bar.dataset.figure));
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base}-${i}`; // two "loss by step" charts get two file names
  const status = el("span", { class: "note", role: "status" });
  // Named when saved, not when the buttons appeared: a figure's label may still have said "loading" then.
  const fresh = (bar) => {
    const now = nameOf(node);
    const others = new Set([...bars.values()].filter((b) => b !== bar).map((b) => b.dataset.figure));
    if (!bar.dataset.figure.startsWith(now)) {
      name = now;
      for (let i = 2; others.has(name); i++) name = `${now}-${i}`;
      bar.dataset.figure = name;
    }
    return name;
  };
  const png = el("button", { type: "button", class: "save-png", text: say("save_png"), onclick: async () => {
    try {
      const file = `${fresh(png.parentElement)}.png`;
      download(node.tagName.toLowerCase() === "canvas" ? canvasPng(node) : await svgPng(node), file);
      status.textContent = "";
    } catch (error) {
      status.textContent = say("could_not_save_message", { message: error.message });
    }
  } });
  const buttons = [png];
  if (node.tagName.toLowerCase() === "svg") {
    buttons.push(el("button", { type: "button", class: "save-svg", text: say("save_svg"),
      onclick: (event) => download(svgUrl(svgMarkup(node)), `${fresh(event.target.parentElement)}.svg`) }));
  }
  return el("div", { class: "figure-export", "data-figure": name }, buttons, status);
}

function scan(root) {
  for (const [node, bar] of bars) {
    if (!node.isConnected) { bar.remove(); bars.delete(node); }
    bar.hidden = node.hasAttribute("data-empty");
  }
  for (const node of root.querySelectorAll("svg, canvas")) {
    if (bars.has(node) || !isFigure(node)) continue;
    const bar = barFor(node);
    bars.set(node, bar);
    bar.hidden = node.hasAttribute("data-empty");
    node.after(bar);
  }
}

// Watches every section's live area; rescans at most every 250 ms while it changes (a throttle,
// not a debounce: a figure that streams updates, like a training chart, still gets its buttons).
export function watchFigures(roots) {
  let timer = null;
  const later = () => { if (!timer) timer = setTimeout(() => { timer = null; roots.forEach(scan); }, 250); };
  const observer = new MutationObserver((records) => {
    if (records.every((r) => r.target.closest?.(".figure-export"))) return; // our own status text
    later();
  });
  for (const root of roots) {
    observer.observe(root, { childList: true, subtree: true, attributes: true, attributeFilter: ["hidden",
      "open", "data-empty"] });
  }
  addEventListener("resize", later);
  document.addEventListener("toggle", later, true);
  later();
}
