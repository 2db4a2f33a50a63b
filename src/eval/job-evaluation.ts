// A tuning job's evaluation (SupervisedTuningSpec.evaluation_config), the parts that do not depend on
// where it runs: the job's metrics as stored in job.json (JobEvalMetric, checked at create by the API,
// routes/evaluation.ts parseEvaluationConfig), the definitions the evaluation run computes them with
// (run.ts MetricDef, the same run as `tunekit eval`), and the proto's EvaluateDatasetResponse built
// from the run's results: one AggregationResult per metric and aggregation metric, in the config's
// order, the tuned model's scores aggregated (the base model, evaluated beside it as the baseline, is in
// the written results and report, and is what pairwise metrics compare against).

import { aggregate, mode, type AggregationMetric } from './aggregate.js';
import { float32Json } from './stats.js';
import { computeMetric } from './computed.js';
import { rouge, type RougeType } from './rouge.js';
import { judgeTemplatePairwise, judgeTemplatePointwise } from './template-judged.js';
import { namedMetric, type EvalOutcome, type MetricDef } from './run.js';

export type JobMetricSpec =
  | { type: 'named'; metric: string }
  | { type: 'exact_match' }
  | { type: 'bleu'; useEffectiveOrder: boolean }
  | { type: 'rouge'; rougeType: RougeType; useStemmer: boolean; splitSummaries: boolean }
  | { type: 'pointwise_template'; template: string }
  | { type: 'pairwise_template'; template: string; flip: boolean };

export interface JobEvalMetric {
  /** The key of its scores in results.jsonl and the report. */
  name: string;
  spec: JobMetricSpec;
  aggregations: AggregationMetric[];
}

export interface JobJudge {
  /** As the request named it (a publisher model or an endpoint). */
  model: string;
  modelDir: string;
  /** The judge model's files in the blob store (base-models.ts), when registered through object storage. */
  modelBlobs?: string;
  adapterDir?: string;
  samples: number;
}

export interface JobEvaluationSpec {
  metrics: JobEvalMetric[];
  judge?: JobJudge;
  /** inference_generation_config: how both sides generate. */
  generation: { maxTokens: number; temperature: number; seed?: number };
  /** output_config.gcs_destination.output_uri_prefix, when given (else the job's own output location). */
  outputUriPrefix?: string;
  /** The dataset evaluated: the job's validation dataset. */
  datasetUri: string;
}

/** The definition run.ts computes a job metric with. */
export function metricDef(m: JobEvalMetric): MetricDef {
  const s = m.spec;
  switch (s.type) {
    case 'named': return { ...namedMetric(s.metric), name: m.name };
    case 'exact_match': return { name: m.name, kind: 'computed', score: (p, r) => computeMetric('exact_match', p, r) };
    case 'bleu': return { name: m.name, kind: 'computed', score: (p, r) => computeMetric('bleu', p, r, { useEffectiveOrder: s.useEffectiveOrder }) };
    case 'rouge': return {
      name: m.name, kind: 'computed',
      score: (p, r) => {
        if (r === undefined) return computeMetric('rouge_l', p, r); // refuses, naming the missing reference
        return { score: rouge(s.rougeType, r, p, { useStemmer: s.useStemmer, splitSummaries: s.splitSummaries }).fmeasure };
      },
    };
    case 'pointwise_template': return {
      name: m.name, kind: 'pointwise',
      judge: (i, settings) => judgeTemplatePointwise(s.template, { prompt: i.prompt ?? '', response: i.response, reference: i.reference ?? '' }, settings),
    };
    case 'pairwise_template': return {
      name: m.name, kind: 'pairwise',
      judge: (i, settings) => judgeTemplatePairwise(s.template, {
        prompt: i.prompt ?? '', response: i.candidate, baseline_model_response: i.baseline, reference: i.reference ?? '',
      }, settings, s.flip),
    };
  }
}

/** Which AggregationResult field a metric's aggregate goes in. */
function valueField(m: JobEvalMetric): string {
  const s = m.spec;
  if (s.type === 'exact_match' || (s.type === 'named' && s.metric === 'exact_match')) return 'exactMatchMetricValue';
  if (s.type === 'bleu' || (s.type === 'named' && s.metric === 'bleu')) return 'bleuMetricValue';
  if (s.type === 'rouge' || (s.type === 'named' && s.metric.startsWith('rouge_'))) return 'rougeMetricValue';
  return 'pointwiseMetricResult';
}

/**
 * The AggregationResults of a finished run, and the metrics that have no score at all (every instance
 * failed: generation or judging), which make the run's error.
 */
export function aggregationResults(metrics: JobEvalMetric[], outcome: EvalOutcome): { results: Record<string, unknown>[]; unscored: string[] } {
  const results: Record<string, unknown>[] = [];
  const unscored: string[] = [];
  for (const m of metrics) {
    const pairwise = m.spec.type === 'pairwise_template' || (m.spec.type === 'named' && m.spec.metric.startsWith('pairwise_'));
    if (pairwise) {
      const choices = outcome.results.map((r) => r.pairwise[m.name]?.choice).filter((c): c is NonNullable<typeof c> => c !== undefined);
      if (choices.length === 0) unscored.push(m.name);
      for (const a of m.aggregations) {
        const choice = mode(choices);
        results.push({ pairwiseMetricResult: choice === undefined ? {} : { pairwiseChoice: choice }, aggregationMetric: a });
      }
      continue;
    }
    const scores = outcome.results.map((r) => r.candidate.scores[m.name]).filter((x): x is number => x !== undefined);
    if (scores.length === 0) unscored.push(m.name);
    for (const a of m.aggregations) {
      const v = aggregate(a, scores);
      results.push({ [valueField(m)]: v === undefined ? {} : { score: float32Json(v) }, aggregationMetric: a });
    }
  }
  return { results, unscored };
}
