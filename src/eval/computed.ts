// The computed (reference-based, no judge) metrics by name, as `tunekit eval --metrics` and the
// evaluation results use them: one function from a prediction, its reference and the metric's options
// to a score in [0, 1]. The families live in their own files (bleu, rouge, exact-match, json,
// tool-call); this table only maps names onto them.

import { InvalidRequestError } from '../errors.js';
import { sentenceBleu } from './bleu.js';
import { exactMatch } from './exact-match.js';
import { jsonSchemaValid, jsonValid } from './json.js';
import { rouge, type RougeType } from './rouge.js';
import { toolCallValid, toolNameMatch, toolParameterKeyMatch, toolParameterKvMatch } from './tool-call.js';

export interface ComputedOptions {
  /** rouge_*: Porter-stem tokens (rouge-score's use_stemmer). */
  useStemmer?: boolean;
  /** rouge_l_sum: find sentences rather than take lines. */
  splitSummaries?: boolean;
  /** bleu: sacreBLEU's effective order (for very short predictions). */
  useEffectiveOrder?: boolean;
  /** tool_parameter_kv_match: compare string values exactly. */
  useStrictStringMatch?: boolean;
  /** json_schema_valid: the JSON Schema responses must satisfy. */
  schema?: unknown;
}

export interface ComputedResult {
  score: number;
  /** Why a score is 0 where that is not obvious (the first schema violation). */
  reason?: string;
}

type Scorer = (prediction: string, reference: string | undefined, opts: ComputedOptions) => ComputedResult;

function needsReference(name: string, reference: string | undefined): string {
  if (reference === undefined) throw new InvalidRequestError(`Metric ${name} needs a reference for every instance.`);
  return reference;
}

function rougeScorer(name: string, type: RougeType): Scorer {
  return (p, r, o) => ({ score: rouge(type, needsReference(name, r), p, { useStemmer: o.useStemmer, splitSummaries: o.splitSummaries }).fmeasure });
}

const SCORERS: Record<string, Scorer> = {
  exact_match: (p, r) => ({ score: exactMatch(p, needsReference('exact_match', r)) }),
  bleu: (p, r, o) => ({ score: sentenceBleu(p, [needsReference('bleu', r)], { effectiveOrder: o.useEffectiveOrder ?? false }).score / 100 }),
  rouge_1: rougeScorer('rouge_1', 'rouge1'),
  rouge_2: rougeScorer('rouge_2', 'rouge2'),
  rouge_l: rougeScorer('rouge_l', 'rougeL'),
  rouge_l_sum: rougeScorer('rouge_l_sum', 'rougeLsum'),
  json_valid: (p) => ({ score: jsonValid(p) }),
  json_schema_valid: (p, _r, o) => {
    if (o.schema === undefined) throw new InvalidRequestError('Metric json_schema_valid needs a JSON Schema (--json-schema FILE, or metricSpec.schema).');
    return jsonSchemaValid(p, o.schema);
  },
  tool_call_valid: (p, r) => ({ score: toolCallValid(p, needsReference('tool_call_valid', r)) }),
  tool_name_match: (p, r) => ({ score: toolNameMatch(p, needsReference('tool_name_match', r)) }),
  tool_parameter_key_match: (p, r) => ({ score: toolParameterKeyMatch(p, needsReference('tool_parameter_key_match', r)) }),
  tool_parameter_kv_match: (p, r, o) => ({ score: toolParameterKvMatch(p, needsReference('tool_parameter_kv_match', r), o.useStrictStringMatch ?? false) }),
};

export const COMPUTED_METRICS = Object.keys(SCORERS);

export function isComputedMetric(name: string): boolean {
  return Object.hasOwn(SCORERS, name);
}

export function computeMetric(name: string, prediction: string, reference: string | undefined, opts: ComputedOptions = {}): ComputedResult {
  const scorer = SCORERS[name];
  if (!scorer || !Object.hasOwn(SCORERS, name)) {
    throw new InvalidRequestError(`Unknown computed metric ${JSON.stringify(name)}; known: ${COMPUTED_METRICS.join(', ')}.`);
  }
  return scorer(prediction, reference, opts);
}
