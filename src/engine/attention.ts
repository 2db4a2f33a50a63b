// Causal scaled-dot-product attention with grouped KV heads and an optional sliding window, for a
// run of T new tokens at positions pos0 .. pos0+T-1 of one sequence whose keys and values (including
// the new tokens') are already in the cache. Queries go in blocks so the score buffer stays small and
// the causal triangle above each block is never computed.
// Dimension letters: T new tokens, NH query heads, NKV key/value heads, HD head dim, S keys.

import { gemm } from './blas.js';
import { fastExp } from './fast-exp.js';

export const ATTENTION_QUERY_BLOCK = 64;

export interface AttentionShape {
  T: number;
  pos0: number;
  NH: number;
  NKV: number;
  HD: number;
  /** Tokens a query may see, itself included; null for full causal attention. */
  window: number | null;
  scale: number;
}

/** Size of the scratch buffer attentionForward needs for a sequence of up to maxKeys keys. */
export function attentionScratchSize(maxKeys: number): number {
  return ATTENTION_QUERY_BLOCK * maxKeys;
}

export function attentionForward(
  out: Float32Array, // (T, NH*HD)
  q: Float32Array, // (T, NH*HD)
  kCache: Float32Array, // (maxSeq, NKV*HD)
  vCache: Float32Array, // (maxSeq, NKV*HD)
  shape: AttentionShape,
  scores: Float32Array, // scratch, attentionScratchSize(pos0 + T)
): void {
  const { T, pos0, NH, NKV, HD, window, scale } = shape;
  const g = gemm();
  const qs = NH * HD;
  const kvs = NKV * HD;
  const group = NH / NKV;
  for (let t0 = 0; t0 < T; t0 += ATTENTION_QUERY_BLOCK) {
    const rows = Math.min(ATTENTION_QUERY_BLOCK, T - t0);
    const firstPos = pos0 + t0;
    const kStart = window === null ? 0 : Math.max(0, firstPos - window + 1);
    const kEnd = firstPos + rows; // exclusive
    const S = kEnd - kStart;
    for (let h = 0; h < NH; h++) {
      const kvh = (h / group) | 0;
      g.sgemm(false, true, rows, S, HD, scale,
        q.subarray(t0 * qs + h * HD), qs,
        kCache.subarray(kStart * kvs + kvh * HD), kvs,
        0, scores, S);
      for (let r = 0; r < rows; r++) {
        const p = firstPos + r;
        const lo = window === null ? 0 : Math.max(0, p - window + 1) - kStart;
        const hi = p - kStart; // inclusive
        softmaxRow(scores, r * S, lo, hi, S);
      }
      g.sgemm(false, false, rows, HD, S, 1,
        scores, S,
        vCache.subarray(kStart * kvs + kvh * HD), kvs,
        0, out.subarray(t0 * qs + h * HD), qs);
    }
  }
}

/** Softmax over row[lo..hi] (inclusive, relative to base); the rest of the S-wide row becomes 0. */
function softmaxRow(x: Float32Array, base: number, lo: number, hi: number, S: number): void {
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
