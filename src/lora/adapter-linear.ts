// The adapter-set linear layer (the S-LoRA / Punica idea): one shared base product for every row of the
// batch, then each run of rows that shares an adapter adds its own low-rank update,
//   out[rows] = inp[rows]·Wᵀ + s·(inp[rows]·Aᵀ)·Bᵀ,   s = alpha / r of that adapter,
// so one copy of the base weights serves any mix of adapters, unmerged; rows with no adapter pay
// nothing beyond the base product. The same layer trains: with a run's gradient buffers given, the
// backward accumulates dA and dB (+=) and adds the adapter's share to the input gradient.
// u, the rows' inp·Aᵀ, is kept by the caller for the backward: run k's rows start at u[start·R] with
// row stride r_k, where R is the largest rank in the batch.
// Dimension letters: N rows, IN/OC in and out features, r rank of one adapter, R the largest rank.

import { gemm } from '../engine/blas.js';
import { matmulBackward, matmulForward } from '../engine/matmul.js';
import { addInPlace } from '../engine/elementwise.js';
import { dropoutApply, dropoutKey } from '../engine/dropout.js';
import { LORA_TARGETS, type LoraAdapter, type LoraTarget } from './lora.js';

/** Rows [start, start + rows) that run `adapter` (its gradients accumulate into `grads` when given). */
export interface AdapterRun {
  start: number;
  rows: number;
  adapter: LoraAdapter;
  grads?: LoraAdapter;
}

/** Training-time dropout on the adapter's input, masks keyed by (seed, layer, target). */
export interface LoraDropout {
  seed: number;
  scratch: Float32Array; // (N, max IN)
}

/** The largest rank among the runs (0 when there are none). */
export function maxRank(runs: readonly AdapterRun[]): number {
  return runs.reduce((m, r) => Math.max(m, r.adapter.config.rank), 0);
}

function scaleOf(a: LoraAdapter): number {
  return a.config.alpha / a.config.rank;
}

/** The run's LoRA input: inp itself, or inp after this step's dropout mask (training only). */
function loraInput(inp: Float32Array, run: AdapterRun, IN: number, layer: number, target: LoraTarget, dropout: LoraDropout | null): Float32Array {
  const x = inp.subarray(run.start * IN);
  const p = run.adapter.config.dropout;
  if (p === 0 || !dropout) return x;
  const out = dropout.scratch.subarray(run.start * IN);
  dropoutApply(out, x, run.rows * IN, p, dropoutKey(dropout.seed, layer, LORA_TARGETS.indexOf(target)));
  return out;
}

/** out(N, OC) = inp·Wᵀ plus each run's s·(inp·Aᵀ)·Bᵀ; u (N·R) receives inp·Aᵀ. */
export function adapterLinearForward(
  out: Float32Array, inp: Float32Array, weight: Float32Array, N: number, IN: number, OC: number,
  runs: readonly AdapterRun[], layer: number, target: LoraTarget, u: Float32Array, R: number, dropout: LoraDropout | null,
): void {
  matmulForward(out, inp, weight, N, IN, OC);
  const g = gemm();
  for (const run of runs) {
    const pair = run.adapter.layers[layer]?.[target];
    if (!pair) continue;
    const r = run.adapter.config.rank;
    const x = loraInput(inp, run, IN, layer, target, dropout);
    const ur = u.subarray(run.start * R);
    const o = out.subarray(run.start * OC);
    if (run.rows === 1) {
      g.sgemv(false, r, IN, 1, pair.A, IN, x, 0, ur);
      g.sgemv(false, OC, r, scaleOf(run.adapter), pair.B, r, ur, 1, o);
    } else {
      g.sgemm(false, true, run.rows, r, IN, 1, x, IN, pair.A, IN, 0, ur, r);
      g.sgemm(false, true, run.rows, OC, r, scaleOf(run.adapter), ur, r, pair.B, r, 1, o, OC);
    }
  }
}

/**
 * din(N, IN) (=, or += when accumulate) and parameter gradients: dW += doutᵀ·inp when dweight is given,
 * and for each run with gradient buffers dB += s·doutᵀ·u, dA += duᵀ·x with du = s·dout·B.
 * du is scratch of N·R floats.
 */
export function adapterLinearBackward(
  din: Float32Array, dweight: Float32Array | null, dout: Float32Array, inp: Float32Array, weight: Float32Array,
  N: number, IN: number, OC: number, runs: readonly AdapterRun[], layer: number, target: LoraTarget,
  u: Float32Array, R: number, du: Float32Array, accumulate: boolean, dropout: LoraDropout | null,
): void {
  matmulBackward(din, dweight, dout, inp, weight, N, IN, OC, accumulate);
  const g = gemm();
  for (const run of runs) {
    const pair = run.adapter.layers[layer]?.[target];
    if (!pair) continue;
    const grads = run.grads?.layers[layer]?.[target];
    const r = run.adapter.config.rank;
    const s = scaleOf(run.adapter);
    const n = run.rows;
    const dO = dout.subarray(run.start * OC);
    const dI = din.subarray(run.start * IN);
    const dU = du.subarray(run.start * R);
    if (grads) g.sgemm(true, false, OC, r, n, s, dO, OC, u.subarray(run.start * R), r, 1, grads.B, r); // dB += s·doutᵀ·u
    g.sgemm(false, false, n, r, OC, s, dO, OC, pair.B, r, 0, dU, r); // du = s·dout·B
    const p = run.adapter.config.dropout;
    if (p === 0 || !dropout) {
      if (grads) g.sgemm(true, false, r, IN, n, 1, dU, r, inp.subarray(run.start * IN), IN, 1, grads.A, IN); // dA += duᵀ·inp
      g.sgemm(false, false, n, IN, r, 1, dU, r, pair.A, IN, 1, dI, IN); // din += du·A
      continue;
    }
    // With dropout: x = mask∘inp/(1−p), so dA += duᵀ·x and din += mask∘(du·A)/(1−p).
    const key = dropoutKey(dropout.seed, layer, LORA_TARGETS.indexOf(target));
    const scratch = dropout.scratch.subarray(run.start * IN);
    dropoutApply(scratch, inp.subarray(run.start * IN), n * IN, p, key);
    if (grads) g.sgemm(true, false, r, IN, n, 1, dU, r, scratch, IN, 1, grads.A, IN);
    g.sgemm(false, false, n, IN, r, 1, dU, r, pair.A, IN, 0, scratch, IN);
    dropoutApply(scratch, scratch, n * IN, p, key);
    addInPlace(dI, scratch, n * IN);
  }
}
