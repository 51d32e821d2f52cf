// The attention explorer's grid of every layer and head: one small map per head, for this sentence.
// Arrow keys move the selection; the grid keeps one Tab stop (the selected head).
import { clear, el } from "../lib/dom.js";
import { AVG } from "./attention-breakdown.js";
import { clampIndex, MASKED, mix, OKABE_ITO, onArrowKeys, paintHeatmap } from "../lib/draw.js";
import { words } from "../lib/words.js";

const say = words("attention");

// ---------------------------------------------------------------- the all-heads grid

export function renderGrid(s, select) {
  const d = s.data;
  const grid = s.ui.grid;
  clear(grid);
  const size = d.grid.size;
  grid.append(el("div", { class: "att-grid-row head", role: "row" },
    el("span", { class: "att-grid-label", role: "columnheader", text: say("layer_head") }),
    ...Array.from({ length: d.n_heads }, (_, h) => el("span", { class: "att-grid-label", role: "columnheader",
      text: String(h) }))));
  for (let l = 0; l < d.n_layers; l++) {
    const row = el("div", { class: "att-grid-row", role: "row" }, el("span", { class: "att-grid-label",
      role: "rowheader", text: String(l) }));
    for (let h = 0; h < d.n_heads; h++) {
      const c = el("canvas");
      paint(c, d.grid.maps[l][h]);
      const b = el("button", {
        type: "button", class: "att-cell", tabindex: "-1", role: "gridcell",
        "data-layer": String(l), "data-head": String(h),
        "aria-label": say("grid_cell", { layer: l, head: h }),
      }, c);
      b.addEventListener("click", () => select(s, l, h));
      onArrowKeys(b, (dl, dh) => moveInGrid(s, select, l + dl, h + dh));
      row.append(b);
    }
    grid.append(row);
  }
  s.ui.gridNote.textContent = say("small_square_heads_map",
    { value: d.grid.downsampled ? say("averaged_down_size_size", { size }) : "" });
}

// One head's map in the grid, a pixel per cell (CSS stretches it to the button).
function paint(canvas, m) {
  paintHeatmap(canvas, m.length, m.length, (i, k) => (k > i ? MASKED : mix(m[i][k], OKABE_ITO.blue)));
}

export function renderGridSelection(s) {
  for (const b of s.ui.grid.querySelectorAll(".att-cell")) {
    const l = Number(b.dataset.layer), h = Number(b.dataset.head);
    const on = (s.layer === AVG || s.layer === l) && (s.head === AVG || s.head === h);
    b.classList.toggle("selected", on);
    b.setAttribute("aria-selected", on ? "true" : "false");
  }
  const l = s.layer === AVG ? 0 : s.layer, h = s.head === AVG ? 0 : s.head;
  for (const b of s.ui.grid.querySelectorAll(".att-cell")) {
    b.tabIndex = Number(b.dataset.layer) === l && Number(b.dataset.head) === h ? 0 : -1;
  }
}

// Arrow keys in the grid: up and down change the layer, left and right the head.
function moveInGrid(s, select, l, h) {
  const nl = clampIndex(l, s.data.n_layers);
  const nh = clampIndex(h, s.data.n_heads);
  const next = s.ui.grid.querySelector(`.att-cell[data-layer="${nl}"][data-head="${nh}"]`);
  select(s, nl, nh).then(() => next.focus());
}
