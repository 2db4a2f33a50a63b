// Judged metrics as Vertex's :evaluateInstances takes them: a metric prompt template whose {name}
// placeholders are filled from the instance's JSON object (pointwiseMetricInput / pairwiseMetricInput
// with `instance.jsonInstance`), the scale being whatever the template's rubric says (any number).
// Pairwise templates show the candidate as {response} and the baseline as {baseline_model_response},
// and the judge answers BASELINE, CANDIDATE or TIE in those terms; with flip (autoraterConfig.flipEnabled)
// each sample is judged again with the two responses swapped under their labels and the answer mapped
// back, which cancels a preference for a position or a label.

import { InvalidRequestError } from '../errors.js';
import { fillTemplate } from './rubrics.js';
import {
  extractJsonObject, judgeOnce, JudgmentFailed, meanStd, parsePointwise, pointwiseSchema, samplesOf,
  type JudgeSettings, type Judgment, type PairwiseChoice, type PairwiseResult, type PointwiseResult,
} from './judged.js';

const POINTWISE_ANSWER = 'Answer with one JSON object and nothing else: {"explanation": "<your reasoning, one short paragraph>", "score": <the rating, a number>}';
const PAIRWISE_ANSWER = 'Answer with one JSON object and nothing else: {"explanation": "<your reasoning, one short paragraph>", "choice": "BASELINE" | "CANDIDATE" | "TIE"} (BASELINE: the baseline response is better; CANDIDATE: the response is better; TIE: neither)';
const PAIRWISE_SCHEMA = { type: 'object', properties: { explanation: { type: 'string' }, choice: { enum: ['BASELINE', 'CANDIDATE', 'TIE'] } }, required: ['explanation', 'choice'] };

/** The instance's JSON object of strings (non-string values are written as JSON). */
export function instanceValues(jsonInstance: string, field: string): Record<string, string> {
  let v: unknown;
  try {
    v = JSON.parse(jsonInstance);
  } catch (e) {
    throw new InvalidRequestError(`Invalid value at '${field}': not JSON (${(e as Error).message}).`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InvalidRequestError(`Invalid value at '${field}': expected a JSON object of the template's variables.`);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, typeof x === 'string' ? x : JSON.stringify(x)]));
}

export async function judgeTemplatePointwise(template: string, values: Record<string, string>, s: JudgeSettings): Promise<PointwiseResult> {
  const prompt = `${fillTemplate(template, values)}\n\n${POINTWISE_ANSWER}`;
  const judgments: Judgment<number>[] = [];
  try {
    for (let i = 0; i < samplesOf(s); i++) judgments.push(await judgeOnce(prompt, (t) => parsePointwise(t, undefined), s, i, pointwiseSchema(undefined)));
  } catch (e) {
    if (e instanceof JudgmentFailed) return { judgments, error: e.message };
    throw e;
  }
  const { mean, std } = meanStd(judgments.map((j) => j.value));
  return { score: mean, std, judgments };
}

function parseChoice(text: string) {
  const obj = extractJsonObject(text);
  if (!obj) return { ok: false as const, reason: 'the answer holds no JSON object' };
  const raw = obj.choice ?? obj.pairwise_choice;
  const c = typeof raw === 'string' ? raw.trim().toUpperCase() : '';
  if (c !== 'BASELINE' && c !== 'CANDIDATE' && c !== 'TIE') return { ok: false as const, reason: `"choice" is ${JSON.stringify(raw)}, not BASELINE, CANDIDATE or TIE` };
  return { ok: true as const, value: c as PairwiseChoice, explanation: typeof obj.explanation === 'string' ? obj.explanation : '' };
}

const SWAP: Record<PairwiseChoice, PairwiseChoice> = { BASELINE: 'CANDIDATE', CANDIDATE: 'BASELINE', TIE: 'TIE' };
const VALUE: Record<PairwiseChoice, number> = { CANDIDATE: 1, TIE: 0.5, BASELINE: 0 };

export async function judgeTemplatePairwise(template: string, values: Record<string, string>, s: JudgeSettings, flip: boolean): Promise<PairwiseResult> {
  const asGiven = `${fillTemplate(template, values)}\n\n${PAIRWISE_ANSWER}`;
  const swapped = `${fillTemplate(template, { ...values, response: values.baseline_model_response, baseline_model_response: values.response })}\n\n${PAIRWISE_ANSWER}`;
  const baselineFirst: Judgment<PairwiseChoice>[] = [];
  const candidateFirst: Judgment<PairwiseChoice>[] = [];
  try {
    for (let i = 0; i < samplesOf(s); i++) {
      baselineFirst.push(await judgeOnce(asGiven, parseChoice, s, i, PAIRWISE_SCHEMA));
      if (flip) {
        const j = await judgeOnce(swapped, parseChoice, s, i, PAIRWISE_SCHEMA);
        candidateFirst.push({ ...j, value: SWAP[j.value] });
      }
    }
  } catch (e) {
    if (e instanceof JudgmentFailed) return { baselineFirst, candidateFirst, disagreements: 0, error: e.message };
    throw e;
  }
  const { mean, std } = meanStd([...baselineFirst, ...candidateFirst].map((j) => VALUE[j.value]));
  return {
    choice: mean > 0.5 ? 'CANDIDATE' : mean < 0.5 ? 'BASELINE' : 'TIE', candidateScore: mean, std, baselineFirst, candidateFirst,
    disagreements: candidateFirst.filter((j, i) => j.value !== baselineFirst[i].value).length,
  };
}
