// Conformance of tuning with the real client: `tunekit serve` as a child process, driven only through
// @google/genai 2.32.0 in Vertex mode, as Google's tuning samples drive Vertex AI: a dataset uploaded
// through the object store, tunings.tune with ADAPTER_SIZE_FOUR and a validation set, tunings.get polled
// while the job is PENDING or RUNNING, tunings.list, generation and countTokens on the tuned endpoint by
// its full name, cancel of a second job; failures as ApiError with the status and message: wrong key
// 401, viewer-only key 403, second concurrent job 429, unsupported location 400, missing dataset 404.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApiError, GoogleGenAI, JobState, type TuningJob } from '@google/genai';
import { prepareServeDataDir, type Keys } from './helpers/tuning.js';
import { startServe, type ServeProcess } from './helpers/serve.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-tuning-conformance-'));
let server: ServeProcess;
let keys: Keys;

before(async () => {
  keys = await prepareServeDataDir(dataDir); // gs://us-data/{train,validation}.jsonl in us-central1 (the upload goes through the storage module)
  server = await startServe(dataDir);
});

after(async () => {
  await server.kill();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const client = (apiKey = keys.trainer, location = 'us-central1') =>
  new GoogleGenAI({ vertexai: true, project: 'p', location, apiKey, httpOptions: { baseUrl: server.url } });

const tuneParams = (config: Record<string, unknown> = {}, train = 'gs://us-data/train.jsonl') => ({
  baseModel: 'gemma3-tiny',
  trainingDataset: { gcsUri: train },
  config: {
    tunedModelDisplayName: 'tone-classifier', epochCount: 2, adapterSize: 'ADAPTER_SIZE_FOUR' as never, learningRateMultiplier: 5,
    validationDataset: { gcsUri: 'gs://us-data/validation.jsonl' }, ...config,
  },
});

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ApiError, `expected ApiError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected the call to fail');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let tuned: TuningJob;

test('tunings.tune, poll tunings.get while PENDING/RUNNING, tunings.list', async () => {
  const ai = client();
  let job = await ai.tunings.tune(tuneParams());
  assert.equal(job.state, JobState.JOB_STATE_PENDING);
  assert.match(job.name!, /^projects\/p\/locations\/us-central1\/tuningJobs\/\d+$/);
  const running = new Set<string>([JobState.JOB_STATE_PENDING, JobState.JOB_STATE_RUNNING]);
  const t0 = Date.now();
  while (running.has(job.state!)) {
    assert.ok(Date.now() - t0 < 60_000, 'the job finishes within a minute');
    await sleep(200);
    job = await ai.tunings.get({ name: job.name! });
  }
  assert.equal(job.state, JobState.JOB_STATE_SUCCEEDED, JSON.stringify(job.error));
  assert.match(job.tunedModel!.model!, /^projects\/p\/locations\/us-central1\/models\/\d+@1$/);
  assert.match(job.tunedModel!.endpoint!, /^projects\/p\/locations\/us-central1\/endpoints\/\d+$/);
  assert.equal(job.tunedModel!.checkpoints!.length, 2);
  assert.equal(job.tuningDataStats!.supervisedTuningDataStats!.tuningDatasetExampleCount, '40');
  tuned = job;

  const names: string[] = [];
  for await (const j of await ai.tunings.list({ config: { pageSize: 1 } })) names.push(j.name!);
  assert.ok(names.includes(job.name!));
});

test('generateContent, generateContentStream and countTokens on the tuned endpoint by its full name', async () => {
  const ai = client();
  const model = tuned.tunedModel!.endpoint!;
  const config = { temperature: 0, maxOutputTokens: 6 };
  const r = await ai.models.generateContent({ model, contents: 'the sky is red today', config });
  assert.equal(typeof r.text, 'string');
  assert.ok(r.usageMetadata!.candidatesTokenCount! <= 6);
  assert.equal(r.modelVersion, tuned.tunedModel!.model);
  let streamed = '';
  for await (const chunk of await ai.models.generateContentStream({ model, contents: 'the sky is red today', config })) streamed += chunk.text ?? '';
  assert.equal(streamed, r.text ?? '');
  const counted = await ai.models.countTokens({ model, contents: 'the sky is red today' });
  assert.equal(counted.totalTokens, r.usageMetadata!.promptTokenCount);
});

test('failures: 401 wrong key, 403 viewer, 429 second concurrent job, cancel, 400 location, 404 dataset', async () => {
  const wrong = await apiError(client('tk1.000000000000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA').tunings.get({ name: tuned.name! }));
  assert.equal(wrong.status, 401);
  assert.match(wrong.message, /API key not valid/);

  const viewer = await apiError(client(keys.viewer).tunings.tune(tuneParams()));
  assert.equal(viewer.status, 403);
  assert.match(viewer.message, /aiplatform\.tuningJobs\.create/);
  assert.equal((await client(keys.viewer).tunings.get({ name: tuned.name! })).state, JobState.JOB_STATE_SUCCEEDED);

  const ai = client();
  const second = await ai.tunings.tune(tuneParams({ epochCount: 100, tunedModelDisplayName: 'long-one' }));
  assert.equal(second.state, JobState.JOB_STATE_PENDING);
  const third = await apiError(ai.tunings.tune(tuneParams()));
  assert.equal(third.status, 429);
  assert.match(third.message, /concurrent tuning jobs/);

  await ai.tunings.cancel({ name: second.name! });
  let job = await ai.tunings.get({ name: second.name! });
  for (let i = 0; i < 100 && job.state !== JobState.JOB_STATE_CANCELLED; i++) {
    await sleep(100);
    job = await ai.tunings.get({ name: second.name! });
  }
  assert.equal(job.state, JobState.JOB_STATE_CANCELLED);
  assert.equal(job.error!.code, 1);

  const location = await apiError(client(keys.trainer, 'mars-north1').tunings.tune(tuneParams()));
  assert.equal(location.status, 400);
  assert.match(location.message, /Supported locations: us-central1, europe-west4/);

  const missing = await apiError(ai.tunings.tune(tuneParams({}, 'gs://us-data/no-such-file.jsonl')));
  assert.equal(missing.status, 404);
  assert.match(missing.message, /gs:\/\/us-data\/no-such-file\.jsonl/);
});
