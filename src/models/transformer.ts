// One sequence at a time on the model core (src/core/decoder.ts): a KVCache is a KV store holding one
// sequence, and forward(tokens, cache) runs them as a one-sequence batch. This is what tools, tests,
// benchmarks and `tunekit generate` use; servers batch many sequences through the core directly
// (src/serve). An adapter runs unmerged: withAdapter shares the base weights and the decoder.
// Dimension letters: T tokens in a call, V vocab.

import type { ModelConfig } from './config.js';
import type { ModelWeights } from './weights.js';
import type { LoraAdapter } from '../lora/lora.js';
import { Decoder, type AdapterLookup } from '../core/decoder.js';
import { KVStore } from '../core/kv-store.js';
import { sequenceBatch } from '../core/batch.js';
import { InvalidRequestError } from '../errors.js';

/** Keys and values of one sequence; `length` tokens are filled. */
export class KVCache {
  readonly store: KVStore;
  readonly seq: number;
  constructor(config: ModelConfig, readonly maxSeq: number) {
    this.store = new KVStore(config);
    this.seq = this.store.allocate(maxSeq);
  }

  get length(): number {
    return this.store.length(this.seq);
  }

  /** Forgets everything after the first n tokens (their slots are overwritten later). */
  truncate(n: number): void {
    this.store.truncate(this.seq, n);
  }
}

/** Tokens per forward chunk: bounds activation memory for long prompts. */
const MAX_CHUNK = 512;

/** Id of the adapter in one-sequence batches. */
const ADAPTER = 0;

export class Transformer {
  readonly decoder: Decoder;
  readonly adapter: LoraAdapter | undefined;
  private readonly adapters: AdapterLookup | undefined;

  constructor(config: ModelConfig, weights: ModelWeights, adapter?: LoraAdapter);
  constructor(decoder: Decoder, adapter?: LoraAdapter);
  constructor(a: ModelConfig | Decoder, b?: ModelWeights | LoraAdapter, c?: LoraAdapter) {
    this.decoder = a instanceof Decoder ? a : new Decoder(a, b as ModelWeights);
    this.adapter = a instanceof Decoder ? b as LoraAdapter | undefined : c;
    const entry = this.adapter ? { adapter: this.adapter } : undefined;
    this.adapters = entry ? { get: (id) => (id === ADAPTER ? entry : undefined) } : undefined;
  }

  get config(): ModelConfig {
    return this.decoder.config;
  }

  get weights(): ModelWeights {
    return this.decoder.weights;
  }

  /** The same base model with `adapter` applied, unmerged; the base weights are shared, not copied. */
  withAdapter(adapter: LoraAdapter | undefined): Transformer {
    return new Transformer(this.decoder, adapter);
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
      const id = tokens[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new InvalidRequestError(`token id ${id} at index ${i} is outside the vocabulary (0..${V - 1})`);
    }
    const logits = new Float32Array(opts.allLogits ? T * V : V);
    const R = this.adapter?.config.rank ?? 0;
    for (let t0 = 0; t0 < T; t0 += MAX_CHUNK) {
      const n = Math.min(MAX_CHUNK, T - t0);
      const isLast = t0 + n === T;
      const chunk = Array.prototype.slice.call(tokens, t0, t0 + n) as number[];
      const batch = sequenceBatch(chunk, cache.seq, cache.length, {
        adapter: this.adapter ? ADAPTER : undefined, logits: opts.allLogits ? 'all' : isLast ? 'last' : 'none',
      });
      const pass = this.decoder.forward(batch, this.decoder.inferenceWorkspace(n, R), { kv: cache.store, adapters: this.adapters });
      if (opts.allLogits) this.decoder.logits(pass, logits.subarray(t0 * V, (t0 + n) * V));
      else if (isLast) this.decoder.logits(pass, logits);
    }
    return logits;
  }
}
