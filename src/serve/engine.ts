// The serving engine of one base model: continuous batching on the model core. Requests wait in a
// bounded queue, then run in one of `parallel` slots; each scheduler pass builds one batch — the next
// token of every generating request, then prompt chunks of requests still reading their prompts, up
// to `batchTokens` rows — runs one forward pass through the decoder, then samples and emits per
// request (each with its own sampler, seed, stop sequences and thinking budget). Requests join and
// leave at token boundaries; a long prompt is spread over passes so it never stalls the others. Rows
// are grouped by adapter, so every adapter's low-rank update is one product per linear layer; rows
// with no adapter pay nothing for the others'.
// A request whose caller leaves (its signal fires, or it stops reading) leaves the queue at once, or
// frees its slot before the next pass. The engine never blocks the event loop for more than one pass.
// Rules: JSON and chat templates stay at the HTTP edge; the engine sees token ids and typed options.

import { CancelledError, ResourceExhaustedError, throwIfAborted } from '../errors.js';
import type { LoadedModel } from '../models/model.js';
import { KVStore } from '../core/kv-store.js';
import { NO_ADAPTER, type Batch } from '../core/batch.js';
import type { Decoder } from '../core/decoder.js';
import { SequenceState, type GenerateOptions, type GenerationChunk, type GenerationResult } from '../generate/sequence.js';
import { AdapterCache, MiB } from './adapters.js';
import { EngineRequest } from './request.js';

export interface EngineOptions {
  /** Requests in the running batch at most (llama.cpp's parallel slots). */
  parallel: number;
  /** Requests waiting for a slot at most; beyond it, submit fails with RESOURCE_EXHAUSTED. */
  maxQueue: number;
  /** Rows of one forward pass at most (decode tokens first, then prompt chunks). */
  batchTokens: number;
  /** Bytes of LoRA adapters kept loaded (least recently used evicted first). */
  adapterMemory: number;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = { parallel: 8, maxQueue: 64, batchTokens: 256, adapterMemory: 512 * MiB };

export interface SubmitOptions extends GenerateOptions {
  /** PEFT adapter directory the request runs with; none: the base model. */
  adapterDir?: string;
}

export interface EngineStats {
  running: number;
  queued: number;
  /** Forward passes run so far. */
  passes: number;
  adapterBytes: number;
  kvBytes: number;
}

/**
 * What the serving layer asks of an engine (tunekit's own below; llama.cpp's in llamacpp-engine.ts):
 * token ids and typed options in, chunks and a result out. The prompt is rendered and tokenized
 * before, and every option is applied by SequenceState, so all engines answer the same request alike.
 */
export interface ServingEngine {
  submit(promptIds: number[], opts: SubmitOptions): AsyncGenerator<GenerationChunk, GenerationResult>;
  submitCandidates(promptIds: number[], opts: SubmitOptions[]): AsyncGenerator<GenerationChunk, GenerationResult>[];
  stats(): EngineStats;
  /** Resolves when no request runs or waits. */
  idle(): Promise<void>;
}

/** Refuses a request when `queued` wait already and no slot is free (serve --max-queue). */
export function checkQueue(queued: number, running: number, opts: Pick<EngineOptions, 'parallel' | 'maxQueue'>): void {
  const waiting = queued + Math.max(0, running + 1 - opts.parallel);
  if (waiting > opts.maxQueue) {
    throw new ResourceExhaustedError(`the generation queue of this model is full: ${opts.maxQueue} requests wait already (serve --max-queue); retry later`);
  }
}

export class Engine implements ServingEngine {
  readonly adapters: AdapterCache;
  private readonly kv: KVStore;
  private readonly decoder: Decoder;
  private readonly queue: EngineRequest[] = [];
  private readonly running: EngineRequest[] = [];
  private readonly opts: EngineOptions;
  private looping = false;
  private wake: (() => void) | null = null;
  private idleWaiters: Array<() => void> = [];
  private passes = 0;

  constructor(readonly model: LoadedModel, opts: Partial<EngineOptions> = {}) {
    this.opts = { ...DEFAULT_ENGINE_OPTIONS, ...opts };
    this.decoder = model.transformer.decoder;
    this.kv = new KVStore(model.config);
    this.adapters = new AdapterCache(model.config, this.opts.adapterMemory, () => this.kick());
  }

  /**
   * Queues a generation. Checks the request (InvalidRequestError), the caller's signal (CancelledError)
   * and the queue's bound (ResourceExhaustedError) before anything is queued; returns the stream of its
   * chunks, ending with the result. Stopping reading the stream cancels the request.
   */
  submit(promptIds: number[], opts: SubmitOptions): AsyncGenerator<GenerationChunk, GenerationResult> {
    const state = new SequenceState(this.model, promptIds, opts);
    throwIfAborted(opts.signal);
    checkQueue(this.queue.length, this.running.length, this.opts);
    const req = new EngineRequest(state, opts.adapterDir, opts.signal);
    this.queue.push(req);
    if (opts.signal) {
      const onAbort = () => this.drop(req);
      opts.signal.addEventListener('abort', onAbort, { once: true });
      const it = req.read(() => this.kick());
      const detach = () => opts.signal!.removeEventListener('abort', onAbort);
      this.start();
      return withFinally(it, detach);
    }
    this.start();
    return req.read(() => this.kick());
  }

  /**
   * Queues one request with several candidates (Vertex candidateCount, OpenAI n): the prompt is read
   * once, by the first; the others fork from it — a copy of its KV rows and of its first logits — and
   * then decode as requests of their own, each with its options (its seed). One stream per candidate;
   * the group is admitted when the first one is and then holds one slot per candidate.
   */
  submitCandidates(promptIds: number[], opts: SubmitOptions[]): AsyncGenerator<GenerationChunk, GenerationResult>[] {
    if (opts.length === 1) return [this.submit(promptIds, opts[0]!)];
    const states = opts.map((o) => new SequenceState(this.model, promptIds, o));
    const signal = opts[0]!.signal;
    throwIfAborted(signal);
    checkQueue(this.queue.length, this.running.length, this.opts);
    const reqs = states.map((st, i) => new EngineRequest(st, opts[i]!.adapterDir, signal));
    const [leader, ...followers] = reqs as [EngineRequest, ...EngineRequest[]];
    leader.followers = followers;
    this.queue.push(leader);
    const streams = reqs.map((r) => r.read(() => this.kick()));
    if (signal) {
      const onAbort = () => { for (const r of reqs) this.drop(r); };
      signal.addEventListener('abort', onAbort, { once: true });
      let open = reqs.length;
      const detach = () => { if (--open === 0) signal.removeEventListener('abort', onAbort); };
      this.start();
      return streams.map((it) => withFinally(it, detach));
    }
    this.start();
    return streams;
  }

  /** Cancels a request now: out of the queue at once; out of the batch before the next pass. */
  private drop(req: EngineRequest): void {
    req.cancel();
    const i = this.queue.indexOf(req);
    if (i >= 0) this.queue.splice(i, 1);
    this.kick();
  }

  stats(): EngineStats {
    return {
      running: this.running.length, queued: this.queue.length, passes: this.passes,
      adapterBytes: this.adapters.bytes, kvBytes: this.kv.bytes,
    };
  }

  /** Resolves when no request runs or waits. */
  idle(): Promise<void> {
    if (!this.looping && this.queue.length === 0 && this.running.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private start(): void {
    if (this.looping) {
      this.kick();
      return;
    }
    this.looping = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.reap();
        this.admit();
        if (this.running.length === 0) {
          if (this.queue.length === 0) break;
          // Everything waits for an adapter to load or for memory: sleep until something changes.
          await new Promise<void>((resolve) => { this.wake = resolve; });
          continue;
        }
        this.pass();
        // One pass at a time: HTTP handlers, aborts and adapter loads run between passes.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.looping = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Frees the slots of requests that finished, failed or were cancelled. */
  private reap(): void {
    for (let i = this.running.length - 1; i >= 0; i--) {
      const r = this.running[i]!;
      if (!r.over) continue;
      // A first candidate that ended before its prompt was read takes the others with it.
      for (const f of r.followers) if (f.phase === 'forked') f.fail(new CancelledError('the request was cancelled'));
      r.followers = [];
      this.running.splice(i, 1);
      this.kv.release(r.seq);
      if (r.adapterId !== NO_ADAPTER) this.adapters.release(r.adapterId);
    }
  }

  /** Moves queued requests into free slots, oldest first, skipping those whose adapter is not ready. */
  private admit(): void {
    for (let i = 0; i < this.queue.length && this.running.length < this.opts.parallel; ) {
      const r = this.queue[i]!;
      let adapterId = NO_ADAPTER;
      if (r.adapterDir !== undefined) {
        let got: number | 'wait';
        try {
          got = this.adapters.acquire(r.adapterDir);
        } catch (err) {
          this.queue.splice(i, 1);
          r.fail(err);
          continue;
        }
        if (got === 'wait') {
          i++;
          continue;
        }
        adapterId = got;
      }
      this.queue.splice(i, 1);
      r.adapterId = adapterId;
      r.seq = this.kv.allocate(r.state.contextSize);
      r.phase = 'prompt';
      r.startedAt = performance.now();
      this.running.push(r);
      for (const f of r.followers) {
        if (f.over) continue;
        f.adapterId = adapterId === NO_ADAPTER ? NO_ADAPTER : this.adapters.acquire(f.adapterDir!) as number;
        f.seq = this.kv.allocate(f.state.contextSize);
        f.phase = 'forked';
        f.startedAt = r.startedAt;
        this.running.push(f);
      }
    }
    this.adapters.dropFailed();
  }

  /** One forward pass over every running request's next rows; then sampling and emission. */
  private pass(): void {
    interface Part { req: EngineRequest; tokens: readonly number[]; pos0: number; logits: boolean }
    const parts: Part[] = [];
    let rows = 0;
    for (const r of this.running) {
      if (r.phase !== 'generating') continue;
      parts.push({ req: r, tokens: r.feed, pos0: this.kv.length(r.seq), logits: true });
      rows += r.feed.length;
    }
    // Prompt chunks fill what is left of the pass, oldest request first; at least one chunk per pass.
    let budget = Math.max(this.opts.batchTokens - rows, 1);
    for (const r of this.running) {
      if (r.phase !== 'prompt' || budget <= 0) continue;
      const n = Math.min(budget, r.promptIds.length - r.fed);
      const done = r.fed + n === r.promptIds.length;
      parts.push({ req: r, tokens: r.promptIds.slice(r.fed, r.fed + n), pos0: r.fed, logits: done });
      r.fed += n;
      budget -= n;
      rows += n;
    }
    // Rows grouped by adapter: one low-rank product per adapter and layer.
    parts.sort((a, b) => a.req.adapterId - b.req.adapterId);
    const batch = buildBatch(parts.map((p) => ({ tokens: p.tokens, seq: p.req.seq, pos0: p.pos0, adapter: p.req.adapterId, logits: p.logits })), rows);
    const R = this.adapters.maxRank;
    let logits: Float32Array;
    try {
      const pass = this.decoder.forward(batch, this.decoder.inferenceWorkspace(rows, R), { kv: this.kv, adapters: this.adapters });
      logits = this.decoder.logits(pass);
    } catch (err) {
      for (const p of parts) p.req.fail(err);
      return;
    } finally {
      this.passes++;
    }
    const V = this.model.config.vocabSize;
    let k = 0;
    for (const p of parts) {
      if (!p.logits) continue;
      const row = logits.subarray(k * V, (k + 1) * V);
      k++;
      const r = p.req;
      if (r.over) continue; // cancelled during the pass
      if (r.phase === 'prompt') {
        r.phase = 'generating';
        r.firstTokenAt = performance.now();
        // The other candidates fork here: the prompt's KV rows and these logits, before next() changes them.
        for (const f of r.followers) {
          if (f.over) continue;
          this.fork(r.seq, f.seq);
          f.phase = 'generating';
          f.firstTokenAt = r.firstTokenAt;
          this.step(f, row.slice());
        }
        r.followers = [];
      }
      this.step(r, row);
    }
  }

  /** Samples a request's next token from its logits row and emits what it wrote. */
  private step(r: EngineRequest, row: Float32Array): void {
    try {
      const { chunks, feed } = r.state.next(row);
      r.push(chunks);
      r.feed = feed;
      if (r.state.finished) r.complete();
    } catch (err) {
      r.fail(err);
    }
  }

  /** Copies the KV rows of sequence `from` into the empty sequence `to` (a candidate forking from the prompt). */
  private fork(from: number, to: number): void {
    const n = this.kv.length(from);
    const K = this.model.config.numKvHeads * this.model.config.headDim;
    this.kv.append(to, 0, n);
    for (let l = 0; l < this.model.config.numLayers; l++) {
      this.kv.keys(to, l).set(this.kv.keys(from, l).subarray(0, n * K));
      this.kv.values(to, l).set(this.kv.values(from, l).subarray(0, n * K));
    }
  }
}

/** The batch of a pass: each part's tokens at consecutive positions of its sequence. */
function buildBatch(parts: Array<{ tokens: readonly number[]; seq: number; pos0: number; adapter: number; logits: boolean }>, N: number): Batch {
  const b: Batch = {
    N, tokens: new Int32Array(N), positions: new Int32Array(N), seqIds: new Int32Array(N), adapters: new Int32Array(N), logits: new Uint8Array(N),
  };
  let t = 0;
  for (const p of parts) {
    for (let i = 0; i < p.tokens.length; i++, t++) {
      b.tokens[t] = p.tokens[i]!;
      b.positions[t] = p.pos0 + i;
      b.seqIds[t] = p.seq;
      b.adapters![t] = p.adapter;
    }
    if (p.logits) b.logits![t - 1] = 1;
  }
  return b;
}

/** `it` with `onDone` run once when it ends, throws or is returned early. */
export async function* withFinally<T, R>(it: AsyncGenerator<T, R>, onDone: () => void): AsyncGenerator<T, R> {
  try {
    return yield* it;
  } finally {
    onDone();
  }
}
