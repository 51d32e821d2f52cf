// Number formats shared by the backprop figures.

// A value for a label: 4 decimals, or scientific notation when it is very large or very small.
export const fmt = (v) => (v === null || v === undefined ? "—" : Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : v.toFixed(4));

// A value to type into an input box: three decimals are plenty to read and to edit (0.738, not 0.738139).
export const rounded = (v) => String(Number(v.toFixed(3)));

// A short local derivative for an edge label: 3 significant digits.
export const short = (v) => (Number.isInteger(v) ? String(v) : Number(v.toPrecision(3)).toString());
