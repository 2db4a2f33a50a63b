// One evaluation run: the dataset's prompts go to the candidate (and the baseline, when there is one),
// every response is scored by the computed metrics and the pointwise judged metrics, and pairwise
// metrics compare the two sides. The result is one row per example and one summary per metric with
// bootstrap confidence intervals. Failures stay per instance (a generation error, an unusable
// judgment): they are counted and shown, never scored.

import { InvalidRequestError } from '../errors.js';
import { computeMetric, COMPUTED_METRICS, isComputedMetric, type ComputedOptions } from './computed.js';
import { judgePairwise, judgePointwise, mapPool, type JudgeSettings, type PairwiseChoice, type PairwiseResult, type PointwiseResult } from './judged.js';
import { judgedMetric, JUDGED_METRIC_NAMES, type JudgedInstance, type JudgedMetric } from './rubrics.js';
import { bootstrapCi, type Interval } from './stats.js';

export interface EvalExample {
  prompt: string;
  reference?: string;
  system?: string;
}

export interface EvalSide {
  /** How the report names it (model directory, adapter, URL). */
  description: string;
  generate(example: EvalExample, index: number): Promise<string>;
}

export interface EvalConfig {
  /** tunekit's metric names, or definitions (a tuning job's evaluation_config). */
  metrics: (string | MetricDef)[];
  judge?: JudgeSettings;
  computed?: ComputedOptions;
  /** Generations in flight per side; default 8. */
  concurrency?: number;
  bootstrapSeed?: number;
  onProgress?: (what: string, done: number, total: number) => void;
}

export interface SideResult {
  response?: string;
  error?: string;
  scores: Record<string, number>;
  /** Spread of judged scores over samples. */
  std: Record<string, number>;
  explanations: Record<string, string>;
  errors: Record<string, string>;
}

export interface PairwiseOutcome {
  choice?: PairwiseChoice;
  candidateScore?: number;
  disagreements?: number;
  explanation?: string;
  error?: string;
}

export interface InstanceResult {
  index: number;
  prompt: string;
  reference?: string;
  candidate: SideResult;
  baseline?: SideResult;
  pairwise: Record<string, PairwiseOutcome>;
}

export interface MetricSummary {
  metric: string;
  kind: 'computed' | 'pointwise' | 'pairwise';
  candidate?: Interval;
  baseline?: Interval;
  candidateFailures: number;
  baselineFailures: number;
  /** Pairwise: the candidate's win rate (ties count half) with its interval, and the plain rates. */
  candidateWinRate?: number;
  baselineWinRate?: number;
  tieRate?: number;
  disagreementRate?: number;
}

export interface EvalOutcome {
  results: InstanceResult[];
  summary: MetricSummary[];
}

/**
 * A metric the run computes: a name (the results' key) and how to score it. `resolveMetrics` makes
 * these from tunekit's metric names; a tuning job's evaluation_config makes its own (proto specs with
 * per-metric options, prompt-template metrics), so both go through one run.
 */
export type MetricDef =
  | { name: string; kind: 'computed'; score: (prediction: string, reference: string | undefined) => { score: number; reason?: string } }
  | { name: string; kind: 'pointwise'; judge: (instance: JudgedInstance, s: JudgeSettings) => Promise<PointwiseResult> }
  | { name: string; kind: 'pairwise'; judge: (instance: PairwiseJudged, s: JudgeSettings) => Promise<PairwiseResult> };

/** A pair to judge: the prompt (and what else the judge is shown) and the two responses. */
export type PairwiseJudged = Omit<JudgedInstance, 'response'> & { baseline: string; candidate: string };

/** tunekit's named metric as a definition (computed options apply to the computed ones). */
export function namedMetric(name: string, computed: ComputedOptions = {}): MetricDef {
  if (isComputedMetric(name)) return { name, kind: 'computed', score: (p, r) => computeMetric(name, p, r, computed) };
  const metric = judgedMetric(name);
  if (!metric) {
    throw new InvalidRequestError(`Unknown metric ${JSON.stringify(name)}. Computed: ${COMPUTED_METRICS.join(', ')}. Judged: ${JUDGED_METRIC_NAMES.join(', ')}.`);
  }
  return judgedDef(metric);
}

export function judgedDef(metric: JudgedMetric): MetricDef {
  return metric.kind === 'pointwise'
    ? { name: metric.name, kind: 'pointwise', judge: (i, s) => judgePointwise(metric, i, s) }
    : { name: metric.name, kind: 'pairwise', judge: (i, s) => judgePairwise(metric, i, s) };
}

/** Checks that the run can compute `defs` (a judge for judged ones, a baseline for pairwise ones). */
export function checkMetrics(defs: MetricDef[], hasBaseline: boolean, hasJudge: boolean): void {
  const seen = new Set<string>();
  for (const d of defs) {
    if (seen.has(d.name)) throw new InvalidRequestError(`Metric ${d.name} is given twice.`);
    seen.add(d.name);
    if (d.kind !== 'computed' && !hasJudge) throw new InvalidRequestError(`Metric ${d.name} is judged by a model: give --judge MODEL|URL.`);
    if (d.kind === 'pairwise' && !hasBaseline) throw new InvalidRequestError(`Metric ${d.name} compares two sides: give --baseline.`);
  }
}

export function resolveMetrics(names: string[], hasBaseline: boolean, hasJudge: boolean, computed: ComputedOptions = {}): MetricDef[] {
  const defs = names.map((n) => namedMetric(n, computed));
  checkMetrics(defs, hasBaseline, hasJudge);
  return defs;
}

function emptySide(): SideResult {
  return { scores: {}, std: {}, explanations: {}, errors: {} };
}

async function generateSide(side: EvalSide, examples: EvalExample[], label: string, cfg: EvalConfig): Promise<SideResult[]> {
  let done = 0;
  const out = await mapPool(examples, cfg.concurrency ?? 8, async (ex, i) => {
    const r = emptySide();
    try {
      r.response = await side.generate(ex, i);
    } catch (e) {
      if (!(e instanceof Error) || !('code' in e)) throw e; // bugs stay bugs
      r.error = e.message;
    }
    cfg.onProgress?.(`generating ${label}`, ++done, examples.length);
    return r;
  });
  // A side with no response at all is misconfigured (wrong model name, key, server), not a result.
  if (out.length > 0 && out.every((r) => r.error !== undefined)) {
    throw new InvalidRequestError(`Every ${label} generation failed (${side.description}); the first: ${out[0].error}`);
  }
  return out;
}

async function scoreSide(metrics: MetricDef[], examples: EvalExample[], side: SideResult[], label: string, cfg: EvalConfig): Promise<void> {
  for (const m of metrics) {
    if (m.kind === 'computed') {
      side.forEach((r, i) => {
        if (r.response === undefined) return;
        const res = m.score(r.response, examples[i].reference);
        r.scores[m.name] = res.score;
        if (res.reason) r.explanations[m.name] = res.reason;
      });
    } else if (m.kind === 'pointwise') {
      let done = 0;
      await mapPool(side, cfg.judge!.concurrency ?? 4, async (r, i) => {
        if (r.response === undefined) return;
        const res = await m.judge({ prompt: examples[i].prompt, response: r.response, reference: examples[i].reference }, cfg.judge!);
        if (res.score !== undefined) {
          r.scores[m.name] = res.score;
          r.std[m.name] = res.std!;
          r.explanations[m.name] = res.judgments.map((j) => j.explanation).join('\n---\n');
        } else {
          r.errors[m.name] = res.error!;
        }
        cfg.onProgress?.(`judging ${m.name} (${label})`, ++done, side.length);
      });
    }
  }
}

export async function runEvaluation(examples: EvalExample[], candidate: EvalSide, baseline: EvalSide | undefined, cfg: EvalConfig): Promise<EvalOutcome> {
  const metrics = cfg.metrics.map((m) => (typeof m === 'string' ? namedMetric(m, cfg.computed) : m));
  checkMetrics(metrics, baseline !== undefined, cfg.judge !== undefined);
  const cand = await generateSide(candidate, examples, 'candidate', cfg);
  const base = baseline ? await generateSide(baseline, examples, 'baseline', cfg) : undefined;
  await scoreSide(metrics, examples, cand, 'candidate', cfg);
  if (base) await scoreSide(metrics, examples, base, 'baseline', cfg);

  const results: InstanceResult[] = examples.map((ex, i) => ({
    index: i, prompt: ex.prompt, reference: ex.reference, candidate: cand[i], ...(base ? { baseline: base[i] } : {}), pairwise: {},
  }));
  for (const m of metrics) {
    if (m.kind !== 'pairwise') continue;
    let done = 0;
    await mapPool(results, cfg.judge!.concurrency ?? 4, async (row) => {
      const c = row.candidate.response;
      const b = row.baseline!.response;
      if (c === undefined || b === undefined) {
        row.pairwise[m.name] = { error: 'a side has no response' };
      } else {
        const res = await m.judge({ prompt: row.prompt, baseline: b, candidate: c, reference: row.reference }, cfg.judge!);
        row.pairwise[m.name] = res.choice === undefined
          ? { error: res.error }
          : {
            choice: res.choice, candidateScore: res.candidateScore, disagreements: res.disagreements,
            explanation: [...res.baselineFirst, ...res.candidateFirst].map((j) => j.explanation).join('\n---\n'),
          };
      }
      cfg.onProgress?.(`judging ${m.name}`, ++done, results.length);
    });
  }
  return { results, summary: summarize(metrics, results, cfg.bootstrapSeed ?? 0, cfg.judge?.samples ?? 1) };
}

function summarize(metrics: MetricDef[], results: InstanceResult[], seed: number, samples: number): MetricSummary[] {
  return metrics.map((m) => {
    if (m.kind === 'pairwise') {
      const ok = results.map((r) => r.pairwise[m.name]).filter((p) => p?.choice !== undefined);
      const rate = (c: PairwiseChoice) => (ok.length ? ok.filter((p) => p.choice === c).length / ok.length : undefined);
      const wins = ok.map((p) => (p.choice === 'CANDIDATE' ? 1 : p.choice === 'TIE' ? 0.5 : 0));
      return {
        metric: m.name, kind: 'pairwise', candidate: bootstrapCi(wins, { seed }),
        candidateFailures: results.length - ok.length, baselineFailures: results.length - ok.length,
        candidateWinRate: rate('CANDIDATE'), baselineWinRate: rate('BASELINE'), tieRate: rate('TIE'),
        disagreementRate: ok.length ? ok.reduce((a, p) => a + (p.disagreements ?? 0), 0) / (ok.length * samples) : undefined,
      };
    }
    const side = (s: (r: InstanceResult) => SideResult | undefined) => {
      const rows = results.map(s).filter((x): x is SideResult => x !== undefined);
      const xs = rows.map((r) => r.scores[m.name]).filter((x): x is number => x !== undefined);
      return { ci: bootstrapCi(xs, { seed }), failures: rows.length - xs.length, present: rows.length > 0 };
    };
    const c = side((r) => r.candidate);
    const b = side((r) => r.baseline);
    return {
      metric: m.name, kind: m.kind,
      candidate: c.ci, baseline: b.present ? b.ci : undefined, candidateFailures: c.failures, baselineFailures: b.failures,
    };
  });
}

/** The summary as a text table (what `tunekit eval` prints). */
export function summaryTable(summary: MetricSummary[], hasBaseline: boolean): string {
  const fmt = (i?: Interval) => (i ? `${i.mean.toFixed(3)} [${i.lo.toFixed(3)}, ${i.hi.toFixed(3)}]` : '-');
  const rows: string[][] = [['metric', 'candidate (95% CI)', ...(hasBaseline ? ['baseline (95% CI)'] : []), 'failed']];
  for (const s of summary) {
    if (s.kind === 'pairwise') {
      const rates = `win ${pct(s.candidateWinRate)} / loss ${pct(s.baselineWinRate)} / tie ${pct(s.tieRate)}; orders disagree ${pct(s.disagreementRate)}`;
      rows.push([s.metric, `${fmt(s.candidate)} (${rates})`, ...(hasBaseline ? ['-'] : []), String(s.candidateFailures)]);
    } else {
      rows.push([s.metric, fmt(s.candidate), ...(hasBaseline ? [fmt(s.baseline)] : []), hasBaseline ? `${s.candidateFailures}/${s.baselineFailures}` : String(s.candidateFailures)]);
    }
  }
  const widths = rows[0].map((_, j) => Math.max(...rows.map((r) => r[j].length)));
  return rows.map((r) => r.map((cell, j) => cell.padEnd(widths[j])).join('  ').trimEnd()).join('\n');
}

function pct(x?: number): string {
  return x === undefined ? '-' : `${(100 * x).toFixed(1)}%`;
}
