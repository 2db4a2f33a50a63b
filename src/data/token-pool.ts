// Token counting spread over worker threads (tokenization is the costly part of validating with a
// model; parsing stays on the calling thread). Examples go out in batches; results come back through
// `onCount`, possibly out of order (each carries its row). With threads = 0 everything runs inline.
// Bounded memory: at most 2 batches in flight per worker; `submit` waits when that many are out.
// Cancellable: when the pool's AbortSignal fires, its workers are terminated at once (even in the
// middle of an example) and every pending and later call rejects with CancelledError (code CANCELLED).
// Memory: where PieceCounter mirrors the tokenizer's pipeline, tokenizer.json is compiled once per
// pool into CounterTables (SharedArrayBuffers: every worker reads the same copy), on a short-lived
// thread of its own, or read back from the disk cache; the workers render with a tokenizer built
// without the vocabulary and merges (the chat template and the added tokens are all rendering needs)
// and count with the shared tables. Nothing holds the tokenizer library's vocabulary (about 400 MB for
// Gemma 3's, per copy). Otherwise each worker loads the tokenizer and encodes every text.

import { createHash } from 'node:crypto';
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
export type WorkerSetup = { limit: number } & ({ tokenizerDir: string; encodeOnly?: boolean } | { tables: CounterTables; files: TokenizerFiles });

type Json = Record<string, unknown>;

/**
 * Shared counting tables and the files of a render-only tokenizer for `dir`, or null when the counter
 * does not mirror this tokenizer (or a file does not parse: loading it in full reports that as before).
 */
export function sharedCounting(dir: string, cache = false): { tables: CounterTables; files: TokenizerFiles } | null {
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
  if (cache) writeCachedCounting(dir, { tables, files });
  return { tables, files };
}

// The compiled tables are kept on disk, keyed by a hash of the tokenizer's files (and this format), so
// that later runs skip parsing tokenizer.json (33 MB for Gemma 3: seconds, and a transient of about
// 200 MB): $TUNEKIT_CACHE_DIR, else $XDG_CACHE_HOME/tunekit, else ~/.cache/tunekit, under
// token-counters/. A file that cannot be written or read back whole is ignored (compiled again).
const CACHE_FORMAT = 'tunekit-counter-tables-1';
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json', 'chat_template.jinja'];

function cacheFile(dir: string): string | null {
  const root = process.env.TUNEKIT_CACHE_DIR || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'tunekit');
  const hash = createHash('sha256').update(CACHE_FORMAT);
  for (const name of TOKENIZER_FILES) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path.join(dir, name));
    } catch {
      hash.update(`\0${name}: none`);
      continue;
    }
    hash.update(`\0${name}: ${bytes.length}\0`).update(bytes);
  }
  return path.join(root, 'token-counters', `${hash.digest('hex')}.bin`);
}

type ArrayName = 'chars' | 'starts' | 'strTable' | 'mergeTable';
const ARRAYS: ArrayName[] = ['chars', 'starts', 'strTable', 'mergeTable'];

function writeCachedCounting(dir: string, shared: { tables: CounterTables; files: TokenizerFiles }): void {
  try {
    const file = cacheFile(dir);
    if (!file) return;
    const { tables, files } = shared;
    const header: Record<string, unknown> = { files, lengths: {} };
    for (const [k, v] of Object.entries(tables)) if (!ARRAYS.includes(k as ArrayName)) header[k] = v;
    for (const k of ARRAYS) (header.lengths as Record<string, number>)[k] = tables[k].length;
    let json = Buffer.from(JSON.stringify(header));
    json = Buffer.concat([json, Buffer.alloc((8 - ((json.length + 8) % 8)) % 8, 0x20)]);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(0x544b4354, 0); // "TCKT"
    head.writeUInt32LE(json.length, 4);
    const parts = [head, json, ...ARRAYS.map((k) => Buffer.from(tables[k].buffer as ArrayBuffer, tables[k].byteOffset, tables[k].byteLength)), Buffer.alloc(4)];
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    fs.writeFileSync(tmp, Buffer.concat(parts));
    fs.renameSync(tmp, file);
  } catch {
    // a read-only or full disk: the next run compiles again
  }
}

/** The shared tables and render-only files from the disk cache, or null when there are none. */
export function cachedCounting(dir: string): { tables: CounterTables; files: TokenizerFiles } | null {
  try {
    const file = cacheFile(dir);
    if (!file || !fs.existsSync(file)) return null;
    const buf = fs.readFileSync(file);
    if (buf.readUInt32LE(0) !== 0x544b4354) return null;
    const jsonLength = buf.readUInt32LE(4);
    const header = JSON.parse(buf.subarray(8, 8 + jsonLength).toString('utf8')) as Record<string, unknown> & { files: TokenizerFiles; lengths: Record<ArrayName, number> };
    let at = 8 + jsonLength;
    const arrays = {} as Record<ArrayName, Uint16Array | Int32Array>;
    for (const k of ARRAYS) {
      const Ctor = k === 'chars' ? Uint16Array : Int32Array;
      const bytes = header.lengths[k] * Ctor.BYTES_PER_ELEMENT;
      if (at + bytes > buf.length) return null;
      const sab = new SharedArrayBuffer(bytes);
      new Uint8Array(sab).set(buf.subarray(at, at + bytes));
      arrays[k] = k === 'chars' ? new Uint16Array(sab) : new Int32Array(sab);
      at += bytes;
    }
    if (at + 4 !== buf.length) return null; // truncated or padded: not what was written
    const { files, lengths: _lengths, ...rest } = header;
    return { tables: { ...(rest as unknown as Omit<CounterTables, ArrayName>), ...(arrays as unknown as Pick<CounterTables, ArrayName>) }, files };
  } catch {
    return null;
  }
}

/** The tokenizer and exact counter a worker (or the inline pool) counts with. */
export function counterFor(setup: WorkerSetup): { tokenizer: Tokenizer; counter: TextCounter } {
  if ('tokenizerDir' in setup) {
    const tokenizer = Tokenizer.loadSync(setup.tokenizerDir);
    return { tokenizer, counter: textCounter(tokenizer, setup.encodeOnly ? undefined : setup.tokenizerDir) };
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
  /** Settles once the workers run (at once unless the counting tables are being built). */
  private readonly ready: Promise<void>;
  private builder: Worker | null = null;
  private closed = false;

  /** threads: worker count (0: count on this thread); default all cores. */
  constructor(
    tokenizerDir: string, private readonly limit: number, private readonly onCount: (c: TokenCount) => void,
    threads = os.availableParallelism(), private readonly signal?: AbortSignal,
  ) {
    if (signal?.aborted) throw cancelledError(signal);
    // TUNEKIT_COUNT_WITH_ENCODE=1: every text encoded in full (benchmarks compare the two paths).
    const encodeOnly = process.env.TUNEKIT_COUNT_WITH_ENCODE === '1';
    const full: WorkerSetup = { limit, tokenizerDir, encodeOnly };
    if (threads === 0) {
      const shared = encodeOnly ? null : cachedCounting(tokenizerDir) ?? sharedCounting(tokenizerDir, true);
      const inline = counterFor(shared ? { limit, ...shared } : full);
      this.tokenizer = inline.tokenizer;
      this.counter = inline.counter;
      this.ready = Promise.resolve();
    } else {
      this.tokenizer = null;
      this.counter = null;
      if (encodeOnly) {
        this.startWorkers(full, threads);
        this.ready = Promise.resolve();
      } else {
        // The tables come from the disk cache or are compiled from tokenizer.json on a thread of their
        // own: the calling thread (an API server's) is never blocked by hashing or parsing the files,
        // and the parse's transient heap is gone with that thread before the counting workers start.
        this.ready = this.build(tokenizerDir).then(
          (shared) => this.startWorkers(shared ? { limit, ...shared } : full, threads),
          (e: Error) => {
            this.failure ??= e;
          },
        ).finally(() => this.wake());
      }
    }
    if (signal) {
      this.onAbort = () => {
        this.failure ??= cancelledError(signal);
        if (this.builder) void this.builder.terminate();
        for (const w of this.workers) void w.worker.terminate();
        this.wake();
      };
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  private build(tokenizerDir: string): Promise<{ tables: CounterTables; files: TokenizerFiles } | null> {
    return new Promise((resolve, reject) => {
      const builder = new Worker(new URL('./token-worker.js', import.meta.url), { workerData: { build: tokenizerDir } });
      this.builder = builder;
      let result: { tables: CounterTables; files: TokenizerFiles } | null | undefined;
      builder.once('message', (m: { shared: { tables: CounterTables; files: TokenizerFiles } | null }) => {
        result = m.shared;
      });
      builder.once('error', reject);
      builder.once('exit', (code) => {
        this.builder = null;
        if (result !== undefined) resolve(result);
        else reject(this.failure ?? new Error(`the worker compiling the tokenizer's counting tables exited (code ${code}) without a result`));
      });
    });
  }

  private startWorkers(setup: WorkerSetup, threads: number): void {
    if (this.closed || this.failure) return;
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
    await this.ready;
    while (!this.failure && this.inFlight() >= 2 * this.workers.length) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
    const slot = this.workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    slot.inFlight++;
    slot.worker.postMessage({ id: this.nextId++, items: this.batch } satisfies CountBatch);
    this.batch = [];
  }

  /** Sends what is queued and waits for every result. */
  async drain(): Promise<void> {
    await this.ready;
    await this.dispatch();
    while (!this.failure && this.inFlight() > 0) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
  }

  /** Terminates the workers (safe to call more than once, and after an abort). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.onAbort) this.signal?.removeEventListener('abort', this.onAbort);
    if (this.builder) await this.builder.terminate();
    await this.ready;
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
