// Supervised fine-tuning, LoRA or full: the loop that Vertex AI runs behind a tuning job.
// Takes its parts as options (base model directory, datasets, hyper-parameters, an event callback)
// and writes into `outDir`: the adapter in PEFT's layout (or, in full mode, a complete HF model
// directory), metrics.jsonl with Vertex's metric names, and a checkpoint at each epoch end.
// Determinism: examples, packing, initialisation and updates depend only on the options and the seed,
// so two runs on one machine (same thread count) give bit-identical adapters, and a run resumed
// from a checkpoint ends where the uninterrupted run does.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidRequestError } from '../errors.js';
import { loadModel, type LoadedModel } from '../models/model.js';
import { assembleWeights, getTensor, tensorSpecs, type ModelWeights } from '../models/weights.js';
import { writeSafetensors } from '../models/safetensors.js';
import { defaultLoraConfig, initLoraAdapter, loraParameterCount, validateLoraConfig, ADAPTER_SIZES, type LoraAdapter, type LoraConfig, type LoraTarget } from '../lora/lora.js';
import type { ModelConfig } from '../models/config.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { loadAdapter, saveAdapter } from '../lora/peft.js';
import { readDataset } from '../data/dataset.js';
import { renderForTraining } from '../data/render.js';
import type { TrainingExample } from '../data/packing.js';
import { TrainableModel } from './trainable-model.js';
import { dropoutKey } from '../engine/dropout.js';
import { adamwStep, createParamGroup, gradNorm, DEFAULT_ADAMW, type ParamGroup } from './adamw.js';
import { learningRateAt, warmupStepsFor, type DecayKind } from './schedule.js';
import { recomputeLayers, type RecomputeMode } from './memory.js';
import { planEpoch, runSteps, type BatchingOptions, type StepPlan } from './batches.js';
import { checkpointDir, readCheckpoint, writeCheckpoint, type TrainerState } from './checkpoint.js';

/** Peak learning rates before Vertex's learningRateMultiplier. */
export const DEFAULT_LEARNING_RATE = { lora: 2e-4, full: 2e-5 } as const;

export interface TuneOptions {
  baseDir: string;
  trainFile: string;
  validationFile?: string;
  outDir: string;
  mode: 'lora' | 'full';
  /** LoRA rank (Vertex's adapterSize). */
  adapterSize: number;
  loraAlpha?: number;
  loraDropout?: number;
  targets?: LoraTarget[];
  epochs: number;
  learningRateMultiplier: number;
  /** Overrides the default peak learning rate (before the multiplier). */
  learningRate?: number;
  warmupRatio: number;
  decay: DecayKind;
  weightDecay: number;
  clipNorm: number;
  /** Tokens per forward/backward (several packed rows). */
  batchTokens: number;
  gradAccum: number;
  maxSeqLen: number;
  seed: number;
  /** Evaluate on the validation set every N steps (and at each epoch end). 0: epoch ends only. */
  evalEverySteps: number;
  /** Which layers recompute their activations in the backward pass (src/train/memory.ts). */
  recompute: RecomputeMode;
  /** A checkpoint directory (outDir/checkpoints/epoch-N) to continue from. */
  resume?: string;
  /**
   * A PEFT LoRA adapter directory whose weights the run starts from instead of a fresh initialisation
   * (continuous tuning); its rank must be adapterSize, and its alpha and targets become the run's.
   */
  initAdapter?: string;
  /** Stop after this many epochs of this invocation (tests of resume use it). */
  stopAfterEpochs?: number;
  /** Awaited: a listener that returns a promise (a database write) holds the next step until it settles. */
  onEvent?: (e: TrainEvent) => void | Promise<void>;
}

export type TrainEvent =
  | { type: 'start'; totalSteps: number; stepsPerEpoch: number; examples: number; trainableParameters: number; truncated: number[]; dropped: { index: number; reason: string }[];
      /** Layers whose activations the backward pass recomputes, of `layers`. */
      recomputedLayers: number; layers: number }
  | { type: 'step'; metrics: StepMetrics }
  | { type: 'eval'; metrics: EvalMetrics }
  | { type: 'checkpoint'; epoch: number; dir: string }
  | { type: 'done'; outDir: string; seconds: number };

export interface StepMetrics {
  step: number;
  epoch: number;
  train_total_loss: number;
  train_fraction_of_correct_next_step_preds: number;
  train_num_predictions: number;
  learning_rate: number;
  grad_norm: number;
  tokens_per_second: number;
  elapsed_seconds: number;
  total_steps: number;
}

export interface EvalMetrics {
  step: number;
  epoch: number;
  eval_total_loss: number;
  eval_fraction_of_correct_next_step_preds: number;
  eval_num_predictions: number;
}

export const DEFAULT_TUNE_OPTIONS = {
  mode: 'lora', adapterSize: 8, epochs: 3, learningRateMultiplier: 1, warmupRatio: 0.03, decay: 'linear',
  weightDecay: 0, clipNorm: 1, batchTokens: 2048, gradAccum: 1, maxSeqLen: 2048, seed: 0, evalEverySteps: 0, recompute: 'auto',
} as const satisfies Partial<TuneOptions>;

/** Checks the options both executors share (src/train/trl-executor.ts runs the same checks). */
export function validateTuneOptions(o: TuneOptions): void {
  if (o.mode === 'lora' && !(ADAPTER_SIZES as readonly number[]).includes(o.adapterSize)) {
    throw new InvalidRequestError(`adapter size ${o.adapterSize} is not supported (supported: ${ADAPTER_SIZES.join(', ')})`);
  }
  if (!Number.isInteger(o.epochs) || o.epochs < 1 || o.epochs > 100) throw new InvalidRequestError(`epochs must be an integer in 1..100, got ${o.epochs}`);
  if (!(o.learningRateMultiplier > 0 && o.learningRateMultiplier <= 100)) throw new InvalidRequestError(`learning rate multiplier must be in (0, 100], got ${o.learningRateMultiplier}`);
  if (!Number.isInteger(o.maxSeqLen) || o.maxSeqLen < 8) throw new InvalidRequestError(`max sequence length must be an integer >= 8, got ${o.maxSeqLen}`);
  if (!Number.isInteger(o.batchTokens) || o.batchTokens < o.maxSeqLen) throw new InvalidRequestError(`batch tokens (${o.batchTokens}) must be an integer >= the max sequence length (${o.maxSeqLen})`);
  if (!Number.isInteger(o.gradAccum) || o.gradAccum < 1) throw new InvalidRequestError(`gradient accumulation must be a positive integer, got ${o.gradAccum}`);
  if (!(o.warmupRatio >= 0 && o.warmupRatio < 1)) throw new InvalidRequestError(`warmup ratio must be in [0, 1), got ${o.warmupRatio}`);
  if (!(o.clipNorm >= 0)) throw new InvalidRequestError(`clip norm must be >= 0 (0 disables), got ${o.clipNorm}`);
}

/** A dataset rendered with the model's chat template: tokens and loss mask per example. */
export async function tokenizeDataset(file: string, tokenizer: Tokenizer): Promise<TrainingExample[]> {
  const { conversations } = await readDataset(file);
  return conversations.map((c, index) => {
    const r = renderForTraining(c, tokenizer);
    return { tokens: r.tokens, lossMask: r.lossMask, index };
  });
}

export async function tune(o: TuneOptions): Promise<{ outDir: string; finalLoss: number | null }> {
  validateTuneOptions(o);
  const t0 = performance.now();
  const model = await loadModel(o.baseDir);
  if (o.maxSeqLen > model.config.maxPositionEmbeddings) {
    throw new InvalidRequestError(`max sequence length ${o.maxSeqLen} exceeds the model's context (${model.config.maxPositionEmbeddings})`);
  }
  const train = await tokenizeDataset(o.trainFile, model.tokenizer);
  const validation = o.validationFile ? await tokenizeDataset(o.validationFile, model.tokenizer) : [];
  const batching = batchingOf(o);
  const firstEpoch = planEpoch(train, 0, batching);
  const stepsPerEpoch = firstEpoch.steps.length;
  if (stepsPerEpoch === 0) throw new InvalidRequestError(`${o.trainFile}: no example has a token to train on`);
  const totalSteps = runSteps(train, o.epochs, batching);
  const maxTokens = Math.max(o.batchTokens, o.maxSeqLen);

  // Trainable parameters and their gradients.
  let lora: LoraAdapter | undefined;
  let loraGrads: LoraAdapter | undefined;
  let weights: ModelWeights = model.weights;
  let weightGrads: ModelWeights | undefined;
  const groups: ParamGroup[] = [];
  const init = initialAdapter(o, model.config);
  if (o.mode === 'lora') {
    const lc = loraConfigFor(o, init);
    const n = loraParameterCount(model.config, lc);
    const params = new Float32Array(n);
    const grads = new Float32Array(n);
    lora = initLoraAdapter(model.config, lc, o.seed, params);
    lora.baseModel = path.resolve(o.baseDir);
    if (init) {
      init.layers.forEach((pairs, l) => {
        for (const [t, pair] of Object.entries(pairs)) {
          const dst = lora!.layers[l]![t as LoraTarget]!;
          dst.A.set(pair.A);
          dst.B.set(pair.B);
        }
      });
    }
    loraGrads = initLoraAdapter(model.config, lc, o.seed, grads);
    grads.fill(0);
    groups.push(createParamGroup('lora', params, grads));
  } else {
    weights = assembleWeights(model.config, (s) => getTensor(model.weights, s).slice());
    weightGrads = assembleWeights(model.config, (s) => new Float32Array(getTensor(model.weights, s).length));
    for (const spec of tensorSpecs(model.config)) groups.push(createParamGroup(spec.name, getTensor(weights, spec), getTensor(weightGrads, spec)));
  }
  const trainable = groups.reduce((a, g) => a + g.param.length, 0);
  const recompute = recomputeLayers(model.config, { maxTokens, loraRank: lora?.config.rank ?? 0, dropout: (lora?.config.dropout ?? 0) > 0, mode: o.recompute });
  const tm = new TrainableModel(model.config, weights, { maxTokens, lora, loraGrads, weightGrads, recomputeLayers: recompute });
  const peak = (o.learningRate ?? DEFAULT_LEARNING_RATE[o.mode]) * o.learningRateMultiplier;
  const warmupSteps = warmupStepsFor(totalSteps, o.warmupRatio);
  const fingerprint = fingerprintOf(o, model.config, train.length);

  let state: TrainerState = { epoch: 0, step: 0, totalSteps, fingerprint, elapsedSeconds: 0 };
  if (o.resume) state = readCheckpoint(o.resume, groups, fingerprint);
  fs.mkdirSync(o.outDir, { recursive: true });
  const metricsFile = path.join(o.outDir, 'metrics.jsonl');
  if (!o.resume) fs.writeFileSync(metricsFile, '');
  const record = (m: object) => fs.appendFileSync(metricsFile, JSON.stringify(m) + '\n');
  o.onEvent?.({ type: 'start', totalSteps, stepsPerEpoch, examples: train.length, trainableParameters: trainable, truncated: firstEpoch.truncated, dropped: firstEpoch.dropped, recomputedLayers: recompute, layers: model.config.numLayers });

  const elapsedBefore = state.elapsedSeconds;
  const runStart = performance.now();
  const elapsed = () => elapsedBefore + (performance.now() - runStart) / 1000;
  let lastLoss: number | null = null;
  const evaluate = async (epoch: number) => {
    if (validation.length === 0) return;
    const plan = planEpoch(validation, 0, { ...batching, shuffle: false, gradAccum: 1 });
    let loss = 0, correct = 0, count = 0;
    for (const s of plan.steps) for (const b of s.batches) {
      const r = tm.evaluate(b);
      loss += r.lossSum;
      correct += r.correct;
      count += r.count;
    }
    const m: EvalMetrics = {
      step: state.step, epoch, eval_total_loss: count ? loss / count : 0,
      eval_fraction_of_correct_next_step_preds: count ? correct / count : 0, eval_num_predictions: count,
    };
    record(m);
    await o.onEvent?.({ type: 'eval', metrics: m });
  };

  let epochsThisRun = 0;
  for (let epoch = state.epoch; epoch < o.epochs; epoch++) {
    const plan = epoch === 0 ? firstEpoch : planEpoch(train, epoch, batching);
    for (const step of plan.steps) {
      const tStep = performance.now();
      state.step++;
      const r = runStep(tm, step, groups, dropoutKey(o.seed, state.step));
      const lr = learningRateAt(state.step, totalSteps, peak, warmupSteps, o.decay);
      const norm = gradNorm(groups);
      const clip = o.clipNorm > 0 && norm > o.clipNorm ? o.clipNorm / norm : 1;
      adamwStep(groups, state.step, lr, { ...DEFAULT_ADAMW, weightDecay: o.weightDecay }, clip);
      const seconds = (performance.now() - tStep) / 1000;
      lastLoss = r.count ? r.lossSum / r.count : 0;
      const m: StepMetrics = {
        step: state.step, epoch: epoch + 1, train_total_loss: lastLoss,
        train_fraction_of_correct_next_step_preds: r.count ? r.correct / r.count : 0, train_num_predictions: r.count,
        learning_rate: lr, grad_norm: norm, tokens_per_second: step.tokens / seconds, elapsed_seconds: elapsed(), total_steps: totalSteps,
      };
      record(m);
      await o.onEvent?.({ type: 'step', metrics: m });
      if (o.evalEverySteps > 0 && state.step % o.evalEverySteps === 0) await evaluate(epoch + 1);
    }
    state.epoch = epoch + 1;
    state.elapsedSeconds = elapsed();
    await evaluate(epoch + 1);
    const dir = checkpointDir(o.outDir, epoch + 1);
    writeCheckpoint(dir, groups, state, (tmp) => writeOutput(tmp, model, lora, weights, false));
    await o.onEvent?.({ type: 'checkpoint', epoch: epoch + 1, dir });
    epochsThisRun++;
    if (o.stopAfterEpochs !== undefined && epochsThisRun >= o.stopAfterEpochs && state.epoch < o.epochs) {
      return { outDir: o.outDir, finalLoss: lastLoss };
    }
  }
  writeOutput(o.outDir, model, lora, weights, true);
  await o.onEvent?.({ type: 'done', outDir: o.outDir, seconds: (performance.now() - t0) / 1000 });
  return { outDir: o.outDir, finalLoss: lastLoss };
}

/** Forward/backward over the step's micro-batches; gradients of the step's mean loss accumulate. */
function runStep(tm: TrainableModel, step: StepPlan, groups: ParamGroup[], dropoutSeed: number) {
  for (const g of groups) g.grad.fill(0);
  let lossSum = 0, correct = 0, count = 0;
  for (const [i, b] of step.batches.entries()) {
    const r = tm.forwardBackward(b, step.targets, dropoutKey(dropoutSeed, i));
    lossSum += r.lossSum;
    correct += r.correct;
    count += r.count;
  }
  return { lossSum, correct, count };
}

/** The adapter (PEFT) or, in full mode, a complete model directory. */
function writeOutput(dir: string, model: LoadedModel, lora: LoraAdapter | undefined, weights: ModelWeights, final: boolean): void {
  if (lora) {
    saveAdapter(dir, lora, { inferenceMode: final });
    return;
  }
  for (const f of fs.readdirSync(model.dir)) {
    const keep = (f.endsWith('.json') && !f.startsWith('model.safetensors')) || f === 'chat_template.jinja';
    if (keep) fs.copyFileSync(path.join(model.dir, f), path.join(dir, f));
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), tensorSpecs(model.config).map((s) => ({ name: s.name, shape: s.shape, data: getTensor(weights, s) })));
}

/** The initial adapter of a continuous tuning run (checked against the run's options), or undefined. */
export function initialAdapter(o: TuneOptions, config: ModelConfig): LoraAdapter | undefined {
  const init = o.initAdapter === undefined ? undefined : loadAdapter(o.initAdapter, config);
  if (init && o.mode !== 'lora') throw new InvalidRequestError(`an initial adapter (${o.initAdapter}) needs LoRA mode`);
  if (init && init.config.rank !== o.adapterSize) {
    throw new InvalidRequestError(`the initial adapter ${o.initAdapter} has rank ${init.config.rank}, but the run's adapter size is ${o.adapterSize}`);
  }
  return init;
}

/** The run's LoRA config: the initial adapter's (with the run's dropout), else the options'. */
export function loraConfigFor(o: TuneOptions, init: LoraAdapter | undefined): LoraConfig {
  const lc = init ? { ...init.config, dropout: o.loraDropout ?? 0 } : defaultLoraConfig(o.adapterSize, {
    ...(o.loraAlpha !== undefined ? { alpha: o.loraAlpha } : {}),
    ...(o.targets ? { targets: o.targets } : {}),
    dropout: o.loraDropout ?? 0,
  });
  validateLoraConfig(lc);
  return lc;
}

export function batchingOf(o: TuneOptions): BatchingOptions {
  return { maxSeqLen: o.maxSeqLen, batchTokens: o.batchTokens, gradAccum: o.gradAccum, seed: o.seed, shuffle: true };
}

/** Hash of what a resume must not change; `executor` keeps one executor's checkpoints from the other's resume. */
export function fingerprintOf(o: TuneOptions, config: ModelConfig, examples: number, executor?: string): string {
  const h = crypto.createHash('sha256');
  const keep = {
    mode: o.mode, adapterSize: o.adapterSize, loraAlpha: o.loraAlpha, targets: o.targets, epochs: o.epochs,
    lrm: o.learningRateMultiplier, lr: o.learningRate, warmup: o.warmupRatio, decay: o.decay, wd: o.weightDecay, clip: o.clipNorm,
    batchTokens: o.batchTokens, gradAccum: o.gradAccum, maxSeqLen: o.maxSeqLen, seed: o.seed, examples,
    model: config, ...(executor ? { executor } : {}),
  };
  h.update(JSON.stringify(keep));
  if (o.initAdapter) h.update(fs.readFileSync(path.join(o.initAdapter, 'adapter_model.safetensors')));
  for (const f of [o.trainFile, o.validationFile]) if (f) h.update(fs.readFileSync(f));
  return h.digest('hex').slice(0, 16);
}
