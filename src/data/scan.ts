// One streaming pass over a JSONL dataset that everything above reads: the validator's problems, the
// statistics' per-example numbers, the keys for duplicate and overlap checks. Memory is bounded by the
// longest line, a few numbers per example (typed columns), one short key per distinct example and the
// first `maxPerKind` problems of each kind; every problem still goes to `onProblem` as it is found.
// Rows: every non-blank line is a row (1-based), the unit Vertex's truncatedExampleIndices count in;
// a row is valid when it parses to a Conversation with alternating roles and at most
// MAX_TURNS_PER_EXAMPLE turns (checks.ts), so the work per row is bounded as well as linear.
// Cancellable: with `signal`, the scan stops between rows (and between the reader's chunks) once it
// fires, terminates its worker threads and rejects with CancelledError (code CANCELLED); token counting
// then runs on worker threads by default (at least one), so an abort ends even an example being
// counted and the calling thread (an API server's) is not blocked by tokenization.

import fs from 'node:fs';
import os from 'node:os';
import { loadModelConfig } from '../models/loader.js';
import type { Conversation } from './conversation.js';
import { FormatConsistency } from './dataset.js';
import { throwIfCancelled, type DatasetProblem } from './errors.js';
import { parseExample, type DatasetFormat } from './formats.js';
import { parseJsonLine, readLines } from './jsonl.js';
import { isError, type ProblemKind } from './problems.js';
import { alternationProblem, codePoints, exampleKey, turnCountProblem, unknownFields } from './checks.js';
import { TokenCounterPool } from './token-pool.js';
import { VERTEX_TOKEN_LIMIT, type TokenCount } from './tokens.js';

export interface ModelOptions {
  /** Model directory: config.json (context length) and the tokenizer files. */
  dir: string;
  /** Token limit per example; default min(131,072, the model's context). */
  limit?: number;
  /**
   * Worker threads for tokenization (0: inline). Default: all cores for files over 4 MB, else 0 (1 when
   * the scan has a signal, so an abort can stop it mid-example).
   */
  threads?: number;
}

export interface ScanOptions {
  model?: ModelOptions;
  /** Every problem, in the order found (token problems may come out of line order). */
  onProblem?: (p: DatasetProblem) => void;
  /** Problems kept per kind for reports (the first by line); default 20. */
  maxPerKind?: number;
  /** Keys of another file's examples (key -> line): rows found there are train/validation overlap. */
  overlapWith?: Map<string, number>;
  /**
   * Without a model or onProblem, files at least this large are scanned in two halves on two worker
   * threads (scan-parallel.ts); default 16 MB. Infinity: never.
   */
  parallelMinBytes?: number;
  /** Internal (scan-parallel.ts): scan bytes [start, end) whose first line and row numbers are known. */
  range?: ScanRange;
  /** Stops the scan: it rejects with CancelledError (code CANCELLED) and leaves no worker running. */
  signal?: AbortSignal;
  /** Told the bytes read so far and the file's size (the two-thread scan tells only its end). */
  onProgress?: (bytesRead: number, bytes: number) => void;
}

export interface ScanRange {
  start: number;
  end: number;
  firstLine: number;
  firstRow: number;
  /** The layout the file's first example has, and its line. */
  format?: { format: DatasetFormat; line: number };
}

/** Row status. */
export const enum RowStatus { Invalid = 0, Valid = 1, Kept = 2, Truncated = 3, Dropped = 4 }

/** A growable Int32 column indexed by row. */
export class Column {
  data = new Int32Array(1024);
  ensure(n: number): void {
    if (n <= this.data.length) return;
    let size = this.data.length;
    while (size < n) size *= 2;
    const next = new Int32Array(size);
    next.set(this.data);
    this.data = next;
  }
  set(row: number, v: number): void {
    this.ensure(row + 1);
    this.data[row] = v;
  }
  get(row: number): number {
    return this.data[row];
  }
}

/** Counts per kind and the first problems of each kind, by line. */
export class ProblemLog {
  readonly counts = new Map<ProblemKind, number>();
  readonly samples = new Map<ProblemKind, DatasetProblem[]>();
  constructor(private readonly maxPerKind = 20, private readonly sink?: (p: DatasetProblem) => void) {}

  add(p: DatasetProblem): void {
    const kind = p.kind ?? 'wrong_type';
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    let list = this.samples.get(kind);
    if (!list) this.samples.set(kind, (list = []));
    if (list.length < this.maxPerKind || (list.length > 0 && p.line < list[list.length - 1].line)) {
      let i = list.length;
      while (i > 0 && list[i - 1].line > p.line) i--;
      list.splice(i, 0, p);
      if (list.length > this.maxPerKind) list.pop();
    }
    this.sink?.(p);
  }

  get errors(): number {
    let n = 0;
    for (const [k, c] of this.counts) if (isError(k)) n += c;
    return n;
  }

  get warnings(): number {
    let n = 0;
    for (const [k, c] of this.counts) if (!isError(k)) n += c;
    return n;
  }
}

export interface DatasetScan {
  file: string;
  bytes: number;
  format: DatasetFormat | null;
  /** Lines in the file (blank ones included). */
  lines: number;
  /** Non-blank lines. */
  rows: number;
  /** Rows that parse to a valid Conversation. */
  examples: number;
  problems: ProblemLog;
  /** Example key -> first line, for every valid row. */
  keys: Map<string, number>;
  /** Distinct system prompts ('' for none) -> first line and count; at most 100 kept. */
  systemPrompts: Map<string, { line: number; count: number }>;
  distinctSystemPrompts: number;
  /** The first valid examples (for userDatasetExamples). */
  samples: Conversation[];
  /** Per row (index = row number, 1-based): status, line, messages, characters, tokens. */
  columns: { status: Column; line: Column; messages: Column; chars: Column; tokens: Column; output: Column; keptTokens: Column; keptOutput: Column };
  /** Why each invalid or dropped row is unusable: the first 1,000 rows, as [row, reason]. */
  dropped: [number, string][];
  truncatedRows: number[];
  truncatedCount: number;
  droppedCount: number;
  /** Set when token counting ran: the per-example limit used. */
  limit?: number;
}

const MAX_REASONS = 1000;

/** Inserts item into a list sorted by row, keeping only the MAX_REASONS smallest rows. */
function keepSmallest<T>(list: T[], item: T, row: number, rowOf: (t: T) => number): void {
  if (list.length >= MAX_REASONS && row >= rowOf(list[list.length - 1])) return;
  let i = list.length;
  while (i > 0 && rowOf(list[i - 1]) > row) i--;
  list.splice(i, 0, item);
  if (list.length > MAX_REASONS) list.pop();
}
const SYSTEM_PROMPTS_KEPT = 100;

function defaultLimit(dir: string): number {
  return Math.min(VERTEX_TOKEN_LIMIT, loadModelConfig(dir).maxPositionEmbeddings);
}

export async function scanDataset(file: string, opts: ScanOptions = {}): Promise<DatasetScan> {
  const signal = opts.signal;
  throwIfCancelled(signal);
  const bytes = (await fs.promises.stat(file).catch(() => null))?.size ?? 0;
  throwIfCancelled(signal);
  if (!opts.model && !opts.onProblem && !opts.range && bytes >= (opts.parallelMinBytes ?? 16 << 20) && os.availableParallelism() >= 2) {
    const { scanParallel } = await import('./scan-parallel.js');
    const scan = await scanParallel(file, bytes, opts);
    if (scan) {
      opts.onProgress?.(bytes, bytes);
      return scan;
    }
  }
  const problems = new ProblemLog(opts.maxPerKind ?? 20, opts.onProblem);
  const columns = {
    status: new Column(), line: new Column(), messages: new Column(), chars: new Column(),
    tokens: new Column(), output: new Column(), keptTokens: new Column(), keptOutput: new Column(),
  };
  const scan: DatasetScan = {
    file, bytes, format: null, lines: 0, rows: 0, examples: 0, problems, keys: new Map(), systemPrompts: new Map(),
    distinctSystemPrompts: 0, samples: [], columns, dropped: [], truncatedRows: [], truncatedCount: 0, droppedCount: 0,
  };
  const noteDropped = (row: number, reason: string): void => {
    scan.droppedCount++;
    keepSmallest<[number, string]>(scan.dropped, [row, reason], row, (d) => d[0]);
  };

  let pool: TokenCounterPool | null = null;
  if (opts.model) {
    const limit = opts.model.limit ?? defaultLimit(opts.model.dir);
    scan.limit = limit;
    const threads = opts.model.threads ?? (bytes > 4 << 20 ? undefined : signal ? 1 : 0);
    pool = new TokenCounterPool(opts.model.dir, limit, (c: TokenCount) => {
      columns.tokens.set(c.row, c.tokens);
      columns.output.set(c.row, c.output);
      columns.keptTokens.set(c.row, c.keptTokens);
      columns.keptOutput.set(c.row, c.keptOutput);
      if (c.problem) problems.add(c.problem);
      if (c.fate === 'kept') columns.status.set(c.row, RowStatus.Kept);
      else if (c.fate === 'truncated') {
        columns.status.set(c.row, RowStatus.Truncated);
        scan.truncatedCount++;
        keepSmallest(scan.truncatedRows, c.row, c.row, (r) => r);
      } else {
        columns.status.set(c.row, RowStatus.Dropped);
        noteDropped(c.row, `example ${c.row} (line ${c.line}): ${c.problem?.message ?? 'dropped'}`);
      }
    }, threads, signal);
  }

  const formats = new FormatConsistency(file);
  const range = opts.range;
  if (range?.format) formats.seed(range.format.format, range.format.line);
  if (range) scan.rows = range.firstRow - 1;
  const notice = (p: DatasetProblem): void => {
    if (p.line > scan.lines) scan.lines = p.line;
    problems.add(p);
    if (p.kind === 'invalid_utf8') {
      // Not yielded by the reader, but a row all the same (Vertex would count and drop it).
      const row = ++scan.rows;
      columns.line.set(row, p.line);
      columns.status.set(row, RowStatus.Invalid);
      noteDropped(row, `example ${row} (line ${p.line}): ${p.message}`);
    }
  };
  try {
    const lineRange = range ? { start: range.start, end: range.end, firstLine: range.firstLine } : undefined;
    let read = 0;
    const onRead = opts.onProgress && ((n: number) => opts.onProgress!((read += n), bytes));
    for await (const { line, text } of readLines(file, { onProblem: notice, onNotice: notice, range: lineRange, signal, onRead })) {
      throwIfCancelled(signal);
      scan.lines = line;
      const row = ++scan.rows;
      columns.line.set(row, line);
      columns.status.set(row, RowStatus.Invalid);
      const lineProblems: DatasetProblem[] = [];
      const parsed = parseJsonLine(text, file, line);
      let conv: Conversation | null = null;
      let format: DatasetFormat | null = null;
      if ('problem' in parsed) lineProblems.push(parsed.problem);
      else {
        const result = parseExample(parsed.value, { file, line });
        format = result.format;
        const mixed = formats.check(format, line);
        if (mixed) lineProblems.push(mixed);
        else lineProblems.push(...result.problems);
        for (const w of unknownFields(parsed.value, format, { file, line })) problems.add(w);
        if (!mixed && result.conversation && format) {
          const alt = alternationProblem(result.conversation, format);
          const long = turnCountProblem(result.conversation, format);
          if (alt) lineProblems.push(alt);
          if (long) lineProblems.push(long);
          if (!alt && !long) conv = result.conversation;
        }
      }
      for (const p of lineProblems) problems.add(p);
      if (!conv) {
        noteDropped(row, `example ${row} (line ${line}): ${lineProblems[0]?.message ?? 'invalid'}`);
        continue;
      }
      scan.examples++;
      columns.status.set(row, RowStatus.Valid);
      columns.messages.set(row, conv.turns.length);
      let chars = conv.systemInstruction !== undefined ? codePoints(conv.systemInstruction) : 0;
      for (const t of conv.turns) chars += codePoints(t.text);
      columns.chars.set(row, chars);
      if (scan.samples.length < 3) scan.samples.push(conv);

      const key = exampleKey(conv);
      const first = scan.keys.get(key);
      if (first !== undefined) {
        problems.add({ file, line, path: '', kind: 'duplicate', message: `the same example as line ${first}` });
      } else scan.keys.set(key, line);
      const other = opts.overlapWith?.get(key);
      if (other !== undefined) {
        problems.add({ file, line, path: '', kind: 'train_validation_overlap', message: `the same example as line ${other} of the training file` });
      }
      const system = conv.systemInstruction ?? '';
      const seen = scan.systemPrompts.get(system);
      if (seen) seen.count++;
      else {
        scan.distinctSystemPrompts++;
        if (scan.systemPrompts.size < SYSTEM_PROMPTS_KEPT) scan.systemPrompts.set(system, { line, count: 1 });
      }
      if (pool) await pool.submit({ row, conv });
    }
    if (pool) await pool.drain();
    throwIfCancelled(signal);
  } finally {
    await pool?.close();
  }
  scan.format = formats.format;
  return scan;
}
