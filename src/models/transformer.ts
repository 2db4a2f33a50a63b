// The decoder-only transformer shared by Llama, Qwen3 and Gemma 3. Family differences are config
// flags (ModelConfig): Gemma's (1+w) norms, sandwich norms, GeGLU, scaled embeddings and sliding
// layers; Qwen3/Gemma3 q/k norms. The forward pass appends to a KV cache and returns logits.
// Dimension letters: T tokens in this call, C hidden, F intermediate, NH/NKV heads, HD head dim, V vocab.

import type { ModelConfig } from './config.js';
import type { ModelWeights } from './weights.js';
import { InvalidRequestError } from '../errors.js';
import { matmulForward } from '../engine/matmul.js';
import { ropeForward, ropeInverseFrequencies, ropeTables } from '../engine/rope.js';
import { attentionForward, attentionScratchFits, createAttentionScratch, type AttentionScratch } from '../engine/attention.js';
import { runSplit, sharedCopy, sharedFloat32 } from '../engine/kernel-pool.js';
import { addInPlace, embeddingForward } from '../engine/elementwise.js';
import { rmsnormForward } from '../engine/rmsnorm.js';
import { profileMark, profileStart } from '../engine/profile.js';

/** Keys and values of one sequence, per layer; `length` tokens are filled. */
export class KVCache {
  readonly k: Float32Array[]; // L x (maxSeq, NKV*HD)
  readonly v: Float32Array[]; // L x (maxSeq, NKV*HD)
  length = 0;
  constructor(config: ModelConfig, readonly maxSeq: number) {
    const size = maxSeq * config.numKvHeads * config.headDim;
    this.k = Array.from({ length: config.numLayers }, () => new Float32Array(size));
    this.v = Array.from({ length: config.numLayers }, () => new Float32Array(size));
  }
  /** Forgets everything after the first n tokens (their slots are overwritten later). */
  truncate(n: number): void {
    this.length = Math.min(this.length, n);
  }
}

/** Tokens per forward chunk: bounds activation memory for long prompts. */
const MAX_CHUNK = 512;

interface Workspace {
  capacity: number;
  x: Float32Array; // (T, C) residual stream
  xn: Float32Array; // (T, C) normed input of a sub-layer
  q: Float32Array; // (T, NH*HD)
  att: Float32Array; // (T, NH*HD)
  proj: Float32Array; // (T, C)
  gate: Float32Array; // (T, F)
  up: Float32Array; // (T, F)
  cos: Float32Array; // (T, HD/2)
  sin: Float32Array;
  attention: AttentionScratch;
}

export class Transformer {
  private readonly invFreqGlobal: Float32Array;
  private readonly invFreqLocal: Float32Array;
  private ws: Workspace | undefined;
  /** Norm weights copied into shared memory, so the kernel pool's workers can read them. */
  private readonly sharedNorms = new Map<Float32Array, Float32Array>();

  constructor(readonly config: ModelConfig, readonly weights: ModelWeights) {
    this.invFreqGlobal = ropeInverseFrequencies(config.headDim, config.ropeTheta, config.ropeScaling);
    this.invFreqLocal = config.family === 'gemma3'
      ? ropeInverseFrequencies(config.headDim, config.ropeLocalTheta, null)
      : this.invFreqGlobal;
  }

  private shared(w: Float32Array): Float32Array {
    return sharedCopy(this.sharedNorms, w);
  }

  /** out = rmsnorm(inp) over N rows of C, split across the kernel pool. */
  private norm(out: Float32Array, inp: Float32Array, weight: Float32Array, N: number, C: number): void {
    runSplit('rmsnorm', N, N * C, [out, inp, this.shared(weight)], [C, this.config.rmsNormEps, this.config.normWeightOffset]);
  }

  /** x += delta, then out = rmsnorm(x), over N rows of C. */
  private addNorm(x: Float32Array, delta: Float32Array, out: Float32Array, weight: Float32Array, N: number, C: number): void {
    runSplit('addRmsnorm', N, N * C, [x, delta, out, this.shared(weight)], [C, this.config.rmsNormEps, this.config.normWeightOffset]);
  }

  createCache(maxSeq = Math.min(this.config.maxPositionEmbeddings, 4096)): KVCache {
    return new KVCache(this.config, maxSeq);
  }

  /**
   * Runs `tokens` after the cache's contents and appends them to it. Returns the logits of the last
   * token (V), or of every token (T, V) when allLogits is set.
   */
  forward(tokens: ArrayLike<number>, cache: KVCache, opts: { allLogits?: boolean } = {}): Float32Array {
    const T = tokens.length;
    const V = this.config.vocabSize;
    if (T === 0) throw new InvalidRequestError('forward: no tokens given');
    if (cache.length + T > cache.maxSeq) {
      throw new InvalidRequestError(`the prompt and output need ${cache.length + T} tokens but the context holds ${cache.maxSeq}`);
    }
    for (let i = 0; i < T; i++) {
      const id = tokens[i];
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new InvalidRequestError(`token id ${id} at index ${i} is outside the vocabulary (0..${V - 1})`);
    }
    const logits = new Float32Array(opts.allLogits ? T * V : V);
    for (let t0 = 0; t0 < T; t0 += MAX_CHUNK) {
      const n = Math.min(MAX_CHUNK, T - t0);
      const chunk = Array.prototype.slice.call(tokens, t0, t0 + n) as number[];
      const isLast = t0 + n === T;
      this.forwardChunk(chunk, cache, opts.allLogits ? logits.subarray(t0 * V, (t0 + n) * V) : isLast ? logits : null);
    }
    return logits;
  }

  private workspace(T: number, maxKeys: number): Workspace {
    const { hiddenSize: C, intermediateSize: F, numHeads: NH, headDim: HD } = this.config;
    const { numKvHeads: NKV } = this.config;
    if (this.ws && this.ws.capacity >= T && !attentionScratchFits(this.ws.attention, maxKeys, NH, NKV)) {
      this.ws.attention = createAttentionScratch(maxKeys, NH, NKV, HD, sharedFloat32);
    }
    if (!this.ws || this.ws.capacity < T) {
      const cap = Math.max(T, this.ws?.capacity ?? 0);
      this.ws = {
        capacity: cap,
        x: sharedFloat32(cap * C),
        xn: sharedFloat32(cap * C),
        q: sharedFloat32(cap * NH * HD),
        att: sharedFloat32(cap * NH * HD),
        proj: sharedFloat32(cap * C),
        gate: sharedFloat32(cap * F),
        up: sharedFloat32(cap * F),
        cos: new Float32Array((cap * HD) / 2),
        sin: new Float32Array((cap * HD) / 2),
        attention: createAttentionScratch(maxKeys, NH, NKV, HD, sharedFloat32),
      };
    }
    return this.ws;
  }

  /** One chunk of tokens; writes logits of the last token (or all when out has T*V room) into out. */
  private forwardChunk(tokens: number[], cache: KVCache, out: Float32Array | null): void {
    const cfg = this.config;
    const w = this.weights;
    const T = tokens.length;
    const { hiddenSize: C, intermediateSize: F, numHeads: NH, numKvHeads: NKV, headDim: HD, vocabSize: V } = cfg;
    const eps = cfg.rmsNormEps;
    const off = cfg.normWeightOffset;
    const pos0 = cache.length;
    const kvs = NKV * HD;
    // Scratch sized for the cache's capacity, so decoding step by step never reallocates it.
    const ws = this.workspace(T, cache.maxSeq);
    const x = ws.x.subarray(0, T * C);
    const xn = ws.xn.subarray(0, T * C);
    const q = ws.q.subarray(0, T * NH * HD);
    const att = ws.att.subarray(0, T * NH * HD);
    const proj = ws.proj.subarray(0, T * C);
    const gate = ws.gate.subarray(0, T * F);
    const up = ws.up.subarray(0, T * F);

    const positions = Array.from({ length: T }, (_, t) => pos0 + t);
    const half = HD / 2;
    const cosG = ws.cos.subarray(0, T * half);
    const sinG = ws.sin.subarray(0, T * half);
    ropeTables(positions, T, this.invFreqGlobal, cosG, sinG);
    let cosL = cosG;
    let sinL = sinG;
    if (this.invFreqLocal !== this.invFreqGlobal) {
      cosL = new Float32Array(T * half);
      sinL = new Float32Array(T * half);
      ropeTables(positions, T, this.invFreqLocal, cosL, sinL);
    }

    profileStart();
    embeddingForward(x, tokens, w.embed, T, C, cfg.embedScale);
    profileMark('embed');
    // xn always holds the normed input of the next sub-layer; each residual add is fused with the
    // norm that follows it.
    this.norm(xn, x, w.layers[0]!.attnNorm, T, C);
    profileMark('norm');
    for (let l = 0; l < cfg.numLayers; l++) {
      const lw = w.layers[l]!;
      const sliding = cfg.layerTypes[l] === 'sliding_attention';
      const kDst = cache.k[l]!.subarray(pos0 * kvs, (pos0 + T) * kvs);
      const vDst = cache.v[l]!.subarray(pos0 * kvs, (pos0 + T) * kvs);

      // attention block
      matmulForward(q, xn, lw.q, T, C, NH * HD);
      matmulForward(kDst, xn, lw.k, T, C, kvs);
      matmulForward(vDst, xn, lw.v, T, C, kvs);
      profileMark('qkv');
      if (lw.qNorm && lw.kNorm) {
        this.norm(q, q, lw.qNorm, T * NH, HD);
        rmsnormForward(kDst, kDst, lw.kNorm, T * NKV, HD, eps, off);
      }
      ropeForward(q, T, NH, HD, NH * HD, sliding ? cosL : cosG, sliding ? sinL : sinG);
      ropeForward(kDst, T, NKV, HD, kvs, sliding ? cosL : cosG, sliding ? sinL : sinG);
      profileMark('qknorm+rope');
      attentionForward(att, q, cache.k[l]!, cache.v[l]!, {
        T, pos0, NH, NKV, HD, window: sliding ? cfg.slidingWindow : null, scale: cfg.attnScale,
      }, ws.attention);
      profileMark('attention');
      matmulForward(proj, att, lw.o, T, NH * HD, C);
      profileMark('o');
      if (lw.postAttnNorm) this.norm(proj, proj, lw.postAttnNorm, T, C);
      this.addNorm(x, proj, xn, lw.ffnNorm, T, C);
      profileMark('norm');

      // feed-forward block
      matmulForward(gate, xn, lw.gate, T, C, F);
      matmulForward(up, xn, lw.up, T, C, F);
      profileMark('gate+up');
      runSplit(cfg.hiddenAct === 'silu' ? 'swiglu' : 'gegluTanh', T * F, T * F, [gate, gate, up], []);
      profileMark('act');
      matmulForward(proj, gate, lw.down, T, F, C);
      profileMark('down');
      if (lw.postFfnNorm) this.norm(proj, proj, lw.postFfnNorm, T, C);
      if (l + 1 < cfg.numLayers) this.addNorm(x, proj, xn, w.layers[l + 1]!.attnNorm, T, C);
      else addInPlace(x, proj, T * C);
      profileMark('norm');
    }
    cache.length = pos0 + T;
    if (!out) return;
    if (out.length === T * V) {
      this.norm(xn, x, w.finalNorm, T, C);
      matmulForward(out, xn, w.lmHead, T, C, V);
    } else {
      const last = x.subarray((T - 1) * C, T * C);
      const lastN = xn.subarray(0, C);
      rmsnormForward(lastN, last, w.finalNorm, 1, C, eps, off);
      matmulForward(out, lastN, w.lmHead, 1, C, V);
    }
    profileMark('lm_head');
  }
}
