// The model core: the one decoder-only transformer that training, evaluation and generation all run,
// for Llama, Qwen3 and Gemma 3. Family differences are config flags only (ModelConfig): (1+w) norms,
// q/k norms, sandwich norms, GeGLU or SwiGLU, the embedding scale, sliding-window layers with their
// own RoPE base. Explicit ops, each with its backward, in the manner of llm.c; no autograd tape.
//
// A forward pass takes a Batch (llama_batch-shaped: tokens, positions, sequence ids, an adapter id per
// row, optional targets) and either
// - runs against a KVStore (generation): each row attends to the keys its sequence already holds plus
//   the batch's own, which are appended to the store; rows of many sequences, at any stage (prompt
//   chunks, single decode tokens), share every weight product; or
// - runs a packed batch on its own (training, evaluation): sequences back to back, each from position 0,
//   never attending across sequences, activations kept in the workspace for the backward pass.
// LoRA is never merged here: each linear layer is an adapter-set linear (src/lora/adapter-linear.ts),
// the shared base product then each run of rows' own low-rank update.
// Conventions: parameter gradients accumulate (+=) until the caller zeroes them; activation gradients
// are assigned.
// Dimension letters: N rows, C hidden, F intermediate, NH/NKV heads, HD head dim, Q = NH·HD, K = NKV·HD, V vocab.

import type { ModelConfig } from '../models/config.js';
import type { LayerWeights, ModelWeights } from '../models/weights.js';
import type { LoraAdapter, LoraTarget } from '../lora/lora.js';
import { adapterLinearBackward, adapterLinearForward, maxRank, type AdapterRun, type LoraDropout } from '../lora/adapter-linear.js';
import { matmulForward } from '../engine/matmul.js';
import { rmsnormBackwardRows, rmsnormRows } from '../engine/rmsnorm.js';
import { ropeBackward, ropeForward, ropeInverseFrequencies, ropeTables } from '../engine/rope.js';
import { attentionForward } from '../engine/attention.js';
import { attentionTrainBackward, attentionTrainForward } from '../engine/attention-train.js';
import { crossEntropyForwardBackward, type CrossEntropyResult } from '../engine/cross-entropy.js';
import { runSplit, sharedCopy } from '../engine/kernel-pool.js';
import { addInPlace, embeddingForward } from '../engine/elementwise.js';
import { profileMark, profileStart } from '../engine/profile.js';
import { InvalidRequestError } from '../errors.js';
import { planBatch, type Batch, type BatchPlan } from './batch.js';
import type { KVStore } from './kv-store.js';
import { createWorkspace, kvAttentionScratch, trainAttentionScratch, type LayerActs, type Workspace } from './workspace.js';

/** Gradient buffers of the same shapes as the weights they belong to (full fine-tuning). */
export type WeightGrads = ModelWeights;

/** An adapter a batch's rows may name, and where its gradients go (training). */
export interface AdapterEntry {
  adapter: LoraAdapter;
  grads?: LoraAdapter;
}

export interface AdapterLookup {
  get(id: number): AdapterEntry | undefined;
}

export interface ForwardOptions {
  /** Generation: the keys and values of earlier tokens; the batch's are appended. */
  kv?: KVStore;
  /** The adapters that batch.adapters names. */
  adapters?: AdapterLookup;
  /** Training: seed of this micro-batch's LoRA dropout masks (none when absent). */
  dropoutSeed?: number;
}

/** What a forward pass leaves for logits, loss and backward. */
export interface Pass {
  batch: Batch;
  plan: BatchPlan;
  ws: Workspace;
  runs: AdapterRun[];
  /** Row stride of the LoRA u buffers. */
  R: number;
  dropout: LoraDropout | null;
  kv: KVStore | null;
}

type Slot = 'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down';
const TARGET_OF: Record<Slot, LoraTarget> = {
  q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj',
};

export class Decoder {
  private readonly invFreqGlobal: Float32Array;
  private readonly invFreqLocal: Float32Array | null;
  /** Norm weights copied into shared memory, so the kernel pool's workers can read them. */
  private readonly sharedNorms = new Map<Float32Array, Float32Array>();
  private inference: Workspace | undefined;

  /**
   * `trainableWeights`: the weights change between passes (full fine-tuning), so norms run on the
   * calling thread from the live arrays instead of shared copies.
   */
  constructor(readonly config: ModelConfig, readonly weights: ModelWeights, private readonly trainableWeights = false) {
    const HD = config.headDim;
    this.invFreqGlobal = ropeInverseFrequencies(HD, config.ropeTheta, config.ropeScaling);
    this.invFreqLocal = config.layerTypes.includes('sliding_attention') ? ropeInverseFrequencies(HD, config.ropeLocalTheta, null) : null;
  }

  /**
   * A workspace for inference batches of up to N rows and LoRA rank R, shared by every caller of this
   * decoder (a forward pass is synchronous and its results are copied out before the next one).
   */
  inferenceWorkspace(N: number, R = 0): Workspace {
    const ws = this.inference;
    if (ws && ws.maxTokens >= N && ws.loraRank >= R) return ws;
    this.inference = createWorkspace(this.config, { maxTokens: Math.max(N, ws?.maxTokens ?? 0), loraRank: Math.max(R, ws?.loraRank ?? 0) });
    return this.inference;
  }

  /** Runs every layer over the batch, leaving the last layer's output (and, with targets, the final norm) in ws. */
  forward(batch: Batch, ws: Workspace, opts: ForwardOptions = {}): Pass {
    const cfg = this.config;
    const { hiddenSize: C, numLayers: L } = cfg;
    const N = batch.N;
    if (N > ws.maxTokens) throw new Error(`internal: batch of ${N} tokens > workspace of ${ws.maxTokens}`);
    const kv = opts.kv ?? null;
    const plan = planBatch(batch, cfg.vocabSize, kv !== null);
    const runs = this.adapterRuns(plan, opts.adapters);
    const R = maxRank(runs);
    if (R > ws.loraRank) throw new Error(`internal: LoRA rank ${R} > workspace rank ${ws.loraRank}`);
    const dropout = opts.dropoutSeed === undefined ? null : { seed: opts.dropoutSeed, scratch: ws.dropped };
    if (kv) for (const r of plan.seqRuns) kv.append(r.seq, r.pos0, r.rows);
    const pass: Pass = { batch, plan, ws, runs, R, dropout, kv };

    profileStart();
    ropeTables(batch.positions, N, this.invFreqGlobal, ws.cosG, ws.sinG);
    if (this.invFreqLocal) ropeTables(batch.positions, N, this.invFreqLocal, ws.cosL, ws.sinL);
    embeddingForward(ws.layers[0]!.xIn, batch.tokens, this.weights.embed, N, C, cfg.embedScale);
    profileMark('embed');
    for (let l = 0; l < L; l++) {
      this.layerForward(l, pass);
      const a = ws.layers[l]!;
      const next = l + 1 < L ? ws.layers[l + 1]!.xIn : ws.xOut;
      // layer output = xMid + (post-normed) down projection, written into the next layer's input.
      next.set(a.xMid.subarray(0, N * C));
      addInPlace(next, cfg.sandwichNorms ? ws.dC2 : a.d, N * C);
      profileMark('residual');
    }
    if (batch.targets) {
      this.norm(ws.xf, ws.xOut, this.weights.finalNorm, ws.rstdF, N, C);
      profileMark('norm');
    }
    return pass;
  }

  /** Logits (rows, V) of the rows the batch asked for (batch.logits), in row order. */
  logits(pass: Pass, out?: Float32Array): Float32Array {
    const { hiddenSize: C, vocabSize: V } = this.config;
    const { ws, plan } = pass;
    const rows = plan.logitRows;
    const n = rows.length;
    const logits = out ?? new Float32Array(n * V);
    if (n === 0) return logits;
    // Gathered rows: normed when the forward did not already norm every row.
    const src = pass.batch.targets ? ws.xf : ws.xOut;
    const xg = ws.dC; // (n, C); free after the forward
    const contiguous = rows[n - 1]! - rows[0]! === n - 1;
    let g = contiguous ? src.subarray(rows[0]! * C) : xg;
    if (!contiguous) rows.forEach((t, i) => xg.set(src.subarray(t * C, (t + 1) * C), i * C));
    if (!pass.batch.targets) {
      this.norm(ws.xf, g, this.weights.finalNorm, ws.rstdF, n, C);
      g = ws.xf;
    }
    matmulForward(logits, g, this.weights.lmHead, n, C, V);
    profileMark('lm_head');
    return logits;
  }

  /**
   * Cross-entropy over the rows with targets. With `grad`, the gradient of lossSum × grad.scale flows
   * back through every layer into the adapters' gradient buffers and, when given, grad.weights.
   */
  loss(pass: Pass, grad?: { scale: number; weights?: WeightGrads }): CrossEntropyResult {
    const cfg = this.config;
    const { hiddenSize: C, vocabSize: V } = cfg;
    const { batch, ws } = pass;
    const N = batch.N;
    if (!batch.targets) throw new Error('internal: loss of a batch without targets');
    if (!grad) return crossEntropyForwardBackward(ws.xf, batch.targets, this.weights.lmHead, N, C, V, null, null, 0, ws.ce);
    if (!ws.backward || pass.kv) throw new Error('internal: backward needs a packed batch in a backward workspace');
    const wg = grad.weights;
    // d(loss)/d(xf); the lm_head gradient lands on the embedding when the two are tied.
    const res = crossEntropyForwardBackward(ws.xf, batch.targets, this.weights.lmHead, N, C, V, ws.dC, wg ? wg.lmHead : null, grad.scale, ws.ce);
    profileMark('ce');
    this.normBackward(ws.dx, ws.dC, ws.xOut, this.weights.finalNorm, ws.rstdF, N, C, wg?.finalNorm ?? null);
    profileMark('norm.b');
    for (let l = cfg.numLayers - 1; l >= 0; l--) {
      // The last layer's activations are still in the shared buffers: it was the last to write them.
      const fresh = l === cfg.numLayers - 1 || l >= ws.recomputeFrom;
      if (fresh && l < cfg.numLayers - 1) this.layerForward(l, pass);
      this.layerBackward(l, pass, wg?.layers[l], fresh);
    }
    if (wg) {
      const { tokens } = batch;
      for (let t = 0; t < N; t++) {
        const dst = tokens[t]! * C;
        for (let i = 0; i < C; i++) wg.embed[dst + i]! += ws.dx[t * C + i]! * cfg.embedScale;
      }
    }
    profileMark('embed.b');
    return res;
  }

  private adapterRuns(plan: BatchPlan, adapters: AdapterLookup | undefined): AdapterRun[] {
    return plan.adapterRuns.map(({ id, start, rows }) => {
      const entry = adapters?.get(id);
      if (!entry) throw new InvalidRequestError(`row ${start}: adapter ${id} is not loaded`);
      if (entry.adapter.layers.length !== this.config.numLayers) {
        throw new InvalidRequestError(`adapter ${id} has ${entry.adapter.layers.length} layers but the model has ${this.config.numLayers}`);
      }
      return { start, rows, adapter: entry.adapter, grads: entry.grads };
    });
  }

  /** Layer l's forward from its xIn, filling its activations; leaves the MLP output in a.d (or dC2 after a sandwich post-norm). */
  private layerForward(l: number, pass: Pass): void {
    const { cfg, C, F, NH, NKV, HD, N, Q, K, w, a, sliding, cos, sin, ws } = this.layerContext(l, pass);
    this.norm(a.xn1, a.xIn, w.attnNorm, a.rstd1, N, C);
    profileMark('norm');
    const qOut = cfg.qkNorm ? a.q0 : a.q;
    const kOut = cfg.qkNorm ? a.k0 : a.k;
    this.linear(qOut, a.xn1, l, 'q', pass, a, N, C, Q);
    this.linear(kOut, a.xn1, l, 'k', pass, a, N, C, K);
    this.linear(a.v, a.xn1, l, 'v', pass, a, N, C, K);
    profileMark('qkv');
    if (cfg.qkNorm) {
      this.norm(a.q, a.q0, w.qNorm!, a.rstdQ, N * NH, HD);
      this.norm(a.k, a.k0, w.kNorm!, a.rstdK, N * NKV, HD);
    }
    ropeForward(a.q, N, NH, HD, Q, cos, sin);
    ropeForward(a.k, N, NKV, HD, K, cos, sin);
    profileMark('rope');
    this.attention(l, pass, a, sliding);
    profileMark('attention');
    const oOut = cfg.sandwichNorms ? a.o : ws.dC;
    this.linear(oOut, a.att, l, 'o', pass, a, N, Q, C);
    profileMark('o');
    if (cfg.sandwichNorms) this.norm(ws.dC, a.o, w.postAttnNorm!, a.rstdPA, N, C);
    a.xMid.set(a.xIn.subarray(0, N * C));
    addInPlace(a.xMid, ws.dC, N * C);
    this.norm(a.xn2, a.xMid, w.ffnNorm, a.rstd2, N, C);
    profileMark('norm');
    this.linear(a.gate, a.xn2, l, 'gate', pass, a, N, C, F);
    this.linear(a.up, a.xn2, l, 'up', pass, a, N, C, F);
    profileMark('gate+up');
    runSplit(cfg.hiddenAct === 'silu' ? 'swiglu' : 'gegluTanh', N * F, N * F, [a.h, a.gate, a.up], []);
    profileMark('act');
    this.linear(a.d, a.h, l, 'down', pass, a, N, F, C);
    profileMark('down');
    if (cfg.sandwichNorms) this.norm(ws.dC2, a.d, w.postFfnNorm!, a.rstdPF, N, C);
  }

  /**
   * a.att from a.q, a.k, a.v. Against a KV store the batch's keys and values are appended to their
   * sequences first and each run of rows attends to its sequence's keys; a packed batch attends within
   * each sequence's rows and saves the log-sum-exp for the backward pass.
   */
  private attention(l: number, pass: Pass, a: LayerActs, sliding: boolean): void {
    const cfg = this.config;
    const { numHeads: NH, numKvHeads: NKV, headDim: HD } = cfg;
    const window = sliding ? cfg.slidingWindow : null;
    const { kv, plan, ws } = pass;
    if (!kv) {
      attentionTrainForward(a.att, a.lse, a.q, a.k, a.v, this.attShape(pass, sliding), trainAttentionScratch(ws, cfg));
      return;
    }
    const K = NKV * HD;
    const Q = NH * HD;
    let maxKeys = 0;
    for (const r of plan.seqRuns) {
      kv.keys(r.seq, l).set(a.k.subarray(r.start * K, (r.start + r.rows) * K), r.pos0 * K);
      kv.values(r.seq, l).set(a.v.subarray(r.start * K, (r.start + r.rows) * K), r.pos0 * K);
      maxKeys = Math.max(maxKeys, r.pos0 + r.rows);
    }
    const scratch = kvAttentionScratch(ws, cfg, maxKeys);
    for (const r of plan.seqRuns) {
      attentionForward(a.att.subarray(r.start * Q), a.q.subarray(r.start * Q), kv.keys(r.seq, l), kv.values(r.seq, l), {
        T: r.rows, pos0: r.pos0, NH, NKV, HD, window, scale: cfg.attnScale,
      }, scratch);
    }
  }

  /**
   * `fresh`: layer l's forward was the last to write the buffers all layers share (workspace.ts); when
   * not, each is rebuilt from the layer's kept activations just before it is read, with the forward's
   * own kernels, so it holds exactly what the forward computed.
   */
  private layerBackward(l: number, pass: Pass, gl: LayerWeights | undefined, fresh: boolean): void {
    const { cfg, C, F, NH, NKV, HD, N, Q, K, w, a, sliding, cos, sin, ws } = this.layerContext(l, pass);
    const dx = ws.dx; // in: d(loss)/d(layer output); out: d(loss)/d(layer input)
    const act = cfg.hiddenAct === 'silu' ? 'swiglu' : 'gegluTanh';

    // MLP block: out = xMid + post(down(act(gate(xn2), up(xn2))))
    let dd = dx;
    if (cfg.sandwichNorms) {
      this.normBackward(ws.dC, dx, a.d, w.postFfnNorm!, a.rstdPF, N, C, gl?.postFfnNorm ?? null);
      dd = ws.dC;
    }
    if (!fresh) runSplit(act, N * F, N * F, [a.h, a.gate, a.up], []);
    this.linearBackward(l, ws.dF, dd, a.h, 'down', pass, a, N, F, C, gl, false);
    profileMark('down.b');
    runSplit(cfg.hiddenAct === 'silu' ? 'swigluBackward' : 'gegluTanhBackward', N * F, N * F, [ws.dF, ws.dF2, ws.dF, a.gate, a.up], []);
    profileMark('act.b');
    if (!fresh) this.norm(a.xn2, a.xMid, w.ffnNorm, a.rstd2, N, C);
    this.linearBackward(l, ws.dC2, ws.dF, a.xn2, 'gate', pass, a, N, C, F, gl, false);
    this.linearBackward(l, ws.dC2, ws.dF2, a.xn2, 'up', pass, a, N, C, F, gl, true);
    profileMark('gate+up.b');
    this.normBackward(ws.dC, ws.dC2, a.xMid, w.ffnNorm, a.rstd2, N, C, gl?.ffnNorm ?? null);
    addInPlace(dx, ws.dC, N * C); // dx is now d(loss)/d(xMid)
    profileMark('norm.b');

    // attention block: xMid = xIn + post(o(attention(rope(norm(q(xn1))), …)))
    let dO = dx;
    if (cfg.sandwichNorms) {
      this.normBackward(ws.dC, dx, a.o, w.postAttnNorm!, a.rstdPA, N, C, gl?.postAttnNorm ?? null);
      dO = ws.dC;
    }
    this.linearBackward(l, ws.dAtt, dO, a.att, 'o', pass, a, N, Q, C, gl, false);
    profileMark('o.b');
    if (!fresh && cfg.qkNorm) {
      this.norm(a.q, a.q0, w.qNorm!, a.rstdQ, N * NH, HD);
      this.norm(a.k, a.k0, w.kNorm!, a.rstdK, N * NKV, HD);
      ropeForward(a.q, N, NH, HD, Q, cos, sin);
      ropeForward(a.k, N, NKV, HD, K, cos, sin);
    }
    const dq = ws.dQ;
    attentionTrainBackward(dq, ws.dK, ws.dV, ws.dAtt, a.att, a.lse, a.q, a.k, a.v, this.attShape(pass, sliding), trainAttentionScratch(ws, cfg));
    profileMark('attention.b');
    ropeBackward(dq, N, NH, HD, Q, cos, sin);
    ropeBackward(ws.dK, N, NKV, HD, K, cos, sin);
    if (cfg.qkNorm) {
      this.normBackward(dq, dq, a.q0, w.qNorm!, a.rstdQ, N * NH, HD, gl?.qNorm ?? null);
      this.normBackward(ws.dK, ws.dK, a.k0, w.kNorm!, a.rstdK, N * NKV, HD, gl?.kNorm ?? null);
    }
    if (!fresh) this.norm(a.xn1, a.xIn, w.attnNorm, a.rstd1, N, C);
    profileMark('rope.b');
    this.linearBackward(l, ws.dC, dq, a.xn1, 'q', pass, a, N, C, Q, gl, false);
    this.linearBackward(l, ws.dC, ws.dK, a.xn1, 'k', pass, a, N, C, K, gl, true);
    this.linearBackward(l, ws.dC, ws.dV, a.xn1, 'v', pass, a, N, C, K, gl, true);
    profileMark('qkv.b');
    this.normBackward(ws.dC2, ws.dC, a.xIn, w.attnNorm, a.rstd1, N, C, gl?.attnNorm ?? null);
    addInPlace(dx, ws.dC2, N * C); // dx is now d(loss)/d(xIn)
    profileMark('norm.b');
  }

  /** Shapes, weights, activations and RoPE tables of layer l, shared by its forward and backward. */
  private layerContext(l: number, pass: Pass) {
    const cfg = this.config;
    const { hiddenSize: C, intermediateSize: F, numHeads: NH, numKvHeads: NKV, headDim: HD } = cfg;
    const sliding = cfg.layerTypes[l] === 'sliding_attention';
    const ws = pass.ws;
    return {
      cfg, C, F, NH, NKV, HD, N: pass.batch.N, Q: NH * HD, K: NKV * HD, ws,
      w: this.weights.layers[l]!, a: ws.layers[l]!, sliding,
      cos: sliding ? ws.cosL : ws.cosG, sin: sliding ? ws.sinL : ws.sinG,
    };
  }

  private attShape(pass: Pass, sliding: boolean) {
    const cfg = this.config;
    return {
      N: pass.batch.N, NH: cfg.numHeads, NKV: cfg.numKvHeads, HD: cfg.headDim,
      window: sliding ? cfg.slidingWindow : null, scale: cfg.attnScale, segStart: pass.plan.segStart,
    };
  }

  private linear(out: Float32Array, inp: Float32Array, l: number, slot: Slot, pass: Pass, a: LayerActs, N: number, IN: number, OC: number): void {
    const target = TARGET_OF[slot];
    adapterLinearForward(out, inp, this.weights.layers[l]![slot], N, IN, OC, pass.runs, l, target, a.u[target], pass.R, pass.dropout);
  }

  private linearBackward(l: number, din: Float32Array, dout: Float32Array, inp: Float32Array, slot: Slot, pass: Pass, a: LayerActs,
    N: number, IN: number, OC: number, gl: LayerWeights | undefined, accumulate: boolean): void {
    const target = TARGET_OF[slot];
    adapterLinearBackward(din, gl ? gl[slot] : null, dout, inp, this.weights.layers[l]![slot], N, IN, OC, pass.runs, l, target,
      a.u[target], pass.R, pass.ws.du, accumulate, pass.dropout);
  }

  private norm(out: Float32Array, inp: Float32Array, weight: Float32Array, rstd: Float32Array, rows: number, C: number): void {
    // Parallel when the weights are frozen copies; full fine-tuning changes weights every step.
    if (this.trainableWeights) rmsnormRows(out, inp, weight, C, this.config.rmsNormEps, this.config.normWeightOffset, 0, rows, rstd);
    else runSplit('rmsnorm', rows, rows * C, [out, inp, sharedCopy(this.sharedNorms, weight), rstd], [C, this.config.rmsNormEps, this.config.normWeightOffset]);
  }

  private normBackward(din: Float32Array, dout: Float32Array, inp: Float32Array, weight: Float32Array, rstd: Float32Array,
    rows: number, C: number, dweight: Float32Array | null): void {
    if (dweight) rmsnormBackwardRows(din, dweight, dout, inp, weight, rstd, C, this.config.normWeightOffset, 0, rows);
    else runSplit('rmsnormBackward', rows, rows * C, [din, dout, inp, sharedCopy(this.sharedNorms, weight), rstd], [C, this.config.normWeightOffset]);
  }
}
