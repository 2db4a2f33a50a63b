// Small packed training batches for tests: examples of random tokens, back to back, with loss on a
// chosen share of positions.

import { Random } from '../../src/engine/random.js';
import type { TrainBatch } from '../../src/train/trainable-model.js';

export function randomPackedBatch(lengths: number[], vocab: number, seed: number, lossShare = 0.7): TrainBatch {
  const rng = new Random(seed);
  const N = lengths.reduce((a, b) => a + b, 0);
  const tokens = new Int32Array(N);
  const targets = new Int32Array(N).fill(-1);
  const positions = new Int32Array(N);
  const segStart = new Int32Array(N);
  let t = 0;
  for (const len of lengths) {
    const start = t;
    for (let i = 0; i < len; i++, t++) {
      tokens[t] = Math.floor(rng.next() * vocab);
      positions[t] = i;
      segStart[t] = start;
    }
    for (let i = start; i < t - 1; i++) if (rng.next() < lossShare) targets[i] = tokens[i + 1]!;
  }
  return { N, tokens, targets, positions, segStart };
}
