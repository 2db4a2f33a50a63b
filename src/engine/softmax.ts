// Masked softmax over attention score rows, in place. Row r·G + j belongs to the query at key index
// first + r (relative to the first key in the buffer); it sees keys up to itself and, with a window
// W, no further back than W - 1 keys. Masked entries become exactly 0.

import { fastExp } from './fast-exp.js';

export function softmaxRows(
  x: Float32Array, rows: number, G: number, S: number, first: number, window: number | null,
  rowStart = 0, rowEnd = rows * G,
): void {
  for (let row = rowStart; row < rowEnd; row++) {
    const r = (row / G) | 0;
    const hi = first + r; // inclusive
    const lo = window === null ? 0 : Math.max(0, hi - window + 1);
    const base = row * S;
    let max = -Infinity;
    for (let j = lo; j <= hi; j++) if (x[base + j] > max) max = x[base + j];
    let sum = 0;
    for (let j = lo; j <= hi; j++) {
      const e = fastExp(x[base + j] - max);
      x[base + j] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let j = lo; j <= hi; j++) x[base + j] *= inv;
    if (lo > 0) x.fill(0, base, base + lo);
    if (hi + 1 < S) x.fill(0, base + hi + 1, base + S);
  }
}
