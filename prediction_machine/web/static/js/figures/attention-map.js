// The whole attention map of one head: row i is the word (or token) reading, column k the word it
// reads; darker = more weight, the grey triangle is the masked future. Its axes are named on the page
// (HTML beside and under the canvas) and in a saved PNG (export.js draws the rows' and columns' words).
import { el } from "../lib/dom.js";
import { css, LINE, mix, OKABE_ITO, paintHeatmap } from "../lib/draw.js";
import { labelAxes } from "../lib/export.js";
import { words } from "../lib/words.js";

const say = words("attention");
const SIZE = 260; // css pixels of the square map

// The canvas with its two axis titles around it; drawMap fills them in. The save buttons go under the
// frame (export.js), not inside its grid.
export function mapFigure(canvas) {
  const axis = (which) => el("span", { class: `att-axis att-axis-${which}` });
  return el("div", { class: "att-mapframe figure-frame" }, axis("y"), canvas, el("span"), axis("x"));
}

// m: the n × n weights; q: the selected row; labels: the n words; view and where: "word" and "layer 2,
// head 1" in the page's language, so the map's label (and a saved file's title) says which head it shows.
export function drawMap(canvas, m, q, { labels, view, where }) {
  const n = m.length;
  const cell = Math.max(2, Math.floor(SIZE / n));
  const g = paintHeatmap(canvas, n, n, (i, k) => (k > i ? LINE : mix(m[i][k], OKABE_ITO.blue)), { cellW: cell,
    cellH: cell });
  g.strokeStyle = css(OKABE_ITO.orange);
  g.lineWidth = 2;
  g.strokeRect(1, q * cell + 1, n * cell - 2, cell - 2);
  canvas.setAttribute("aria-label", say("attention_map_n_n", { n, value: q + 1, where }));
  const y = say("map_axis_rows", { view }), x = say("map_axis_columns", { view });
  const frame = canvas.closest(".att-mapframe");
  if (frame) {
    frame.querySelector(".att-axis-y").textContent = y;
    frame.querySelector(".att-axis-x").textContent = x;
  }
  labelAxes(canvas, { rows: labels, cols: labels, y, x });
}
