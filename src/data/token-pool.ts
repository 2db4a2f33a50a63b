// Token counting spread over worker threads (tokenization is the costly part of validating with a
// model; parsing stays on the calling thread). Examples go out in batches; results come back through
// `onCount`, possibly out of order (each carries its row). With threads = 0 everything runs inline.
// Bounded memory: at most 2 batches in flight per worker; `submit` waits when that many are out.
// Cancellable: when the pool's AbortSignal fires, its workers are terminated at once (even in the
// middle of an example) and every pending and later call rejects with CancelledError (code CANCELLED).

import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import type { Conversation } from './conversation.js';
import { cancelledError } from './errors.js';
import { countExample, textCounter, type TextCounter, type TokenCount } from './tokens.js';

export interface CountItem {
  row: number;
  conv: Conversation;
}

export interface CountBatch {
  id: number;
  items: CountItem[];
}

export interface CountReply {
  id: number;
  counts: TokenCount[];
}

const BATCH = 32;

export class TokenCounterPool {
  private readonly workers: { worker: Worker; inFlight: number }[] = [];
  private readonly tokenizer: Tokenizer | null;
  private readonly counter: TextCounter | null;
  private batch: CountItem[] = [];
  private nextId = 0;
  private waiters: (() => void)[] = [];
  private failure: Error | null = null;
  private readonly onAbort: (() => void) | null = null;

  /** threads: worker count (0: count on this thread); default all cores. */
  constructor(
    tokenizerDir: string, private readonly limit: number, private readonly onCount: (c: TokenCount) => void,
    threads = os.availableParallelism(), private readonly signal?: AbortSignal,
  ) {
    if (signal?.aborted) throw cancelledError(signal);
    this.tokenizer = threads === 0 ? Tokenizer.loadSync(tokenizerDir) : null;
    this.counter = this.tokenizer ? textCounter(this.tokenizer, tokenizerDir) : null;
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(new URL('./token-worker.js', import.meta.url), { workerData: { tokenizerDir, limit } });
      const slot = { worker, inFlight: 0 };
      worker.on('message', (reply: CountReply) => {
        slot.inFlight--;
        for (const c of reply.counts) {
          if (this.failure) break; // aborted (possibly by onCount itself) or failed: nothing more is reported
          this.onCount(c);
        }
        this.wake();
      });
      worker.on('error', (e) => {
        this.failure ??= e;
        this.wake();
      });
      worker.on('exit', (code) => {
        // Terminated by close() or an abort (failure set first), or died on its own with work out.
        if (slot.inFlight > 0) this.failure ??= new Error(`a token-counting worker exited (code ${code}) with ${slot.inFlight} batches unanswered`);
        this.wake();
      });
      this.workers.push(slot);
    }
    if (signal) {
      this.onAbort = () => {
        this.failure ??= cancelledError(signal);
        for (const w of this.workers) void w.worker.terminate();
        this.wake();
      };
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private inFlight(): number {
    return this.workers.reduce((n, w) => n + w.inFlight, 0);
  }

  /** Queues one example; resolves at once unless the workers are saturated. */
  async submit(item: CountItem): Promise<void> {
    if (this.signal?.aborted) throw this.failure ?? cancelledError(this.signal);
    if (this.failure) throw this.failure;
    if (this.tokenizer) {
      this.onCount(countExample(item.conv, item.row, this.tokenizer, this.limit, this.counter!));
      return;
    }
    this.batch.push(item);
    if (this.batch.length >= BATCH) await this.dispatch();
  }

  private async dispatch(): Promise<void> {
    if (this.batch.length === 0) return;
    while (!this.failure && this.inFlight() >= 2 * this.workers.length) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
    const slot = this.workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    slot.inFlight++;
    slot.worker.postMessage({ id: this.nextId++, items: this.batch } satisfies CountBatch);
    this.batch = [];
  }

  /** Sends what is queued and waits for every result. */
  async drain(): Promise<void> {
    await this.dispatch();
    while (!this.failure && this.inFlight() > 0) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
  }

  /** Terminates the workers (safe to call more than once, and after an abort). */
  async close(): Promise<void> {
    if (this.onAbort) this.signal?.removeEventListener('abort', this.onAbort);
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
