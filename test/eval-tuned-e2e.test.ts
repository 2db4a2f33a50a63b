// Evaluation of a really tuned model, end to end: a tuning job tunes the tiny Gemma 3 on the example
// tone task (examples/data: each prompt's colour word decides {"tone": "warm"|"cold"}) with an
// evaluation_config, and then `tunekit eval` compares the job's endpoint with its base model, both
// named by resource on the running server (--api). Both evaluations must find that the tuned model
// wins on exact_match and json_valid, by the numbers they computed; and those numbers are checked
// against the responses they report.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp } from '../src/api/app.js';
import { ModelCatalog, registerPublisherModel } from '../src/api/catalog.js';
import { DbRegistrationStore } from '../src/api/db-store.js';
import { listen } from '../src/api/server.js';
import { Platform } from '../src/platform/platform.js';
import { TuningService } from '../src/platform/jobs/service.js';
import { makeKeys, PROJECT, waitForJob } from './helpers/tuning.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import { cliMain, runNode } from './helpers/platform.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-eval-e2e-'));
const platform = await Platform.open({ dataDir });
const store = new DbRegistrationStore(platform.db);
await registerPublisherModel(store, tinyModelDir('gemma3'), { name: 'gemma3-tiny' });
await platform.storage.createBucket('tone', { project: PROJECT, location: 'us-central1' });
for (const f of ['tone-train.jsonl', 'tone-validation.jsonl']) {
  await platform.storage.putObject('tone', f, fs.readFileSync(path.join(root, 'examples', 'data', f)));
}
const keys = await makeKeys(platform);
const tuning = new TuningService(platform, { pollMs: 100 });
const app = createApp({ catalog: new ModelCatalog(store), auth: platform.iam, assertLocation: async (l) => await platform.config.assertLocation(l), tuning });
const server = await listen(app, { port: 0, host: '127.0.0.1' });
await tuning.runner.start();
after(async () => {
  await server.close(1000);
  await tuning.runner.stop();
  await platform.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function call(method: string, url: string, body?: unknown): Promise<Record<string, any>> {
  const res = await fetch(server.url + url, { method, headers: { 'x-goog-api-key': keys.trainer, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
  const json = await res.json() as Record<string, any>;
  assert.equal(res.status, 200, JSON.stringify(json));
  return json;
}

/** The tunekit CLI, as a user runs it. */
const run = (args: string[]) => runNode([cliMain, ...args]);

const isJson = (s: string) => {
  try {
    JSON.parse(s.trim());
    return 1;
  } catch {
    return 0;
  }
};

test('a tuned model beats its base on exact_match and json_valid, in the job\'s evaluation and in tunekit eval', async () => {
  const created = await call('POST', `/v1beta1/projects/${PROJECT}/locations/us-central1/tuningJobs`, {
    baseModel: 'gemma3-tiny',
    supervisedTuningSpec: {
      trainingDatasetUri: 'gs://tone/tone-train.jsonl', validationDatasetUri: 'gs://tone/tone-validation.jsonl',
      hyperParameters: { epochCount: 10, adapterSize: 'ADAPTER_SIZE_EIGHT', learningRate: 0.02 },
      evaluationConfig: {
        metrics: [{ exactMatchSpec: {} }, { predefinedMetricSpec: { metricSpecName: 'json_valid' } }],
        inferenceGenerationConfig: { maxOutputTokens: 16 },
      },
    },
    tunedModelDisplayName: 'tone',
  });
  const job = await waitForJob(() => call('GET', `/v1/${created.name}`), 300_000);
  assert.equal(job.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(job.error));
  const evalRun = job.evaluateDatasetRuns[0];
  assert.equal(evalRun.error, undefined, JSON.stringify(evalRun.error));
  const [exact, valid] = evalRun.evaluateDatasetResponse.aggregationOutput.aggregationResults;

  // The job's files hold both sides; recompute both metrics from the responses.
  const dir = evalRun.evaluateDatasetResponse.outputInfo.gcsOutputDirectory as string;
  const [, bucket, prefix] = /^gs:\/\/([^/]+)\/(.*)$/.exec(dir)!;
  const rows = (await platform.storage.readObject(bucket!, `${prefix}results.jsonl`)).toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rows.length, 20);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const side = (s: 'candidate' | 'baseline') => ({
    exact: mean(rows.map((r) => (r[s].response === r.reference ? 1 : 0))),
    valid: mean(rows.map((r) => isJson(r[s].response))),
  });
  const tuned = side('candidate');
  const base = side('baseline');
  assert.ok(Math.abs((exact.exactMatchMetricValue.score ?? 0) - tuned.exact) < 1e-6);
  assert.ok(Math.abs((valid.pointwiseMetricResult.score ?? 0) - tuned.valid) < 1e-6);
  assert.ok(tuned.exact >= 0.6 && base.exact === 0, `job: tuned exact ${tuned.exact}, base ${base.exact}`);
  assert.ok(tuned.valid > base.valid, `job: tuned json_valid ${tuned.valid}, base ${base.valid}`);

  // tunekit eval: the job's endpoint against the base model, both named by resource on this server.
  const out = path.join(dataDir, 'cli-eval');
  const dataset = path.join(root, 'examples', 'data', 'tone-validation.jsonl');
  const vertexOnly = await run(['eval', '--dataset', dataset, '--candidate', 'gemini-2.5-pro', '--metrics', 'exact_match', '--out', out]);
  assert.equal(vertexOnly.code, 1);
  assert.match(vertexOnly.err, /A model only Vertex AI serves \(e\.g\. gemini-2\.5-pro\) cannot be called by tunekit eval/);
  const misnamed = await run(['eval', '--dataset', dataset, '--api', server.url, '--key', keys.trainer, '--project', PROJECT, '--location', 'us-central1',
    '--candidate', 'publishers/google/models/nope', '--metrics', 'exact_match', '--out', out]);
  assert.equal(misnamed.code, 1); // a side with no response at all fails the run, not 20 instances
  assert.match(misnamed.err, /Every candidate generation failed \(publishers\/google\/models\/nope at .*\); the first: .*404/);
  const r = await run([
    'eval', '--dataset', dataset, '--api', server.url, '--key', keys.trainer, '--project', PROJECT, '--location', 'us-central1',
    '--candidate', job.tunedModel.endpoint, '--baseline', `projects/${PROJECT}/locations/us-central1/publishers/google/models/gemma3-tiny`,
    '--metrics', 'exact_match,json_valid', '--max-tokens', '16', '--seed', '1', '--out', out,
  ]);
  assert.equal(r.code, 0, r.err);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  const cliRows = fs.readFileSync(path.join(out, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const by = (m: string) => summary.summary.find((s: any) => s.metric === m);
  assert.equal(by('exact_match').candidate.mean, mean(cliRows.map((x) => (x.candidate.response === x.reference ? 1 : 0))));
  assert.equal(by('json_valid').baseline.mean, mean(cliRows.map((x) => isJson(x.baseline.response))));
  assert.ok(by('exact_match').candidate.mean > by('exact_match').baseline.mean, JSON.stringify(summary.summary));
  assert.ok(by('json_valid').candidate.mean > by('json_valid').baseline.mean, JSON.stringify(summary.summary));
  // The same greedy responses through the endpoint as in the job's own evaluation.
  assert.deepEqual(cliRows.map((x) => x.candidate.response), rows.map((x) => x.candidate.response));
  assert.equal(summary.config.candidate, `${job.tunedModel.endpoint} at ${server.url}/v1`);
});
