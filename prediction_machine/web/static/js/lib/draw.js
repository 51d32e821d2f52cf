// Drawing helpers shared by every figure: the colours, one heatmap painter, the arrow keys.

// ---------------------------------------------------------------- colours
// The Okabe-Ito palette, safe for colour-blind readers, as [R, G, B]. base.css names the same
// colours as CSS variables (--blue, --orange, ...) for everything styled in CSS.
export const OKABE_ITO = {
  orange: [230, 159, 0],
  sky: [86, 180, 233],
  green: [0, 158, 115],
  yellow: [240, 228, 66],
  blue: [0, 114, 178],
  vermillion: [213, 94, 0],
  purple: [204, 121, 167],
  black: [0, 0, 0],
};
// The page's neutrals (base.css: --ink, --muted, --paper, --line).
export const INK = [29, 29, 31];
export const MUTED = [91, 91, 102];
export const PAPER = [253, 252, 249];
export const LINE = [217, 213, 204];
export const WHITE = [255, 255, 255];
export const MASKED = [236, 233, 226]; // cells a figure leaves out, such as the causal mask's future

// Categorical colours, in a fixed order, for bars and series told apart by colour.
export const SERIES = ["blue", "orange", "green", "purple", "sky", "vermillion",
  "yellow"].map((n) => OKABE_ITO[n]);

export const css = ([r, g, b]) => `rgb(${r}, ${g}, ${b})`;

// t of the way from `from` to `to` (t in [0, 1]): mix(0.5, OKABE_ITO.blue) is a light blue.
export function mix(t, to, from = WHITE) {
  const a = Math.max(0, Math.min(1, t));
  return from.map((c, i) => Math.round(c + (to[i] - c) * a));
}

// Diverging: blue below zero, orange above, white at zero; |v| >= scale gets the full colour.
export function diverging(v, scale) {
  return mix(Math.abs(v) / scale, v < 0 ? OKABE_ITO.blue : OKABE_ITO.orange);
}

// ---------------------------------------------------------------- the heatmap painter
// Paints a rows × cols grid into a canvas, one colour per cell: colour(r, c) -> [R, G, B].
// Each cell is cellW × cellH pixels, and the canvas is resized to fit. CSS may then stretch it
// (image-rendering: pixelated keeps the cells sharp). Returns the 2-D context, to draw on top.
export function paintHeatmap(canvas, rows, cols, colour, { cellW = 1, cellH = 1 } = {}) {
  canvas.width = cols * cellW;
  canvas.height = rows * cellH;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(canvas.width, canvas.height);
  const px = image.data; // R, G, B, A for each pixel, row by row
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const [R, G, B] = colour(r, c);
      for (let y = r * cellH; y < (r + 1) * cellH; y++) {
        for (let x = c * cellW; x < (c + 1) * cellW; x++) {
          const o = 4 * (y * canvas.width + x);
          px[o] = R; px[o + 1] = G; px[o + 2] = B; px[o + 3] = 255;
        }
      }
    }
  }
  ctx.putImageData(image, 0, 0);
  return ctx;
}

// ---------------------------------------------------------------- keyboard
// Arrow keys as moves in a grid, [rows, columns]: ArrowUp is [-1, 0], ArrowRight is [0, 1].
const ARROWS = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };

// Calls onMove(dRow, dCol, event) for each arrow key pressed on `node`, which then does not
// scroll the page. Other keys pass through untouched.
export function onArrowKeys(node, onMove) {
  node.addEventListener("keydown", (event) => {
    const move = ARROWS[event.key];
    if (!move) return;
    event.preventDefault();
    onMove(move[0], move[1], event);
  });
}

// Keeps i within [0, n - 1].
export const clampIndex = (i, n) => Math.max(0, Math.min(n - 1, i));
