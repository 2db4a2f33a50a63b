// Tuning jobs through the API in-process: create validates everything before a job exists (model,
// enums, ranges, dataset access, location, contents, quota — also under concurrent creates), a job
// runs in a worker process to SUCCEEDED with metrics, a registered model version, its adapter in the
// object store and an endpoint whose generation equals base + adapter; cancel, list paging and
// filters, and re-tunes as versions; size limits on display names, descriptions and labels; malformed
// filters and page tokens are 400, never 500; credentials are checked before the location, so an
// anonymous caller never learns the supported locations.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../src/generate/generate.js';
import { loadModel } from '../src/models/model.js';
import { applyAdapterForInference } from '../src/lora/apply.js';
import { renderPrompt } from '../src/data/render.js';
import { createBody, JOBS, tuningPlatform, waitForJob } from './helpers/tuning.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import type { JobRunner } from '../src/platform/jobs/runner.js';

const t = await tuningPlatform();
after(() => t.close());
const { call, keys } = t;
const get = (name: string) => async () => (await call('GET', `/v1/${name}`, keys.trainer)).json;

let succeeded: Record<string, any>;

test('a job runs to SUCCEEDED with stats, metrics, a model version, a stored adapter and an endpoint', async () => {
  const created = await call('POST', JOBS, keys.trainer, createBody({ epochs: 2 }));
  assert.equal(created.status, 200, JSON.stringify(created.json));
  const job = created.json;
  assert.match(job.name, /^projects\/p\/locations\/us-central1\/tuningJobs\/\d{19}$/);
  assert.equal(job.state, 'JOB_STATE_PENDING');
  assert.equal(job.baseModel, 'publishers/google/models/gemma3-tiny');
  assert.equal(job.supervisedTuningSpec.hyperParameters.epochCount, '2');
  assert.equal(job.supervisedTuningSpec.hyperParameters.adapterSize, 'ADAPTER_SIZE_FOUR');
  assert.equal(job.tuningDataStats.supervisedTuningDataStats.tuningDatasetExampleCount, '40');
  assert.ok(job.createTime && job.updateTime && !job.endTime);

  // The quota (1 concurrent job) holds while it runs.
  const second = await call('POST', JOBS, keys.trainer, createBody());
  assert.equal(second.status, 429);
  assert.equal(second.json.error.status, 'RESOURCE_EXHAUSTED');
  assert.match(second.json.error.message, /concurrent tuning jobs/);

  succeeded = await waitForJob(get(job.name));
  assert.equal(succeeded.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(succeeded.error));
  assert.ok(succeeded.startTime && succeeded.endTime && succeeded.startTime <= succeeded.endTime);
  const tm = succeeded.tunedModel;
  assert.match(tm.model, /^projects\/p\/locations\/us-central1\/models\/\d+@1$/);
  assert.match(tm.endpoint, /^projects\/p\/locations\/us-central1\/endpoints\/\d+$/);
  assert.deepEqual(tm.checkpoints.map((c: any) => [c.checkpointId, c.epoch]), [['1', '1'], ['2', '2']]);
  assert.equal(tm.checkpoints[1].endpoint, tm.endpoint);

  const metrics = (await call('GET', `/v1/${job.name}/metrics`, keys.trainer)).json;
  const loss = metrics.metrics.find((m: any) => m.name === '/train_total_loss');
  assert.ok(loss.points.length >= 2);
  assert.equal(loss.points.at(-1).step, tm.checkpoints[1].step);
  // tuningStepCount, given at create, is the number of steps the job really ran (the trainer's plan).
  assert.equal(job.tuningDataStats.supervisedTuningDataStats.tuningStepCount, loss.points.at(-1).step);
  assert.deepEqual(loss.points.map((p: any) => Number(p.step)), Array.from({ length: loss.points.length }, (_, i) => i + 1));
  assert.ok(metrics.metrics.some((m: any) => m.name === '/eval_total_loss'));

  const model = (await call('GET', `/v1/${tm.model}`, keys.trainer)).json;
  assert.equal(model.displayName, 'tone');
  assert.equal(model.versionId, '1');
  assert.match(model.artifactUri, /^gs:\/\/tunekit-us-central1-[0-9a-f]{12}\/tuningJobs\/\d+\/adapter\/$/);
  const objects = (await t.platform.storage.listObjects(model.artifactUri.slice(5).split('/')[0], { prefix: model.artifactUri.split('/').slice(3).join('/') })).objects.map((o) => o.name.split('/').pop());
  assert.deepEqual(objects, ['adapter_config.json', 'adapter_model.safetensors']);
  const endpoint = (await call('GET', `/v1/${tm.endpoint}`, keys.trainer)).json;
  assert.equal(endpoint.deployedModels[0].model, tm.model.replace(/@1$/, ''));
  assert.equal((await call('GET', '/v1/projects/p/locations/us-central1/endpoints', keys.viewer)).json.endpoints.length, 1);
  assert.equal((await call('GET', '/v1/projects/p/locations/us-central1/models', keys.viewer)).json.models.length, 1);
});

test('generation on the endpoint is the base model with the adapter', async () => {
  const tm = succeeded.tunedModel;
  const prompt = { contents: [{ role: 'user', parts: [{ text: 'the sky is red today' }] }], generationConfig: { temperature: 0, maxOutputTokens: 8 } };
  const r = await call('POST', `/v1/${tm.endpoint}:generateContent`, keys.trainer, prompt);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const base = await loadModel(tinyModelDir('gemma3'));
  const adapterDir = await t.tuning.adapterDir((await call('GET', `/v1/${tm.model}`, keys.trainer)).json.artifactUri);
  const tuned = applyAdapterForInference(base, adapterDir);
  const ids = renderPrompt({ turns: [{ role: 'user', text: 'the sky is red today' }] }, tuned.tokenizer).tokens;
  const expected = await generate(tuned, ids, { maxTokens: 8, temperature: 0 });
  assert.equal(r.json.candidates[0].content.parts?.[0]?.text ?? '', expected.text);
  assert.equal(r.json.modelVersion, tm.model);
  const counted = await call('POST', `/v1/${tm.endpoint}:countTokens`, keys.trainer, { contents: prompt.contents });
  assert.equal(counted.json.totalTokens, ids.length);
  // A viewer may not predict; an unknown endpoint is 404.
  assert.equal((await call('POST', `/v1/${tm.endpoint}:generateContent`, keys.viewer, prompt)).status, 403);
  assert.equal((await call('POST', '/v1/projects/p/locations/us-central1/endpoints/123:generateContent', keys.trainer, prompt)).status, 404);
});

test('create validates the request, the data access and the data before queueing', async () => {
  const err = async (key: string | undefined, body: unknown, status: number, message: RegExp, url = JOBS) => {
    const r = typeof body === 'string'
      ? await Promise.resolve(t.app.request(url, { method: 'POST', headers: { 'x-goog-api-key': key ?? '' }, body })).then(async (res: Response) => ({ status: res.status, json: await res.json() as Record<string, any> }))
      : await call('POST', url, key, body);
    assert.equal(r.status, status, JSON.stringify(r.json));
    assert.match(r.json.error.message, message);
  };
  await err(undefined, createBody(), 401, /credential/);
  await err(keys.viewer, createBody(), 403, /aiplatform\.tuningJobs\.create/);
  await err(keys.noData, createBody(), 403, /storage\.objects\.get/);
  await err(keys.trainer, createBody(), 400, /mars-north1/, JOBS.replace('us-central1', 'mars-north1'));
  await err(keys.trainer, { ...createBody(), baseModel: 'nope' }, 400, /base_model "nope".*gemma3-tiny/);
  await err(keys.trainer, createBody({ adapterSize: 'ADAPTER_SIZE_THREE' }), 400, /adapter_size/);
  await err(keys.trainer, createBody({ epochs: 0 }), 400, /epoch_count must be an integer in \[1, 100\]/);
  await err(keys.trainer, createBody({ lrm: 0 }), 400, /learning_rate_multiplier/);
  const typed = createBody() as any;
  typed.supervised_tuning_spec = typed.supervisedTuningSpec;
  delete typed.supervisedTuningSpec;
  typed.supervised_tuning_spec.hyperParameters.epochCount = 'three';
  await err(keys.trainer, typed, 400, /supervised_tuning_spec\.hyper_parameters\.epoch_count.*"three"/);
  await err(keys.trainer, 'not json', 400, /Invalid JSON payload/);
  await err(keys.trainer, { ...createBody(), supervisedTuningSpec: undefined }, 400, /supervised_tuning_spec' is required/);
  // base_model and pre_tuned_model are one oneof (source_model): both set is refused by the proto3 parse.
  await err(keys.trainer, { ...createBody(), preTunedModel: { tunedModelName: 'x' } }, 400, /only one of oneof 'source_model'/);
  await err(keys.trainer, createBody({ train: 'gs://us-data/missing.jsonl' }), 404, /gs:\/\/us-data\/missing\.jsonl/);
  await err(keys.trainer, createBody({ train: 'gs://no-bucket/x.jsonl' }), 404, /no-bucket/);
  await err(keys.trainer, createBody({ train: 'gs://us-data/../x' }), 400, /not valid/);
  await err(keys.trainer, createBody({ train: 'gs://eu-data/train.jsonl' }), 400, /data sovereignty: .*europe-west4.*us-central1/);

  // A malformed dataset: 400 with its problems by line, nothing queued.
  const good = (await t.platform.storage.readObject('us-data', 'train.jsonl')).toString().split('\n');
  good.splice(2, 0, '{"contents": [{"role": "user", "parts": [{"text": "hi"}]}, {"role": "bot", "parts": [{"text": "x"}]}]}', 'not json');
  await t.platform.storage.putObject('us-data', 'bad.jsonl', good.join('\n'));
  const before = (await t.tuning.jobs.list('p', 'us-central1')).jobs.length;
  await err(keys.trainer, createBody({ train: 'gs://us-data/bad.jsonl' }), 400, /gs:\/\/us-data\/bad\.jsonl:3: contents\[1\]\.role[\s\S]*gs:\/\/us-data\/bad\.jsonl:4:/);
  assert.equal((await t.tuning.jobs.list('p', 'us-central1')).jobs.length, before);

  // Rows over the token limit are dropped and reported, not refused.
  const long = { contents: [{ role: 'user', parts: [{ text: 'word '.repeat(3000) }] }, { role: 'model', parts: [{ text: 'ok' }] }] };
  const valid = (await t.platform.storage.readObject('us-data', 'train.jsonl')).toString().trim().split('\n').slice(0, 10);
  await t.platform.storage.putObject('us-data', 'long.jsonl', [...valid, JSON.stringify(long)].join('\n') + '\n');
  const r = await call('POST', JOBS, keys.trainer, createBody({ train: 'gs://us-data/long.jsonl', validation: '' }));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const stats = r.json.tuningDataStats.supervisedTuningDataStats;
  assert.equal(Number(stats.totalTruncatedExampleCount) + stats.droppedExampleReasons.length, 1, JSON.stringify(stats));
  assert.match([...stats.truncatedExampleIndices, ...stats.droppedExampleReasons].join(), /11/);
  await call('POST', `/v1/${r.json.name}:cancel`, keys.trainer, {});
  await waitForJob(get(r.json.name));
});

test('concurrent creates never overshoot the quota; cancel ends a job CANCELLED with code 1', async () => {
  const europe = JOBS.replace('us-central1', 'europe-west4');
  const body = createBody({ train: 'gs://eu-data/train.jsonl', validation: 'gs://eu-data/validation.jsonl', epochs: 50 });
  const results = await Promise.all([0, 1, 2, 3].map(() => call('POST', europe, keys.trainer, body)));
  assert.deepEqual(results.map((r) => r.status).sort(), [200, 429, 429, 429]);
  const job = results.find((r) => r.status === 200)!.json;
  // Wait until it runs, then cancel.
  for (let i = 0; i < 200 && (await get(job.name)()).state !== 'JOB_STATE_RUNNING'; i++) await new Promise((r) => setTimeout(r, 50));
  const cancel = await call('POST', `/v1/${job.name}:cancel`, keys.trainer, {});
  assert.equal(cancel.status, 200);
  assert.deepEqual(cancel.json, {});
  const ended = await waitForJob(get(job.name));
  assert.equal(ended.state, 'JOB_STATE_CANCELLED');
  assert.equal(ended.error.code, 1);
  assert.ok(ended.endTime);
  const again = await call('POST', `/v1/${job.name}:cancel`, keys.trainer, {});
  assert.equal(again.status, 400);
  assert.equal((t.tuning.runner as JobRunner).running().length, 0);
});

test('list pages and filters; a re-tune with the same display name is a new model, as Vertex makes it', async () => {
  const retune = await call('POST', JOBS, keys.trainer, createBody({ epochs: 1 }));
  assert.equal(retune.status, 200, JSON.stringify(retune.json));
  const done = await waitForJob(get(retune.json.name));
  assert.equal(done.state, 'JOB_STATE_SUCCEEDED');
  // tuning_job.proto: only continuous tuning (pre_tuned_model) makes a version of an existing model.
  assert.match(done.tunedModel.model, /\/models\/\d+@1$/);
  assert.notEqual(done.tunedModel.model, succeeded.tunedModel.model);
  assert.notEqual(done.tunedModel.endpoint, succeeded.tunedModel.endpoint);

  const page1 = (await call('GET', `${JOBS}?pageSize=1`, keys.viewer)).json;
  assert.equal(page1.tuningJobs.length, 1);
  assert.ok(page1.nextPageToken);
  const page2 = (await call('GET', `${JOBS}?pageSize=1&pageToken=${page1.nextPageToken}`, keys.viewer)).json;
  assert.notEqual(page2.tuningJobs[0].name, page1.tuningJobs[0].name);
  const ok = (await call('GET', `${JOBS}?filter=${encodeURIComponent('state="JOB_STATE_SUCCEEDED"')}`, keys.viewer)).json;
  assert.deepEqual(ok.tuningJobs.map((j: any) => j.name).sort(), [succeeded.name, retune.json.name].sort());
  assert.equal((await call('GET', `${JOBS}?filter=bogus`, keys.viewer)).status, 400);
  const list = async (filter: string, extra = '') => (await call('GET', `${JOBS}?filter=${encodeURIComponent(filter)}${extra}`, keys.viewer)).json;
  const named = await list('tuned_model_display_name="tone" AND (state="JOB_STATE_SUCCEEDED" OR state="JOB_STATE_FAILED")');
  assert.deepEqual(named.tuningJobs.map((j: any) => j.name), [retune.json.name, succeeded.name]);
  const first = await list('tuned_model_display_name="tone"', '&pageSize=1');
  assert.equal(first.tuningJobs.length, 1);
  const rest = await list('tuned_model_display_name="tone"', `&pageSize=1&pageToken=${first.nextPageToken}`);
  assert.notEqual(rest.tuningJobs[0].name, first.tuningJobs[0].name);
  assert.deepEqual(await list('tuned_model_display_name="nobody"'), {});
  assert.deepEqual(await list('state="JOB_STATE_RUNNING" AND state="JOB_STATE_SUCCEEDED"'), {});
  assert.equal((await call('GET', `${JOBS}/123`, keys.viewer)).status, 404);
  assert.equal((await call('GET', `${JOBS}/..%2F..%2Fetc`, keys.viewer)).status, 404);
  assert.equal((await call('GET', `/v1/projects/other/locations/us-central1/tuningJobs`, keys.viewer)).status, 403);
  assert.equal((await call('POST', `${JOBS}/123:pause`, keys.trainer, {})).status, 404);
  assert.equal((await call('POST', JOBS, keys.viewer, {})).status, 403);

  // Deploy the first model on the second's endpoint with all the traffic ("0": the model being
  // deployed); undeploy it (its share back to the second, as the contract requires) and the second serves again.
  const endpoint = done.tunedModel.endpoint;
  const deployed = await call('POST', `/v1/${endpoint}:deployModel`, keys.trainer, { deployedModel: { model: succeeded.tunedModel.model }, trafficSplit: { 0: 100 } });
  assert.equal(deployed.status, 200, JSON.stringify(deployed.json));
  assert.equal(deployed.json.response.deployedModel.modelVersionId, '1');
  let e = (await call('GET', `/v1/${endpoint}`, keys.viewer)).json;
  assert.equal(e.deployedModels.length, 2);
  assert.deepEqual(e.trafficSplit, { [deployed.json.response.deployedModel.id]: 100 });
  const prompt = { contents: [{ role: 'user', parts: [{ text: 'blue' }] }], generationConfig: { maxOutputTokens: 2 } };
  assert.equal((await call('POST', `/v1/${endpoint}:generateContent`, keys.trainer, prompt)).json.modelVersion, succeeded.tunedModel.model);
  assert.equal((await call('POST', `/v1/${endpoint}:deployModel`, keys.viewer, { deployedModel: { model: succeeded.tunedModel.model } })).status, 403);
  const other = e.deployedModels.find((d: any) => d.id !== deployed.json.response.deployedModel.id).id;
  const stillServing = await call('POST', `/v1/${endpoint}:undeployModel`, keys.trainer, { deployedModelId: deployed.json.response.deployedModel.id });
  assert.equal(stillServing.status, 400);
  assert.equal(stillServing.json.error.status, 'FAILED_PRECONDITION');
  assert.equal((await call('POST', `/v1/${endpoint}:undeployModel`, keys.trainer, { deployedModelId: deployed.json.response.deployedModel.id, trafficSplit: { [other]: 100 } })).status, 200);
  e = (await call('GET', `/v1/${endpoint}`, keys.viewer)).json;
  assert.equal(e.deployedModels.length, 1);
  assert.deepEqual(e.trafficSplit, { [e.deployedModels[0].id]: 100 });
  assert.equal((await call('POST', `/v1/${endpoint}:generateContent`, keys.trainer, prompt)).json.modelVersion, done.tunedModel.model);
  assert.equal((await call('POST', `/v1/${endpoint}:undeployModel`, keys.trainer, { deployedModelId: '1' })).status, 404);
  assert.deepEqual(t.errors, []);
});

test('display name, description and labels are limited as Vertex states; each refusal names its field', async () => {
  // A missing dataset (404) after the limits shows that the request passed them, without queueing a job.
  const body = (extra: Record<string, unknown>) => ({ ...createBody({ train: 'gs://us-data/missing.jsonl' }), ...extra });
  const post = async (extra: Record<string, unknown>) => call('POST', JOBS, keys.trainer, body(extra));
  const refused = async (extra: Record<string, unknown>, message: RegExp) => {
    const r = await post(extra);
    assert.equal(r.status, 400, JSON.stringify(r.json).slice(0, 500));
    assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
    assert.match(r.json.error.message, message);
    assert.ok(r.json.error.message.length < 500, 'the message does not echo the value in full');
  };
  const accepted = async (extra: Record<string, unknown>) => {
    const r = await post(extra);
    assert.equal(r.status, 404, JSON.stringify(r.json).slice(0, 500));
  };
  await refused({ description: 'x'.repeat(15_000_000) }, /^Invalid value at 'description'.*at most 2048 characters/);
  await refused({ description: 'x'.repeat(2049) }, /'description'/);
  await accepted({ description: 'é'.repeat(2048) });
  await refused({ tunedModelDisplayName: 'n'.repeat(129) }, /^Invalid value at 'tuned_model_display_name'.*at most 128 characters/);
  await accepted({ tunedModelDisplayName: '模型'.repeat(64) });
  await refused({ labels: { Team: 'x' } }, /^Invalid value at 'labels'.*key "Team"/);
  await refused({ labels: { team: 'x'.repeat(64) } }, /^Invalid value at 'labels\["team"\]'/);
  await refused({ labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }, /^Invalid value at 'labels'.*at most 64 labels/);
  await refused({ labels: { team: 3 } }, /^Invalid value at 'labels\["team"\]' \(TYPE_STRING\)/);
  await accepted({ labels: { team: 'research', 'équipe': 'données', env: '' } });
  assert.deepEqual(t.errors, []);
});

test('malformed list filters and page tokens are 400 naming them, never 500', async () => {
  const status = async (url: string) => {
    const r = await call('GET', url, keys.viewer);
    return [r.status, r.json.error?.message ?? ''] as const;
  };
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  for (const filter of ['tuned_model_display_name="a\\x41"', 'display_name="\\u12"', 'tuned_model_display_name="\\"']) {
    const [code, message] = await status(`${JOBS}?filter=${encodeURIComponent(filter)}`);
    assert.equal(code, 400, `${filter}: ${message}`);
    assert.match(message, /filter/);
  }
  const parent = '/v1/projects/p/locations/us-central1';
  for (const list of [`${parent}/tuningJobs`, `${parent}/models`, `${parent}/endpoints`]) {
    for (const token of [b64('1e+300'), '1e+300', b64('-1'), b64('[1]'), 'x']) {
      const [code, message] = await status(`${list}?pageToken=${encodeURIComponent(token)}`);
      assert.equal(code, 400, `${list} ${token}: ${message}`);
      assert.match(message, /pageToken/);
    }
  }
  const [code] = await status(`${JOBS}?filter=${encodeURIComponent('tuned_model_display_name="tone"')}&pageToken=${b64('n1')}`);
  assert.equal(code, 400);
  assert.deepEqual(t.errors, []);
});

test('credentials before location: an anonymous caller gets 401, not the supported locations; a caller without permission 403', async () => {
  const mars = '/v1/projects/p/locations/mars-north1';
  const requests: [string, string, unknown?][] = [
    ['POST', `${mars}/tuningJobs`, createBody()],
    ['GET', `${mars}/tuningJobs`],
    ['GET', `${mars}/tuningJobs/123`],
    ['GET', `${mars}/tuningJobs/123/metrics`],
    ['POST', `${mars}/tuningJobs/123:cancel`, {}],
    ['GET', `${mars}/models`],
    ['GET', `${mars}/models/123`],
    ['GET', `${mars}/endpoints`],
    ['GET', `${mars}/endpoints/123`],
    ['POST', `${mars}/endpoints/123:deployModel`, { deployedModel: { model: `${mars.slice(4)}/models/1` } }],
    ['POST', `${mars}/endpoints/123:undeployModel`, { deployedModelId: '1' }],
    ['POST', `${mars}/endpoints/123:generateContent`, { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }],
  ];
  for (const [method, url, body] of requests) {
    const anonymous = await call(method, url, undefined, body);
    assert.equal(anonymous.status, 401, `${method} ${url}: ${JSON.stringify(anonymous.json)}`);
    assert.doesNotMatch(anonymous.json.error.message, /us-central1|europe-west4|mars-north1/);
    const badKey = await call(method, url, 'not-a-key', body);
    assert.equal(badKey.status, 401, `${method} ${url}`);
    const other = await call(method, url.replace('/projects/p/', '/projects/other/'), keys.trainer, body);
    assert.equal(other.status, 403, `${method} ${url} in another project: ${JSON.stringify(other.json)}`);
    assert.doesNotMatch(other.json.error.message, /us-central1|europe-west4/);
    const allowed = await call(method, url, keys.trainer, body);
    assert.equal(allowed.status, 400, `${method} ${url} for an authorised caller: ${JSON.stringify(allowed.json)}`);
    assert.match(allowed.json.error.message, /mars-north1.*Supported locations: us-central1, europe-west4/);
  }
});
