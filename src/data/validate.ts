// `tunekit validate`: every problem of a training file (and optionally its validation file) before any
// compute is spent, from one streaming pass each (scan.ts), plus the dataset-wide warnings the seed
// article gives: different system prompts, too few examples, duplicates, train/validation overlap, a
// validation set over Vertex's 5,000. Errors make `ok` false (the CLI exits 1); warnings do not.
// With `signal` it is cancellable: once the signal fires the scans stop between rows, their worker
// threads are terminated and it rejects with CancelledError (code CANCELLED).

import fs from 'node:fs';
import type { DatasetProblem } from './errors.js';
import { problemLocation, throwIfCancelled } from './errors.js';
import { FORMAT_NAMES } from './formats.js';
import { PROBLEM_KINDS, isError, type ProblemKind } from './problems.js';
import { scanDataset, type DatasetScan, type ModelOptions } from './scan.js';

export const VALIDATION_EXAMPLE_LIMIT = 5000;
export const FILE_SIZE_LIMIT = 1 << 30;

export interface ValidateOptions {
  validationFile?: string;
  model?: ModelOptions;
  onProblem?: (p: DatasetProblem) => void;
  maxPerKind?: number;
  /** Stops the check: rejects with CancelledError (code CANCELLED), no worker left running. */
  signal?: AbortSignal;
  /** Told the bytes read so far of both files together, and their total size. */
  onProgress?: (bytesRead: number, bytes: number) => void;
}

export interface FileSummary {
  file: string;
  role: 'training' | 'validation';
  format: string | null;
  bytes: number;
  lines: number;
  rows: number;
  validExamples: number;
  invalidRows: number;
  truncated: number;
  dropped: number;
  errors: number;
  warnings: number;
  tokenLimit?: number;
}

export interface KindReport {
  kind: ProblemKind;
  severity: 'error' | 'warning';
  title: string;
  note?: string;
  count: number;
  /** The first problems of this kind (by line within each file, training file first). */
  first: DatasetProblem[];
}

export interface ValidationReport {
  ok: boolean;
  errors: number;
  warnings: number;
  files: FileSummary[];
  kinds: KindReport[];
}

export async function validateDataset(file: string, opts: ValidateOptions = {}): Promise<{ report: ValidationReport; scans: DatasetScan[] }> {
  const maxPerKind = opts.maxPerKind ?? 20;
  const signal = opts.signal;
  throwIfCancelled(signal);
  const size = async (f: string | undefined) => (f ? (await fs.promises.stat(f).catch(() => null))?.size ?? 0 : 0);
  const [trainBytes, validationBytes] = [await size(file), await size(opts.validationFile)];
  const progress = (before: number) => opts.onProgress && ((n: number) => opts.onProgress!(before + n, trainBytes + validationBytes));
  const train = await scanDataset(file, { model: opts.model, onProblem: opts.onProblem, maxPerKind, signal, onProgress: progress(0) });
  datasetWarnings(train, 'training');
  const scans = [train];
  if (opts.validationFile) {
    throwIfCancelled(signal);
    const validation = await scanDataset(opts.validationFile, { model: opts.model, onProblem: opts.onProblem, maxPerKind, overlapWith: train.keys, signal, onProgress: progress(trainBytes) });
    datasetWarnings(validation, 'validation');
    scans.push(validation);
  }
  throwIfCancelled(signal);
  return { report: buildReport(scans, maxPerKind), scans };
}

/** Warnings about the file as a whole, added to its problem log. */
function datasetWarnings(scan: DatasetScan, role: 'training' | 'validation'): void {
  const add = (kind: ProblemKind, line: number, message: string): void => scan.problems.add({ file: scan.file, line, path: '', kind, message });
  const n = scan.examples;
  if (n === 0) add('no_examples', 0, 'holds no usable examples (one JSON object per line expected)');
  if (scan.bytes > FILE_SIZE_LIMIT) add('file_too_large', 0, `${(scan.bytes / 2 ** 30).toFixed(2)} GB, over Vertex's 1 GB limit for a dataset file`);
  if (role === 'training' && n > 0 && n <= 50) {
    add('too_few_examples', 0, `only ${n} valid example${n === 1 ? '' : 's'}: with 1-50 examples, few-shot prompting (putting them in the prompt) usually beats tuning; 100-500 examples is the usual sweet spot`);
  } else if (role === 'training' && n > 50 && n < 100) {
    add('too_few_examples', 0, `only ${n} valid examples: 100-500 examples is the usual sweet spot for tuning`);
  }
  if (role === 'validation' && n > VALIDATION_EXAMPLE_LIMIT) {
    add('validation_too_large', 0, `${n} examples, over Vertex's limit of ${VALIDATION_EXAMPLE_LIMIT} for a validation set; evaluation takes longer for little gain`);
  }
  if (scan.distinctSystemPrompts > 1) {
    const prompts = [...scan.systemPrompts.entries()].sort((a, b) => a[1].line - b[1].line);
    const [first, second] = prompts;
    const show = (s: string): string => (s === '' ? '(none)' : JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s));
    add('system_prompts_differ', second[1].line, `${scan.distinctSystemPrompts} different system prompts across the examples: ` +
      `${show(first[0])} (${first[1].count} examples, first at line ${first[1].line}), ${show(second[0])} (${second[1].count}, first at line ${second[1].line})` +
      (scan.distinctSystemPrompts > 2 ? ', ...' : ''));
  }
}

function buildReport(scans: DatasetScan[], maxPerKind: number): ValidationReport {
  const files: FileSummary[] = scans.map((s, i) => ({
    file: s.file, role: i === 0 ? 'training' : 'validation', format: s.format, bytes: s.bytes, lines: s.lines, rows: s.rows,
    validExamples: s.examples, invalidRows: s.rows - s.examples, truncated: s.truncatedCount, dropped: s.droppedCount - (s.rows - s.examples),
    errors: s.problems.errors, warnings: s.problems.warnings, ...(s.limit !== undefined ? { tokenLimit: s.limit } : {}),
  }));
  const kinds: KindReport[] = [];
  for (const kind of Object.keys(PROBLEM_KINDS) as ProblemKind[]) {
    let count = 0;
    const first: DatasetProblem[] = [];
    for (const s of scans) {
      count += s.problems.counts.get(kind) ?? 0;
      first.push(...(s.problems.samples.get(kind) ?? []));
    }
    if (count === 0) continue;
    const info = PROBLEM_KINDS[kind];
    kinds.push({ kind, severity: info.severity, title: info.title, ...(info.note ? { note: info.note } : {}), count, first: first.slice(0, maxPerKind) });
  }
  kinds.sort((a, b) => Number(isError(b.kind)) - Number(isError(a.kind)));
  const errors = files.reduce((n, f) => n + f.errors, 0);
  const warnings = files.reduce((n, f) => n + f.warnings, 0);
  return { ok: errors === 0, errors, warnings, files, kinds };
}

/** The human report: per file counts, then the first problems of each kind, then a summary line. */
export function formatValidationReport(report: ValidationReport, opts: { show?: number } = {}): string {
  const show = opts.show ?? 5;
  const out: string[] = [];
  for (const f of report.files) {
    const layout = f.format ? `${FORMAT_NAMES[f.format as keyof typeof FORMAT_NAMES]} layout` : 'layout unknown';
    out.push(`${f.role} file ${f.file} (${layout}, ${(f.bytes / 1e6).toFixed(2)} MB)`);
    out.push(`  ${f.lines} lines, ${f.rows} examples: ${f.validExamples} valid, ${f.invalidRows} invalid` +
      (f.tokenLimit !== undefined ? `; token limit ${f.tokenLimit}: ${f.truncated} truncated, ${f.dropped} dropped` : '; no --model, so token limits were not checked') +
      `; ${f.errors} errors, ${f.warnings} warnings`);
  }
  for (const severity of ['error', 'warning'] as const) {
    const kinds = report.kinds.filter((k) => k.severity === severity);
    if (kinds.length === 0) continue;
    out.push('', `${severity}s:`);
    for (const k of kinds) {
      out.push(`  ${k.title} [${k.kind}]: ${k.count}${k.note ? ` (${k.note})` : ''}`);
      for (const p of k.first.slice(0, show)) out.push(`    ${problemLocation(p)}: ${p.message}`);
      if (k.count > Math.min(show, k.first.length)) out.push(`    ... and ${k.count - Math.min(show, k.first.length)} more`);
    }
  }
  out.push('');
  out.push(report.ok
    ? `OK: no errors${report.warnings ? `, ${report.warnings} warning${report.warnings === 1 ? '' : 's'}` : ''}`
    : `FAILED: ${report.errors} error${report.errors === 1 ? '' : 's'}, ${report.warnings} warning${report.warnings === 1 ? '' : 's'}; rows with errors would be skipped by training (Vertex drops them)`);
  return out.join('\n') + '\n';
}
