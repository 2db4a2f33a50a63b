// Tokenization for requests, kept off the event loop: prompts up to `inlineChars` characters are
// tokenized inline (a few milliseconds); larger ones go to a worker thread, so one huge countTokens body
// never stalls the other requests. Rules it keeps:
// - One task per worker at a time, at most `threads` workers; further tasks wait in a queue.
// - A task whose signal fires is dropped from the queue, or its worker is terminated mid-task: work for
//   a client that left stops at once. The task rejects with CancelledError.
// - Workers load each tokenizer directory once and exit after `idleMs` without work, so the memory a
//   large request needed is handed back.
// - Inline and worker paths run the same code (prompt-tasks.ts) and give the same ids.

import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { CancelledError, TunekitError, throwIfAborted, type ErrorCode } from '../errors.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { dialogueChars, runPromptTask, type PromptTask, type PromptTaskResult } from './prompt-tasks.js';

export interface PromptTokenizerOptions {
  /** Worker threads at most (default: the number of cores, at most 2). */
  threads?: number;
  /** Prompts with at most this many characters are tokenized inline (default 16,384). */
  inlineChars?: number;
  /** A worker with no task for this long exits (default 10 s). */
  idleMs?: number;
}

/** A message to a worker: tokenize with the tokenizer of `dir`. */
export interface WorkerTask {
  id: number;
  dir: string;
  /** Loaded as the model loads it: ids from this one on have no embedding row. */
  vocabSize: number;
  task: PromptTask;
}

export type WorkerReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; code?: ErrorCode; message: string; stack?: string };

interface Job {
  dir: string;
  vocabSize: number;
  task: PromptTask;
  signal?: AbortSignal;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  worker: Worker;
  job: Job | null;
  idle: NodeJS.Timeout | null;
}

const WORKER_URL = new URL('./prompt-tokenizer-worker.js', import.meta.url);

export class PromptTokenizer {
  private readonly threads: number;
  private readonly inlineChars: number;
  private readonly idleMs: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 0;
  private closed = false;

  constructor(opts: PromptTokenizerOptions = {}) {
    this.threads = Math.max(1, opts.threads ?? Math.min(2, os.availableParallelism()));
    this.inlineChars = opts.inlineChars ?? 16_384;
    this.idleMs = opts.idleMs ?? 10_000;
  }

  /** Runs `task` with `tokenizer` (loaded from `dir`), inline when the text is small. */
  async run<T extends PromptTask>(tokenizer: Tokenizer, dir: string, task: T, signal?: AbortSignal): Promise<PromptTaskResult<T>> {
    throwIfAborted(signal);
    if (dialogueChars(task.dialogue) <= this.inlineChars) return runPromptTask(tokenizer, task);
    if (this.closed) throw new CancelledError('The server is shutting down.');
    return new Promise<PromptTaskResult<T>>((resolve, reject) => {
      const onAbort = (): void => this.abort(job);
      // The listener goes when the task settles: nothing of the job stays reachable from the signal.
      const settle = <A extends unknown[]>(f: (...a: A) => void) => (...a: A): void => {
        signal?.removeEventListener('abort', onAbort);
        f(...a);
      };
      const job: Job = { dir, vocabSize: tokenizer.embeddingSize, task, signal, resolve: settle(resolve as (v: unknown) => void), reject: settle(reject) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(job);
      this.pump();
    });
  }

  /** Worker threads alive now (tests and the soak check). */
  get workerCount(): number {
    return this.slots.length;
  }

  /** Terminates every worker; queued and running tasks reject with CancelledError. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new CancelledError('The server is shutting down.'));
    await Promise.all([...this.slots].map((slot) => this.retire(slot, new CancelledError('The server is shutting down.'))));
  }

  private abort(job: Job): void {
    const cancelled = new CancelledError(typeof job.signal?.reason === 'string' ? job.signal.reason : undefined);
    const queued = this.queue.indexOf(job);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      job.reject(cancelled);
      return;
    }
    const slot = this.slots.find((s) => s.job === job);
    if (slot) void this.retire(slot, cancelled).then(() => this.pump());
  }

  /** Stops a worker; its task, if any, rejects with `err`. */
  private async retire(slot: Slot, err: unknown): Promise<void> {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    if (slot.idle) clearTimeout(slot.idle);
    const job = slot.job;
    slot.job = null;
    job?.reject(err);
    await slot.worker.terminate();
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => s.job === null);
      if (!slot) {
        if (this.slots.length >= this.threads) return;
        slot = this.spawn();
      }
      const job = this.queue.shift()!;
      if (slot.idle) clearTimeout(slot.idle);
      slot.idle = null;
      slot.job = job;
      slot.worker.ref(); // a task in flight keeps the process alive; an idle worker does not
      slot.worker.postMessage({ id: this.nextId++, dir: job.dir, vocabSize: job.vocabSize, task: job.task } satisfies WorkerTask);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_URL);
    const slot: Slot = { worker, job: null, idle: null };
    worker.on('message', (reply: WorkerReply) => {
      const job = slot.job;
      slot.job = null;
      worker.unref();
      if (job) {
        if (reply.ok) job.resolve(reply.result);
        else job.reject(reply.code ? new TunekitError(reply.code, reply.message) : Object.assign(new Error(reply.message), { stack: reply.stack }));
      }
      slot.idle = setTimeout(() => void this.retire(slot, null), this.idleMs);
      slot.idle.unref();
      this.pump();
    });
    worker.on('error', (err) => void this.retire(slot, err).then(() => this.pump()));
    worker.unref();
    this.slots.push(slot);
    return slot;
  }
}
