// A dataset scan on two threads: the file is cut at a line start near its middle, a quick byte pass
// over the first half finds the second half's first line and row numbers, and each half is scanned by
// scanDataset on a worker thread with absolute numbers, so problems, counts and messages are what a
// sequential scan gives. The merge adds what crosses the cut: duplicates of first-half examples in
// the second half (and makes second-half duplicate messages name the first-half line), and the union
// of system prompts. Used without a model (token counting has its own
// workers) and without onProblem (problems arrive per half). Returns null when the file cannot be
// cut (a single huge line) so the caller scans sequentially. With opts.signal, an abort terminates
// both workers and stops the byte passes; the scan rejects with CancelledError (code CANCELLED).

import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { cancelledError, throwIfCancelled, type DatasetProblem } from './errors.js';
import { detectFormat } from './formats.js';
import { parseJsonLine, readLines } from './jsonl.js';
import type { ProblemKind } from './problems.js';
import { Column, ProblemLog, type DatasetScan, type ScanOptions, type ScanRange } from './scan.js';

type Shipped = Omit<DatasetScan, 'problems' | 'columns'> & {
  problems: { counts: Map<ProblemKind, number>; samples: Map<ProblemKind, DatasetProblem[]> };
  columns: Record<keyof DatasetScan['columns'], Int32Array>;
};

const NEWLINE = 0x0a;

export async function scanParallel(file: string, bytes: number, opts: ScanOptions): Promise<DatasetScan | null> {
  const cut = await lineStartAfter(file, Math.floor(bytes / 2));
  if (cut <= 0 || cut >= bytes) return null;
  const maxPerKind = opts.maxPerKind ?? 20;
  const signal = opts.signal;
  throwIfCancelled(signal);
  // The first half starts at once; the second once its first line, row and the file's layout are known.
  const first = runWorker(file, { start: 0, end: cut, firstLine: 1, firstRow: 1 }, maxPerKind, opts.overlapWith, signal);
  first.catch(() => undefined); // handled below; never an unhandled rejection while the byte pass runs
  try {
    const { lines, rows } = await countLinesAndRows(file, cut, signal);
    const format = await firstFormat(file, signal);
    const second = runWorker(file, { start: cut, end: bytes, firstLine: lines + 1, firstRow: rows + 1, ...(format ? { format } : {}) }, maxPerKind, opts.overlapWith, signal);
    const [a, b] = await Promise.all([first, second]);
    return merge(file, bytes, a, b, maxPerKind);
  } catch (e) {
    await first.catch(() => undefined);
    throw e;
  }
}

function runWorker(file: string, range: ScanRange, maxPerKind: number, overlapWith: Map<string, number> | undefined, signal: AbortSignal | undefined): Promise<Shipped> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(cancelledError(signal));
      return;
    }
    const worker = new Worker(new URL('./scan-worker.js', import.meta.url), { workerData: { file, range, maxPerKind, overlapWith } });
    const onAbort = (): void => {
      reject(cancelledError(signal!));
      void worker.terminate();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => signal?.removeEventListener('abort', onAbort);
    worker.once('message', (m: Shipped) => {
      done();
      resolve(m);
      void worker.terminate();
    });
    worker.once('error', (e) => {
      done();
      reject(e);
    });
    worker.once('exit', (code) => {
      done();
      reject(new Error(`the scan worker exited (code ${code}) without a result`)); // no-op once settled
    });
  });
}

/** Offset just past the first newline at or after `from`; 0 when there is none. */
async function lineStartAfter(file: string, from: number): Promise<number> {
  const fd = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 16);
    for (let at = from; ; at += buf.length) {
      const { bytesRead } = await fd.read(buf, 0, buf.length, at);
      if (bytesRead === 0) return 0;
      const nl = buf.subarray(0, bytesRead).indexOf(NEWLINE);
      if (nl >= 0) return at + nl + 1;
    }
  } finally {
    await fd.close();
  }
}

/** Lines and non-blank lines (rows) in bytes [0, end), counted the way readLines does. */
async function countLinesAndRows(file: string, end: number, signal: AbortSignal | undefined): Promise<{ lines: number; rows: number }> {
  let lines = 0;
  let rows = 0;
  let pending: Buffer[] = [];
  const line = (bytes: Buffer): void => {
    lines++;
    // Most lines start with "{": not blank. Anything else is decided on the decoded text as
    // readLines does (a line of invalid UTF-8 is a row too).
    let i = 0;
    while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0d)) i++;
    if (i < bytes.length && bytes[i] === 0x7b) {
      rows++;
      return;
    }
    let text = bytes.toString('utf8');
    if (lines === 1 && text.startsWith('\uFEFF')) text = text.slice(1);
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (text.trim() !== '' || text.includes('\uFFFD')) rows++;
  };
  for await (const chunk of fs.createReadStream(file, { start: 0, end: end - 1, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    throwIfCancelled(signal);
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, nl);
      line(pending.length ? Buffer.concat([...pending, piece]) : piece);
      pending = [];
      start = nl + 1;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  if (pending.length) line(Buffer.concat(pending));
  return { lines, rows };
}

/** The layout of the first line that has one (within the first 10,000 lines), and that line. */
async function firstFormat(file: string, signal: AbortSignal | undefined): Promise<ScanRange['format'] | undefined> {
  let seen = 0;
  for await (const { line, text } of readLines(file, { onProblem: () => {}, signal })) {
    const parsed = parseJsonLine(text, file, line);
    const format = 'value' in parsed ? detectFormat(parsed.value) : null;
    if (format) return { format, line };
    if (++seen >= 10_000) return undefined;
  }
  return undefined;
}

function merge(file: string, bytes: number, a: Shipped, b: Shipped, maxPerKind: number): DatasetScan {
  // A second-half duplicate names the first copy in its half; where the example is also in the first
  // half, name that line instead, as a sequential scan does.
  const keyAtLine = new Map<number, string>();
  for (const [key, line] of b.keys) keyAtLine.set(line, key);
  for (const p of b.problems.samples.get('duplicate') ?? []) {
    const m = /^the same example as line (\d+)$/.exec(p.message);
    const key = m ? keyAtLine.get(Number(m[1])) : undefined;
    const earlier = key === undefined ? undefined : a.keys.get(key);
    if (earlier !== undefined) p.message = `the same example as line ${earlier}`;
  }
  const problems = new ProblemLog(maxPerKind);
  for (const half of [a, b]) {
    for (const [kind, list] of half.problems.samples) for (const p of list) problems.add(p);
    for (const [kind, count] of half.problems.counts) {
      const listed = half.problems.samples.get(kind)?.length ?? 0;
      problems.counts.set(kind, (problems.counts.get(kind) ?? 0) + count - listed);
    }
  }
  const keys = a.keys;
  for (const [key, line] of b.keys) {
    const first = keys.get(key);
    if (first === undefined) keys.set(key, line);
    else problems.add({ file, line, path: '', kind: 'duplicate', message: `the same example as line ${first}` });
  }
  const systemPrompts = a.systemPrompts;
  let distinct = a.distinctSystemPrompts;
  for (const [prompt, seen] of b.systemPrompts) {
    const had = systemPrompts.get(prompt);
    if (had) had.count += seen.count;
    else {
      distinct++;
      if (systemPrompts.size < 100) systemPrompts.set(prompt, seen);
    }
  }
  distinct += b.distinctSystemPrompts - b.systemPrompts.size; // prompts past the kept 100
  const rows = b.rows > 0 ? b.rows : a.rows;
  const columns = {} as DatasetScan['columns'];
  for (const name of Object.keys(a.columns) as (keyof DatasetScan['columns'])[]) {
    const col = new Column();
    col.ensure(rows + 1);
    col.data.set(a.columns[name].subarray(0, a.rows + 1));
    if (b.rows > a.rows) col.data.set(b.columns[name].subarray(a.rows + 1, b.rows + 1), a.rows + 1);
    columns[name] = col;
  }
  return {
    file, bytes, format: a.format ?? b.format, lines: Math.max(a.lines, b.lines), rows, examples: a.examples + b.examples,
    problems, keys, systemPrompts, distinctSystemPrompts: distinct, samples: [...a.samples, ...b.samples].slice(0, 3), columns,
    dropped: [...a.dropped, ...b.dropped].slice(0, 1000), truncatedRows: [...a.truncatedRows, ...b.truncatedRows].slice(0, 1000),
    truncatedCount: a.truncatedCount + b.truncatedCount, droppedCount: a.droppedCount + b.droppedCount,
  };
}
