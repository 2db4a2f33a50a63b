// Dataset problems as data, and the error that carries one. Parsers collect DatasetProblems so a
// validator can report every bad line at once; callers that want the first one thrown wrap it in a
// DatasetError. Messages say what is wrong with which field and what is expected. Checks whose caller
// went away (an AbortSignal fired) reject with cancelledError's CancelledError (code CANCELLED).

import { CancelledError, TunekitError } from '../errors.js';
import type { ProblemKind } from './problems.js';

export interface DatasetProblem {
  file: string;
  /** 1-based line of the JSONL file; 0 for problems with the file as a whole. */
  line: number;
  /** JSON path inside the line's value, like `contents[2].parts[0].text`; '' for the whole line. */
  path: string;
  /** What is wrong and what is expected, without the location. */
  message: string;
  /** Which check found it (src/data/problems.ts); absent only for problems made outside src/data. */
  kind?: ProblemKind;
}

/** Where a problem sits, as `file:line: path` (parts left out when absent). */
export function problemLocation(p: Pick<DatasetProblem, 'file' | 'line' | 'path'>): string {
  const at = p.line > 0 ? `${p.file}:${p.line}` : p.file;
  return p.path ? `${at}: ${p.path}` : at;
}

/** A training or validation dataset is malformed: names the file, line and JSON path. */
export class DatasetError extends TunekitError {
  readonly file: string;
  readonly line: number;
  readonly path: string;
  readonly kind?: ProblemKind;
  /** The message without the location prefix. */
  readonly reason: string;

  constructor(problem: DatasetProblem) {
    super('INVALID_ARGUMENT', `${problemLocation(problem)}: ${problem.message}`);
    this.file = problem.file;
    this.line = problem.line;
    this.path = problem.path;
    this.kind = problem.kind;
    this.reason = problem.message;
  }

  get problem(): DatasetProblem {
    return { file: this.file, line: this.line, path: this.path, message: this.reason, ...(this.kind ? { kind: this.kind } : {}) };
  }
}

/** The error a dataset check rejects with when its AbortSignal fires (code CANCELLED). */
export function cancelledError(signal: AbortSignal): CancelledError {
  return new CancelledError(typeof signal.reason === 'string' ? signal.reason : 'The dataset check was cancelled: its caller is gone.');
}

/** Throws cancelledError(signal) when the signal has fired. */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelledError(signal);
}
