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
  scores: Float32Array; // (NKV, BLOCK·G, S)
  qGroup: Float32Array; // (NKV, BLOCK·G, HD)
  outGroup: Float32Array; // (NKV, BLOCK·G, HD)
  invSums: Float32Array; // (NKV, BLOCK·G) 1 / softmax denominators
}

export function createAttentionScratch(maxKeys: number, NH: number, _NKV: number, HD: number,
  alloc: (n: number) => Float32Array = (n) => new Float32Array(n)): AttentionScratch {
  const rows = ATTENTION_QUERY_BLOCK * NH; // all groups' rows of one block
  return { scores: alloc(rows * maxKeys), qGroup: alloc(rows * HD), outGroup: alloc(rows * HD), invSums: alloc(rows) };
}

export function attentionScratchFits(s: AttentionScratch, maxKeys: number, NH: number, _NKV: number): boolean {
  return s.scores.length >= ATTENTION_QUERY_BLOCK * NH * maxKeys;
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
  const { scores, qGroup, outGroup, invSums } = scratch;
  for (let t0 = 0; t0 < T; t0 += ATTENTION_QUERY_BLOCK) {
    const rows = Math.min(ATTENTION_QUERY_BLOCK, T - t0);
    const firstPos = pos0 + t0;
    const kStart = window === null ? 0 : Math.max(0, firstPos - window + 1);
    const S = firstPos + rows - kStart;
    const groupRows = rows * G;
    // Row r·G + j of group kvh's matrix is query head kvh·G + j of token t0 + r. With one token the
    // group's heads are already adjacent in q and out, so no gather is needed.
    const direct = rows === 1;
    for (let kvh = 0; kvh < NKV; kvh++) {
      const qg = direct ? q.subarray(t0 * qs + kvh * G * HD) : qGroup.subarray(kvh * groupRows * HD);
      if (!direct) {
        for (let r = 0; r < rows; r++) {
          const src = (t0 + r) * qs + kvh * G * HD;
          qg.set(q.subarray(src, src + G * HD), r * G * HD);
        }
      }
      g.sgemm(false, true, groupRows, S, HD, scale, qg, HD, kCache.subarray(kStart * kvs + kvh * HD), kvs,
        0, scores.subarray(kvh * groupRows * S), S);
    }
    profileMark('att.qk');
    // One softmax over every group's rows: enough work per call for the kernel pool to pay.
    runSplit('softmaxRows', NKV * groupRows, NKV * groupRows * S, [scores, invSums], [rows, G, S, firstPos - kStart, window ?? -1]);
    profileMark('att.softmax');
    for (let kvh = 0; kvh < NKV; kvh++) {
      const og = direct ? out.subarray(t0 * qs + kvh * G * HD) : outGroup.subarray(kvh * groupRows * HD);
      g.sgemm(false, false, groupRows, HD, S, 1, scores.subarray(kvh * groupRows * S), S,
        vCache.subarray(kStart * kvs + kvh * HD), kvs, 0, og, HD);
      for (let row = 0; row < groupRows; row++) {
        const inv = invSums[kvh * groupRows + row];
        for (let d = row * HD, e = d + HD; d < e; d++) og[d] *= inv;
      }
      if (!direct) {
        for (let r = 0; r < rows; r++) out.set(og.subarray(r * G * HD, (r + 1) * G * HD), (t0 + r) * qs + kvh * G * HD);
      }
    }
    profileMark('att.pv');
  }
}
