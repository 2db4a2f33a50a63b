// Vertex's supervisedTuningDataStats, computed from one streaming pass with token counting (scan.ts),
// in proto3 JSON form (int64 fields as strings, doubles as numbers) so the platform puts the object
// returned by tuningDataStats() into tuningJob.tuningDataStats as it is.
// Definitions:
// - An example is a non-blank line (a row); tuningDatasetExampleCount counts the valid ones (rows that
//   parse, alternate roles and render). Invalid and dropped rows are in droppedExampleReasons.
// - totalTuningCharacterCount: Unicode code points of every text (system instruction and turns) of
//   the valid examples.
// - Tokens per example, input vs output: see tokens.ts. userInputTokenDistribution is over input
//   tokens (no loss), userOutputTokenDistribution over output tokens (loss-carrying: model turns and
//   their end-of-turn tokens), both per valid example as rendered in full; billableSum counts only what
//   is trained: kept examples, truncated ones up to the limit, dropped ones not at all.
//   userMessagePerExampleDistribution: turns (contents entries, the system instruction not included);
//   its billableSum is over the examples that are trained.
// - totalBillableTokenCount: input + output tokens that are trained, for one pass over the data (the
//   epoch count multiplies what a run processes, not this figure).
// - tuningStepCount: epochs x ceil(trained examples / batch size).
// - Distributions: min, max, mean over the values; median, p5, p95 by linear interpolation between the
//   closest ranks (numpy's default: value at rank p x (n - 1) of the sorted values); buckets: integer
//   values split into at most 10 equal-width buckets [left, right), width ceil((max - min + 1) / 10),
//   the first starting at min. Empty populations give zeros and no buckets.
// - truncatedExampleIndices: 1-based row numbers (the first 1,000); droppedExampleReasons: one line per
//   dropped row (the first 1,000), naming its row and line.

import { RowStatus, scanDataset, type DatasetScan, type ModelOptions } from './scan.js';

export interface Content {
  role: 'user' | 'model';
  parts: { text: string }[];
}

export interface DatasetBucket {
  count: number;
  left: number;
  right: number;
}

export interface SupervisedTuningDatasetDistribution {
  sum: string;
  billableSum: string;
  min: number;
  max: number;
  mean: number;
  median: number;
  p5: number;
  p95: number;
  buckets: DatasetBucket[];
}

export interface SupervisedTuningDataStats {
  tuningDatasetExampleCount: string;
  totalTuningCharacterCount: string;
  totalBillableTokenCount: string;
  tuningStepCount: string;
  userInputTokenDistribution: SupervisedTuningDatasetDistribution;
  userOutputTokenDistribution: SupervisedTuningDatasetDistribution;
  userMessagePerExampleDistribution: SupervisedTuningDatasetDistribution;
  userDatasetExamples: Content[];
  totalTruncatedExampleCount: string;
  truncatedExampleIndices: string[];
  droppedExampleReasons: string[];
}

export interface TuningDataStats {
  supervisedTuningDataStats: SupervisedTuningDataStats;
}

export interface StatsOptions {
  model: ModelOptions;
  /** Default 3 (tunekit tune's default). */
  epochs?: number;
  /** Examples per step; default 8. */
  batchSize?: number;
  /** Told the bytes read so far and the file's size. */
  onProgress?: (bytesRead: number, bytes: number) => void;
}

export const DEFAULT_STATS_EPOCHS = 3;
export const DEFAULT_STATS_BATCH_SIZE = 8;

/** Percentile p (0..1) of sorted values by linear interpolation between closest ranks. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const rank = p * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

/** A distribution over integer values, with the billable sum given by the caller. */
export function distribution(values: ArrayLike<number>, billableSum: number): SupervisedTuningDatasetDistribution {
  const n = values.length;
  if (n === 0) return { sum: '0', billableSum: String(billableSum), min: 0, max: 0, mean: 0, median: 0, p5: 0, p95: 0, buckets: [] };
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  const min = sorted[0];
  const max = sorted[n - 1];
  const width = Math.max(1, Math.ceil((max - min + 1) / 10));
  const buckets: DatasetBucket[] = [];
  for (let left = min; left <= max; left += width) buckets.push({ count: 0, left, right: left + width });
  for (let i = 0; i < n; i++) buckets[Math.floor((sorted[i] - min) / width)].count++;
  return {
    sum: String(sum), billableSum: String(billableSum), min, max, mean: sum / n,
    median: percentile(sorted, 0.5), p5: percentile(sorted, 0.05), p95: percentile(sorted, 0.95), buckets,
  };
}

/** Vertex's statistics of a scan that ran with token counting. */
export function statsFromScan(scan: DatasetScan, opts: { epochs?: number; batchSize?: number } = {}): TuningDataStats {
  const epochs = opts.epochs ?? DEFAULT_STATS_EPOCHS;
  const batchSize = opts.batchSize ?? DEFAULT_STATS_BATCH_SIZE;
  const c = scan.columns;
  const input: number[] = [];
  const output: number[] = [];
  const messages: number[] = [];
  let chars = 0;
  let billableInput = 0;
  let billableOutput = 0;
  let billableMessages = 0;
  let trained = 0;
  for (let row = 1; row <= scan.rows; row++) {
    const status = c.status.get(row);
    // Invalid rows, and rows the chat template cannot render (no tokens), are not examples.
    if (status === RowStatus.Invalid || (status === RowStatus.Dropped && c.tokens.get(row) === 0)) continue;
    chars += c.chars.get(row);
    messages.push(c.messages.get(row));
    input.push(c.tokens.get(row) - c.output.get(row));
    output.push(c.output.get(row));
    if (status === RowStatus.Kept || status === RowStatus.Truncated) {
      trained++;
      billableMessages += c.messages.get(row);
      billableInput += c.keptTokens.get(row) - c.keptOutput.get(row);
      billableOutput += c.keptOutput.get(row);
    }
  }
  const valid = messages.length;
  return {
    supervisedTuningDataStats: {
      tuningDatasetExampleCount: String(valid),
      totalTuningCharacterCount: String(chars),
      totalBillableTokenCount: String(billableInput + billableOutput),
      tuningStepCount: String(epochs * Math.ceil(trained / batchSize)),
      userInputTokenDistribution: distribution(input, billableInput),
      userOutputTokenDistribution: distribution(output, billableOutput),
      userMessagePerExampleDistribution: distribution(messages, billableMessages),
      userDatasetExamples: scan.samples.flatMap((conv) => conv.turns.map((t) => ({ role: t.role, parts: [{ text: t.text }] }))),
      totalTruncatedExampleCount: String(scan.truncatedCount),
      truncatedExampleIndices: scan.truncatedRows.map(String),
      droppedExampleReasons: scan.dropped.map(([, reason]) => reason),
    },
  };
}

/** Streams the file once, counting tokens with the model's tokenizer; the object for tuningJob.tuningDataStats. */
export async function tuningDataStats(file: string, opts: StatsOptions): Promise<TuningDataStats> {
  const scan = await scanDataset(file, { model: opts.model, maxPerKind: 1, onProgress: opts.onProgress });
  return statsFromScan(scan, opts);
}

/** A human summary of the statistics. */
export function formatStats(stats: TuningDataStats, file: string): string {
  const s = stats.supervisedTuningDataStats;
  const dist = (name: string, d: SupervisedTuningDatasetDistribution): string[] => [
    `${name}: sum ${d.sum} (billable ${d.billableSum}), min ${d.min}, max ${d.max}, mean ${round(d.mean)}, median ${round(d.median)}, p5 ${round(d.p5)}, p95 ${round(d.p95)}`,
    `  buckets: ${d.buckets.map((b) => `[${b.left}, ${b.right}) ${b.count}`).join(', ')}`,
  ];
  return [
    `${file}`,
    `examples: ${s.tuningDatasetExampleCount}, characters: ${s.totalTuningCharacterCount}, billable tokens: ${s.totalBillableTokenCount}, tuning steps: ${s.tuningStepCount}`,
    ...dist('input tokens per example', s.userInputTokenDistribution),
    ...dist('output tokens per example', s.userOutputTokenDistribution),
    ...dist('messages per example', s.userMessagePerExampleDistribution),
    `truncated: ${s.totalTruncatedExampleCount}${s.truncatedExampleIndices.length ? ` (examples ${s.truncatedExampleIndices.slice(0, 20).join(', ')}${s.truncatedExampleIndices.length > 20 ? ', ...' : ''})` : ''}`,
    `dropped: ${s.droppedExampleReasons.length}`,
    ...s.droppedExampleReasons.slice(0, 10).map((r) => `  ${r}`),
  ].join('\n') + '\n';
}

const round = (x: number): string => String(Number(x.toFixed(2)));
