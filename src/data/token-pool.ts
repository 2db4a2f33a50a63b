// Token counting spread over worker threads (tokenization is the costly part of validating with a
// model; parsing stays on the calling thread). Examples go out in batches; results come back through
// `onCount`, possibly out of order (each carries its row). With threads = 0 everything runs inline.
// Bounded memory: at most 2 batches in flight per worker; `submit` waits when that many are out.
// Cancellable: when the pool's AbortSignal fires, its workers are terminated at once (even in the
// middle of an example) and every pending and later call rejects with CancelledError (code CANCELLED).
// Memory: where PieceCounter mirrors the tokenizer's pipeline, tokenizer.json is read once, on this
// thread, and compiled into CounterTables (SharedArrayBuffers: every worker reads the same copy); the
// workers render with a tokenizer built without the vocabulary and merges (the chat template and the
// added tokens are all rendering needs) and count with the shared tables. Nothing holds the tokenizer
// library's vocabulary (about 400 MB for Gemma 3's, per copy). Otherwise each worker loads the tokenizer.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Tokenizer, type TokenizerFiles } from '../tokenizer/tokenizer.js';
import type { Conversation } from './conversation.js';
import { cancelledError } from './errors.js';
import { buildCounterTables, PieceCounter, type CounterTables } from './piece-counter.js';
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

/** What a worker starts from: a tokenizer directory (loaded in full), or shared tables and render-only files. */
export type WorkerSetup = { limit: number } & ({ tokenizerDir: string } | { tables: CounterTables; files: TokenizerFiles });

type Json = Record<string, unknown>;

/**
 * Shared counting tables and the files of a render-only tokenizer for `dir`, or null when the counter
 * does not mirror this tokenizer (or a file does not parse: loading it in full reports that as before).
 */
export function sharedCounting(dir: string): { tables: CounterTables; files: TokenizerFiles } | null {
  const read = (name: string): Json | undefined | null => {
    let text: string;
    try {
      text = fs.readFileSync(path.join(dir, name), 'utf8');
    } catch {
      return undefined;
    }
    try {
      const v = JSON.parse(text) as unknown;
      return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : null;
    } catch {
      return null;
    }
  };
  let tj = read('tokenizer.json');
  const config = read('tokenizer_config.json');
  const generationConfig = read('generation_config.json');
  const specialTokensMap = read('special_tokens_map.json');
  if (!tj || config === null || generationConfig === null || specialTokensMap === null) return null;
  const tables = buildCounterTables(tj, config ?? {});
  if (!tables) return null;
  // Rendering reads the template, the token strings and the added tokens; encode() is only asked for
  // the token after a probe reply (an added token). Keep single characters, byte tokens and the named
  // tokens so any text still encodes; drop the merges.
  const model = tj.model as Json;
  const named = new Set<string>();
  for (const src of [config ?? {}, specialTokensMap ?? {}]) {
    for (const [k, v] of Object.entries(src)) {
      const content = typeof v === 'string' ? v : v && typeof v === 'object' ? (v as Json).content : undefined;
      if (k.endsWith('_token') && typeof content === 'string') named.add(content);
    }
  }
  for (const t of (tj.added_tokens as Json[] | undefined) ?? []) if (typeof t.content === 'string') named.add(t.content);
  const vocab: Record<string, number> = {};
  for (const [piece, id] of Object.entries(model.vocab as Record<string, number>)) {
    if ([...piece].length === 1 || /^<0x[0-9A-F]{2}>$/.test(piece) || named.has(piece)) vocab[piece] = id;
  }
  const files: TokenizerFiles = { tokenizer: { ...tj, model: { ...model, vocab, merges: [] } } };
  tj = undefined; // the full vocabulary and merges are garbage from here on
  if (config) files.config = config;
  if (generationConfig) files.generationConfig = generationConfig;
  if (specialTokensMap) files.specialTokensMap = specialTokensMap;
  const template = path.join(dir, 'chat_template.jinja');
  if (fs.existsSync(template)) files.chatTemplateFile = fs.readFileSync(template, 'utf8');
  return { tables, files };
}

/** The tokenizer and exact counter a worker (or the inline pool) counts with. */
export function counterFor(setup: WorkerSetup): { tokenizer: Tokenizer; counter: TextCounter } {
  if ('tokenizerDir' in setup) {
    const tokenizer = Tokenizer.loadSync(setup.tokenizerDir);
    return { tokenizer, counter: textCounter(tokenizer, setup.tokenizerDir) };
  }
  const tokenizer = Tokenizer.fromFiles(setup.files);
  const pieces = new PieceCounter(setup.tables);
  return { tokenizer, counter: (text) => pieces.count(text) };
}

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
    const shared = sharedCounting(tokenizerDir);
    const setup: WorkerSetup = shared ? { limit, ...shared } : { limit, tokenizerDir };
    const inline = threads === 0 ? counterFor(setup) : null;
    this.tokenizer = inline?.tokenizer ?? null;
    this.counter = inline?.counter ?? null;
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(new URL('./token-worker.js', import.meta.url), { workerData: setup });
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
