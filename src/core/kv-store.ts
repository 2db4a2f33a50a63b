// Keys and values of every sequence the model is working on, per layer, keyed by sequence id (as
// llama.cpp's KV cache is by seq_id). Sequences are allocated, released and reused; a released id's
// buffers are kept for the next sequence, so a server's memory stays flat. Each sequence has its own
// context limit; its buffers grow on demand up to it. A sequence can be truncated (tokens after the
// first n are forgotten and overwritten later).
// The key of the token at position p lives in row p of the sequence's (capacity, K) buffer, after
// RoPE (and q/k norm); attention reads rows 0 … p.
// Dimension letters: L layers, K = NKV·HD.

import { InvalidRequestError } from '../errors.js';
import type { ModelConfig } from '../models/config.js';

interface Sequence {
  k: Float32Array[]; // L x (capacity, K)
  v: Float32Array[]; // L x (capacity, K)
  capacity: number;
  length: number;
  limit: number;
  live: boolean;
}

/** Rows a sequence's buffers start with; they double from there. */
const MIN_CAPACITY = 64;

export class KVStore {
  private readonly seqs: Sequence[] = [];
  private readonly freeIds: number[] = [];
  private readonly K: number;

  constructor(readonly config: ModelConfig) {
    this.K = config.numKvHeads * config.headDim;
  }

  /** A new sequence holding no tokens, with room for at most `limit` of them. */
  allocate(limit: number): number {
    if (!Number.isInteger(limit) || limit < 1) throw new InvalidRequestError(`a sequence needs a context of at least 1 token, got ${limit}`);
    const id = this.freeIds.pop();
    if (id !== undefined) {
      const s = this.seqs[id]!;
      Object.assign(s, { length: 0, limit, live: true });
      return id;
    }
    this.seqs.push({ k: [], v: [], capacity: 0, length: 0, limit, live: true });
    return this.seqs.length - 1;
  }

  /** Frees a sequence; its id (and buffers) go to the next allocate. Idempotent. */
  release(seq: number): void {
    const s = this.seqs[seq];
    if (!s || !s.live) return;
    s.live = false;
    s.length = 0;
    this.freeIds.push(seq);
  }

  private get(seq: number): Sequence {
    const s = this.seqs[seq];
    if (!s || !s.live) throw new Error(`internal: KV sequence ${seq} is not allocated`);
    return s;
  }

  length(seq: number): number {
    return this.get(seq).length;
  }

  limit(seq: number): number {
    return this.get(seq).limit;
  }

  /** Forgets everything after the first n tokens. */
  truncate(seq: number, n: number): void {
    const s = this.get(seq);
    s.length = Math.max(0, Math.min(s.length, n));
  }

  /**
   * Makes room for tokens at positions pos0 … pos0 + rows − 1 and records them as filled. The run must
   * start within or right after what the sequence holds.
   */
  append(seq: number, pos0: number, rows: number): void {
    const s = this.get(seq);
    if (pos0 > s.length) throw new InvalidRequestError(`sequence ${seq} holds ${s.length} tokens; position ${pos0} leaves a gap`);
    const need = pos0 + rows;
    if (need > s.limit) throw new InvalidRequestError(`the prompt and output need ${need} tokens but the context holds ${s.limit}`);
    if (need > s.capacity) this.grow(s, Math.min(s.limit, Math.max(need, 2 * s.capacity, MIN_CAPACITY)));
    s.length = need;
  }

  private grow(s: Sequence, capacity: number): void {
    const L = this.config.numLayers;
    const keep = s.length * this.K;
    const grown = (old: Float32Array | undefined) => {
      const b = new Float32Array(capacity * this.K);
      if (old && keep > 0) b.set(old.subarray(0, keep));
      return b;
    };
    s.k = Array.from({ length: L }, (_, l) => grown(s.k[l]));
    s.v = Array.from({ length: L }, (_, l) => grown(s.v[l]));
    s.capacity = capacity;
  }

  /** Layer l's keys of a sequence, (capacity, K); rows past its length are stale. */
  keys(seq: number, l: number): Float32Array {
    return this.get(seq).k[l]!;
  }

  values(seq: number, l: number): Float32Array {
    return this.get(seq).v[l]!;
  }

  /** Sequences currently allocated. */
  get live(): number {
    return this.seqs.length - this.freeIds.length;
  }

  /** Bytes held by key and value buffers, live or kept for reuse. */
  get bytes(): number {
    return this.seqs.reduce((n, s) => n + 2 * this.config.numLayers * s.capacity * this.K * 4, 0);
  }
}
