// From tokenized examples to training steps: each epoch shuffles the examples with its own seed,
// packs them into rows of at most maxSeqLen tokens, concatenates rows into micro-batches of at most
// batchTokens tokens (one forward/backward each) and groups gradAccum micro-batches into a step.
// Deterministic: the same examples, options and seed give the same steps on every machine.

import { packExamples, shuffleInPlace, type PackResult, type TrainingExample } from '../data/packing.js';
import type { TrainBatch } from './trainable-model.js';

export interface StepPlan {
  /** Micro-batches of this step. */
  batches: TrainBatch[];
  /** Loss-carrying targets in the whole step (the mean's denominator). */
  targets: number;
  tokens: number;
}

export interface EpochPlan {
  steps: StepPlan[];
  truncated: number[];
  dropped: PackResult['dropped'];
}

export interface BatchingOptions {
  maxSeqLen: number;
  batchTokens: number;
  gradAccum: number;
  seed: number;
  shuffle: boolean;
}

/**
 * The optimizer steps of a whole run: every epoch is shuffled with its own seed, so first-fit packing
 * may give it a different number of rows, and so of steps, than the first epoch. Plans each epoch and
 * keeps only its count (a plan holds the batches' tokens), so it costs one more planning pass.
 */
export function runSteps(examples: TrainingExample[], epochs: number, o: BatchingOptions): number {
  let steps = 0;
  for (let epoch = 0; epoch < epochs; epoch++) steps += planEpoch(examples, epoch, o).steps.length;
  return steps;
}

/** The steps of epoch `epoch` (0-based). */
export function planEpoch(examples: TrainingExample[], epoch: number, o: BatchingOptions): EpochPlan {
  const order = [...examples];
  if (o.shuffle) shuffleInPlace(order, (o.seed * 1000003 + epoch * 7919) >>> 0);
  const packed = packExamples(order, { maxSeqLen: o.maxSeqLen });
  const micro: TrainBatch[] = [];
  let rows: PackResult['rows'] = [];
  let used = 0;
  const flush = () => {
    if (rows.length) micro.push(concatRows(rows));
    rows = [];
    used = 0;
  };
  for (const row of packed.rows) {
    if (used + row.length > o.batchTokens && rows.length) flush();
    rows.push(row);
    used += row.length;
  }
  flush();
  const steps: StepPlan[] = [];
  for (let i = 0; i < micro.length; i += o.gradAccum) {
    const batches = micro.slice(i, i + o.gradAccum);
    let targets = 0;
    let tokens = 0;
    for (const b of batches) {
      tokens += b.N;
      for (let t = 0; t < b.N; t++) if (b.targets[t]! >= 0) targets++;
    }
    steps.push({ batches, targets, tokens });
  }
  return { steps, truncated: packed.truncated, dropped: packed.dropped };
}

function concatRows(rows: PackResult['rows']): TrainBatch {
  const N = rows.reduce((a, r) => a + r.length, 0);
  const b: TrainBatch = {
    N, tokens: new Int32Array(N), targets: new Int32Array(N), positions: new Int32Array(N), segStart: new Int32Array(N),
  };
  let off = 0;
  for (const row of rows) {
    b.tokens.set(row.tokens.subarray(0, row.length), off);
    b.targets.set(row.targets.subarray(0, row.length), off);
    b.positions.set(row.positions.subarray(0, row.length), off);
    let start = off;
    for (let t = 0; t < row.length; t++) {
      if (t > 0 && row.segments[t] !== row.segments[t - 1]) start = off + t;
      b.segStart[off + t] = start;
    }
    off += row.length;
  }
  return b;
}
