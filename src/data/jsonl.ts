// Streaming JSON Lines reader: one record per non-blank line, with its 1-based line number, read in
// 64 KiB chunks so a file of any size costs memory only for its longest line.
// Rules it keeps:
// - Line numbers count every line, blank ones included, so they match an editor's.
// - A UTF-8 byte-order mark on the first line and a trailing "\r" (CRLF files) are dropped; with
//   `onNotice` each of these (and each blank line) is reported as a warning-kind problem.
// - Bad UTF-8 and invalid JSON are DatasetProblems naming file:line. With `onProblem` the line is
//   reported and skipped (a validator collecting every problem); without it the first one is thrown.
// - With `signal`, reading stops at the next chunk once it fires (CancelledError, code CANCELLED), so
//   even one huge line is not read to its end for a caller that is gone.

import fs from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { NotFoundError } from '../errors.js';
import { DatasetError, throwIfCancelled, type DatasetProblem } from './errors.js';

export interface JsonlLine {
  line: number;
  text: string;
}

export interface JsonlRecord {
  line: number;
  value: unknown;
}

export interface JsonlOptions {
  /** Receives bad lines instead of throwing them; the line is then skipped. */
  onProblem?: (problem: DatasetProblem) => void;
  /** Receives what is tolerated (kinds bom, crlf, blank_line), one call per occurrence. */
  onNotice?: (problem: DatasetProblem) => void;
  /** Read only bytes [start, end) (start at a line start), numbering lines from firstLine. */
  range?: { start: number; end: number; firstLine: number };
  /** Stops reading (CancelledError) at the next chunk once it fires. */
  signal?: AbortSignal;
  /** Told the bytes of each chunk as it is read (progress displays). */
  onRead?: (bytes: number) => void;
}

const NEWLINE = 0x0a;

function report(problem: DatasetProblem, opts: JsonlOptions): void {
  if (!opts.onProblem) throw new DatasetError(problem);
  opts.onProblem(problem);
}

/** The non-blank lines of a text file, decoded as UTF-8. */
export async function* readLines(file: string, opts: JsonlOptions = {}): AsyncGenerator<JsonlLine> {
  let stream: fs.ReadStream;
  try {
    await fs.promises.access(file, fs.constants.R_OK);
    const range = opts.range ? { start: opts.range.start, end: opts.range.end - 1 } : {};
    stream = fs.createReadStream(file, { highWaterMark: 1 << 16, ...range });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`dataset file ${file} does not exist`);
    throw e;
  }
  let pending: Buffer[] = [];
  let line = (opts.range?.firstLine ?? 1) - 1;
  const finish = (bytes: Buffer): JsonlLine | null => {
    line++;
    // isUtf8 + toString: the same strict check as a fatal TextDecoder, about twice as fast.
    if (!isUtf8(bytes)) {
      report({ file, line, path: '', message: 'the line is not valid UTF-8; save the file as UTF-8', kind: 'invalid_utf8' }, opts);
      return null;
    }
    let text = bytes.toString('utf8');
    const notice = opts.onNotice;
    if (line === 1 && text.startsWith('\uFEFF')) {
      text = text.slice(1);
      notice?.({ file, line, path: '', message: 'the file starts with a UTF-8 byte-order mark', kind: 'bom' });
    }
    if (text.endsWith('\r')) {
      text = text.slice(0, -1);
      notice?.({ file, line, path: '', message: 'the line ends with CRLF ("\\r\\n")', kind: 'crlf' });
    }
    if (text.trim() !== '') return { line, text };
    notice?.({ file, line, path: '', message: 'blank line', kind: 'blank_line' });
    return null;
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    throwIfCancelled(opts.signal);
    opts.onRead?.(chunk.length);
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, nl);
      const out = finish(pending.length ? Buffer.concat([...pending, piece]) : piece);
      pending = [];
      start = nl + 1;
      if (out) yield out;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  if (pending.length) {
    const out = finish(Buffer.concat(pending));
    if (out) yield out;
  }
}

/** Parses one line's JSON; a syntax error becomes a problem naming the line. */
export function parseJsonLine(text: string, file: string, line: number): { value: unknown } | { problem: DatasetProblem } {
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    const snippet = text.length > 60 ? `${text.slice(0, 60)}...` : text;
    return { problem: { file, line, path: '', message: `invalid JSON (${(e as Error).message}): ${snippet}`, kind: 'invalid_json' } };
  }
}

/** Each non-blank line of a JSONL file, parsed. */
export async function* readJsonl(file: string, opts: JsonlOptions = {}): AsyncGenerator<JsonlRecord> {
  for await (const { line, text } of readLines(file, opts)) {
    const parsed = parseJsonLine(text, file, line);
    if ('problem' in parsed) report(parsed.problem, opts);
    else yield { line, value: parsed.value };
  }
}
