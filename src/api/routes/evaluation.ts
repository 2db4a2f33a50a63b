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
import { guard, PERMISSIONS, type Principal } from '../auth.js';
import { body, checkLocation, requestSignal, type ApiContext } from '../context.js';
import { fieldError, HttpError, invalidArgument } from '../errors.js';
import { apiVersionOf, parseMessage, protoJson, snakeCase, type Message } from '../proto-json.js';
import type { EndpointResolver } from './endpoints.js';
import { AGGREGATION_METRICS, type AggregationMetric } from '../../eval/aggregate.js';
import type { JobEvalMetric, JobEvaluationSpec, JobMetricSpec } from '../../eval/job-evaluation.js';
import { namedMetric } from '../../eval/run.js';
import type { RougeType } from '../../eval/rouge.js';
import { computeMetric, type ComputedOptions } from '../../eval/computed.js';
import { float32Json } from '../../eval/stats.js';

export { float32Json };
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

/**
 * The named model-based inputs: each is one instance judged by the autorater on the tunekit metric of
 * the same name (src/eval/rubrics.ts, Vertex's rubric scales), answered with `*Result` {score,
 * explanation} or, pairwise, {pairwiseChoice, explanation}. `fields` maps the instance's fields onto
 * the judge's prompt; the required ones are checked by name.
 */
interface NamedInput {
  input: string;
  metric: string;
  required: string[];
  /** Whether the spec has use_reference. */
  useReference?: boolean;
  /** How the instance is shown to the judge. */
  fields: (f: Record<string, string | undefined>) => { prompt?: string; context?: string; reference?: string };
}

const QA = (f: Record<string, string | undefined>) => ({ prompt: f.instruction, context: f.context, reference: f.reference });
const NAMED_INPUTS: NamedInput[] = [
  { input: 'coherenceInput', metric: 'coherence', required: ['prediction'], fields: () => ({}) },
  { input: 'fluencyInput', metric: 'fluency', required: ['prediction'], fields: () => ({}) },
  { input: 'safetyInput', metric: 'safety', required: ['prediction'], fields: () => ({}) },
  // groundedness judges against the reference shown as the context
  { input: 'groundednessInput', metric: 'groundedness', required: ['prediction', 'context'], fields: (f) => ({ reference: f.context }) },
  { input: 'fulfillmentInput', metric: 'instruction_following', required: ['prediction', 'instruction'], fields: (f) => ({ prompt: f.instruction }) },
  { input: 'summarizationQualityInput', metric: 'summarization_quality', required: ['prediction', 'context', 'instruction'], useReference: true, fields: QA },
  { input: 'pairwiseSummarizationQualityInput', metric: 'pairwise_summarization_quality', required: ['prediction', 'baselinePrediction', 'context', 'instruction'], useReference: true, fields: QA },
  { input: 'summarizationHelpfulnessInput', metric: 'summarization_helpfulness', required: ['prediction', 'context'], useReference: true, fields: QA },
  { input: 'summarizationVerbosityInput', metric: 'summarization_verbosity', required: ['prediction', 'context'], useReference: true, fields: QA },
  { input: 'questionAnsweringQualityInput', metric: 'question_answering_quality', required: ['prediction', 'context', 'instruction'], useReference: true, fields: QA },
  { input: 'pairwiseQuestionAnsweringQualityInput', metric: 'pairwise_question_answering_quality', required: ['prediction', 'baselinePrediction', 'context', 'instruction'], useReference: true, fields: QA },
  { input: 'questionAnsweringRelevanceInput', metric: 'question_answering_relevance', required: ['prediction', 'instruction'], useReference: true, fields: QA },
  { input: 'questionAnsweringHelpfulnessInput', metric: 'question_answering_helpfulness', required: ['prediction', 'instruction'], useReference: true, fields: QA },
  { input: 'questionAnsweringCorrectnessInput', metric: 'question_answering_correctness', required: ['prediction', 'instruction'], useReference: true, fields: QA },
];

/** Inputs of the oneof that tunekit does not compute (translation and agent-trajectory metrics, v1beta1 rubrics). */
const UNSERVED_INPUTS = [
  'trajectoryExactMatchInput', 'trajectoryInOrderMatchInput', 'trajectoryAnyOrderMatchInput', 'trajectoryPrecisionInput',
  'trajectoryRecallInput', 'trajectorySingleToolUseInput', 'cometInput', 'metricxInput', 'rubricBasedInstructionFollowingInput',
];
const JUDGED_INPUTS = ['pointwiseMetricInput', 'pairwiseMetricInput', ...NAMED_INPUTS.map((n) => n.input)];

async function evaluateNamed(api: ApiContext, endpoints: EndpointResolver, principal: Principal, request: Message, named: NamedInput, signal: AbortSignal): Promise<Record<string, unknown>> {
  const type = named.input.replace(/Input$/, '');
  const input = request.message(named.input, `${V}.${type}Input`)!;
  const spec = input.message('metricSpec', `${V}.${type}Spec`);
  if (!spec) throw invalidArgument(`Missing required field '${input.fieldPath('metricSpec')}'.`);
  const version = spec.int32('version');
  if (version !== undefined && version !== 0) throw notSupported(spec.fieldPath('version'), 'tunekit has one version of each rubric; leave version unset');
  const instance = input.message('instance', `${V}.${type}Instance`);
  if (!instance) throw invalidArgument(`Missing required field '${input.fieldPath('instance')}'.`);
  const f: Record<string, string | undefined> = {};
  for (const k of ['prediction', 'baselinePrediction', 'reference', 'context', 'instruction']) f[k] = instance.string(k);
  for (const k of named.required) if (!f[k]) throw invalidArgument(`Missing required field '${instance.fieldPath(k)}'.`);
  const useReference = named.useReference ? spec.bool('useReference') ?? false : false;
  if (useReference && f.reference === undefined) throw invalidArgument(`Missing required field '${instance.fieldPath('reference')}': ${spec.fieldPath('useReference')} is set.`);
  const shown = { ...named.fields(f), showReference: useReference };
  if (!useReference && named.metric !== 'groundedness') delete shown.reference;
  const def = namedMetric(named.metric);
  const settings = await autorater(api, endpoints, principal, request, signal);
  if (def.kind === 'pairwise' && !settings.flip) throw notSupported('autorater_config.flip_enabled', `tunekit judges ${named.metric} in both orders; leave flip_enabled unset or true`);
  const result = `${named.input.replace(/Input$/, 'Result')}`;
  const unusable = (error: string) => new HttpError('UNAVAILABLE', `The autorater gave no usable judgment: ${error}`);
  if (def.kind === 'pairwise') {
    const r = await def.judge({ ...shown, baseline: f.baselinePrediction!, candidate: f.prediction! }, settings);
    if (r.choice === undefined) throw unusable(r.error!);
    return { [result]: { pairwiseChoice: r.choice, explanation: [...r.baselineFirst, ...r.candidateFirst].map((j) => j.explanation).join('\n---\n') } };
  }
  if (def.kind !== 'pointwise') throw new Error(`${named.metric} is not judged`);
  const r = await def.judge({ ...shown, response: f.prediction! }, settings);
  if (r.score === undefined) throw unusable(r.error!);
  return { [result]: { score: float32Json(r.score), explanation: r.judgments.map((j) => j.explanation).join('\n---\n') } };
}

/** The one metric input a request holds (by its lowerCamelCase field name). */
function chosenInput(request: Message): string {
  const known = [...COMPUTED_INPUTS.map((i) => i.input), ...JUDGED_INPUTS, ...UNSERVED_INPUTS];
  const set = known.filter((f) => request.has(f));
  if (set.length === 0) {
    throw invalidArgument(`Exactly one metric input must be set (one of ${COMPUTED_INPUTS.map((i) => i.input).join(', ')}); the request has none.`);
  }
  if (set.length > 1) {
    throw invalidArgument(`Only one metric input may be set per request (the metric_inputs oneof); got ${set.map((f) => request.fieldPath(f)).join(' and ')}.`);
  }
  return set[0];
}

/** The autorater a judged request names (or the server's), as judge settings. */
async function autorater(api: ApiContext, endpoints: EndpointResolver, principal: Principal, request: Message, signal: AbortSignal): Promise<JudgeSettings & { flip: boolean }> {
  const config = request.message('autoraterConfig', `${V}.AutoraterConfig`);
  if (config?.has('generationConfig')) throw notSupported(config.fieldPath('generationConfig'), 'the judge decodes greedily (several samples: at temperature 1) under its answer\'s JSON Schema');
  const ref = await resolveAutorater(api, endpoints, principal, config?.string('autoraterModel'), 'autorater_config.autorater_model');
  const served = await servedAutorater(api, ref);
  return {
    judge: engineJudge(served.engine, served.model, { description: ref.model, adapterDir: served.adapterDir }),
    samples: samplingCount(config), retries: 2, signal, flip: config?.bool('flipEnabled') ?? true,
  };
}

async function evaluateJudged(api: ApiContext, endpoints: EndpointResolver, principal: Principal, request: Message, field: string, signal: AbortSignal): Promise<Record<string, unknown>> {
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
  const settings = await autorater(api, endpoints, principal, request, signal);
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

export async function evaluateInstances(api: ApiContext, endpoints: EndpointResolver, principal: Principal, request: Message, signal: AbortSignal): Promise<Record<string, unknown>> {
  const field = chosenInput(request);
  if (field === 'pointwiseMetricInput' || field === 'pairwiseMetricInput') return evaluateJudged(api, endpoints, principal, request, field, signal);
  const spec = COMPUTED_INPUTS.find((i) => i.input === field);
  const named = NAMED_INPUTS.find((n) => n.input === field);
  if (named) return evaluateNamed(api, endpoints, principal, request, named, signal);
  if (!spec) {
    throw new HttpError('UNIMPLEMENTED', `${request.fieldPath(field)} is not computed by tunekit (translation and agent-trajectory metrics are not available); the computed, named judged, pointwise_metric_input and pairwise_metric_input inputs are.`);
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

export function registerEvaluationRoutes(app: Hono, api: ApiContext, endpoints: EndpointResolver): void {
  app.post('/projects/:project/locations/:call{.+:evaluateInstances}', async (c) => {
    const { project, call } = c.req.param();
    const location = call.slice(0, -':evaluateInstances'.length);
    const principal = await guard(api.auth, c.req.raw.headers, EVALUATION_PERMISSION, project);
    await checkLocation(api, location);
    // Checked as the version's EvaluateInstancesRequest: unknown fields (autorater_config on /v1) are 400 by path.
    const request = parseMessage((await body(api, c)).value, 'EvaluateInstancesRequest', apiVersionOf(c.req.url));
    const named = request.string('location');
    if (named !== undefined && named !== `projects/${project}/locations/${location}`) {
      throw fieldError('location', `Invalid value at 'location', ${JSON.stringify(named)}: the request is for projects/${project}/locations/${location}.`);
    }
    for (const f of ['metrics', 'metricSources', 'instance']) {
      if (request.has(f)) throw notSupported(snakeCase(f), 'use one of the metric inputs (exact_match_input, ..., pointwise_metric_input)');
    }
    return protoJson(c.req.raw, await evaluateInstances(api, endpoints, principal, request, requestSignal(api, c)), 'EvaluateInstancesResponse');
  });
}

// ---------------------------------------------------------------------------------------------------
// The autorater (judge) and a tuning job's evaluation_config.

/** A judge: a publisher model of the catalog, or what a tunekit endpoint serves (its base and adapter). */
export interface AutoraterRef {
  model: string;
  publisher: string;
  name: string;
  adapterDir?: string;
  modelVersion?: string;
}

const PUBLISHER_MODEL = /^(?:projects\/[^/]+\/locations\/[^/]+\/)?publishers\/([^/]+)\/models\/([^/@]+)$/;
const ENDPOINT = /^projects\/([^/]+)\/locations\/([^/]+)\/endpoints\/([^/]+)$/;

/**
 * The judge `named` (a request's autorater_model) names, else the server's (`tunekit serve --autorater`);
 * FAILED_PRECONDITION when neither is set: tunekit has no built-in judge. A named endpoint needs
 * aiplatform.endpoints.predict in its project.
 */
export async function resolveAutorater(
  api: ApiContext, endpoints: EndpointResolver, principal: Principal, named: string | undefined, field: string,
): Promise<AutoraterRef> {
  const model = named || api.autorater;
  if (!model) {
    throw new HttpError('FAILED_PRECONDITION', `No autorater is configured: set '${field}' to a publisher model (publishers/{publisher}/models/{model}) or a tunekit endpoint (projects/{p}/locations/{l}/endpoints/{e}), or start tunekit serve with --autorater MODEL.`,
      { fieldViolations: [{ field, description: 'no autorater configured' }] });
  }
  const where = named ? `'${field}'` : 'tunekit serve --autorater';
  const p = PUBLISHER_MODEL.exec(model);
  if (p) {
    await api.catalog.registration(p[1]!, p[2]!);
    return { model, publisher: p[1]!, name: p[2]! };
  }
  const e = ENDPOINT.exec(model);
  if (e) {
    if (named) await api.auth.authorize(principal, PERMISSIONS.predict, e[1]!);
    const t = await endpoints.resolve(e[1]!, e[2]!, e[3]!);
    return { model, publisher: t.publisher, name: t.model, adapterDir: t.adapterDir, modelVersion: t.modelVersion };
  }
  throw invalidArgument(`Invalid value at ${where}, ${JSON.stringify(model)}: tunekit judges with a publisher model of its catalog (publishers/{publisher}/models/{model}) or a tunekit endpoint (projects/{p}/locations/{l}/endpoints/{e}); a model only Vertex AI serves cannot judge here.`);
}

/** The judge on its serving engine. */
async function servedAutorater(api: ApiContext, ref: AutoraterRef) {
  return ref.adapterDir === undefined
    ? api.catalog.served(ref.publisher, ref.name)
    : api.catalog.servedWithAdapter(ref.publisher, ref.name, ref.adapterDir, ref.modelVersion ?? ref.model);
}

/** AutoraterConfig.sampling_count: 1 to 32, 4 when unset (the proto's default). */
function samplingCount(config: Message | undefined): number {
  const n = config?.int32('samplingCount') ?? 4;
  if (n < 1 || n > 32) throw fieldError(config!.fieldPath('samplingCount'), `Invalid value at '${config!.fieldPath('samplingCount')}' (TYPE_INT32), ${n}: use 1 to 32.`);
  return n;
}

const ROUGE_NAMES: Record<string, string> = { rouge1: 'rouge_1', rouge2: 'rouge_2', rougeL: 'rouge_l', rougeLsum: 'rouge_l_sum' };
const rougeName = (t: string) => ROUGE_NAMES[t] ?? `rouge_${t.slice(5)}`;

const notSupported = (field: string, why: string) => fieldError(field, `'${field}' is not supported by tunekit: ${why}.`, 'FIELD_NOT_SUPPORTED');

/** A google.protobuf.Struct's keys, each checked against the allowed ones. */
function structParams(m: Message, name: string, allowed: Record<string, 'string' | 'boolean' | 'any'>): Record<string, unknown> {
  const v = (m.raw(name) ?? {}) as Record<string, unknown>;
  for (const [k, x] of Object.entries(v)) {
    const t = allowed[k];
    const at = `${m.fieldPath(name)}.${k}`;
    if (!t) throw notSupported(at, `the parameters here are ${Object.keys(allowed).join(', ') || '(none)'}`);
    if (t !== 'any' && typeof x !== t) throw fieldError(at, `Invalid value at '${at}': expected a ${t}, got ${JSON.stringify(x)}.`);
  }
  return v;
}

function rougeType(value: unknown, at: string): RougeType {
  if (typeof value !== 'string' || !isRougeType(value)) throw fieldError(at, `Invalid value at '${at}', ${JSON.stringify(value)}: use one of ${ROUGE_TYPES.join(', ')}.`);
  return value;
}

/** One EvaluationConfig.metrics entry as the job stores it. */
function jobMetric(m: Message, index: number, flip: boolean | undefined): JobEvalMetric {
  const specs = ['predefinedMetricSpec', 'computationBasedMetricSpec', 'llmBasedMetricSpec', 'customCodeExecutionSpec', 'pointwiseMetricSpec', 'pairwiseMetricSpec', 'exactMatchSpec', 'bleuSpec', 'rougeSpec'];
  const set = specs.filter((s) => m.has(s));
  if (set.length !== 1) throw fieldError(m.path, `'${m.path}' needs exactly one metric spec (${specs.map(snakeCase).join(', ')}).`);
  if (m.has('metadata')) throw notSupported(m.fieldPath('metadata'), 'metric metadata (score ranges) has no effect here');
  const which = set[0]!;
  const s = m.message(which, `${V}.Metric`)!;
  let name: string;
  let spec: JobMetricSpec;
  switch (which) {
    case 'exactMatchSpec':
      name = 'exact_match'; spec = { type: 'exact_match' };
      break;
    case 'bleuSpec':
      name = 'bleu'; spec = { type: 'bleu', useEffectiveOrder: s.bool('useEffectiveOrder') ?? false };
      break;
    case 'rougeSpec': {
      if (!s.has('rougeType')) throw fieldError(s.fieldPath('rougeType'), `Missing required field '${s.fieldPath('rougeType')}'. Use one of ${ROUGE_TYPES.join(', ')}.`);
      const t = rougeType(s.raw('rougeType'), s.fieldPath('rougeType'));
      name = rougeName(t); spec = { type: 'rouge', rougeType: t, useStemmer: s.bool('useStemmer') ?? false, splitSummaries: s.bool('splitSummaries') ?? false };
      break;
    }
    case 'computationBasedMetricSpec': {
      const type = s.string('type');
      if (type === 'EXACT_MATCH') {
        structParams(s, 'parameters', {});
        name = 'exact_match'; spec = { type: 'exact_match' };
      } else if (type === 'BLEU') {
        const p = structParams(s, 'parameters', { use_effective_order: 'boolean' });
        name = 'bleu'; spec = { type: 'bleu', useEffectiveOrder: p.use_effective_order === true };
      } else if (type === 'ROUGE') {
        const p = structParams(s, 'parameters', { rouge_type: 'string', use_stemmer: 'boolean', split_summaries: 'boolean' });
        if (p.rouge_type === undefined) throw fieldError(`${s.fieldPath('parameters')}.rouge_type`, `Missing required field '${s.fieldPath('parameters')}.rouge_type'. Use one of ${ROUGE_TYPES.join(', ')}.`);
        const t = rougeType(p.rouge_type, `${s.fieldPath('parameters')}.rouge_type`);
        name = rougeName(t); spec = { type: 'rouge', rougeType: t, useStemmer: p.use_stemmer === true, splitSummaries: p.split_summaries === true };
      } else {
        throw fieldError(s.fieldPath('type'), `Missing required field '${s.fieldPath('type')}': EXACT_MATCH, BLEU or ROUGE.`);
      }
      break;
    }
    case 'predefinedMetricSpec': {
      const metric = s.string('metricSpecName');
      if (!metric) throw fieldError(s.fieldPath('metricSpecName'), `Missing required field '${s.fieldPath('metricSpecName')}'.`);
      try {
        namedMetric(metric);
      } catch (e) {
        throw fieldError(s.fieldPath('metricSpecName'), `Invalid value at '${s.fieldPath('metricSpecName')}': ${(e as Error).message} (tunekit's metric names; Vertex's own predefined rubric metrics are not available).`);
      }
      if (metric === 'json_schema_valid') throw notSupported(s.fieldPath('metricSpecName'), 'json_schema_valid needs a schema, which a tuning job cannot give: use json_valid, or tunekit eval --json-schema');
      structParams(s, 'metricSpecParameters', {});
      if (metric.startsWith('pairwise_') && flip === false) {
        throw notSupported('evaluation_config.autorater_config.flip_enabled', `tunekit judges ${metric} in both orders; leave flip_enabled unset or true`);
      }
      name = metric; spec = { type: 'named', metric };
      break;
    }
    case 'pointwiseMetricSpec':
    case 'pairwiseMetricSpec': {
      const template = s.string('metricPromptTemplate');
      if (!template) throw fieldError(s.fieldPath('metricPromptTemplate'), `Missing required field '${s.fieldPath('metricPromptTemplate')}'.`);
      for (const f of ['systemInstruction', 'customOutputFormatConfig']) {
        if (s.has(f)) throw notSupported(s.fieldPath(f), 'the judge answers the template alone, in tunekit\'s JSON answer format');
      }
      if (which === 'pairwiseMetricSpec') {
        for (const [f, dflt] of [['candidateResponseFieldName', 'response'], ['baselineResponseFieldName', 'baseline_model_response']] as const) {
          const v = s.string(f);
          if (v && v !== dflt) throw notSupported(s.fieldPath(f), `the template's variables are {response} (the tuned model) and {baseline_model_response} (the base model)`);
        }
        name = `pairwise_metric_${index}`; spec = { type: 'pairwise_template', template, flip: flip ?? true };
      } else {
        name = `pointwise_metric_${index}`; spec = { type: 'pointwise_template', template };
      }
      break;
    }
    default:
      throw notSupported(m.fieldPath(which), 'use exact_match_spec, bleu_spec, rouge_spec, computation_based_metric_spec, predefined_metric_spec (tunekit\'s metric names), pointwise_metric_spec or pairwise_metric_spec');
  }
  const pairwise = spec.type === 'pairwise_template' || (spec.type === 'named' && spec.metric.startsWith('pairwise_'));
  const aggregations = m.strings('aggregationMetrics') as AggregationMetric[];
  for (const [i, a] of aggregations.entries()) {
    const at = `${m.fieldPath('aggregationMetrics')}[${i}]`;
    if (!(AGGREGATION_METRICS as readonly string[]).includes(a)) throw fieldError(at, `Invalid value at '${at}', ${JSON.stringify(a)}: use one of ${AGGREGATION_METRICS.join(', ')}.`);
    if (pairwise && a !== 'MODE') throw fieldError(at, `Invalid value at '${at}', ${a}: a pairwise metric aggregates by MODE only.`);
    if (aggregations.indexOf(a) !== i) throw fieldError(at, `'${at}': ${a} is listed twice.`);
  }
  return { name, spec, aggregations: aggregations.length ? aggregations : [pairwise ? 'MODE' : 'AVERAGE'] };
}

/** How both sides generate: inference_generation_config's temperature, max_output_tokens and seed. */
function inferenceConfig(g: Message | undefined): JobEvaluationSpec['generation'] {
  const out: JobEvaluationSpec['generation'] = { maxTokens: 256, temperature: 0 };
  if (!g) return out;
  for (const key of Object.keys(g.value)) {
    if (!['temperature', 'maxOutputTokens', 'seed'].includes(key)) {
      throw notSupported(g.fieldPath(key), 'the responses are generated with temperature, max_output_tokens and seed only');
    }
  }
  const t = g.float('temperature');
  if (t !== undefined) {
    if (t < 0 || t > 2) throw fieldError(g.fieldPath('temperature'), `Invalid value at '${g.fieldPath('temperature')}', ${t}: use 0 to 2.`);
    out.temperature = t;
  }
  const n = g.int32('maxOutputTokens');
  if (n !== undefined) {
    if (n < 1) throw fieldError(g.fieldPath('maxOutputTokens'), `Invalid value at '${g.fieldPath('maxOutputTokens')}', ${n}: at least 1.`);
    out.maxTokens = n;
  }
  const seed = g.int32('seed');
  if (seed !== undefined) out.seed = seed;
  return out;
}

/**
 * SupervisedTuningSpec.evaluation_config as the job stores it. The evaluated dataset is the job's
 * validation dataset (required); judged metrics need an autorater (the config's, else the server's).
 */
export async function parseEvaluationConfig(
  api: ApiContext, endpoints: EndpointResolver, principal: Principal, cfg: Message, validationDatasetUri: string | undefined,
): Promise<JobEvaluationSpec> {
  if (!validationDatasetUri) {
    throw fieldError('supervised_tuning_spec.validation_dataset_uri', `'${cfg.path}' evaluates the tuned model on the validation dataset: set supervised_tuning_spec.validation_dataset_uri.`);
  }
  const autorater = cfg.message('autoraterConfig', `${V}.AutoraterConfig`);
  const metrics = cfg.messages('metrics', `${V}.Metric`).map((m, i) => jobMetric(m, i, autorater?.bool('flipEnabled')));
  if (metrics.length === 0) throw fieldError(cfg.fieldPath('metrics'), `Missing required field '${cfg.fieldPath('metrics')}': give at least one metric.`);
  const seen = new Map<string, number>();
  metrics.forEach((m, i) => {
    if (seen.has(m.name)) throw fieldError(`${cfg.fieldPath('metrics')}[${i}]`, `'${cfg.fieldPath('metrics')}[${i}]' repeats metric ${m.name} of ${cfg.fieldPath('metrics')}[${seen.get(m.name)}].`);
    seen.set(m.name, i);
  });
  const judged = metrics.some((m) => m.spec.type === 'pointwise_template' || m.spec.type === 'pairwise_template' || (m.spec.type === 'named' && namedMetric(m.spec.metric).kind !== 'computed'));
  let judge: JobEvaluationSpec['judge'];
  if (judged) {
    const ref = await resolveAutorater(api, endpoints, principal, autorater?.string('autoraterModel'), `${cfg.path}.autorater_config.autorater_model`);
    const judgeModel = await api.catalog.registration(ref.publisher, ref.name);
    judge = {
      model: ref.model, modelDir: await api.catalog.localDir(judgeModel),
      ...(judgeModel.blobs !== undefined ? { modelBlobs: judgeModel.blobs } : {}), ...(ref.adapterDir ? { adapterDir: ref.adapterDir } : {}), samples: samplingCount(autorater),
    };
  } else if (autorater && Object.keys(autorater.value).length) {
    throw fieldError(cfg.fieldPath('autoraterConfig'), `'${cfg.fieldPath('autoraterConfig')}' has no effect: none of the metrics is judged by a model.`);
  }
  const out = cfg.message('outputConfig', `${V}.OutputConfig`)?.message('gcsDestination', `${V}.GcsDestination`);
  const prefix = out?.string('outputUriPrefix');
  if (out && !prefix) throw fieldError(out.fieldPath('outputUriPrefix'), `Missing required field '${out.fieldPath('outputUriPrefix')}': a gs:// URI.`);
  if (prefix !== undefined && !prefix.startsWith('gs://')) throw fieldError(out!.fieldPath('outputUriPrefix'), `Invalid value at '${out!.fieldPath('outputUriPrefix')}', ${JSON.stringify(prefix)}: a gs://BUCKET[/PREFIX] URI.`);
  return {
    metrics, ...(judge ? { judge } : {}), generation: inferenceConfig(cfg.message('inferenceGenerationConfig', `${V}.GenerationConfig`)),
    ...(prefix ? { outputUriPrefix: prefix } : {}), datasetUri: validationDatasetUri,
  };
}
