// Vertex's online evaluation: POST projects/{p}/locations/{l}:evaluateInstances (EvaluationService).
// Order: credentials and permission aiplatform.locations.evaluateInstances (401, 403), location (400),
// then the body, which holds exactly one of the metric inputs (the proto's `metric_inputs` oneof) and
// is answered with the matching results:
//   exactMatchInput            -> exactMatchResults.exactMatchMetricValues[{score}]
//   bleuInput                  -> bleuResults.bleuMetricValues[{score}]          (spec: useEffectiveOrder)
//   rougeInput                 -> rougeResults.rougeMetricValues[{score}]        (spec: rougeType, useStemmer, splitSummaries)
//   toolCallValidInput         -> toolCallValidResults.toolCallValidMetricValues[{score}]
//   toolNameMatchInput         -> toolNameMatchResults.toolNameMatchMetricValues[{score}]
//   toolParameterKeyMatchInput -> toolParameterKeyMatchResults.toolParameterKeyMatchMetricValues[{score}]
//   toolParameterKvMatchInput  -> toolParameterKvMatchResults.toolParameterKvMatchMetricValues[{score}] (spec: useStrictStringMatch)
// Each input is {metricSpec, instances: [{prediction, reference}]}; one value per instance, in order.
// Scores are the metrics of src/eval (bleu is sacreBLEU's sentence BLEU / 100, rouge the F-measure),
// written as proto `float`s are: the shortest decimal that reads back as the same float32.
// Judged by a model (the autorater: autoraterConfig.autoraterModel, a publisher model of the catalog,
// run on its serving engine under the answer's JSON Schema; samplingCount judgments; flipEnabled judges
// pairs a second time with the responses swapped):
//   pointwiseMetricInput{metricSpec{metricPromptTemplate}, instance{jsonInstance}} -> pointwiseMetricResult{score, explanation}
//   pairwiseMetricInput (template with {response} and {baseline_model_response}) -> pairwiseMetricResult{pairwiseChoice, explanation}
// A judge that gives no usable answer after its retries is 503 UNAVAILABLE, never a default score.
// The other named model-based inputs (coherenceInput, ...) answer 501 UNIMPLEMENTED.

import type { Hono } from 'hono';
import { guard } from '../auth.js';
import { body, checkLocation, requestSignal, type ApiContext } from '../context.js';
import { HttpError, invalidArgument } from '../errors.js';
import type { Message } from '../proto-json.js';
import { computeMetric, type ComputedOptions } from '../../eval/computed.js';
import { isRougeType, rouge } from '../../eval/rouge.js';
import { engineJudge } from '../../eval/local-model.js';
import type { JudgeSettings } from '../../eval/judged.js';
import { instanceValues, judgeTemplatePairwise, judgeTemplatePointwise } from '../../eval/template-judged.js';

export const EVALUATION_PERMISSION = 'aiplatform.locations.evaluateInstances';

const V = 'google.cloud.aiplatform.v1';

interface ComputedInput {
  /** The input field (lowerCamelCase) and its results field and values field. */
  input: string;
  results: string;
  values: string;
  /** Proto message names, for error messages. */
  type: string;
  specType: string;
  /** The scorer the metric spec asks for: (prediction, reference) -> score. */
  metric: (spec: Message) => Scorer;
}

type Scorer = (prediction: string, reference: string) => number;

const named = (name: string, opts: ComputedOptions = {}): Scorer => (p, r) => computeMetric(name, p, r, opts).score;

const ROUGE_TYPES = ['rouge1', 'rouge2', 'rouge3', 'rouge4', 'rouge5', 'rouge6', 'rouge7', 'rouge8', 'rouge9', 'rougeL', 'rougeLsum'];

function simple(input: string, prefix: string, type: string, name: string): ComputedInput {
  return {
    input, results: `${prefix}Results`, values: `${prefix}MetricValues`, type, specType: `${type.replace(/Input$/, 'Spec')}`,
    metric: () => named(name),
  };
}

const COMPUTED_INPUTS: ComputedInput[] = [
  simple('exactMatchInput', 'exactMatch', 'ExactMatchInput', 'exact_match'),
  {
    input: 'bleuInput', results: 'bleuResults', values: 'bleuMetricValues', type: 'BleuInput', specType: 'BleuSpec',
    metric: (spec) => named('bleu', { useEffectiveOrder: spec.bool('useEffectiveOrder') ?? false }),
  },
  {
    input: 'rougeInput', results: 'rougeResults', values: 'rougeMetricValues', type: 'RougeInput', specType: 'RougeSpec',
    metric: (spec) => {
      const rougeType = spec.raw('rougeType');
      if (rougeType === undefined) throw invalidArgument(`Missing required field '${spec.fieldPath('rougeType')}'. Use one of ${ROUGE_TYPES.join(', ')}.`);
      if (typeof rougeType !== 'string' || !isRougeType(rougeType)) throw spec.invalid('rougeType', 'TYPE_STRING', rougeType);
      const opts = { useStemmer: spec.bool('useStemmer') ?? false, splitSummaries: spec.bool('splitSummaries') ?? false };
      return (prediction, reference) => rouge(rougeType, reference, prediction, opts).fmeasure;
    },
  },
  simple('toolCallValidInput', 'toolCallValid', 'ToolCallValidInput', 'tool_call_valid'),
  simple('toolNameMatchInput', 'toolNameMatch', 'ToolNameMatchInput', 'tool_name_match'),
  simple('toolParameterKeyMatchInput', 'toolParameterKeyMatch', 'ToolParameterKeyMatchInput', 'tool_parameter_key_match'),
  {
    input: 'toolParameterKvMatchInput', results: 'toolParameterKvMatchResults', values: 'toolParameterKvMatchMetricValues',
    type: 'ToolParameterKVMatchInput', specType: 'ToolParameterKVMatchSpec',
    metric: (spec) => named('tool_parameter_kv_match', { useStrictStringMatch: spec.bool('useStrictStringMatch') ?? false }),
  },
];

/** The judged inputs of the same oneof (model-based metrics): recognised, not served yet. */
const JUDGED_INPUTS = [
  'pointwiseMetricInput', 'pairwiseMetricInput', 'coherenceInput', 'fluencyInput', 'safetyInput', 'groundednessInput',
  'fulfillmentInput', 'summarizationQualityInput', 'pairwiseSummarizationQualityInput', 'summarizationHelpfulnessInput',
  'summarizationVerbosityInput', 'questionAnsweringQualityInput', 'pairwiseQuestionAnsweringQualityInput',
  'questionAnsweringRelevanceInput', 'questionAnsweringHelpfulnessInput', 'questionAnsweringCorrectnessInput',
  'trajectoryExactMatchInput', 'trajectoryInOrderMatchInput', 'trajectoryAnyOrderMatchInput', 'trajectoryPrecisionInput',
  'trajectoryRecallInput', 'trajectorySingleToolUseInput', 'cometInput', 'metricxInput', 'rubricBasedInstructionFollowingInput',
];

/** A score as protobuf's JSON printer writes a `float` field: the shortest decimal naming the same float32. */
export function float32Json(x: number): number {
  const f = Math.fround(x);
  for (let p = 1; p < 9; p++) {
    const d = Number(f.toPrecision(p));
    if (Math.fround(d) === f) return d;
  }
  return Number(f.toPrecision(9));
}

/** The one metric input a request holds (by its lowerCamelCase field name). */
function chosenInput(request: Message): string {
  const known = [...COMPUTED_INPUTS.map((i) => i.input), ...JUDGED_INPUTS];
  const set = known.filter((f) => request.has(f));
  if (set.length === 0) {
    throw invalidArgument(`Exactly one metric input must be set (one of ${COMPUTED_INPUTS.map((i) => i.input).join(', ')}); the request has none.`);
  }
  if (set.length > 1) {
    throw invalidArgument(`Only one metric input may be set per request (the metric_inputs oneof); got ${set.map((f) => request.fieldPath(f)).join(' and ')}.`);
  }
  return set[0];
}

/** The autorater a judged request names, as judge settings. */
async function autorater(api: ApiContext, request: Message, signal: AbortSignal): Promise<JudgeSettings & { flip: boolean }> {
  const config = request.message('autoraterConfig', `${V}.AutoraterConfig`);
  const model = config?.string('autoraterModel');
  if (!config || !model) {
    throw invalidArgument(`Missing required field 'autorater_config.autorater_model': tunekit has no default autorater; name a publisher model, e.g. "projects/p/locations/l/publishers/google/models/NAME".`);
  }
  const m = /^(?:projects\/[^/]+\/locations\/[^/]+\/)?publishers\/([^/]+)\/models\/([^/]+)$/.exec(model);
  if (!m) throw invalidArgument(`Invalid value at 'autorater_config.autorater_model', ${JSON.stringify(model)}: expected publishers/{publisher}/models/{model} (optionally under projects/{p}/locations/{l}).`);
  const served = await api.catalog.served(m[1], m[2]);
  const samples = config.int32('samplingCount') ?? 1;
  if (samples < 1 || samples > 32) throw invalidArgument(`Invalid value at 'autorater_config.sampling_count' (TYPE_INT32), ${samples}: use 1 to 32.`);
  return {
    judge: engineJudge(served.engine, served.model, { description: model, adapterDir: served.adapterDir }),
    samples, retries: 2, signal, flip: config.bool('flipEnabled') ?? false,
  };
}

async function evaluateJudged(api: ApiContext, request: Message, field: string, signal: AbortSignal): Promise<Record<string, unknown>> {
  const pairwise = field === 'pairwiseMetricInput';
  const type = pairwise ? 'PairwiseMetric' : 'PointwiseMetric';
  const input = request.message(field, `${V}.${type}Input`)!;
  const spec = input.message('metricSpec', `${V}.${type}Spec`);
  const template = spec?.string('metricPromptTemplate');
  if (!spec || template === undefined) throw invalidArgument(`Missing required field '${input.fieldPath('metricSpec')}.metric_prompt_template'.`);
  const instance = input.message('instance', `${V}.${type}Instance`);
  const json = instance?.string('jsonInstance');
  if (!instance || json === undefined) throw invalidArgument(`Missing required field '${input.fieldPath('instance')}.json_instance'.`);
  const values = instanceValues(json, instance.fieldPath('jsonInstance'));
  if (pairwise && (values.response === undefined || values.baseline_model_response === undefined)) {
    throw invalidArgument(`Invalid value at '${instance.fieldPath('jsonInstance')}': a pairwise instance needs "response" and "baseline_model_response".`);
  }
  const settings = await autorater(api, request, signal);
  const unusable = (error: string) => new HttpError('UNAVAILABLE', `The autorater gave no usable judgment: ${error}`);
  if (pairwise) {
    const r = await judgeTemplatePairwise(template, values, settings, settings.flip);
    if (r.choice === undefined) throw unusable(r.error!);
    const explanation = [...r.baselineFirst, ...r.candidateFirst].map((j) => j.explanation).join('\n---\n');
    return { pairwiseMetricResult: { pairwiseChoice: r.choice, explanation } };
  }
  const r = await judgeTemplatePointwise(template, values, settings);
  if (r.score === undefined) throw unusable(r.error!);
  return { pointwiseMetricResult: { score: float32Json(r.score), explanation: r.judgments.map((j) => j.explanation).join('\n---\n') } };
}

export async function evaluateInstances(api: ApiContext, request: Message, signal: AbortSignal): Promise<Record<string, unknown>> {
  const field = chosenInput(request);
  if (field === 'pointwiseMetricInput' || field === 'pairwiseMetricInput') return evaluateJudged(api, request, field, signal);
  const spec = COMPUTED_INPUTS.find((i) => i.input === field);
  if (!spec) {
    throw new HttpError('UNIMPLEMENTED', `${request.fieldPath(field)} is not served by :evaluateInstances yet; use pointwise_metric_input or pairwise_metric_input with a template, or tunekit eval --judge.`);
  }
  const input = request.message(field, `${V}.${spec.type}`)!;
  const metricSpec = input.message('metricSpec', `${V}.${spec.specType}`);
  if (!metricSpec) throw invalidArgument(`Missing required field '${input.fieldPath('metricSpec')}'.`);
  const scorer = spec.metric(metricSpec);
  const instances = input.messages('instances', `${V}.${spec.type.replace(/Input$/, 'Instance')}`);
  if (instances.length === 0) throw invalidArgument(`Missing required field '${input.fieldPath('instances')}': give at least one instance.`);
  const values = instances.map((instance) => {
    const prediction = instance.string('prediction');
    const reference = instance.string('reference');
    if (prediction === undefined) throw invalidArgument(`Missing required field '${instance.fieldPath('prediction')}'.`);
    if (reference === undefined) throw invalidArgument(`Missing required field '${instance.fieldPath('reference')}'.`);
    try {
      return { score: float32Json(scorer(prediction, reference)) };
    } catch (e) {
      // A library refusal about one instance (a reference that is not a tool call) names the instance.
      if (e instanceof Error && (e as { code?: string }).code === 'INVALID_ARGUMENT') {
        throw invalidArgument(`Invalid value at '${instance.fieldPath('reference')}': ${e.message}`);
      }
      throw e;
    }
  });
  return { [spec.results]: { [spec.values]: values } };
}

export function registerEvaluationRoutes(app: Hono, api: ApiContext): void {
  app.post('/projects/:project/locations/:call{.+:evaluateInstances}', async (c) => {
    const { project, call } = c.req.param();
    const location = call.slice(0, -':evaluateInstances'.length);
    await guard(api.auth, c.req.raw.headers, EVALUATION_PERMISSION, project);
    checkLocation(api, location);
    return c.json(await evaluateInstances(api, await body(api, c), requestSignal(api, c)));
  });
}
