// POST .../locations/L:evaluateInstances: the contract's request and response shapes for the computed
// metrics, under /v1 and /v1beta1, permission before location before body, errors as google.rpc.Status.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tinyApi } from './helpers/api-app.js';
import { HttpError } from '../src/api/errors.js';
import { ROLES } from '../src/platform/roles.js';
import { EVALUATION_PERMISSION, float32Json } from '../src/api/routes/evaluation.js';

const api = await tinyApi();
const URL_V1 = '/v1/projects/p/locations/us-central1:evaluateInstances';
const URL_BETA = '/v1beta1/projects/p/locations/us-central1:evaluateInstances';

async function ok(url: string, body: unknown, on = api): Promise<Record<string, unknown>> {
  const res = await on.post(url, body);
  const json = await res.json() as Record<string, unknown>;
  assert.equal(res.status, 200, JSON.stringify(json));
  return json;
}

async function fails(res: Response, code: number, status: string, message: RegExp): Promise<void> {
  const json = await res.json() as { error: { code: number; status: string; message: string } };
  assert.equal(res.status, code, JSON.stringify(json));
  assert.equal(json.error.code, code);
  assert.equal(json.error.status, status);
  assert.match(json.error.message, message);
}

test('exactMatchInput -> exactMatchResults, one value per instance, zero scores written', async () => {
  for (const url of [URL_V1, URL_BETA]) {
    assert.deepEqual(await ok(url, {
      exactMatchInput: { metricSpec: {}, instances: [{ prediction: 'Paris', reference: 'Paris' }, { prediction: 'paris', reference: 'Paris' }] },
    }), { exactMatchResults: { exactMatchMetricValues: [{ score: 1 }, { score: 0 }] } });
  }
});

test('bleuInput is sacreBLEU sentence BLEU / 100; use_effective_order is honoured (snake_case accepted)', async () => {
  const sys = 'Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;';
  const ref = 'producţia de zahăr brut se exprimă în zahăr alb;';
  const eff = await ok(URL_V1, { bleu_input: { metric_spec: { use_effective_order: true }, instances: [{ prediction: sys, reference: ref }] } });
  const score = ((eff.bleuResults as { bleuMetricValues: { score: number }[] }).bleuMetricValues[0]).score;
  assert.ok(Math.abs(score - 0.08493) < 1e-5, String(score)); // sacreBLEU's published 8.493 (test_sentence_bleu.py)
  assert.equal(score, float32Json(Math.fround(score))); // written as a proto float
  const same = await ok(URL_V1, { bleuInput: { metricSpec: {}, instances: [{ prediction: 'the cat sat on the mat', reference: 'the cat sat on the mat' }] } });
  assert.deepEqual(same, { bleuResults: { bleuMetricValues: [{ score: 1 }] } });
});

test('rougeInput: rougeType, useStemmer and splitSummaries as rouge-score computes them (F-measure)', async () => {
  const r = async (metricSpec: Record<string, unknown>, prediction: string, reference: string) =>
    ((await ok(URL_V1, { rougeInput: { metricSpec, instances: [{ prediction, reference }] } })).rougeResults as { rougeMetricValues: { score: number }[] }).rougeMetricValues[0].score;
  assert.equal(await r({ rougeType: 'rouge1' }, 'testing', 'testing one two'), 0.5);
  assert.equal(await r({ rougeType: 'rouge2' }, 'testing one', 'testing one two'), 0.6666667); // 2/3 as a float32, shortest form
  assert.equal(await r({ rougeType: 'rougeL' }, 'testing two', 'testing one two'), 0.8);
  assert.equal(await r({ rougeType: 'rouge3' }, 'a b c d', 'a b c d'), 1);
  assert.equal(await r({ rougeType: 'rouge1' }, 'the cats running', 'the cat runs'), 0.33333334);
  assert.equal(await r({ rougeType: 'rouge1', useStemmer: true }, 'the cats running', 'the cat runs'), 1);
  assert.equal(await r({ rougeType: 'rougeLsum' }, 'w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5', 'w1 w2 w3 w4 w5'), 0.53333336); // 8/15
  assert.equal(await r({ rougeType: 'rougeLsum', splitSummaries: true }, 'w1 w2 w6 w7 w8. w1 w3 w8 w9 w5.', 'w1 w2 w3 w4 w5'), 0.53333336);
  await fails(await api.post(URL_V1, { rougeInput: { metricSpec: { rougeType: 'rougeX' }, instances: [{ prediction: 'a', reference: 'a' }] } }),
    400, 'INVALID_ARGUMENT', /^Invalid value at 'rouge_input\.metric_spec\.rouge_type' \(TYPE_STRING\), "rougeX"/);
  await fails(await api.post(URL_V1, { rougeInput: { metricSpec: {}, instances: [{ prediction: 'a', reference: 'a' }] } }),
    400, 'INVALID_ARGUMENT', /^Missing required field 'rouge_input\.metric_spec\.rouge_type'/);
});

test('the tool-call inputs and their results', async () => {
  const ref = JSON.stringify({ content: '', tool_calls: [{ name: 'location_to_lat_long', arguments: { location: 'London' } }] });
  const pred = JSON.stringify({ content: '', tool_calls: [{ name: 'location_to_lat_long', arguments: { location: 'london' } }] });
  const instances = [{ prediction: pred, reference: ref }, { prediction: 'no call', reference: ref }];
  assert.deepEqual(await ok(URL_V1, { toolCallValidInput: { metricSpec: {}, instances } }), { toolCallValidResults: { toolCallValidMetricValues: [{ score: 1 }, { score: 0 }] } });
  assert.deepEqual(await ok(URL_V1, { toolNameMatchInput: { metricSpec: {}, instances } }), { toolNameMatchResults: { toolNameMatchMetricValues: [{ score: 1 }, { score: 0 }] } });
  assert.deepEqual(await ok(URL_V1, { toolParameterKeyMatchInput: { metricSpec: {}, instances } }), { toolParameterKeyMatchResults: { toolParameterKeyMatchMetricValues: [{ score: 1 }, { score: 0 }] } });
  assert.deepEqual(await ok(URL_V1, { toolParameterKvMatchInput: { metricSpec: {}, instances } }), { toolParameterKvMatchResults: { toolParameterKvMatchMetricValues: [{ score: 1 }, { score: 0 }] } });
  assert.deepEqual(await ok(URL_V1, { toolParameterKvMatchInput: { metricSpec: { useStrictStringMatch: true }, instances } }), { toolParameterKvMatchResults: { toolParameterKvMatchMetricValues: [{ score: 0 }, { score: 0 }] } });
  await fails(await api.post(URL_V1, { toolNameMatchInput: { metricSpec: {}, instances: [{ prediction: pred, reference: 'not json' }] } }),
    400, 'INVALID_ARGUMENT', /^Invalid value at 'tool_name_match_input\.instances\[0\]\.reference': The reference is not a tool-call JSON value/);
});

test('bad requests: no input, two inputs, missing spec, instances or fields, wrong types, judged inputs', async () => {
  await fails(await api.post(URL_V1, {}), 400, 'INVALID_ARGUMENT', /^Exactly one metric input must be set/);
  await fails(await api.post(URL_V1, { exactMatchInput: { metricSpec: {}, instances: [] }, bleuInput: { metricSpec: {}, instances: [] } }),
    400, 'INVALID_ARGUMENT', /"exactMatchInput" and "bleuInput" are both set, but only one of oneof 'metric_inputs' may be/);
  await fails(await api.post(URL_V1, { exactMatchInput: { instances: [{ prediction: 'a', reference: 'a' }] } }), 400, 'INVALID_ARGUMENT', /'exact_match_input\.metric_spec'/);
  await fails(await api.post(URL_V1, { exactMatchInput: { metricSpec: {} } }), 400, 'INVALID_ARGUMENT', /'exact_match_input\.instances'/);
  await fails(await api.post(URL_V1, { exactMatchInput: { metricSpec: {}, instances: [{ prediction: 'a' }] } }), 400, 'INVALID_ARGUMENT', /'exact_match_input\.instances\[0\]\.reference'/);
  await fails(await api.post(URL_V1, { exactMatchInput: { metricSpec: {}, instances: [{ prediction: 1, reference: 'a' }] } }),
    400, 'INVALID_ARGUMENT', /^Invalid value at 'exact_match_input\.instances\[0\]\.prediction' \(TYPE_STRING\), 1/);
  await fails(await api.post(URL_V1, { exactMatchInput: { metricSpec: {}, instances: {} } }), 400, 'INVALID_ARGUMENT', /exact_match_input\.instances/);
  await fails(await api.post(URL_V1, { bleuInput: { metricSpec: { useEffectiveOrder: 'yes' }, instances: [{ prediction: 'a', reference: 'a' }] } }),
    400, 'INVALID_ARGUMENT', /bleu_input\.metric_spec\.use_effective_order' \(TYPE_BOOL\)/);
  await fails(await api.post(URL_V1, { cometInput: { metricSpec: {}, instance: { prediction: 'x' } } }), 501, 'UNIMPLEMENTED', /comet_input is not computed by tunekit/);
  await fails(await api.post(URL_V1, { coherenceInput: { metricSpec: {}, instance: { prediction: 'x' } } }), 400, 'FAILED_PRECONDITION', /No autorater is configured/);
  await fails(await api.post(URL_V1, { exactMatchInput: { metricSpec: {}, instances: [] }, autoraterConfig: {} }), 400, 'INVALID_ARGUMENT', /autoraterConfig is a field of the v1beta1 API/);
  await fails(await api.post(URL_BETA, { metrics: [] , exactMatchInput: { metricSpec: {}, instances: [{ prediction: 'a', reference: 'a' }] } }), 400, 'INVALID_ARGUMENT', /'metrics' is not supported by tunekit/);
  await fails(await api.post(URL_V1, '{"exactMatchInput": '), 400, 'INVALID_ARGUMENT', /^Invalid JSON payload received/);
  assert.deepEqual(api.errors, []);
});

test('permission aiplatform.locations.evaluateInstances is checked before the location; roles/aiplatform.user grants it', async () => {
  const denied: string[] = [];
  const locked = await tinyApi({
    auth: {
      authenticate: () => ({ id: 'user:x' }),
      authorize: (_p, permission) => {
        denied.push(permission);
        throw new HttpError('PERMISSION_DENIED', `Permission '${permission}' denied on resource 'projects/p'.`);
      },
    },
  });
  const body = { exactMatchInput: { metricSpec: {}, instances: [{ prediction: 'a', reference: 'a' }] } };
  await fails(await locked.post('/v1/projects/p/locations/mars:evaluateInstances', body), 403, 'PERMISSION_DENIED', /aiplatform\.locations\.evaluateInstances/);
  assert.deepEqual(denied, [EVALUATION_PERMISSION]);
  await fails(await api.post('/v1/projects/p/locations/mars:evaluateInstances', body), 400, 'INVALID_ARGUMENT', /mars/);
  assert.ok(ROLES['roles/aiplatform.user'].includes(EVALUATION_PERMISSION as never));
  assert.ok(!ROLES['roles/aiplatform.viewer'].includes(EVALUATION_PERMISSION as never));
});

const AUTORATER = 'projects/p/locations/us-central1/publishers/google/models/qwen3-tiny';

test('pointwiseMetricInput / pairwiseMetricInput are judged by the autorater model (a catalog model, constrained to the answer schema)', async () => {
  const pointwise = await ok(URL_BETA, {
    pointwiseMetricInput: {
      metricSpec: { metricPromptTemplate: 'Rate the answer from 1 to 5.\nQuestion: {prompt}\nAnswer: {response}' },
      instance: { jsonInstance: JSON.stringify({ prompt: 'What is 2+2?', response: '4' }) },
    },
    autoraterConfig: { autoraterModel: AUTORATER, samplingCount: 2 },
  });
  const pr = pointwise.pointwiseMetricResult as { score: number; explanation: string };
  assert.equal(typeof pr.score, 'number');
  assert.ok(Number.isFinite(pr.score));
  assert.match(pr.explanation, /\n---\n/); // two samples, two explanations
  const pairwise = await ok(URL_BETA, {
    pairwiseMetricInput: {
      metricSpec: { metricPromptTemplate: 'Which answer is better?\nQ: {prompt}\nBaseline: {baseline_model_response}\nCandidate: {response}' },
      instance: { jsonInstance: JSON.stringify({ prompt: 'Hi', response: 'Hello!', baseline_model_response: 'hey' }) },
    },
    autoraterConfig: { autoraterModel: 'publishers/google/models/qwen3-tiny', flipEnabled: true, samplingCount: 1 },
  });
  const pw = pairwise.pairwiseMetricResult as { pairwiseChoice: string; explanation: string };
  assert.ok(['BASELINE', 'CANDIDATE', 'TIE'].includes(pw.pairwiseChoice), pw.pairwiseChoice);
  assert.match(pw.explanation, /\n---\n/); // both orders
});

test('judged inputs: the autorater and the instance are checked, naming the field', async () => {
  const input = { metricSpec: { metricPromptTemplate: '{response}' }, instance: { jsonInstance: '{"response": "x"}' } };
  await fails(await api.post(URL_BETA, { pointwiseMetricInput: input }), 400, 'FAILED_PRECONDITION', /^No autorater is configured: set 'autorater_config\.autorater_model'.*--autorater/);
  await fails(await api.post(URL_BETA, { pointwiseMetricInput: input, autoraterConfig: { autoraterModel: 'gemini-2.5-pro' } }), 400, 'INVALID_ARGUMENT', /'autorater_config\.autorater_model', "gemini-2\.5-pro": .*only Vertex AI serves/);
  await fails(await api.post(URL_BETA, { pointwiseMetricInput: input, autoraterConfig: { autoraterModel: 'publishers/google/models/nope' } }), 404, 'NOT_FOUND', /nope/);
  await fails(await api.post(URL_BETA, { pointwiseMetricInput: { ...input, instance: { jsonInstance: '[1]' } }, autoraterConfig: { autoraterModel: AUTORATER } }),
    400, 'INVALID_ARGUMENT', /'pointwise_metric_input\.instance\.json_instance': expected a JSON object/);
  await fails(await api.post(URL_BETA, { pointwiseMetricInput: { instance: input.instance }, autoraterConfig: { autoraterModel: AUTORATER } }),
    400, 'INVALID_ARGUMENT', /'pointwise_metric_input\.metric_spec\.metric_prompt_template'/);
  await fails(await api.post(URL_BETA, { pairwiseMetricInput: input, autoraterConfig: { autoraterModel: AUTORATER } }),
    400, 'INVALID_ARGUMENT', /needs "response" and "baseline_model_response"/);
  await fails(await api.post(URL_BETA, { pointwiseMetricInput: input, autoraterConfig: { autoraterModel: AUTORATER, samplingCount: 0 } }),
    400, 'INVALID_ARGUMENT', /sampling_count/);
  assert.deepEqual(api.errors, []);
});

// The named model-based inputs, judged by the server's autorater (tunekit serve --autorater) on /v1,
// where the request has no autorater_config.
const judging = await tinyApi({ autorater: 'publishers/google/models/gemma3-tiny' });

test('named judged inputs answer their *Result with a score on the rubric scale (or a pairwise choice) and the explanation', async () => {
  const one = async (input: string, body: unknown) => {
    const r = await ok(URL_V1, { [input]: body }, judging);
    const key = input.replace(/Input$/, 'Result');
    assert.deepEqual(Object.keys(r), [key]);
    return r[key] as { score?: number; pairwiseChoice?: string; explanation: string };
  };
  const five = [1, 2, 3, 4, 5];
  for (const [input, instance, scale] of [
    ['coherenceInput', { prediction: 'The sky is blue. It is blue because of scattering.' }, five],
    ['fluencyInput', { prediction: 'Me go store yesterday.' }, five],
    ['safetyInput', { prediction: 'Hello there.' }, [0, 1]],
    ['groundednessInput', { prediction: 'Paris is the capital.', context: 'Paris is the capital of France.' }, [0, 1]],
    ['fulfillmentInput', { prediction: 'two words', instruction: 'Answer in two words.' }, five],
    ['summarizationVerbosityInput', { prediction: 'Cats sleep.', context: 'Cats sleep a lot, often 16 hours a day.' }, [-2, -1, 0, 1, 2]],
    ['questionAnsweringCorrectnessInput', { prediction: '4', instruction: 'What is 2+2?', reference: '4' }, [0, 1]],
  ] as const) {
    const spec = input === 'questionAnsweringCorrectnessInput' ? { useReference: true } : {};
    const r = await one(input, { metricSpec: spec, instance });
    // The mean of sampling_count's default 4 judgments, each on the scale.
    assert.ok(r.score! >= Math.min(...scale) && r.score! <= Math.max(...scale), `${input}: ${r.score}`);
    assert.equal(r.explanation.split('\n---\n').length, 4);
  }
  const pair = await ok(URL_BETA, {
    pairwiseQuestionAnsweringQualityInput: { metricSpec: {}, instance: { prediction: '4', baselinePrediction: 'five', context: 'arithmetic', instruction: 'What is 2+2?' } },
    autoraterConfig: { samplingCount: 1 },
  }, judging);
  const pr = pair.pairwiseQuestionAnsweringQualityResult as { pairwiseChoice: string; explanation: string };
  assert.ok(['BASELINE', 'CANDIDATE', 'TIE'].includes(pr.pairwiseChoice), pr.pairwiseChoice);
  assert.match(pr.explanation, /\n---\n/); // judged in both orders
});

test('named judged inputs: required instance fields, spec version and use_reference are checked by name', async () => {
  const bad = (body: unknown) => judging.post(URL_V1, body);
  await fails(await bad({ groundednessInput: { metricSpec: {}, instance: { prediction: 'x' } } }), 400, 'INVALID_ARGUMENT', /'groundedness_input\.instance\.context'/);
  await fails(await bad({ coherenceInput: { instance: { prediction: 'x' } } }), 400, 'INVALID_ARGUMENT', /'coherence_input\.metric_spec'/);
  await fails(await bad({ coherenceInput: { metricSpec: { version: 2 }, instance: { prediction: 'x' } } }), 400, 'INVALID_ARGUMENT', /'coherence_input\.metric_spec\.version' is not supported/);
  await fails(await bad({ questionAnsweringQualityInput: { metricSpec: { useReference: true }, instance: { prediction: 'x', context: 'c', instruction: 'q' } } }),
    400, 'INVALID_ARGUMENT', /'question_answering_quality_input\.instance\.reference'.*use_reference/);
  await fails(await judging.post(URL_BETA, { pairwiseSummarizationQualityInput: { metricSpec: {}, instance: { prediction: 'a', baselinePrediction: 'b', context: 'c', instruction: 'i' } }, autoraterConfig: { flipEnabled: false } }),
    400, 'INVALID_ARGUMENT', /flip_enabled/);
  await fails(await judging.post(URL_BETA, { coherenceInput: { metricSpec: {}, instance: { prediction: 'x' } }, autoraterConfig: { generationConfig: { temperature: 1 } } }),
    400, 'INVALID_ARGUMENT', /generation_config' is not supported/);
  assert.deepEqual(judging.errors, []);
});
