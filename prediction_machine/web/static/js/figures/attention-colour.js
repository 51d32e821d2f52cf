// The attention explorer's colours and words: a chip's background from its weight, and a label colour
// that stays readable on it (WCAG 2.2 AA: contrast at least 4.5 : 1 for text).
import { css, mix, OKABE_ITO } from "../lib/draw.js";

const BLACK = [0, 0, 0];
const WHITE = [255, 255, 255];

// Relative luminance of an sRGB colour, as WCAG defines it (0 = black, 1 = white).
export function luminance([r, g, b]) {
  const lin = (c) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

// WCAG contrast ratio between two colours: (lighter + 0.05) / (darker + 0.05), from 1 to 21.
export function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

// The chip for weight w (0..1): blue of that strength over white, and black or white text, whichever
// contrasts more. One of the two always reaches at least 4.58 : 1, on any background.
export function chipColours(w) {
  const bg = mix(w, OKABE_ITO.blue);
  const text = contrast(bg, BLACK) >= contrast(bg, WHITE) ? BLACK : WHITE;
  return { background: css(bg), text: css(text), ratio: contrast(bg, text) };
}

