// A tuning job's evaluation_config: after tuning, the worker evaluates the tuned model against its
// base on the validation set (the same run as `tunekit eval`), writes results.jsonl, summary.json and
// report.html to the output location and commits one EvaluateDatasetRun with the job; create refuses
// what it cannot honour, naming the field; an evaluation that fails is the run's error (the job still
// SUCCEEDED: its tuning did); a server stopped during the evaluation resumes without tuning again.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TuningService } from '../src/platform/jobs/service.js';
import { jobDir, workDir } from '../src/platform/jobs/spec.js';
import { createBody, JOBS, tuningPlatform, waitForJob } from './helpers/tuning.js';

const t = await tuningPlatform();
after(() => t.close());
const { call, keys } = t;
const get = (name: string) => async () => (await call('GET', `/v1/${name}`, keys.trainer)).json;
const JUDGE = 'projects/p/locations/us-central1/publishers/google/models/gemma3-tiny';

function withEvaluation(evaluationConfig: Record<string, unknown>, extra: Parameters<typeof createBody>[0] = {}): Record<string, any> {
  const body = createBody({ epochs: 2, ...extra }) as Record<string, any>;
  body.supervisedTuningSpec.evaluationConfig = evaluationConfig;
  return body;
}

async function objectText(uri: string): Promise<string> {
  const [, bucket, name] = /^gs:\/\/([^/]+)\/(.*)$/.exec(uri)!;
  return (await t.platform.storage.readObject(bucket!, name!)).toString('utf8');
}

test('evaluation_config: the tuned model is evaluated against its base; the run lands on the job and its files in the bucket', async () => {
  const created = await call('POST', JOBS, keys.trainer, withEvaluation({
    metrics: [
      { exactMatchSpec: {} },
      { predefinedMetricSpec: { metricSpecName: 'json_valid' }, aggregationMetrics: ['AVERAGE', 'MINIMUM', 'MAXIMUM'] },
      { rougeSpec: { rougeType: 'rougeL' } },
      { pointwiseMetricSpec: { metricPromptTemplate: 'Rate from 1 to 5 how well the answer gives a tone.\nPrompt: {prompt}\nAnswer: {response}' } },
      { pairwiseMetricSpec: { metricPromptTemplate: 'Which answer names the tone?\nPrompt: {prompt}\nBaseline: {baseline_model_response}\nCandidate: {response}' } },
    ],
    autoraterConfig: { autoraterModel: JUDGE, samplingCount: 1 },
    inferenceGenerationConfig: { maxOutputTokens: 12, temperature: 0 },
  }));
  assert.equal(created.status, 200, JSON.stringify(created.json));
  assert.deepEqual(created.json.supervisedTuningSpec.evaluationConfig.metrics[0], { exactMatchSpec: {} });
  const job = await waitForJob(get(created.json.name), 120_000);
  assert.equal(job.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(job.error));
  assert.equal(job.evaluateDatasetRuns.length, 1);
  const run = job.evaluateDatasetRuns[0];
  assert.equal(run.error, undefined, JSON.stringify(run.error));
  assert.equal(run.checkpointId, '2');
  const out = run.evaluateDatasetResponse;
  assert.deepEqual(out.aggregationOutput.dataset, { gcsSource: { uris: ['gs://us-data/validation.jsonl'] } });
  const id = job.name.split('/').pop();
  assert.match(out.outputInfo.gcsOutputDirectory, new RegExp(`^gs://tunekit-us-central1-[0-9a-f]{12}/tuningJobs/${id}/evaluation/$`));
  const results = out.aggregationOutput.aggregationResults;
  assert.deepEqual(results.map((r: any) => [Object.keys(r).find((k) => k !== 'aggregationMetric'), r.aggregationMetric]), [
    ['exactMatchMetricValue', 'AVERAGE'], ['pointwiseMetricResult', 'AVERAGE'], ['pointwiseMetricResult', 'MINIMUM'],
    ['pointwiseMetricResult', 'MAXIMUM'], ['rougeMetricValue', 'AVERAGE'], ['pointwiseMetricResult', 'AVERAGE'],
    ['pairwiseMetricResult', 'MODE'],
  ]);

  // The files: one row per validation example, both sides, and the aggregates recomputed from the rows.
  const dir = out.outputInfo.gcsOutputDirectory;
  const rows = (await objectText(`${dir}results.jsonl`)).trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rows.length, 8);
  let exact = 0;
  const valid: number[] = [];
  for (const r of rows) {
    assert.equal(typeof r.baseline.response, 'string');
    exact += r.candidate.response === r.reference ? 1 : 0; // exact match, by its definition
    let ok = 1;
    try { JSON.parse(r.candidate.response.trim()); } catch { ok = 0; }
    valid.push(ok);
    const judged = r.candidate.scores.pointwise_metric_3;
    assert.ok(Number.isFinite(judged) || r.candidate.errors.pointwise_metric_3, JSON.stringify(r.candidate));
  }
  assert.ok(Math.abs((results[0].exactMatchMetricValue.score ?? 0) - exact / 8) < 1e-6);
  assert.ok(Math.abs((results[1].pointwiseMetricResult.score ?? 0) - valid.reduce((a, b) => a + b, 0) / 8) < 1e-6);
  assert.equal(results[2].pointwiseMetricResult.score ?? 0, Math.min(...valid));
  assert.equal(results[3].pointwiseMetricResult.score ?? 0, Math.max(...valid));
  // The pairwise aggregate is the most frequent choice (ties: the first in name order), judged in both orders.
  const choices = rows.map((r) => r.pairwise.pairwise_metric_4.choice).filter((c) => c !== undefined);
  const counts = new Map<string, number>();
  for (const c of choices) counts.set(c, (counts.get(c) ?? 0) + 1);
  const top = [...counts].sort(([a, x], [b, y]) => y - x || a.localeCompare(b))[0]![0];
  assert.equal(results[6].pairwiseMetricResult.pairwiseChoice, top);
  assert.ok(rows.every((r) => r.pairwise.pairwise_metric_4.error || r.pairwise.pairwise_metric_4.explanation.includes('\n---\n')));
  const summary = JSON.parse(await objectText(`${dir}summary.json`));
  assert.deepEqual(summary.config.metrics, ['exact_match', 'json_valid', 'rouge_l', 'pointwise_metric_3', 'pairwise_metric_4']);
  assert.equal(summary.config.baseline, 'publishers/google/models/gemma3-tiny');
  const html = await objectText(`${dir}report.html`);
  assert.match(html, /<table id="rows">/);
  assert.match(html, /id="eval-data"/);
  endpoint = job.tunedModel.endpoint;
});

let endpoint = '';

test('a tunekit endpoint (the job\'s tuned model) judges :evaluateInstances; an unknown endpoint is 404', async () => {
  const body = { coherenceInput: { metricSpec: {}, instance: { prediction: '{"tone": "warm"}' } }, autoraterConfig: { autoraterModel: endpoint, samplingCount: 1 } };
  const url = '/v1beta1/projects/p/locations/us-central1:evaluateInstances';
  const r = await call('POST', url, keys.trainer, body);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.ok([1, 2, 3, 4, 5].includes(r.json.coherenceResult.score), JSON.stringify(r.json));
  const other = await call('POST', url, keys.trainer, { ...body, autoraterConfig: { autoraterModel: 'projects/p/locations/us-central1/endpoints/999' } });
  assert.equal(other.status, 404, JSON.stringify(other.json));
});

test('evaluation_config: create refuses what it cannot honour, naming the field', async () => {
  const refuse = async (body: Record<string, unknown>, status: number, re: RegExp) => {
    const r = await call('POST', JOBS, keys.trainer, body);
    assert.equal(r.status, status, JSON.stringify(r.json));
    assert.match(r.json.error.message, re);
  };
  await refuse(withEvaluation({ metrics: [{ exactMatchSpec: {} }] }, { validation: '' }), 400, /validation_dataset_uri/);
  await refuse(withEvaluation({ metrics: [] }), 400, /evaluation_config\.metrics'/);
  await refuse(withEvaluation({ metrics: [{ predefinedMetricSpec: { metricSpecName: 'nope' } }] }), 400, /metrics\[0\]\.predefined_metric_spec\.metric_spec_name.*Unknown metric "nope"/);
  await refuse(withEvaluation({ metrics: [{ predefinedMetricSpec: { metricSpecName: 'coherence' } }] }), 400, /No autorater is configured.*autorater_model.*--autorater/);
  await refuse(withEvaluation({ metrics: [{ predefinedMetricSpec: { metricSpecName: 'coherence' } }], autoraterConfig: { autoraterModel: 'gemini-2.5-pro' } }),
    400, /gemini-2\.5-pro.*publisher model of its catalog.*only Vertex AI serves/);
  await refuse(withEvaluation({ metrics: [{ predefinedMetricSpec: { metricSpecName: 'pairwise_fluency' }, aggregationMetrics: ['AVERAGE'] }], autoraterConfig: { autoraterModel: JUDGE } }),
    400, /aggregation_metrics\[0\]'.*MODE only/);
  await refuse(withEvaluation({ metrics: [{ exactMatchSpec: {} }], inferenceGenerationConfig: { topK: 3 } }), 400, /inference_generation_config\.top_k.*not supported/);
  await refuse(withEvaluation({ metrics: [{ exactMatchSpec: {} }], autoraterConfig: { autoraterModel: JUDGE } }), 400, /has no effect: none of the metrics is judged/);
  await refuse(withEvaluation({ metrics: [{ exactMatchSpec: {} }, { computationBasedMetricSpec: { type: 'EXACT_MATCH' } }] }), 400, /repeats metric exact_match/);
  await refuse(withEvaluation({ metrics: [{ rougeSpec: { rougeType: 'rougeX' } }] }), 400, /rouge_type', "rougeX"/);
  await refuse(withEvaluation({ metrics: [{ llmBasedMetricSpec: { metricPromptTemplate: 'x' } }] }), 400, /llm_based_metric_spec' is not supported/);
  await refuse(withEvaluation({ metrics: [{ exactMatchSpec: {} }], outputConfig: { gcsDestination: { outputUriPrefix: 'gs://no-such-bucket/x' } } }), 404, /no-such-bucket/);
  await refuse(withEvaluation({ metrics: [{ exactMatchSpec: {} }], outputConfig: { gcsDestination: { outputUriPrefix: 'gs://eu-data/x' } } }), 400, /europe-west4/);
  const none = await call('GET', `${JOBS}`, keys.trainer);
  assert.equal((none.json.tuningJobs ?? []).length, 1, 'no job was created by a refused request');
});

test('an evaluation that fails is the run\'s error, not a silent success; the job itself succeeds', async () => {
  await t.platform.storage.createBucket('eval-out', { project: 'p', location: 'us-central1' });
  const created = await call('POST', JOBS, keys.trainer, withEvaluation({
    metrics: [{ exactMatchSpec: {} }], outputConfig: { gcsDestination: { outputUriPrefix: 'gs://eval-out/runs' } },
  }, { epochs: 1 }));
  assert.equal(created.status, 200, JSON.stringify(created.json));
  await t.platform.storage.deleteBucket('eval-out'); // gone by the time the evaluation writes its files
  const job = await waitForJob(get(created.json.name), 120_000);
  assert.equal(job.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(job.error));
  const run = job.evaluateDatasetRuns[0];
  assert.equal(run.checkpointId, '1');
  assert.equal(run.evaluateDatasetResponse, undefined);
  assert.equal(run.error.code, 5, JSON.stringify(run.error));
  assert.match(run.error.message, /eval-out/);
});

test('a server stopped during the evaluation resumes it without tuning again', async () => {
  const created = await call('POST', JOBS, keys.trainer, withEvaluation({
    metrics: [{ exactMatchSpec: {} }], inferenceGenerationConfig: { maxOutputTokens: 200 },
  }));
  assert.equal(created.status, 200, JSON.stringify(created.json));
  const id = created.json.name.split('/').pop();
  const adapter = path.join(workDir(t.dataDir, id), 'out', 'adapter_model.safetensors');
  while (!fs.existsSync(adapter)) await new Promise((r) => setTimeout(r, 10));
  await t.tuning.runner.stop(); // kills the worker mid-evaluation; the job goes back to PENDING
  assert.ok(!fs.existsSync(path.join(jobDir(t.dataDir, id), 'evaluation', 'run.json')), 'stopped before the evaluation ended');
  assert.equal((await t.tuning.jobs.get('p', 'us-central1', id)).state, 'JOB_STATE_PENDING');
  const steps = (await t.tuning.jobs.metrics(id)).filter((p) => p.name === '/train_total_loss').map((p) => p.step);
  const second = new TuningService(t.platform, { pollMs: 100 });
  await second.runner.start();
  try {
    const job = await waitForJob(async () => second.jobs.get('p', 'us-central1', id) as unknown as Record<string, any>, 120_000);
    assert.equal(job.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(job.error));
    const runs = (job.result as any).evaluateDatasetRuns;
    assert.equal(runs.length, 1);
    assert.equal(runs[0].error, undefined, JSON.stringify(runs[0].error));
    // Every step once: the resumed worker ran no training step.
    assert.deepEqual((await second.jobs.metrics(id)).filter((p) => p.name === '/train_total_loss').map((p) => p.step), steps);
  } finally {
    await second.runner.stop();
  }
});
