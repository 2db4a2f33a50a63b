// Buffers the decoder works in, one allocation per category as in llm.c: layer activations (one set per
// layer when a backward pass will read them, one set shared by all layers otherwise), the final
// hidden states, RoPE tables, attention and cross-entropy scratch, and activation gradients. Every
// buffer the kernel pool touches lives in shared memory.
// Dimension letters: N rows, C hidden, F intermediate, NH/NKV heads, HD head dim, Q = NH·HD, K = NKV·HD,
// R the largest LoRA rank the workspace serves.

import type { ModelConfig } from '../models/config.js';
import { LORA_TARGETS, type LoraTarget } from '../lora/lora.js';
import { sharedFloat32 } from '../engine/kernel-pool.js';
import { createTrainAttentionScratch, type TrainAttentionScratch } from '../engine/attention-train.js';
import { createAttentionScratch, type AttentionScratch } from '../engine/attention.js';
import { createCrossEntropyScratch, type CrossEntropyScratch } from '../engine/cross-entropy.js';

export interface LayerActs {
  // xn1, xn2, h, d (without sandwich norms) and q, k (with q/k norms) are one set shared by every layer:
  // the backward pass rebuilds them (Decoder's layerBackward) before reading them.
  xIn: Float32Array; // (N, C)
  xn1: Float32Array; // (N, C)
  rstd1: Float32Array; // (N)
  q0: Float32Array; // (N, Q) before q-norm (qkNorm)
  k0: Float32Array; // (N, K)
  rstdQ: Float32Array; // (N·NH)
  rstdK: Float32Array; // (N·NKV)
  q: Float32Array; // (N, Q) after norm and RoPE
  k: Float32Array; // (N, K)
  v: Float32Array; // (N, K)
  att: Float32Array; // (N, Q)
  lse: Float32Array; // (N, NH)
  o: Float32Array; // (N, C) attention output projection (before the sandwich post-norm)
  rstdPA: Float32Array; // (N)
  xMid: Float32Array; // (N, C)
  xn2: Float32Array; // (N, C)
  rstd2: Float32Array; // (N)
  gate: Float32Array; // (N, F)
  up: Float32Array; // (N, F)
  h: Float32Array; // (N, F)
  d: Float32Array; // (N, C) down projection (before the sandwich post-norm)
  rstdPF: Float32Array; // (N)
  u: Record<LoraTarget, Float32Array>; // (N, R) x·Aᵀ of each LoRA run
}

export interface WorkspaceOptions {
  /** Most rows a batch run in this workspace may have. */
  maxTokens: number;
  /** Keep every layer's activations (and allocate gradient scratch) for a backward pass. */
  backward?: boolean;
  /**
   * With backward: how many layers (the last ones) keep only their input and have the rest of their
   * activations recomputed, layer by layer, in the backward pass; they share one set of buffers.
   */
  recomputeLayers?: number;
  /** Largest LoRA rank of the adapters run here (0: none). */
  loraRank?: number;
  /** Room for LoRA dropout masks (training). */
  dropout?: boolean;
}

export interface Workspace {
  readonly maxTokens: number;
  readonly loraRank: number;
  readonly backward: boolean;
  /** Layers from this one on recompute their activations in the backward pass (numLayers: none). */
  readonly recomputeFrom: number;
  layers: LayerActs[];
  xOut: Float32Array; // (N, C) output of the last layer
  xf: Float32Array; // (N, C) after the final norm
  rstdF: Float32Array; // (N)
  cosG: Float32Array; // (N, HD/2)
  sinG: Float32Array;
  cosL: Float32Array; // (N, HD/2) sliding layers' RoPE (the global tables when they are the same)
  sinL: Float32Array;
  dC: Float32Array; // (N, C) post-norm outputs in the forward; gradient scratch in the backward
  dC2: Float32Array; // (N, C)
  dropped: Float32Array; // (N, max(C, F, Q)) LoRA input after dropout
  trainAttention: TrainAttentionScratch | null; // packed batches (no KV store)
  kvAttention: { scratch: AttentionScratch; maxKeys: number } | null; // batches against a KV store, grown on demand
  ce: CrossEntropyScratch;
  // activation gradients (backward only)
  dx: Float32Array; // (N, C) gradient w.r.t. the residual stream
  dAtt: Float32Array; // (N, Q)
  dQ: Float32Array; // (N, Q)
  dK: Float32Array; // (N, K)
  dV: Float32Array; // (N, K)
  dF: Float32Array; // (N, F)
  dF2: Float32Array; // (N, F)
  du: Float32Array; // (N, R)
}

export function createWorkspace(config: ModelConfig, opts: WorkspaceOptions, alloc: (n: number) => Float32Array = sharedFloat32): Workspace {
  const { hiddenSize: C, intermediateSize: F, numHeads: NH, numKvHeads: NKV, headDim: HD, numLayers: L } = config;
  const N = opts.maxTokens;
  const Q = NH * HD;
  const K = NKV * HD;
  const R = opts.loraRank ?? 0;
  const backward = opts.backward ?? false;
  const hasPost = config.sandwichNorms;
  const qk = config.qkNorm;
  const f = alloc;
  // Buffers a backward pass rebuilds cheaply from the kept ones (norms of xIn and xMid, the gated
  // activation of gate and up, q-/k-norm and RoPE of q0 and k0) or never reads (the down projection
  // without a sandwich norm): one set for all layers, so that more layers fit the budget with their
  // activations kept instead of recomputing the whole layer.
  const transient = {
    xn1: f(N * C), xn2: f(N * C), h: f(N * F),
    q: qk ? f(N * Q) : null, k: qk ? f(N * K) : null, d: hasPost ? null : f(N * C),
  };
  const makeActs = (): LayerActs => ({
    xIn: f(N * C), xn1: transient.xn1, rstd1: f(N),
    q0: f(qk ? N * Q : 0), k0: f(qk ? N * K : 0), rstdQ: f(qk ? N * NH : 0), rstdK: f(qk ? N * NKV : 0),
    q: transient.q ?? f(N * Q), k: transient.k ?? f(N * K), v: f(N * K), att: f(N * Q), lse: f(N * NH),
    o: f(hasPost ? N * C : 0), rstdPA: f(hasPost ? N : 0),
    xMid: f(N * C), xn2: transient.xn2, rstd2: f(N),
    gate: f(N * F), up: f(N * F), h: transient.h,
    d: transient.d ?? f(N * C), rstdPF: f(hasPost ? N : 0),
    u: Object.fromEntries(LORA_TARGETS.map((t) => [t, f(N * R)])) as Record<LoraTarget, Float32Array>,
  });
  const recomputed = backward ? Math.max(0, Math.min(L, opts.recomputeLayers ?? 0)) : 0;
  const recomputeFrom = L - recomputed;
  let layers: LayerActs[];
  if (!backward) {
    // Inference: nothing is read back, so every layer works in the same buffers.
    const one = makeActs();
    layers = Array.from({ length: L }, () => one);
  } else {
    // Layers that keep their activations have their own set; the recomputed ones keep their input
    // and share one set of the other activations.
    layers = Array.from({ length: recomputeFrom }, makeActs);
    if (recomputed > 0) {
      const shared = makeActs();
      layers.push(shared);
      for (let l = recomputeFrom + 1; l < L; l++) layers.push({ ...shared, xIn: f(N * C) });
    }
  }
  const g = (n: number) => f(backward ? n : 0);
  const localRope = config.layerTypes.includes('sliding_attention');
  const cosG = f((N * HD) / 2);
  const sinG = f((N * HD) / 2);
  return {
    maxTokens: N, loraRank: R, backward, recomputeFrom,
    layers,
    xOut: f(N * C), xf: f(N * C), rstdF: f(N),
    cosG, sinG,
    cosL: localRope ? f((N * HD) / 2) : cosG,
    sinL: localRope ? f((N * HD) / 2) : sinG,
    dC: f(N * C), dC2: f(N * C),
    dropped: f(opts.dropout ? N * Math.max(C, F, Q) : 0),
    trainAttention: null,
    kvAttention: null,
    ce: createCrossEntropyScratch(C, config.vocabSize, f),
    dx: g(N * C), dAtt: g(N * Q), dQ: g(N * Q), dK: g(N * K), dV: g(N * K), dF: g(N * F), dF2: g(N * F),
    du: g(N * Math.max(R, 1)),
  };
}

/**
 * Sizes (in floats) of every buffer a workspace with these options allocates, the packed-batch attention
 * scratch of a backward workspace included; nothing is allocated.
 */
export function workspaceAllocations(config: ModelConfig, opts: WorkspaceOptions): number[] {
  const sizes: number[] = [];
  const count = (n: number) => {
    sizes.push(n);
    return new Float32Array(0);
  };
  createWorkspace(config, opts, count);
  if (opts.backward) createTrainAttentionScratch(opts.maxTokens, config.numHeads, config.headDim, count);
  return sizes;
}

/** Packed-batch attention scratch, made on first use. */
export function trainAttentionScratch(ws: Workspace, config: ModelConfig): TrainAttentionScratch {
  ws.trainAttention ??= createTrainAttentionScratch(ws.maxTokens, config.numHeads, config.headDim, sharedFloat32);
  return ws.trainAttention;
}

/** KV-store attention scratch with room for `keys` keys per query row, grown when a longer sequence comes. */
export function kvAttentionScratch(ws: Workspace, config: ModelConfig, keys: number): AttentionScratch {
  if (!ws.kvAttention || ws.kvAttention.maxKeys < keys) {
    const maxKeys = Math.max(keys, 2 * (ws.kvAttention?.maxKeys ?? 0));
    ws.kvAttention = { scratch: createAttentionScratch(maxKeys, config.numHeads, config.numKvHeads, config.headDim, sharedFloat32), maxKeys };
  }
  return ws.kvAttention.scratch;
}
