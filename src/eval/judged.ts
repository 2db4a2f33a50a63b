// Running judged metrics: each instance's judgments, samples, retries and failures.
// Rules it keeps:
// - An answer that does not parse (no JSON object, a score off the rubric's scale, a choice other than
//   A/B/SAME) is asked again, up to `retries` more times, with the reason appended and at a temperature
//   of at least 0.7 so a deterministic judge does not repeat itself; transport failures are retried the
//   same way. When every attempt fails the instance carries an `error` and no score: never a default.
// - `samples` judgments per instance (seeds seed, seed+1, ...): the score is their mean, `std` their
//   sample standard deviation (0 for one sample).
// - Pairwise: every pair is judged in both orders (baseline shown as A, then candidate shown as A) to
//   cancel position bias. Each judgment maps to CANDIDATE (1), TIE (0.5) or BASELINE (0); the
//   instance's choice is the sign of mean - 0.5. `disagreements` counts the samples whose two orders
//   mapped to different choices.

import { InvalidRequestError } from '../errors.js';
import { JudgeTransportError, type Judge } from './judge.js';
import { pairwisePrompt, pointwisePrompt, type JudgedInstance, type PairwiseMetric, type PointwiseMetric } from './rubrics.js';

export interface JudgeSettings {
  judge: Judge;
  /** Judgments per instance (and per order, pairwise); default 1. */
  samples?: number;
  /** Extra attempts per judgment after an unparseable answer or transport failure; default 2. */
  retries?: number;
  /** Default 0 for one sample, 1 for several. */
  temperature?: number;
  seed?: number;
  maxTokens?: number;
  /** Judge requests in flight at once; default 4. */
  concurrency?: number;
  signal?: AbortSignal;
}

export interface Judgment<T> {
  value: T;
  explanation: string;
  /** Attempts this judgment took (1 = first answer parsed). */
  attempts: number;
}

export interface PointwiseResult {
  score?: number;
  std?: number;
  judgments: Judgment<number>[];
  error?: string;
}

export type PairwiseChoice = 'BASELINE' | 'CANDIDATE' | 'TIE';

export interface PairwiseResult {
  choice?: PairwiseChoice;
  /** Mean of the judgments, CANDIDATE 1, TIE 0.5, BASELINE 0. */
  candidateScore?: number;
  std?: number;
  /** Judgments with the baseline shown as A, mapped to choices. */
  baselineFirst: Judgment<PairwiseChoice>[];
  /** Judgments with the candidate shown as A, mapped to choices. */
  candidateFirst: Judgment<PairwiseChoice>[];
  /** Samples whose two orders disagree. */
  disagreements: number;
  error?: string;
}

/** The JSON object in a judge's answer: the whole answer, a fenced block, or the outermost braces. */
export function extractJsonObject(text: string): Record<string, unknown> | undefined {
  const candidates = [text.trim()];
  const fence = /```(?:json)?\s*([\s\S]*?)```/.exec(text);
  if (fence) candidates.push(fence[1].trim());
  const first = text.indexOf('{');
  const last = text.lastIndexOf('}');
  if (first >= 0 && last > first) candidates.push(text.slice(first, last + 1));
  for (const c of candidates) {
    try {
      const v = JSON.parse(c) as unknown;
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // next candidate
    }
  }
  return undefined;
}

type Parsed<T> = { ok: true; value: T; explanation: string } | { ok: false; reason: string };

/** A pointwise answer; `allowed` undefined accepts any finite number (a template with its own scale). */
export function parsePointwise(text: string, allowed: number[] | undefined): Parsed<number> {
  const obj = extractJsonObject(text);
  if (!obj) return { ok: false, reason: 'the answer holds no JSON object' };
  const raw = obj.score ?? obj.rating;
  const score = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (allowed === undefined ? !Number.isFinite(score) : !allowed.includes(score)) {
    return { ok: false, reason: `"score" is ${JSON.stringify(raw)}, not ${allowed === undefined ? 'a number' : `one of ${allowed.join(', ')}`}` };
  }
  return { ok: true, value: score, explanation: typeof obj.explanation === 'string' ? obj.explanation : '' };
}

export function parsePairwise(text: string): Parsed<'A' | 'B' | 'SAME'> {
  const obj = extractJsonObject(text);
  if (!obj) return { ok: false, reason: 'the answer holds no JSON object' };
  const raw = obj.choice ?? obj.pairwise_choice;
  const choice = typeof raw === 'string' ? raw.trim().toUpperCase() : '';
  if (choice !== 'A' && choice !== 'B' && choice !== 'SAME') return { ok: false, reason: `"choice" is ${JSON.stringify(raw)}, not "A", "B" or "SAME"` };
  return { ok: true, value: choice, explanation: typeof obj.explanation === 'string' ? obj.explanation : '' };
}

export class JudgmentFailed extends Error {}

/** The answers' JSON Schemas (what local judges decode under). */
export const pointwiseSchema = (allowed: number[] | undefined): object => ({
  type: 'object', properties: { explanation: { type: 'string' }, score: allowed ? { enum: allowed } : { type: 'number' } }, required: ['explanation', 'score'],
});
export const PAIRWISE_SCHEMA: object = {
  type: 'object', properties: { explanation: { type: 'string' }, choice: { enum: ['A', 'B', 'SAME'] } }, required: ['explanation', 'choice'],
};

/** One judgment with retries; throws JudgmentFailed naming the last reason when every attempt fails. */
export async function judgeOnce<T>(prompt: string, parse: (text: string) => Parsed<T>, s: JudgeSettings, sample: number, jsonSchema: object): Promise<Judgment<T>> {
  const retries = s.retries ?? 2;
  const baseTemperature = s.temperature ?? ((s.samples ?? 1) > 1 ? 1 : 0);
  let reason = '';
  for (let attempt = 0; attempt <= retries; attempt++) {
    const text = attempt === 0 ? prompt : `${prompt}\n\nYour previous answer could not be read (${reason}). Answer again with only the JSON object.`;
    let answer: string;
    try {
      answer = await s.judge.complete(text, {
        temperature: attempt === 0 ? baseTemperature : Math.max(baseTemperature, 0.7),
        seed: s.seed === undefined ? undefined : s.seed + sample + 1000 * attempt,
        maxTokens: s.maxTokens,
        jsonSchema,
        signal: s.signal,
      });
    } catch (e) {
      if (!(e instanceof JudgeTransportError)) throw e;
      reason = e.message;
      continue;
    }
    const parsed = parse(answer);
    if (parsed.ok) return { value: parsed.value, explanation: parsed.explanation, attempts: attempt + 1 };
    reason = `${parsed.reason}; the answer began ${JSON.stringify(answer.slice(0, 120))}`;
  }
  throw new JudgmentFailed(`no usable judgment after ${retries + 1} attempts: ${reason}`);
}

export function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

export function samplesOf(s: JudgeSettings): number {
  const n = s.samples ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new InvalidRequestError(`judge samples must be a whole number >= 1, got ${n}`);
  return n;
}

export async function judgePointwise(metric: PointwiseMetric, instance: JudgedInstance, s: JudgeSettings): Promise<PointwiseResult> {
  if (metric.usesReference && instance.reference === undefined) throw new InvalidRequestError(`Metric ${metric.name} needs a reference for every instance.`);
  const prompt = pointwisePrompt(metric, instance);
  const allowed = metric.rubric.map((l) => l.score);
  const judgments: Judgment<number>[] = [];
  try {
    for (let i = 0; i < samplesOf(s); i++) judgments.push(await judgeOnce(prompt, (t) => parsePointwise(t, allowed), s, i, pointwiseSchema(allowed)));
  } catch (e) {
    if (e instanceof JudgmentFailed) return { judgments, error: e.message };
    throw e;
  }
  const { mean, std } = meanStd(judgments.map((j) => j.value));
  return { score: mean, std, judgments };
}

const VALUE: Record<PairwiseChoice, number> = { CANDIDATE: 1, TIE: 0.5, BASELINE: 0 };

export async function judgePairwise(
  metric: PairwiseMetric,
  instance: Omit<JudgedInstance, 'response'> & { baseline: string; candidate: string },
  s: JudgeSettings,
): Promise<PairwiseResult> {
  if (metric.usesReference && instance.reference === undefined) throw new InvalidRequestError(`Metric ${metric.name} needs a reference for every instance.`);
  const shown = { prompt: instance.prompt, reference: instance.reference, context: instance.context, showReference: instance.showReference };
  const baseFirst = pairwisePrompt(metric, { ...shown, a: instance.baseline, b: instance.candidate });
  const candFirst = pairwisePrompt(metric, { ...shown, a: instance.candidate, b: instance.baseline });
  const baselineFirst: Judgment<PairwiseChoice>[] = [];
  const candidateFirst: Judgment<PairwiseChoice>[] = [];
  const map = (j: Judgment<'A' | 'B' | 'SAME'>, aIs: PairwiseChoice, bIs: PairwiseChoice): Judgment<PairwiseChoice> =>
    ({ ...j, value: j.value === 'A' ? aIs : j.value === 'B' ? bIs : 'TIE' });
  try {
    for (let i = 0; i < samplesOf(s); i++) {
      baselineFirst.push(map(await judgeOnce(baseFirst, parsePairwise, s, i, PAIRWISE_SCHEMA), 'BASELINE', 'CANDIDATE'));
      candidateFirst.push(map(await judgeOnce(candFirst, parsePairwise, s, i, PAIRWISE_SCHEMA), 'CANDIDATE', 'BASELINE'));
    }
  } catch (e) {
    if (e instanceof JudgmentFailed) return { baselineFirst, candidateFirst, disagreements: 0, error: e.message };
    throw e;
  }
  const values = [...baselineFirst, ...candidateFirst].map((j) => VALUE[j.value]);
  const { mean, std } = meanStd(values);
  const disagreements = baselineFirst.filter((j, i) => j.value !== candidateFirst[i].value).length;
  const choice: PairwiseChoice = mean > 0.5 ? 'CANDIDATE' : mean < 0.5 ? 'BASELINE' : 'TIE';
  return { choice, candidateScore: mean, std, baselineFirst, candidateFirst, disagreements };
}

/** Runs `fn` over items with at most `limit` in flight; results in input order. */
export async function mapPool<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

export interface PointwiseSummary {
  metric: string;
  mean?: number;
  count: number;
  failures: number;
}

export interface PairwiseSummary {
  metric: string;
  candidateWinRate?: number;
  baselineWinRate?: number;
  tieRate?: number;
  /** Of all (sample, pair) judgments in both orders, the share whose two orders disagree. */
  disagreementRate?: number;
  count: number;
  failures: number;
}

export function summarizePointwise(metric: string, results: PointwiseResult[]): PointwiseSummary {
  const ok = results.filter((r) => r.score !== undefined);
  return {
    metric, count: ok.length, failures: results.length - ok.length,
    mean: ok.length ? ok.reduce((a, r) => a + r.score!, 0) / ok.length : undefined,
  };
}

export function summarizePairwise(metric: string, results: PairwiseResult[]): PairwiseSummary {
  const ok = results.filter((r) => r.choice !== undefined);
  const rate = (c: PairwiseChoice) => (ok.length ? ok.filter((r) => r.choice === c).length / ok.length : undefined);
  const pairs = ok.reduce((a, r) => a + r.baselineFirst.length, 0);
  return {
    metric, count: ok.length, failures: results.length - ok.length,
    candidateWinRate: rate('CANDIDATE'), baselineWinRate: rate('BASELINE'), tieRate: rate('TIE'),
    disagreementRate: pairs ? ok.reduce((a, r) => a + r.disagreements, 0) / pairs : undefined,
  };
}
