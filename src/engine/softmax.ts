// Masked softmax over attention score rows, in place. Rows come in groups of rows·G (one per KV head);
// row r·G + j of a group belongs to the query at key index first + r (relative to the first key in the
// buffer); it sees keys up to itself and, with a window
// W, no further back than W - 1 keys. Masked entries become exactly 0.
// With `invSums`, rows are left unnormalised (exponentials only) and 1/sum goes to invSums[row]: the
// caller scales the HD-wide output rows instead of the S-wide probability rows.

import { fastExp } from './fast-exp.js';

export function softmaxRows(
  x: Float32Array, rows: number, G: number, S: number, first: number, window: number | null,
  rowStart = 0, rowEnd = rows * G, invSums?: Float32Array,
): void {
  for (let row = rowStart; row < rowEnd; row++) {
    const r = ((row % (rows * G)) / G) | 0;
    const hi = first + r; // inclusive
    const lo = window === null ? 0 : Math.max(0, hi - window + 1);
    const base = row * S;
    let m0 = -Infinity, m1 = -Infinity;
    let j = base + lo;
    const end = base + hi + 1;
    for (; j + 1 < end; j += 2) {
      if (x[j] > m0) m0 = x[j];
      if (x[j + 1] > m1) m1 = x[j + 1];
    }
    if (j < end && x[j] > m0) m0 = x[j];
    const max = m0 > m1 ? m0 : m1;
    // Four partial sums keep the additions off one dependency chain.
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    j = base + lo;
    for (; j + 3 < end; j += 4) {
      const e0 = fastExp(x[j] - max);
      const e1 = fastExp(x[j + 1] - max);
      const e2 = fastExp(x[j + 2] - max);
      const e3 = fastExp(x[j + 3] - max);
      x[j] = e0;
      x[j + 1] = e1;
      x[j + 2] = e2;
      x[j + 3] = e3;
      s0 += e0;
      s1 += e1;
      s2 += e2;
      s3 += e3;
    }
    for (; j < end; j++) {
      const e = fastExp(x[j] - max);
      x[j] = e;
      s0 += e;
    }
    const inv = 1 / (s0 + s1 + s2 + s3);
    if (invSums) invSums[row] = inv;
    else for (let k = base + lo; k < end; k++) x[k] *= inv;
    if (lo > 0) x.fill(0, base, base + lo);
    if (hi + 1 < S) x.fill(0, base + hi + 1, base + S);
  }
}

// Training attention (see attention-train.ts): per-row visible ranges come from lo[r] .. first + r.

/**
 * Rows are (group, r, j) with rows·G per group; row r sees keys lo[r] .. first + r (inclusive).
 * Normalises in place and writes each row's log-sum-exp.
 */
export function trainSoftmaxRows(
  x: Float32Array, lo: Float32Array, lse: Float32Array, rows: number, G: number, S: number, first: number, start: number, end: number,
): void {
  for (let row = start; row < end; row++) {
    const r = ((row % (rows * G)) / G) | 0;
    const a = lo[r]!;
    const b = first + r;
    const base = row * S;
    let max = -Infinity;
    for (let j = a; j <= b; j++) if (x[base + j]! > max) max = x[base + j]!;
    let sum = 0;
    for (let j = a; j <= b; j++) {
      const e = fastExp(x[base + j]! - max);
      x[base + j] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let j = a; j <= b; j++) x[base + j]! *= inv;
    if (a > 0) x.fill(0, base, base + a);
    if (b + 1 < S) x.fill(0, base + b + 1, base + S);
    lse[row] = max + Math.log(sum);
  }
}

/** P = exp(S − lse) on visible keys (0 elsewhere), in place in s; dp becomes dS = P ∘ (dP − dsum). */
export function trainSoftmaxBackwardRows(
  s: Float32Array, dp: Float32Array, lo: Float32Array, lse: Float32Array, dsum: Float32Array,
  rows: number, G: number, S: number, first: number, start: number, end: number,
): void {
  for (let row = start; row < end; row++) {
    const r = ((row % (rows * G)) / G) | 0;
    const a = lo[r]!;
    const b = first + r;
    const base = row * S;
    const l = lse[row]!;
    const d = dsum[row]!;
    for (let j = a; j <= b; j++) {
      const p = fastExp(s[base + j]! - l);
      s[base + j] = p;
      dp[base + j] = p * (dp[base + j]! - d);
    }
    if (a > 0) {
      s.fill(0, base, base + a);
      dp.fill(0, base, base + a);
    }
    if (b + 1 < S) {
      s.fill(0, base + b + 1, base + S);
      dp.fill(0, base + b + 1, base + S);
    }
  }
}
