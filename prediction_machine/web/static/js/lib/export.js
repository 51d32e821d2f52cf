// "Save as PNG" (and "Save as SVG" for drawings) under every figure, for teachers' slides.
// Figures are found by scanning each section's live area whenever it changes, so sections need
// no code for this. The page's CSP allows data: images but not blob:, so every file is a data: URL.
// An SVG is saved with its computed styles written into it (the page's CSS does not travel with
// the file); its PNG is that SVG drawn onto a canvas at twice its size.
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

function download(url, filename) {
  const a = el("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
}

// A standalone copy of an SVG: sizes fixed, computed styles inlined, namespaces declared.
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
  copy.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  copy.setAttribute("width", String(Math.round(r.width)));
  copy.setAttribute("height", String(Math.round(r.height)));
  if (!copy.getAttribute("viewBox")) copy.setAttribute("viewBox",
    `0 0 ${Math.round(r.width)} ${Math.round(r.height)}`);
  const background = document.createElementNS("http://www.w3.org/2000/svg", "rect");
  Object.entries({ x: "-100000", y: "-100000", width: "200000", height: "200000", fill: "#ffffff" })
    .forEach(([k, v]) => background.setAttribute(k, v));
  copy.prepend(background); // slides are not always white; a saved figure should look as it did here
  return new XMLSerializer().serializeToString(copy);
}

const svgUrl = (markup) => `data:image/svg+xml;charset=utf-8,${encodeURIComponent(markup)}`;

// A canvas figure at (at least) twice its on-screen size, cells kept sharp, on white.
function canvasPng(canvas) {
  const r = canvas.getBoundingClientRect();
  const scale = Math.max(1, (2 * r.width) / canvas.width);
  const out = document.createElement("canvas");
  out.width = Math.round(canvas.width * scale);
  out.height = Math.round(canvas.height * scale);
  const ctx = out.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(canvas, 0, 0, out.width, out.height);
  return out.toDataURL("image/png");
}

function svgPng(svgNode) {
  const r = svgNode.getBoundingClientRect();
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => {
      const out = document.createElement("canvas");
      out.width = Math.round(r.width * 2);
      out.height = Math.round(r.height * 2);
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
  const png = el("button", { type: "button", class: "save-png", text: say("save_png"), onclick: async () => {
    try {
      download(node.tagName.toLowerCase() === "canvas" ? canvasPng(node) : await svgPng(node), `${name}.png`);
      status.textContent = "";
    } catch (error) {
      status.textContent = say("could_not_save_message", { message: error.message });
    }
  } });
  const buttons = [png];
  if (node.tagName.toLowerCase() === "svg") {
    buttons.push(el("button", { type: "button", class: "save-svg", text: say("save_svg"),
      onclick: () => download(svgUrl(svgMarkup(node)), `${name}.svg`) }));
  }
  return el("div", { class: "figure-export", "data-figure": name }, buttons, status);
}

function scan(root) {
  for (const [node, bar] of bars) {
    if (!node.isConnected) { bar.remove(); bars.delete(node); }
  }
  for (const node of root.querySelectorAll("svg, canvas")) {
    if (bars.has(node) || !isFigure(node)) continue;
    const bar = barFor(node);
    bars.set(node, bar);
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
      "open"] });
  }
  addEventListener("resize", later);
  document.addEventListener("toggle", later, true);
  later();
}
