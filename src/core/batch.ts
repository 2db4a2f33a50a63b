// The batch the model core runs, in the shape of llama.cpp's llama_batch: one row per token, each
// with its position, the sequence it belongs to, the adapter that applies to it (or none), optionally
// the next token that carries loss, and whether the caller wants its logits. planBatch checks a batch
// once and derives what the layers need: runs of rows of one sequence (attention), runs of rows of one
// adapter (LoRA), and for batches without a KV store, the first row of each row's sequence.
// Rules: rows of one sequence that are adjacent in the batch must have consecutive positions; without
// a KV store, a sequence is one run starting at position 0 (a packed training batch).

import { InvalidRequestError } from '../errors.js';

/** No adapter on this row. */
export const NO_ADAPTER = -1;

export interface Batch {
  N: number;
  tokens: Int32Array; // (N)
  positions: Int32Array; // (N)
  seqIds: Int32Array; // (N)
  /** Adapter id per row, NO_ADAPTER for none; absent: no row has one. */
  adapters?: Int32Array; // (N)
  /** Next token where it carries loss, else -1 (training and evaluation). */
  targets?: Int32Array; // (N)
  /** 1 where the caller wants the row's logits (generation). */
  logits?: Uint8Array; // (N)
}

/** Rows [start, start + rows) of one sequence at positions pos0 … pos0 + rows − 1. */
export interface SeqRun {
  seq: number;
  start: number;
  rows: number;
  pos0: number;
}

/** Rows [start, start + rows) sharing one adapter. */
export interface IdRun {
  id: number;
  start: number;
  rows: number;
}

export interface BatchPlan {
  seqRuns: SeqRun[];
  adapterRuns: IdRun[];
  /** Per row, the index of the first row of its sequence (batches without a KV store). */
  segStart: Int32Array; // (N)
  /** Rows whose logits are wanted, in order. */
  logitRows: number[];
}

export function planBatch(b: Batch, vocabSize: number, withKv: boolean): BatchPlan {
  const { N, tokens, positions, seqIds } = b;
  if (N < 1) throw new InvalidRequestError('forward: no tokens given');
  for (let t = 0; t < N; t++) {
    const id = tokens[t]!;
    if (!(id >= 0 && id < vocabSize)) throw new InvalidRequestError(`token id ${id} at index ${t} is outside the vocabulary (0..${vocabSize - 1})`);
  }
  const seqRuns: SeqRun[] = [];
  const segStart = new Int32Array(N);
  for (let t = 0; t < N; t++) {
    const last = seqRuns[seqRuns.length - 1];
    if (last && seqIds[t] === last.seq && positions[t] === last.pos0 + last.rows) {
      last.rows++;
    } else {
      if (last && seqIds[t] === last.seq) {
        throw new InvalidRequestError(`row ${t}: position ${positions[t]} does not follow ${last.pos0 + last.rows - 1} of the same sequence`);
      }
      if (positions[t]! < 0) throw new InvalidRequestError(`row ${t}: negative position ${positions[t]}`);
      if (!withKv && positions[t] !== 0) throw new InvalidRequestError(`row ${t}: without a KV store every sequence starts at position 0`);
      seqRuns.push({ seq: seqIds[t]!, start: t, rows: 1, pos0: positions[t]! });
    }
    segStart[t] = seqRuns[seqRuns.length - 1]!.start;
  }
  const adapterRuns: IdRun[] = [];
  if (b.adapters) {
    for (let t = 0; t < N; t++) {
      const id = b.adapters[t]!;
      if (id === NO_ADAPTER) continue;
      const last = adapterRuns[adapterRuns.length - 1];
      if (last && last.id === id && last.start + last.rows === t) last.rows++;
      else adapterRuns.push({ id, start: t, rows: 1 });
    }
  }
  const logitRows: number[] = [];
  if (b.logits) for (let t = 0; t < N; t++) if (b.logits[t]) logitRows.push(t);
  return { seqRuns, adapterRuns, segStart, logitRows };
}

/** One sequence's tokens as a batch (positions from pos0). */
export function sequenceBatch(tokens: ArrayLike<number>, seq: number, pos0: number, opts: { adapter?: number; logits?: 'all' | 'last' | 'none' } = {}): Batch {
  const N = tokens.length;
  for (let i = 0; i < N; i++) {
    if (!Number.isInteger(tokens[i])) throw new InvalidRequestError(`token id ${tokens[i]} at index ${i} is not an integer`);
  }
  const b: Batch = {
    N, tokens: Int32Array.from(tokens as ArrayLike<number>), positions: new Int32Array(N), seqIds: new Int32Array(N).fill(seq),
  };
  for (let t = 0; t < N; t++) b.positions[t] = pos0 + t;
  if (opts.adapter !== undefined && opts.adapter !== NO_ADAPTER) b.adapters = new Int32Array(N).fill(opts.adapter);
  const want = opts.logits ?? 'last';
  if (want !== 'none') {
    b.logits = new Uint8Array(N);
    if (want === 'all') b.logits.fill(1);
    else b.logits[N - 1] = 1;
  }
  return b;
}
