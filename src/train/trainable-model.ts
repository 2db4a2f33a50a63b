// Forward and backward passes of the transformer over a packed training batch, in the manner of
// llm.c: explicit ops, each with its backward, no autograd tape. The base weights are frozen; LoRA pairs
// (when given) and, in full fine-tuning, every base weight receive gradients.
// Conventions: parameter gradients accumulate (+=) across calls until the caller zeroes them;
// activation gradients are assigned. Activations of every layer are kept for the backward pass, or,
// with `recompute`, only each layer's input, the rest being recomputed layer by layer.
// Dimension letters: N tokens in the batch, C hidden, F intermediate, NH/NKV heads, HD head dim,
// Q = NH·HD, K = NKV·HD, V vocab, r LoRA rank.

import type { ModelConfig } from '../models/config.js';
import type { LayerWeights, ModelWeights } from '../models/weights.js';
import { LORA_TARGETS, type LoraAdapter, type LoraPair, type LoraTarget } from '../lora/lora.js';
import { gemm } from '../engine/blas.js';
import { matmulBackward, matmulForward } from '../engine/matmul.js';
import { rmsnormBackwardRows, rmsnormRows } from '../engine/rmsnorm.js';
import { ropeBackward, ropeForward, ropeInverseFrequencies, ropeTables } from '../engine/rope.js';
import { attentionTrainBackward, attentionTrainForward, createTrainAttentionScratch, type TrainAttentionScratch } from '../engine/attention-train.js';
import { createCrossEntropyScratch, crossEntropyForwardBackward, type CrossEntropyResult, type CrossEntropyScratch } from '../engine/cross-entropy.js';
import { runSplit, sharedCopy, sharedFloat32 } from '../engine/kernel-pool.js';
import { addInPlace } from '../engine/elementwise.js';
import { dropoutApply, dropoutKey } from '../engine/dropout.js';
import { profileMark, profileStart } from '../engine/profile.js';

/** A packed batch: several examples back to back, as one sequence of N tokens. */
export interface TrainBatch {
  N: number;
  tokens: Int32Array; // (N)
  targets: Int32Array; // (N) next token where it carries loss, else -1
  positions: Int32Array; // (N) restart at 0 per example
  segStart: Int32Array; // (N) index of the first token of each token's example
}

interface LayerActs {
  xIn: Float32Array; // (N, C)
  xn1: Float32Array; // (N, C)
  rstd1: Float32Array; // (N)
  q0: Float32Array; // (N, Q) before q-norm (Qwen3/Gemma3)
  k0: Float32Array; // (N, K)
  rstdQ: Float32Array; // (N·NH)
  rstdK: Float32Array; // (N·NKV)
  q: Float32Array; // (N, Q) after norm and RoPE
  k: Float32Array; // (N, K)
  v: Float32Array; // (N, K)
  att: Float32Array; // (N, Q)
  lse: Float32Array; // (N, NH)
  o: Float32Array; // (N, C) attention output projection (before Gemma's post-norm)
  rstdPA: Float32Array; // (N)
  xMid: Float32Array; // (N, C)
  xn2: Float32Array; // (N, C)
  rstd2: Float32Array; // (N)
  gate: Float32Array; // (N, F)
  up: Float32Array; // (N, F)
  h: Float32Array; // (N, F)
  d: Float32Array; // (N, C) down projection (before Gemma's post-norm)
  rstdPF: Float32Array; // (N)
  u: Partial<Record<LoraTarget, Float32Array>>; // (N, r) x·Aᵀ of each LoRA pair
}

/** Gradient buffers of the same shapes as the weights they belong to (full fine-tuning). */
export type WeightGrads = ModelWeights;

export interface TrainableModelOptions {
  /** Largest batch (tokens) this model will see. */
  maxTokens: number;
  lora?: LoraAdapter;
  /** Gradients of the LoRA pairs, same structure as `lora`. */
  loraGrads?: LoraAdapter;
  /** Gradients of every base weight (full fine-tuning). */
  weightGrads?: WeightGrads;
  recompute?: boolean;
}

const TARGET_OF: Record<'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down', LoraTarget> = {
  q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj',
};

export class TrainableModel {
  private readonly acts: LayerActs[];
  private readonly xOut: Float32Array; // (N, C) output of the last layer
  private readonly xf: Float32Array; // (N, C) final norm
  private readonly rstdF: Float32Array;
  // activation-gradient scratch
  private readonly dx: Float32Array; // (N, C) gradient w.r.t. the residual stream
  private readonly dC: Float32Array; // (N, C)
  private readonly dC2: Float32Array; // (N, C)
  private readonly dAtt: Float32Array; // (N, Q)
  private readonly dQ: Float32Array; // (N, Q)
  private readonly dK: Float32Array; // (N, K)
  private readonly dV: Float32Array; // (N, K)
  private readonly dF: Float32Array; // (N, F)
  private readonly dF2: Float32Array; // (N, F)
  private readonly du: Float32Array; // (N, r)
  private readonly dropped: Float32Array; // (N, max(C, F, Q)) LoRA input after dropout, or du·A
  /** Seed of the current step's dropout masks; null outside forwardBackward (evaluation has no dropout). */
  private dropoutSeed: number | null = null;
  private readonly cosG: Float32Array;
  private readonly sinG: Float32Array;
  private readonly cosL: Float32Array;
  private readonly sinL: Float32Array;
  private readonly invFreqGlobal: Float32Array;
  private readonly invFreqLocal: Float32Array | null;
  private readonly attScratch: TrainAttentionScratch;
  private readonly ceScratch: CrossEntropyScratch;
  private readonly sharedNorms = new Map<Float32Array, Float32Array>();
  private readonly scale: number;

  constructor(readonly config: ModelConfig, readonly weights: ModelWeights, readonly opts: TrainableModelOptions) {
    const { hiddenSize: C, intermediateSize: F, numHeads: NH, numKvHeads: NKV, headDim: HD, numLayers: L } = config;
    const N = opts.maxTokens;
    const Q = NH * HD;
    const K = NKV * HD;
    const r = opts.lora?.config.rank ?? 0;
    const hasPost = config.sandwichNorms;
    const qk = config.qkNorm;
    const makeActs = (): LayerActs => ({
      xIn: sharedFloat32(N * C), xn1: sharedFloat32(N * C), rstd1: sharedFloat32(N),
      q0: sharedFloat32(qk ? N * Q : 0), k0: sharedFloat32(qk ? N * K : 0), rstdQ: sharedFloat32(qk ? N * NH : 0), rstdK: sharedFloat32(qk ? N * NKV : 0),
      q: sharedFloat32(N * Q), k: sharedFloat32(N * K), v: sharedFloat32(N * K), att: sharedFloat32(N * Q), lse: sharedFloat32(N * NH),
      o: sharedFloat32(hasPost ? N * C : 0), rstdPA: sharedFloat32(hasPost ? N : 0),
      xMid: sharedFloat32(N * C), xn2: sharedFloat32(N * C), rstd2: sharedFloat32(N),
      gate: sharedFloat32(N * F), up: sharedFloat32(N * F), h: sharedFloat32(N * F),
      d: sharedFloat32(N * C), rstdPF: sharedFloat32(hasPost ? N : 0),
      u: Object.fromEntries((opts.lora?.config.targets ?? []).map((t) => [t, sharedFloat32(N * r)])),
    });
    // With recompute, layer inputs are kept per layer and one set of the other activations is reused.
    if (opts.recompute) {
      const shared = makeActs();
      this.acts = Array.from({ length: L }, () => ({ ...shared, xIn: sharedFloat32(N * C) }));
    } else {
      this.acts = Array.from({ length: L }, makeActs);
    }
    this.xOut = sharedFloat32(N * C);
    this.xf = sharedFloat32(N * C);
    this.rstdF = sharedFloat32(N);
    this.dx = sharedFloat32(N * C);
    this.dC = sharedFloat32(N * C);
    this.dC2 = sharedFloat32(N * C);
    this.dAtt = sharedFloat32(N * Q);
    this.dQ = sharedFloat32(N * Q);
    this.dK = sharedFloat32(N * K);
    this.dV = sharedFloat32(N * K);
    this.dF = sharedFloat32(N * F);
    this.dF2 = sharedFloat32(N * F);
    this.du = sharedFloat32(N * Math.max(r, 1));
    this.dropped = new Float32Array(opts.lora && opts.lora.config.dropout > 0 ? N * Math.max(C, F, Q) : 0);
    this.cosG = new Float32Array((N * HD) / 2);
    this.sinG = new Float32Array((N * HD) / 2);
    this.invFreqGlobal = ropeInverseFrequencies(HD, config.ropeTheta, config.ropeScaling);
    this.invFreqLocal = config.family === 'gemma3' ? ropeInverseFrequencies(HD, config.ropeLocalTheta, null) : null;
    this.cosL = this.invFreqLocal ? new Float32Array((N * HD) / 2) : this.cosG;
    this.sinL = this.invFreqLocal ? new Float32Array((N * HD) / 2) : this.sinG;
    this.attScratch = createTrainAttentionScratch(N, NH, HD, sharedFloat32);
    this.ceScratch = createCrossEntropyScratch(C, config.vocabSize);
    this.scale = opts.lora ? opts.lora.config.alpha / opts.lora.config.rank : 0;
  }

  /** Loss statistics of a batch without gradients (no dropout unless a mask seed is given, for tests). */
  evaluate(batch: TrainBatch, dropoutSeed: number | null = null): CrossEntropyResult {
    this.dropoutSeed = dropoutSeed;
    try {
      this.forward(batch);
    } finally {
      this.dropoutSeed = null;
    }
    return crossEntropyForwardBackward(this.xf, batch.targets, this.weights.lmHead, batch.N, this.config.hiddenSize,
      this.config.vocabSize, null, null, 0, this.ceScratch);
  }

  /**
   * Forward and backward over the batch; gradients of the mean loss × (count / lossDenominator)
   * accumulate into the gradient buffers, so batches of one step can be summed and divided once.
   */
  forwardBackward(batch: TrainBatch, lossDenominator: number, dropoutSeed = 0): CrossEntropyResult {
    this.dropoutSeed = dropoutSeed;
    try {
      return this.forwardBackwardInner(batch, lossDenominator);
    } finally {
      this.dropoutSeed = null;
    }
  }

  private forwardBackwardInner(batch: TrainBatch, lossDenominator: number): CrossEntropyResult {
    const cfg = this.config;
    const { hiddenSize: C, vocabSize: V } = cfg;
    const N = batch.N;
    this.forward(batch);
    const wg = this.opts.weightGrads;
    // d(loss)/d(xf); the lm_head gradient lands on the embedding when the two are tied.
    const res = crossEntropyForwardBackward(this.xf, batch.targets, this.weights.lmHead, N, C, V, this.dC,
      wg ? wg.lmHead : null, 1 / lossDenominator, this.ceScratch);
    profileMark('t.ce');
    this.normBackward(this.dx, this.dC, this.xOut, this.weights.finalNorm, this.rstdF, N, C, wg?.finalNorm ?? null);
    profileMark('t.norm.b');
    for (let l = cfg.numLayers - 1; l >= 0; l--) {
      if (this.opts.recompute) this.layerForward(l, batch);
      this.layerBackward(l, batch);
    }
    if (wg) {
      const { tokens } = batch;
      for (let t = 0; t < N; t++) {
        const dst = tokens[t]! * C;
        for (let i = 0; i < C; i++) wg.embed[dst + i]! += this.dx[t * C + i]! * cfg.embedScale;
      }
    }
    profileMark('t.embed.b');
    return res;
  }

  private forward(batch: TrainBatch): void {
    const cfg = this.config;
    const { hiddenSize: C, numLayers: L } = cfg;
    const N = batch.N;
    if (N > this.opts.maxTokens) throw new Error(`internal: batch of ${N} tokens > maxTokens ${this.opts.maxTokens}`);
    profileStart();
    ropeTables(batch.positions, N, this.invFreqGlobal, this.cosG, this.sinG);
    if (this.invFreqLocal) ropeTables(batch.positions, N, this.invFreqLocal, this.cosL, this.sinL);
    const x0 = this.acts[0]!.xIn;
    const { tokens } = batch;
    for (let t = 0; t < N; t++) {
      const src = tokens[t]! * C;
      for (let i = 0; i < C; i++) x0[t * C + i] = this.weights.embed[src + i]! * cfg.embedScale;
    }
    profileMark('t.embed');
    for (let l = 0; l < L; l++) {
      this.layerForward(l, batch);
      const next = l + 1 < L ? this.acts[l + 1]!.xIn : this.xOut;
      const a = this.acts[l]!;
      // xOut = xMid + (post-normed) down projection; written into the next layer's input.
      next.set(a.xMid.subarray(0, N * C));
      addInPlace(next, cfg.sandwichNorms ? this.dC2 : a.d, N * C);
      profileMark('t.residual');
    }
    this.norm(this.xf, this.xOut, this.weights.finalNorm, this.rstdF, N, C);
    profileMark('t.norm');
  }

  /** The layer's forward from acts[l].xIn, filling its activations. Leaves its MLP output in a.d (or dC2 after Gemma's post-norm). */
  private layerForward(l: number, batch: TrainBatch): void {
    const { cfg, C, F, NH, NKV, HD, N, Q, K, w, a, sliding, cos, sin } = this.layerContext(l, batch);
    const pairs = this.opts.lora?.layers[l];

    this.norm(a.xn1, a.xIn, w.attnNorm, a.rstd1, N, C);
    profileMark('t.norm');
    const qOut = cfg.qkNorm ? a.q0 : a.q;
    const kOut = cfg.qkNorm ? a.k0 : a.k;
    this.linear(qOut, a.xn1, w, 'q', pairs, a, N, C, Q);
    this.linear(kOut, a.xn1, w, 'k', pairs, a, N, C, K);
    this.linear(a.v, a.xn1, w, 'v', pairs, a, N, C, K);
    profileMark('t.qkv');
    if (cfg.qkNorm) {
      this.norm(a.q, a.q0, w.qNorm!, a.rstdQ, N * NH, HD);
      this.norm(a.k, a.k0, w.kNorm!, a.rstdK, N * NKV, HD);
    }
    ropeForward(a.q, N, NH, HD, Q, cos, sin);
    ropeForward(a.k, N, NKV, HD, K, cos, sin);
    profileMark('t.rope');
    attentionTrainForward(a.att, a.lse, a.q, a.k, a.v, this.attShape(batch, sliding), this.attScratch);
    profileMark('t.attn');
    const oOut = cfg.sandwichNorms ? a.o : this.dC;
    this.linear(oOut, a.att, w, 'o', pairs, a, N, Q, C);
    profileMark('t.o');
    if (cfg.sandwichNorms) this.norm(this.dC, a.o, w.postAttnNorm!, a.rstdPA, N, C);
    a.xMid.set(a.xIn.subarray(0, N * C));
    addInPlace(a.xMid, this.dC, N * C);
    this.norm(a.xn2, a.xMid, w.ffnNorm, a.rstd2, N, C);
    profileMark('t.norm');
    this.linear(a.gate, a.xn2, w, 'gate', pairs, a, N, C, F);
    this.linear(a.up, a.xn2, w, 'up', pairs, a, N, C, F);
    profileMark('t.gateup');
    runSplit(cfg.hiddenAct === 'silu' ? 'swiglu' : 'gegluTanh', N * F, N * F, [a.h, a.gate, a.up], []);
    profileMark('t.act');
    this.linear(a.d, a.h, w, 'down', pairs, a, N, F, C);
    profileMark('t.down');
    if (cfg.sandwichNorms) this.norm(this.dC2, a.d, w.postFfnNorm!, a.rstdPF, N, C);
  }

  private layerBackward(l: number, batch: TrainBatch): void {
    const { cfg, C, F, NH, NKV, HD, N, Q, K, w, a, sliding, cos, sin } = this.layerContext(l, batch);
    const gl = this.opts.weightGrads?.layers[l];
    const dx = this.dx; // in: d(loss)/d(layer output); out: d(loss)/d(layer input)

    // MLP block: xOut = xMid + post(down(act(gate(xn2), up(xn2))))
    let dd = dx;
    if (cfg.sandwichNorms) {
      this.normBackward(this.dC, dx, a.d, w.postFfnNorm!, a.rstdPF, N, C, gl?.postFfnNorm ?? null);
      dd = this.dC;
    }
    this.linearBackward(l, this.dF, dd, a.h, w, 'down', a, N, F, C, gl, false);
    profileMark('t.down.b');
    runSplit(cfg.hiddenAct === 'silu' ? 'swigluBackward' : 'gegluTanhBackward', N * F, N * F, [this.dF, this.dF2, this.dF, a.gate, a.up], []);
    profileMark('t.act.b');
    this.linearBackward(l, this.dC2, this.dF, a.xn2, w, 'gate', a, N, C, F, gl, false);
    this.linearBackward(l, this.dC2, this.dF2, a.xn2, w, 'up', a, N, C, F, gl, true);
    profileMark('t.gateup.b');
    this.normBackward(this.dC, this.dC2, a.xMid, w.ffnNorm, a.rstd2, N, C, gl?.ffnNorm ?? null);
    addInPlace(dx, this.dC, N * C); // dx is now d(loss)/d(xMid)
    profileMark('t.norm.b');

    // attention block: xMid = xIn + post(o(attention(rope(norm(q(xn1))), …)))
    let dO = dx;
    if (cfg.sandwichNorms) {
      this.normBackward(this.dC, dx, a.o, w.postAttnNorm!, a.rstdPA, N, C, gl?.postAttnNorm ?? null);
      dO = this.dC;
    }
    this.linearBackward(l, this.dAtt, dO, a.att, w, 'o', a, N, Q, C, gl, false);
    profileMark('t.o.b');
    const dq = this.dQ;
    attentionTrainBackward(dq, this.dK, this.dV, this.dAtt, a.att, a.lse, a.q, a.k, a.v, this.attShape(batch, sliding), this.attScratch);
    profileMark('t.attn.b');
    ropeBackward(dq, N, NH, HD, Q, cos, sin);
    ropeBackward(this.dK, N, NKV, HD, K, cos, sin);
    if (cfg.qkNorm) {
      this.normBackward(dq, dq, a.q0, w.qNorm!, a.rstdQ, N * NH, HD, gl?.qNorm ?? null);
      this.normBackward(this.dK, this.dK, a.k0, w.kNorm!, a.rstdK, N * NKV, HD, gl?.kNorm ?? null);
    }
    profileMark('t.rope.b');
    this.linearBackward(l, this.dC, dq, a.xn1, w, 'q', a, N, C, Q, gl, false);
    this.linearBackward(l, this.dC, this.dK, a.xn1, w, 'k', a, N, C, K, gl, true);
    this.linearBackward(l, this.dC, this.dV, a.xn1, w, 'v', a, N, C, K, gl, true);
    profileMark('t.qkv.b');
    this.normBackward(this.dC2, this.dC, a.xIn, w.attnNorm, a.rstd1, N, C, gl?.attnNorm ?? null);
    addInPlace(dx, this.dC2, N * C); // dx is now d(loss)/d(xIn)
    profileMark('t.norm.b');
  }

  /** Shapes, weights, activations and RoPE tables of layer l, shared by its forward and backward. */
  private layerContext(l: number, batch: TrainBatch) {
    const cfg = this.config;
    const { hiddenSize: C, intermediateSize: F, numHeads: NH, numKvHeads: NKV, headDim: HD } = cfg;
    const sliding = cfg.layerTypes[l] === 'sliding_attention';
    return {
      cfg, C, F, NH, NKV, HD, N: batch.N, Q: NH * HD, K: NKV * HD,
      w: this.weights.layers[l]!, a: this.acts[l]!, sliding,
      cos: sliding ? this.cosL : this.cosG, sin: sliding ? this.sinL : this.sinG,
    };
  }

  private attShape(batch: TrainBatch, sliding: boolean) {
    const cfg = this.config;
    return {
      N: batch.N, NH: cfg.numHeads, NKV: cfg.numKvHeads, HD: cfg.headDim,
      window: sliding ? cfg.slidingWindow : null, scale: cfg.attnScale, segStart: batch.segStart,
    };
  }

  /** out(N, OC) = inp · Wᵀ + s·(inp·Aᵀ)·Bᵀ for a LoRA-wrapped slot. */
  private linear(out: Float32Array, inp: Float32Array, w: LayerWeights, slot: keyof typeof TARGET_OF,
    pairs: Partial<Record<LoraTarget, LoraPair>> | undefined, a: LayerActs, N: number, IN: number, OC: number): void {
    matmulForward(out, inp, w[slot], N, IN, OC);
    const target = TARGET_OF[slot];
    const pair = pairs?.[target];
    if (!pair) return;
    const r = this.opts.lora!.config.rank;
    const u = a.u[target]!;
    const g = gemm();
    const x = this.loraInput(inp, N * IN, a, target);
    g.sgemm(false, true, N, r, IN, 1, x, IN, pair.A, IN, 0, u, r);
    g.sgemm(false, true, N, OC, r, this.scale, u, r, pair.B, r, 1, out, OC);
  }

  /** The LoRA path's input: inp itself, or inp after this step's dropout mask (training only). */
  private loraInput(inp: Float32Array, n: number, a: LayerActs, target: LoraTarget): Float32Array {
    const p = this.opts.lora!.config.dropout;
    if (p === 0 || this.dropoutSeed === null) return inp;
    dropoutApply(this.dropped, inp, n, p, this.maskKey(a, target));
    return this.dropped;
  }

  private maskKey(a: LayerActs, target: LoraTarget): number {
    return dropoutKey(this.dropoutSeed!, this.acts.indexOf(a), LORA_TARGETS.indexOf(target));
  }

  /** din(N, IN) (=, or += when accumulate) and parameter gradients of a LoRA-wrapped linear layer. */
  private linearBackward(l: number, din: Float32Array, dout: Float32Array, inp: Float32Array, w: LayerWeights, slot: keyof typeof TARGET_OF,
    a: LayerActs, N: number, IN: number, OC: number, gl: LayerWeights | undefined, accumulate: boolean): void {
    matmulBackward(din, gl ? gl[slot] : null, dout, inp, w[slot], N, IN, OC, accumulate);
    const target = TARGET_OF[slot];
    const pair = this.opts.lora?.layers[l]?.[target];
    if (!pair) return;
    const grads = this.opts.loraGrads!.layers[l]![target]!;
    const r = this.opts.lora!.config.rank;
    const s = this.scale;
    const u = a.u[target]!;
    const g = gemm();
    g.sgemm(true, false, OC, r, N, s, dout, OC, u, r, 1, grads.B, r); // dB += s·doutᵀ·u
    g.sgemm(false, false, N, r, OC, s, dout, OC, pair.B, r, 0, this.du, r); // du = s·dout·B
    const p = this.opts.lora!.config.dropout;
    if (p === 0) {
      g.sgemm(true, false, r, IN, N, 1, this.du, r, inp, IN, 1, grads.A, IN); // dA += duᵀ·inp
      g.sgemm(false, false, N, IN, r, 1, this.du, r, pair.A, IN, 1, din, IN); // din += du·A
      return;
    }
    // With dropout: x = mask∘inp/(1−p), so dA += duᵀ·x and din += mask∘(du·A)/(1−p).
    const key = this.maskKey(a, target);
    dropoutApply(this.dropped, inp, N * IN, p, key);
    g.sgemm(true, false, r, IN, N, 1, this.du, r, this.dropped, IN, 1, grads.A, IN);
    g.sgemm(false, false, N, IN, r, 1, this.du, r, pair.A, IN, 0, this.dropped, IN);
    dropoutApply(this.dropped, this.dropped, N * IN, p, key);
    addInPlace(din, this.dropped, N * IN);
  }

  private shared(w: Float32Array): Float32Array {
    return sharedCopy(this.sharedNorms, w);
  }

  private norm(out: Float32Array, inp: Float32Array, weight: Float32Array, rstd: Float32Array, rows: number, C: number): void {
    // Parallel when the weights are frozen copies; full fine-tuning changes weights every step.
    if (this.opts.weightGrads) rmsnormRows(out, inp, weight, C, this.config.rmsNormEps, this.config.normWeightOffset, 0, rows, rstd);
    else runSplit('rmsnorm', rows, rows * C, [out, inp, this.shared(weight), rstd], [C, this.config.rmsNormEps, this.config.normWeightOffset]);
  }

  private normBackward(din: Float32Array, dout: Float32Array, inp: Float32Array, weight: Float32Array, rstd: Float32Array,
    rows: number, C: number, dweight: Float32Array | null): void {
    if (dweight) rmsnormBackwardRows(din, dweight, dout, inp, weight, rstd, C, this.config.normWeightOffset, 0, rows);
    else runSplit('rmsnormBackward', rows, rows * C, [din, dout, inp, this.shared(weight), rstd], [C, this.config.normWeightOffset]);
  }
}
