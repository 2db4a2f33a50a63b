// The output layer fused with cross-entropy, for training: only rows that carry a target are
// projected to the vocabulary, a chunk of rows at a time, so the (rows, V) logits never exist whole.
// Returns the summed loss, the number of targets and how many argmax predictions were right
// (Vertex's *_fraction_of_correct_next_step_preds), and writes gradients scaled by `gradScale`.
// Dimension letters: N tokens, C hidden, V vocabulary, R rows per chunk (sized so the (R, V) block stays
// within CE_CHUNK_BYTES).

import { gemm } from './blas.js';
import { fastExp } from './fast-exp.js';
import { runSplit, sharedFloat32 } from './kernel-pool.js';

/** Most bytes of logits a chunk holds (the (R, V) block); R is at most 256 and at least 16. */
export const CE_CHUNK_BYTES = 64 * 2 ** 20;

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
}

export function createCrossEntropyScratch(C: number, V: number, alloc: (n: number) => Float32Array = sharedFloat32): CrossEntropyScratch {
  const R = ceChunkRows(V);
  return {
    rows: R, xg: alloc(R * C), logits: alloc(R * V), dxg: alloc(R * C),
    rowTargets: alloc(R), rowLoss: alloc(R), rowCorrect: alloc(R),
  };
}

/**
 * Rows [start, end) of a (R, V) logits block: loss = logsumexp − logit[target], whether the argmax is the
 * target, and — when wantGrad — the rows replaced by gradScale·(softmax − onehot(target)).
 */
export function crossEntropyRows(
  logits: Float32Array, rowTargets: Float32Array, rowLoss: Float32Array, rowCorrect: Float32Array,
  V: number, gradScale: number, wantGrad: boolean, start: number, end: number,
): void {
  for (let r = start; r < end; r++) {
    const target = rowTargets[r]!;
    const base = r * V;
    let max = -Infinity;
    let best = 0;
    for (let i = 0; i < V; i++) {
      const v = logits[base + i]!;
      if (v > max) {
        max = v;
        best = i;
      }
    }
    const logitTarget = logits[base + target]!;
    // One pass: exponentials are kept in place when a gradient is wanted, then scaled to probabilities.
    let s0 = 0, s1 = 0;
    let i = 0;
    for (; i + 1 < V; i += 2) {
      const e0 = fastExp(logits[base + i]! - max);
      const e1 = fastExp(logits[base + i + 1]! - max);
      if (wantGrad) {
        logits[base + i] = e0;
        logits[base + i + 1] = e1;
      }
      s0 += e0;
      s1 += e1;
    }
    for (; i < V; i++) {
      const e = fastExp(logits[base + i]! - max);
      if (wantGrad) logits[base + i] = e;
      s0 += e;
    }
    const sum = s0 + s1;
    rowLoss[r] = Math.log(sum) + max - logitTarget;
    rowCorrect[r] = best === target ? 1 : 0;
    if (wantGrad) {
      const k = gradScale / sum;
      for (let j = base; j < base + V; j++) logits[j]! *= k;
      logits[base + target]! -= gradScale;
    }
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
  let lossSum = 0;
  let correct = 0;
  for (let c0 = 0; c0 < rowsWithTarget.length; c0 += sc.rows) {
    const R = Math.min(sc.rows, rowsWithTarget.length - c0);
    for (let r = 0; r < R; r++) {
      const t = rowsWithTarget[c0 + r]!;
      sc.xg.set(x.subarray(t * C, (t + 1) * C), r * C);
    }
    g.sgemm(false, true, R, V, C, 1, sc.xg, C, W, C, 0, sc.logits, V);
    for (let r = 0; r < R; r++) sc.rowTargets[r] = targets[rowsWithTarget[c0 + r]!]!;
    const wantGrad = dx !== null || dW !== null;
    runSplit('crossEntropyRows', R, R * V, [sc.logits, sc.rowTargets, sc.rowLoss, sc.rowCorrect], [V, gradScale, wantGrad ? 1 : 0]);
    for (let r = 0; r < R; r++) {
      lossSum += sc.rowLoss[r]!;
      correct += sc.rowCorrect[r]!;
    }
    if (dx) {
      g.sgemm(false, false, R, C, V, 1, sc.logits, V, W, C, 0, sc.dxg, C);
      for (let r = 0; r < R; r++) {
        const t = rowsWithTarget[c0 + r]!;
        dx.set(sc.dxg.subarray(r * C, (r + 1) * C), t * C);
      }
    }
    if (dW) g.sgemm(true, false, V, C, R, 1, sc.logits, V, sc.xg, C, 1, dW, C);
  }
  return { lossSum, count: rowsWithTarget.length, correct };
}
