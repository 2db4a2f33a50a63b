// The output layer fused with cross-entropy, for training: only rows that carry a target are
// projected to the vocabulary, a chunk of rows at a time, so the (rows, V) logits never exist whole.
// Returns the summed loss, the number of targets and how many argmax predictions were right
// (Vertex's *_fraction_of_correct_next_step_preds), and writes gradients scaled by `gradScale`.
// Dimension letters: N tokens, C hidden, V vocabulary, R rows per chunk (sized so the (R, V) block stays
// within CE_CHUNK_BYTES).

import { gemm } from './blas.js';
import { fastExp } from './fast-exp.js';
import { runSplit, sharedFloat32 } from './kernel-pool.js';
import { profileMark } from './profile.js';

/**
 * Most bytes of logits a chunk holds (the (R, V) block); R is at most 256 and at least 16. Each chunk
 * streams the whole (V, C) output matrix through both of its products, so fewer, larger chunks
 * cost less: at Gemma 3's 262,144 tokens, 256-row chunks took about a third less CPU time than 64-row ones.
 */
export const CE_CHUNK_BYTES = 256 * 2 ** 20;

/** Rows per chunk for a vocabulary of V: as many as fit CE_CHUNK_BYTES, within 16..256. */
export function ceChunkRows(V: number): number {
  return Math.max(16, Math.min(256, Math.floor(CE_CHUNK_BYTES / (4 * V))));
}

export interface CrossEntropyResult {
  lossSum: number;
  count: number;
  correct: number;
}

export interface CrossEntropyScratch {
  rows: number; // R
  xg: Float32Array; // (R, C)
  logits: Float32Array; // (R, V), shared with the kernel pool
  dxg: Float32Array; // (R, C)
  rowTargets: Float32Array; // (R) target ids (exact in float32 below 2^24)
  rowLoss: Float32Array; // (R)
  rowCorrect: Float32Array; // (R) 1 when the argmax is the target
  rowScale: Float32Array; // (R) gradScale / Σ exp(logit − max)
}

export function createCrossEntropyScratch(C: number, V: number, alloc: (n: number) => Float32Array = sharedFloat32): CrossEntropyScratch {
  const R = ceChunkRows(V);
  return {
    rows: R, xg: alloc(R * C), logits: alloc(R * V), dxg: alloc(R * C),
    rowTargets: alloc(R), rowLoss: alloc(R), rowCorrect: alloc(R), rowScale: alloc(R),
  };
}

/**
 * Rows [start, end) of a (R, V) logits block: loss = logsumexp − logit[target] and whether the argmax
 * (the first largest logit) is the target; when wantGrad, the rows are replaced by exp(logit − max) and
 * rowScale gets gradScale / Σ exp, so the gradient gradScale·(softmax − onehot) is rowScale·block −
 * gradScale·onehot. The caller applies the row scales to the (R, C) products, not to the (R, V) block.
 */
export function crossEntropyRows(
  logits: Float32Array, rowTargets: Float32Array, rowLoss: Float32Array, rowCorrect: Float32Array, rowScale: Float32Array,
  V: number, gradScale: number, wantGrad: boolean, start: number, end: number,
): void {
  for (let r = start; r < end; r++) {
    const target = rowTargets[r]!;
    const base = r * V;
    const stop = base + V;
    // Four running maxima keep the comparisons off one dependency chain.
    let m0 = -Infinity, m1 = -Infinity, m2 = -Infinity, m3 = -Infinity;
    let i = base;
    for (; i + 3 < stop; i += 4) {
      const v0 = logits[i]!, v1 = logits[i + 1]!, v2 = logits[i + 2]!, v3 = logits[i + 3]!;
      if (v0 > m0) m0 = v0;
      if (v1 > m1) m1 = v1;
      if (v2 > m2) m2 = v2;
      if (v3 > m3) m3 = v3;
    }
    for (; i < stop; i++) if (logits[i]! > m0) m0 = logits[i]!;
    const max = Math.max(m0, m1, m2, m3);
    const logitTarget = logits[base + target]!;
    // The argmax is the target when no earlier logit reaches its value (ties go to the first index).
    let correct = logitTarget === max;
    for (let j = base; correct && j < base + target; j++) if (logits[j] === max) correct = false;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    i = base;
    if (wantGrad) {
      for (; i + 3 < stop; i += 4) {
        const e0 = fastExp(logits[i]! - max);
        const e1 = fastExp(logits[i + 1]! - max);
        const e2 = fastExp(logits[i + 2]! - max);
        const e3 = fastExp(logits[i + 3]! - max);
        logits[i] = e0;
        logits[i + 1] = e1;
        logits[i + 2] = e2;
        logits[i + 3] = e3;
        s0 += e0;
        s1 += e1;
        s2 += e2;
        s3 += e3;
      }
      for (; i < stop; i++) {
        const e = fastExp(logits[i]! - max);
        logits[i] = e;
        s0 += e;
      }
    } else {
      for (; i + 3 < stop; i += 4) {
        s0 += fastExp(logits[i]! - max);
        s1 += fastExp(logits[i + 1]! - max);
        s2 += fastExp(logits[i + 2]! - max);
        s3 += fastExp(logits[i + 3]! - max);
      }
      for (; i < stop; i++) s0 += fastExp(logits[i]! - max);
    }
    const sum = s0 + s1 + s2 + s3;
    rowLoss[r] = Math.log(sum) + max - logitTarget;
    rowCorrect[r] = correct ? 1 : 0;
    rowScale[r] = gradScale / sum;
  }
}

/**
 * x (N, C) final normed hidden states; W (V, C) output weights. When dx is given, rows with a target get
 * dx = gradScale·(softmax − onehot)·W and the others 0; dW (when given) accumulates gradScale·(softmax − onehot)ᵀ·x.
 */
export function crossEntropyForwardBackward(
  x: Float32Array, targets: Int32Array, W: Float32Array, N: number, C: number, V: number,
  dx: Float32Array | null, dW: Float32Array | null, gradScale: number, sc: CrossEntropyScratch,
): CrossEntropyResult {
  const g = gemm();
  const rowsWithTarget: number[] = [];
  for (let t = 0; t < N; t++) if (targets[t]! >= 0) rowsWithTarget.push(t);
  if (dx) dx.fill(0, 0, N * C);
  const wantGrad = dx !== null || dW !== null;
  let lossSum = 0;
  let correct = 0;
  for (let c0 = 0; c0 < rowsWithTarget.length; c0 += sc.rows) {
    const R = Math.min(sc.rows, rowsWithTarget.length - c0);
    for (let r = 0; r < R; r++) {
      const t = rowsWithTarget[c0 + r]!;
      sc.xg.set(x.subarray(t * C, (t + 1) * C), r * C);
      sc.rowTargets[r] = targets[t]!;
    }
    g.sgemm(false, true, R, V, C, 1, sc.xg, C, W, C, 0, sc.logits, V);
    profileMark('ce.logits');
    runSplit('crossEntropyRows', R, R * V, [sc.logits, sc.rowTargets, sc.rowLoss, sc.rowCorrect, sc.rowScale], [V, gradScale, wantGrad ? 1 : 0]);
    for (let r = 0; r < R; r++) {
      lossSum += sc.rowLoss[r]!;
      correct += sc.rowCorrect[r]!;
    }
    profileMark('ce.softmax');
    // The block holds exp(logit − max); row r's gradient is rowScale[r]·block − gradScale·onehot(target).
    if (dx) {
      g.sgemm(false, false, R, C, V, 1, sc.logits, V, W, C, 0, sc.dxg, C);
      for (let r = 0; r < R; r++) {
        const k = sc.rowScale[r]!;
        const out = rowsWithTarget[c0 + r]! * C;
        const w = sc.rowTargets[r]! * C;
        for (let i = 0; i < C; i++) dx[out + i] = k * sc.dxg[r * C + i]! - gradScale * W[w + i]!;
      }
      profileMark('ce.dx');
    }
    if (dW) {
      for (let r = 0; r < R; r++) {
        const k = sc.rowScale[r]!;
        for (let i = r * C; i < (r + 1) * C; i++) sc.dxg[i] = k * sc.xg[i]!;
      }
      g.sgemm(true, false, V, C, R, 1, sc.logits, V, sc.dxg, C, 1, dW, C);
      for (let r = 0; r < R; r++) {
        const w = sc.rowTargets[r]! * C;
        for (let i = 0; i < C; i++) dW[w + i]! -= gradScale * sc.xg[r * C + i]!;
      }
      profileMark('ce.dW');
    }
  }
  return { lossSum, count: rowsWithTarget.length, correct };
}
