// Attention for training: a packed batch of N tokens (several examples back to back, positions
// restarting per example), causal within each example and never across examples, optional sliding
// window, grouped KV heads. The forward saves one log-sum-exp per (token, head); the backward
// recomputes the probabilities from it (as FlashAttention does) instead of storing N² of them.
// Queries go in blocks of 64; all KV groups of a block share one element-wise kernel call so the
// kernel pool gets enough work.
// Dimension letters: N tokens, NH query heads, NKV KV heads, G = NH/NKV, HD head dim, S keys of a block.

import { gemm } from './blas.js';
import { runSplit } from './kernel-pool.js';
import { ATTENTION_QUERY_BLOCK } from './attention.js';

export interface TrainAttentionShape {
  N: number;
  NH: number;
  NKV: number;
  HD: number;
  window: number | null;
  scale: number;
  /** Per token, the index of the first token of its example. */
  segStart: Int32Array;
}

export interface TrainAttentionScratch {
  s: Float32Array; // (NH·BLOCK, S) scores → probabilities
  dp: Float32Array; // (NH·BLOCK, S) dP → dS
  qg: Float32Array; // (NH·BLOCK, HD) gathered queries
  og: Float32Array; // (NH·BLOCK, HD) gathered outputs / output gradients
  dog: Float32Array; // (NH·BLOCK, HD)
  lo: Float32Array; // (BLOCK) first visible key of each query row, relative to the block's first key
  lse: Float32Array; // (NH·BLOCK) of the current block
  dsum: Float32Array; // (NH·BLOCK) rowsum(dO ∘ O)
}

export function createTrainAttentionScratch(maxKeys: number, NH: number, HD: number, alloc: (n: number) => Float32Array): TrainAttentionScratch {
  const rows = ATTENTION_QUERY_BLOCK * NH;
  return {
    s: alloc(rows * maxKeys), dp: alloc(rows * maxKeys), qg: alloc(rows * HD), og: alloc(rows * HD), dog: alloc(rows * HD),
    lo: alloc(ATTENTION_QUERY_BLOCK), lse: alloc(rows), dsum: alloc(rows),
  };
}

interface Block { t0: number; rows: number; kStart: number; S: number }

function* blocks(shape: TrainAttentionShape, lo: Float32Array): Generator<Block> {
  const { N, window, segStart } = shape;
  for (let t0 = 0; t0 < N; t0 += ATTENTION_QUERY_BLOCK) {
    const rows = Math.min(ATTENTION_QUERY_BLOCK, N - t0);
    const first = (t: number) => Math.max(segStart[t]!, window === null ? 0 : t - window + 1);
    const kStart = first(t0);
    for (let r = 0; r < rows; r++) lo[r] = first(t0 + r) - kStart;
    yield { t0, rows, kStart, S: t0 + rows - kStart };
  }
}

/** Copies the rows of group kvh for tokens t0..t0+rows from src (N, NH·HD) into dst (rows·G, HD). */
function gather(dst: Float32Array, src: Float32Array, t0: number, rows: number, kvh: number, G: number, HD: number, stride: number): void {
  for (let r = 0; r < rows; r++) {
    const from = (t0 + r) * stride + kvh * G * HD;
    dst.set(src.subarray(from, from + G * HD), r * G * HD);
  }
}

function scatter(dst: Float32Array, src: Float32Array, t0: number, rows: number, kvh: number, G: number, HD: number, stride: number): void {
  for (let r = 0; r < rows; r++) dst.set(src.subarray(r * G * HD, (r + 1) * G * HD), (t0 + r) * stride + kvh * G * HD);
}

export function attentionTrainForward(
  out: Float32Array, // (N, NH·HD)
  lse: Float32Array, // (N, NH) log-sum-exp of each query row's scores
  q: Float32Array, // (N, NH·HD)
  k: Float32Array, // (N, NKV·HD)
  v: Float32Array, // (N, NKV·HD)
  shape: TrainAttentionShape,
  sc: TrainAttentionScratch,
): void {
  const { NH, NKV, HD, scale } = shape;
  const g = gemm();
  const G = NH / NKV;
  const qs = NH * HD;
  const kvs = NKV * HD;
  for (const { t0, rows, kStart, S } of blocks(shape, sc.lo)) {
    const gr = rows * G;
    for (let kvh = 0; kvh < NKV; kvh++) {
      const qg = sc.qg.subarray(kvh * gr * HD);
      gather(qg, q, t0, rows, kvh, G, HD, qs);
      g.sgemm(false, true, gr, S, HD, scale, qg, HD, k.subarray(kStart * kvs + kvh * HD), kvs, 0, sc.s.subarray(kvh * gr * S), S);
    }
    runSplit('trainSoftmax', NKV * gr, NKV * gr * S, [sc.s, sc.lo, sc.lse], [rows, G, S, t0 - kStart]);
    for (let kvh = 0; kvh < NKV; kvh++) {
      const og = sc.og.subarray(kvh * gr * HD);
      g.sgemm(false, false, gr, HD, S, 1, sc.s.subarray(kvh * gr * S), S, v.subarray(kStart * kvs + kvh * HD), kvs, 0, og, HD);
      scatter(out, og, t0, rows, kvh, G, HD, qs);
      // lse rows are (kvh, r, j) here; stored per token as (t, head).
      for (let r = 0; r < rows; r++) for (let j = 0; j < G; j++) lse[(t0 + r) * NH + kvh * G + j] = sc.lse[kvh * gr + r * G + j]!;
    }
  }
}

/**
 * dq is assigned; dk and dv are assigned too (zeroed here first, then accumulated over query blocks).
 */
export function attentionTrainBackward(
  dq: Float32Array, dk: Float32Array, dv: Float32Array, // (N, NH·HD), (N, NKV·HD), (N, NKV·HD)
  dout: Float32Array, // (N, NH·HD)
  out: Float32Array, lse: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array,
  shape: TrainAttentionShape,
  sc: TrainAttentionScratch,
): void {
  const { N, NH, NKV, HD, scale } = shape;
  const g = gemm();
  const G = NH / NKV;
  const qs = NH * HD;
  const kvs = NKV * HD;
  dk.fill(0, 0, N * kvs);
  dv.fill(0, 0, N * kvs);
  for (const { t0, rows, kStart, S } of blocks(shape, sc.lo)) {
    const gr = rows * G;
    for (let kvh = 0; kvh < NKV; kvh++) {
      const qg = sc.qg.subarray(kvh * gr * HD);
      const og = sc.og.subarray(kvh * gr * HD);
      const dog = sc.dog.subarray(kvh * gr * HD);
      gather(qg, q, t0, rows, kvh, G, HD, qs);
      gather(og, out, t0, rows, kvh, G, HD, qs);
      gather(dog, dout, t0, rows, kvh, G, HD, qs);
      for (let r = 0; r < rows; r++) for (let j = 0; j < G; j++) sc.lse[kvh * gr + r * G + j] = lse[(t0 + r) * NH + kvh * G + j]!;
      for (let row = 0; row < gr; row++) {
        let d = 0;
        for (let i = row * HD; i < (row + 1) * HD; i++) d += dog[i]! * og[i]!;
        sc.dsum[kvh * gr + row] = d;
      }
      g.sgemm(false, true, gr, S, HD, scale, qg, HD, k.subarray(kStart * kvs + kvh * HD), kvs, 0, sc.s.subarray(kvh * gr * S), S);
      g.sgemm(false, true, gr, S, HD, 1, dog, HD, v.subarray(kStart * kvs + kvh * HD), kvs, 0, sc.dp.subarray(kvh * gr * S), S);
    }
    // P from the saved log-sum-exp, then dS = P ∘ (dP − rowsum(dO ∘ O)).
    runSplit('trainSoftmaxBackward', NKV * gr, NKV * gr * S, [sc.s, sc.dp, sc.lo, sc.lse, sc.dsum], [rows, G, S, t0 - kStart]);
    for (let kvh = 0; kvh < NKV; kvh++) {
      const p = sc.s.subarray(kvh * gr * S);
      const ds = sc.dp.subarray(kvh * gr * S);
      const qg = sc.qg.subarray(kvh * gr * HD);
      const dqg = sc.og.subarray(kvh * gr * HD); // og is no longer needed: reuse for dQ
      g.sgemm(false, false, gr, HD, S, scale, ds, S, k.subarray(kStart * kvs + kvh * HD), kvs, 0, dqg, HD);
      scatter(dq, dqg, t0, rows, kvh, G, HD, qs);
      g.sgemm(true, false, S, HD, gr, scale, ds, S, qg, HD, 1, dk.subarray(kStart * kvs + kvh * HD), kvs);
      g.sgemm(true, false, S, HD, gr, 1, p, S, sc.dog.subarray(kvh * gr * HD), HD, 1, dv.subarray(kStart * kvs + kvh * HD), kvs);
    }
  }
}
