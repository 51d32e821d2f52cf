// The relative weight change of every matrix, layers down and matrices across: ||W_after - W_before|| /
// ||W_before|| from /api/curriculum/inside or /diff-models. One colour scale for every map on the page
// (`top`, the largest cell of all of them), so a cold map beside a warm one reads as a smaller edit.
import { mix, OKABE_ITO } from "../lib/draw.js";
import { percent } from "../lib/format.js";
import { heatmap } from "./experiment-heatmap.js";

// change: one `changes` entry of the API. describe(layer, matrix, value) -> the cell's words.
export function weightChangeHeatmap(change, { id, title, top, describe, caption = "" }) {
  const scale = top > 0 ? top : 1;
  return heatmap({
    id, title, caption,
    rows: change.layers, cols: change.matrices.length,
    rowLabels: change.grid.map((_, layer) => String(layer)),
    colLabels: change.matrices.map((m) => m.replace("_norm", "·n")),
    // sqrt: a cell of 1/100 of the largest still shows a tint (1/10 of the colour), so small edits are seen
    colour: (r, c) => mix(Math.sqrt(change.grid[r][c] / scale), OKABE_ITO.blue),
    describe: (r, c) => describe(r, change.matrices[c], percent(change.grid[r][c], 1)),
    cell: { w: 34, h: 24 }, labelW: 28,
    data: (r, c) => ({ "data-change": change.grid[r][c] }),
  });
}
