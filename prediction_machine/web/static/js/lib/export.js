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
// the panel it sits in (an inference stage's heading names the step it shows; a .figure-box is a panel of
// one figure) and the figure's own label.
function titleOf(node) {
  const panel = node.closest(".figure-box, .stage, .panel, details, section");
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

// A canvas holds only its cells; the words around it (row names, axis titles) are the page's HTML, which
// a saved PNG would lose. A figure that draws on a canvas names them here, and the PNG draws them around
// the picture. axes: { rows: [label per row], cols: [label per column], y: "title", x: "title",
// ends: [first, last] (the columns' first and last numbers, where the columns are too many to name) }.
const AXES = new WeakMap();
export function labelAxes(canvas, axes) { AXES.set(canvas, axes); }

// A canvas figure at twice its on-screen size (each direction scaled on its own, so a picture the page
// stretches keeps the shape it has on the page), cells kept sharp, on white, its axes labelled.
function canvasPng(canvas) {
  const r = canvas.getBoundingClientRect();
  const sx = Math.max(1, (2 * r.width) / canvas.width), sy = Math.max(1, (2 * r.height) / canvas.height);
  const w = Math.round(canvas.width * sx), h = Math.round(canvas.height * sy);
  const px = w / Math.max(1, r.width); // pixels of the file per css pixel
  const axes = AXES.get(canvas) || {};
  const measure = document.createElement("canvas").getContext("2d");
  const font = (size) => `${Math.round(size * px)}px ${TITLE_FONT}`;
  measure.font = font(11);
  const widest = (labels) => Math.max(0, ...(labels || []).map((t) => measure.measureText(t).width));
  const line = 16 * px;
  const left = Math.ceil((axes.rows ? widest(axes.rows) + 6 * px : 0) + (axes.y ? line : 0));
  const below = Math.ceil((axes.cols ? widest(axes.cols) + 6 * px : 0) + (axes.ends ? line : 0)
    + (axes.x ? line : 0));
  const { out, ctx, top } = titled(canvas, left + w, h + below, 2 * px);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(canvas, left, top, w, h);
  ctx.fillStyle = "#1a1a1a";
  const cell = (n, size) => size / Math.max(1, n);
  // Row and column names, each as large as its row or column allows (up to 11 css pixels).
  const sized = (n, size) => font(Math.min(11, (0.8 * cell(n, size)) / px));
  if (axes.rows) {
    ctx.font = sized(axes.rows.length, h);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    axes.rows.forEach((t, i) => ctx.fillText(t, left - 4 * px, top + (i + 0.5) * cell(axes.rows.length, h)));
  }
  if (axes.cols) {
    ctx.font = sized(axes.cols.length, w);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    axes.cols.forEach((t, j) => {
      ctx.save(); // each name runs down from under its column, turned a quarter
      ctx.translate(left + (j + 0.5) * cell(axes.cols.length, w), top + h + 4 * px);
      ctx.rotate(-Math.PI / 2);
      ctx.fillText(t, 0, 0);
      ctx.restore();
    });
  }
  ctx.font = font(11);
  ctx.textBaseline = "alphabetic";
  let y = top + h + (axes.cols ? widest(axes.cols) + 6 * px : 0);
  if (axes.ends) {
    y += line * 0.8;
    ctx.textAlign = "left";
    ctx.fillText(axes.ends[0], left, y);
    ctx.textAlign = "right";
    ctx.fillText(axes.ends[1], left + w, y);
    y += line * 0.2;
  }
  ctx.font = `bold ${font(12)}`;
  ctx.textAlign = "center";
  if (axes.x) ctx.fillText(axes.x, left + w / 2, y + line * 0.8);
  if (axes.y) {
    ctx.save();
    ctx.translate(line * 0.75, top + h / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(axes.y, 0, 0);
    ctx.restore();
  }
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
    // A figure framed with its axis titles (.figure-frame) gets its buttons under the frame.
    (node.closest(".figure-frame") || node).after(bar);
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
