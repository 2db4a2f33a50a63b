// Causal scaled-dot-product attention with grouped KV heads and an optional sliding window, for a
// run of T new tokens at positions pos0 .. pos0+T-1 of one sequence whose keys and values (including
// the new tokens') are already in the cache.
// The query heads that share a KV head are handled together: their rows are gathered into one
// (rows·G, HD) matrix so each KV group costs two GEMMs per query block rather than two per head.
// Queries go in blocks so the score buffer stays small and the causal triangle above each block is
// never computed.
// Dimension letters: T new tokens, NH query heads, NKV key/value heads, G = NH/NKV, HD head dim, S keys.

import { gemm } from './blas.js';
import { runSplit } from './kernel-pool.js';
import { profileMark } from './profile.js';

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

export interface AttentionScratch {
  scores: Float32Array; // (BLOCK·G, S)
  qGroup: Float32Array; // (BLOCK·G, HD)
  outGroup: Float32Array; // (BLOCK·G, HD)
}

export function createAttentionScratch(maxKeys: number, NH: number, NKV: number, HD: number,
  alloc: (n: number) => Float32Array = (n) => new Float32Array(n)): AttentionScratch {
  const rows = ATTENTION_QUERY_BLOCK * (NH / NKV);
  return { scores: alloc(rows * maxKeys), qGroup: alloc(rows * HD), outGroup: alloc(rows * HD) };
}

export function attentionScratchFits(s: AttentionScratch, maxKeys: number, NH: number, NKV: number): boolean {
  return s.scores.length >= ATTENTION_QUERY_BLOCK * (NH / NKV) * maxKeys;
}

export function attentionForward(
  out: Float32Array, // (T, NH*HD)
  q: Float32Array, // (T, NH*HD)
  kCache: Float32Array, // (maxSeq, NKV*HD)
  vCache: Float32Array, // (maxSeq, NKV*HD)
  shape: AttentionShape,
  scratch: AttentionScratch,
): void {
  const { T, pos0, NH, NKV, HD, window, scale } = shape;
  const g = gemm();
  const qs = NH * HD;
  const kvs = NKV * HD;
  const G = NH / NKV;
  const { scores, qGroup, outGroup } = scratch;
  for (let t0 = 0; t0 < T; t0 += ATTENTION_QUERY_BLOCK) {
    const rows = Math.min(ATTENTION_QUERY_BLOCK, T - t0);
    const firstPos = pos0 + t0;
    const kStart = window === null ? 0 : Math.max(0, firstPos - window + 1);
    const S = firstPos + rows - kStart;
    for (let kvh = 0; kvh < NKV; kvh++) {
      // Row r·G + j of the group matrix is query head kvh·G + j of token t0 + r. With one token the
      // group's heads are already adjacent in q and out, so no gather is needed.
      const direct = rows === 1;
      const qg = direct ? q.subarray(t0 * qs + kvh * G * HD) : qGroup;
      const og = direct ? out.subarray(t0 * qs + kvh * G * HD) : outGroup;
      if (!direct) {
        for (let r = 0; r < rows; r++) {
          const src = (t0 + r) * qs + kvh * G * HD;
          qGroup.set(q.subarray(src, src + G * HD), r * G * HD);
        }
      }
      profileMark('att.gather');
      g.sgemm(false, true, rows * G, S, HD, scale, qg, HD, kCache.subarray(kStart * kvs + kvh * HD), kvs, 0, scores, S);
      profileMark('att.qk');
      runSplit('softmaxRows', rows * G, rows * G * S, [scores], [rows, G, S, firstPos - kStart, window ?? -1]);
      profileMark('att.softmax');
      g.sgemm(false, false, rows * G, HD, S, 1, scores, S, vCache.subarray(kStart * kvs + kvh * HD), kvs, 0, og, HD);
      profileMark('att.pv');
      if (!direct) {
        for (let r = 0; r < rows; r++) out.set(outGroup.subarray(r * G * HD, (r + 1) * G * HD), (t0 + r) * qs + kvh * G * HD);
      }
    }
  }
}
