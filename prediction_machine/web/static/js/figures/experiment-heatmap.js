// One heatmap drawing for the experiments: the head scan (layer × head), patching (layer × position)
// and the whole-generation lens (token × layer). It is an SVG, so "Save as SVG/PNG" keeps its title
// and labels. A heatmap whose cells can be picked (the scan) makes each cell a button with its own
// label; the grid keeps one Tab stop and the arrow keys move between cells (Enter or a click picks).
import { clampIndex, css, INK, MUTED, onArrowKeys } from "../lib/draw.js";
import { svg } from "../lib/dom.js";

const TITLE_H = 22;
const CAPTION_LINE_H = 14; // the caption's 11 px text, one line
const CAPTION_CHAR_W = 6; // about one 11 px character: how many fit on a line of the figure's width

// Words -> lines that fit `width` pixels, so a long caption wraps instead of running off the figure.
function wrap(text, width) {
  const most = Math.max(10, Math.floor(width / CAPTION_CHAR_W));
  const lines = [];
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const last = lines.length ? lines[lines.length - 1] : null;
    if (last !== null && (last + " " + word).length <= most) lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(word);
  }
  return lines;
}

// rows, cols: counts. rowLabels, colLabels: short texts. colour(r, c) -> [R, G, B].
// describe(r, c): the cell's words (a tooltip, and the button's label when pickable).
// mark(r, c): true where a cell gets an outline (the lens's deciding layer).
// cell: {w, h} in pixels; labelW: room for the row labels; colLabelH: room for the column labels,
// which are turned upright when they are words (tokens). onPick(r, c): makes the cells buttons.
// data(r, c): extra data-* attributes on each cell, which the tests read.
export function heatmap({ id, title, rows, cols, rowLabels, colLabels, colour, describe, mark = () => false,
  cell = { w: 28, h: 24 }, labelW = 44, colLabelH = 20, onPick = null, data = () => ({}), caption = "" }) {
  const top = TITLE_H + colLabelH;
  const W = labelW + cols * cell.w + 4;
  const captionLines = caption ? wrap(caption, W) : [];
  const H = top + rows * cell.h + 4 + captionLines.length * CAPTION_LINE_H + (caption ? 4 : 0);
  const root = svg("svg", { id, class: "xp-heatmap", viewBox: `0 0 ${W} ${H}`, width: W, height: H,
    role: onPick ? "group" : "img", "aria-label": title });
  root.append(svg("text", { x: 0, y: 15, class: "xp-fig-title", fill: css(INK), text: title }));
  const upright = colLabelH > 24;
  colLabels.forEach((text, c) => {
    const x = labelW + c * cell.w + cell.w / 2;
    root.append(upright
      ? svg("text", { x, y: top - 4, class: "xp-fig-label", fill: css(MUTED),
        transform: `rotate(-60 ${x} ${top - 4})`, text })
      : svg("text", { x, y: top - 5, class: "xp-fig-label", fill: css(MUTED), "text-anchor": "middle",
        text }));
  });
  rowLabels.forEach((text, r) => root.append(svg("text", { x: labelW - 4, y: top + r * cell.h + cell.h * 0.7,
    class: "xp-fig-label", fill: css(MUTED), "text-anchor": "end", text })));
  const cells = [];
  for (let r = 0; r < rows; r++) {
    cells.push([]);
    for (let c = 0; c < cols; c++) {
      const words = describe(r, c);
      const rect = svg("rect", { x: labelW + c * cell.w + 1, y: top + r * cell.h + 1, width: cell.w - 2,
        height: cell.h - 2, fill: css(colour(r, c)), class: `xp-cell${mark(r, c) ? " marked" : ""}`,
        "data-row": r, "data-col": c, ...data(r, c) });
      if (onPick) {
        Object.assign(rect.dataset, { pick: "1" });
        rect.setAttribute("role", "button");
        rect.setAttribute("tabindex", r === 0 && c === 0 ? "0" : "-1");
        rect.setAttribute("aria-label", words);
        rect.addEventListener("click", () => pick(r, c));
        rect.addEventListener("keydown", (e) => {
          if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(r, c); }
        });
        onArrowKeys(rect, (dr, dc) => focusCell(clampIndex(r + dr, rows), clampIndex(c + dc, cols)));
      } else {
        rect.append(svg("title", { text: words }));
      }
      cells[r].push(rect);
      root.append(rect);
    }
  }
  captionLines.forEach((text, i) => root.append(svg("text", { x: 0, class: "xp-fig-label", fill: css(MUTED),
    y: top + rows * cell.h + 4 + (i + 1) * CAPTION_LINE_H - 3, text })));

  // The grid keeps one Tab stop: the cell last moved to.
  function focusCell(r, c) {
    for (const row of cells) for (const rect of row) rect.setAttribute("tabindex", "-1");
    cells[r][c].setAttribute("tabindex", "0");
    cells[r][c].focus();
  }
  function pick(r, c) {
    for (const row of cells) for (const rect of row) rect.classList.remove("picked");
    cells[r][c].classList.add("picked");
    focusCell(r, c);
    onPick(r, c);
  }
  return { root, cells, focusCell };
}
