// Next-token selection from logits: greedy, or temperature → top-k → top-p sampling in that order
// (as Hugging Face's logits warpers apply them). A seeded Random makes sampling reproducible.

import { Random } from '../engine/random.js';
import { InvalidRequestError } from '../errors.js';

export interface SamplingOptions {
  /** 0 means greedy. */
  temperature: number;
  /** 0 or undefined: no top-k cut. */
  topK?: number;
  /** 1 or undefined: no nucleus cut. */
  topP?: number;
}

export function validateSampling(o: SamplingOptions): void {
  if (!(o.temperature >= 0) || !Number.isFinite(o.temperature)) throw new InvalidRequestError(`temperature must be >= 0, got ${o.temperature}`);
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0)) throw new InvalidRequestError(`topK must be a non-negative integer, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new InvalidRequestError(`topP must be in (0, 1], got ${o.topP}`);
}

export function argmax(logits: Float32Array, n = logits.length): number {
  let best = 0;
  let bestValue = logits[0];
  for (let i = 1; i < n; i++) {
    if (logits[i] > bestValue) {
      bestValue = logits[i];
      best = i;
    }
  }
  return best;
}

/** Picks a token id; `allowed` (when given) limits the choice to ids below it (padded vocabularies). */
export function sampleToken(logits: Float32Array, o: SamplingOptions, rng: Random, allowed = logits.length): number {
  if (o.temperature === 0 || o.topK === 1) return argmax(logits, allowed);
  const invT = 1 / o.temperature;
  // Candidates sorted by logit, cut to top-k early so the sort stays cheap for big vocabularies.
  let ids: number[];
  const k = o.topK && o.topK > 0 ? Math.min(o.topK, allowed) : allowed;
  if (k < allowed) ids = topKIndices(logits, k, allowed);
  else {
    ids = Array.from({ length: allowed }, (_, i) => i);
    ids.sort((a, b) => logits[b] - logits[a]);
  }
  const max = logits[ids[0]!] * invT;
  const probs = new Float64Array(ids.length);
  let sum = 0;
  for (let i = 0; i < ids.length; i++) {
    const p = Math.exp(logits[ids[i]!] * invT - max);
    probs[i] = p;
    sum += p;
  }
  let n = ids.length;
  const topP = o.topP ?? 1;
  if (topP < 1) {
    // Keep the smallest prefix whose mass reaches topP (always at least one token).
    let acc = 0;
    for (let i = 0; i < ids.length; i++) {
      acc += probs[i]! / sum;
      if (acc >= topP) {
        n = i + 1;
        break;
      }
    }
    sum = 0;
    for (let i = 0; i < n; i++) sum += probs[i]!;
  }
  let r = rng.next() * sum;
  for (let i = 0; i < n; i++) {
    r -= probs[i]!;
    if (r < 0) return ids[i]!;
  }
  return ids[n - 1]!;
}

/** Indices of the k largest values among the first n, largest first (ties: lower index first). */
function topKIndices(x: Float32Array, k: number, n: number): number[] {
  const heap: number[] = []; // min-heap by value
  const less = (a: number, b: number) => x[a] < x[b] || (x[a] === x[b] && a > b);
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let i = 0; i < n; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let j = heap.length - 1; j > 0; ) {
        const p = (j - 1) >> 1;
        if (!less(heap[j]!, heap[p]!)) break;
        [heap[j], heap[p]] = [heap[p]!, heap[j]!];
        j = p;
      }
    } else if (less(heap[0]!, i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => x[b] - x[a] || a - b);
}
