// TuningJob fields as the contract has them (issue 12): labels carried to the Model and the Endpoint;
// outputUri (v1beta1) receives the adapter; exportLastCheckpointOnly keeps one checkpoint;
// serviceAccount is one of tunekit's service accounts, the caller must be allowed to act as it, and
// the job reads its datasets and writes its output with that identity's permissions.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createBody, PROJECT, tuningPlatform, waitForJob } from './helpers/tuning.js';
import { Random } from '../src/engine/random.js';

const t = await tuningPlatform();
after(() => t.close());
const { call, keys, platform } = t;
const JOBS = '/v1beta1/projects/p/locations/us-central1/tuningJobs';

// A runner account that may read the data and write outputs; a caller who may not read the data but
// may act as the runner; the test's trainer may read data but not act as anyone.
const runner = await platform.iam.createServiceAccount(PROJECT, 'job-runner');
await platform.iam.addBinding(PROJECT, `serviceAccount:${runner.email}`, 'roles/storage.objectAdmin');
await platform.iam.addBinding(PROJECT, 'serviceAccount:no-data-sa@p.iam.gserviceaccount.com', 'roles/iam.serviceAccountUser');
const reader = await platform.iam.createServiceAccount(PROJECT, 'reader-only');
await platform.iam.addBinding(PROJECT, `serviceAccount:${reader.email}`, 'roles/storage.objectViewer');
await platform.storage.createBucket('us-out', { project: PROJECT, location: 'us-central1' });

let tuned: Record<string, any>;

test('serviceAccount: checked, actAs required, and the job reads and writes as that identity', async () => {
  const body = (extra: Record<string, unknown>) => ({ ...createBody({ epochs: 1 }), ...extra });
  // The caller alone may not read the data.
  const alone = await call('POST', JOBS, keys.noData, body({}));
  assert.equal(alone.status, 403, JSON.stringify(alone.json));
  // Acting as an account needs iam.serviceAccounts.actAs.
  const noActAs = await call('POST', JOBS, keys.trainer, body({ serviceAccount: runner.email }));
  assert.equal(noActAs.status, 403);
  assert.match(noActAs.json.error.message, /iam\.serviceAccounts\.actAs/);
  const unknown = await call('POST', JOBS, keys.noData, body({ serviceAccount: 'ghost@p.iam.gserviceaccount.com' }));
  assert.equal(unknown.status, 400);
  assert.match(unknown.json.error.message, /^service_account "ghost@p.iam.gserviceaccount.com" is not a service account/);
  const malformed = await call('POST', JOBS, keys.noData, body({ serviceAccount: 'not-an-email' }));
  assert.equal(malformed.status, 400);
  assert.equal(malformed.json.error.details.find((d: any) => d.fieldViolations).fieldViolations[0].field, 'service_account');
  // The reader may read the data but not write the output.
  const readOnly = await call('POST', JOBS, keys.noData, body({ serviceAccount: reader.email, outputUri: 'gs://us-out/results' }));
  assert.equal(readOnly.status, 403, JSON.stringify(readOnly.json));
  assert.match(readOnly.json.error.message, /storage\.objects\.create/);
  const wrongPlace = await call('POST', JOBS, keys.noData, body({ serviceAccount: runner.email, outputUri: 'gs://eu-data/results' }));
  assert.equal(wrongPlace.status, 400);
  assert.match(wrongPlace.json.error.message, /europe-west4/);

  // With the runner's identity: labels, outputUri, exportLastCheckpointOnly all honoured.
  const labels = { team: 'tone', env: 'test' };
  const created = await call('POST', JOBS, keys.noData, {
    ...createBody({ epochs: 2 }), labels, serviceAccount: runner.email, outputUri: 'gs://us-out/results/',
    supervisedTuningSpec: { ...(createBody({ epochs: 2 }).supervisedTuningSpec as object), exportLastCheckpointOnly: true },
  });
  assert.equal(created.status, 200, JSON.stringify(created.json));
  assert.equal(created.json.serviceAccount, runner.email);
  assert.equal(created.json.outputUri, 'gs://us-out/results/');
  assert.equal(created.json.supervisedTuningSpec.exportLastCheckpointOnly, true);
  const job = await waitForJob(async () => (await call('GET', `/v1beta1/${created.json.name}`, keys.noData)).json);
  tuned = job;
  assert.equal(job.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(job.error));
  // One checkpoint, the last epoch's.
  assert.deepEqual(job.tunedModel.checkpoints.map((c: any) => c.epoch), ['2']);
  const id = created.json.name.split('/').pop();
  const out = (await platform.storage.listObjects('us-out', { prefix: `results/${id}/adapter/` })).objects.map((o) => o.name.split('/').pop());
  assert.deepEqual(out, ['adapter_config.json', 'adapter_model.safetensors']);
  // Labels on the Model and the Endpoint; /v1 does not know outputUri.
  const model = (await call('GET', `/v1/${job.tunedModel.model}`, keys.trainer)).json;
  assert.deepEqual(model.labels, labels);
  assert.deepEqual(model.checkpoints.map((c: any) => c.epoch), ['2']);
  assert.deepEqual((await call('GET', `/v1/${job.tunedModel.endpoint}`, keys.trainer)).json.labels, labels);
  const v1 = (await call('GET', `/v1/${created.json.name}`, keys.trainer)).json;
  assert.equal(v1.outputUri, undefined);
  assert.equal(v1.serviceAccount, runner.email);
  const onV1 = await call('POST', '/v1/projects/p/locations/us-central1/tuningJobs', keys.noData, { ...createBody(), outputUri: 'gs://us-out/x' });
  assert.equal(onV1.status, 400);
  assert.match(onV1.json.error.message, /Unknown name "outputUri".*v1beta1/);
});

/** A fixed-seed generator for the traffic draw. */
function seeded(seed: number): () => number {
  const rng = new Random(seed);
  return () => rng.next();
}

test('trafficSplit: applied to requests (statistically, fixed seed) and updated as DeployModel/UndeployModel say', async () => {
  const endpoint = tuned.tunedModel.endpoint as string;
  const [, , , , , endpointId] = endpoint.split('/');
  const first = (await call('GET', `/v1/${endpoint}`, keys.trainer)).json.deployedModels[0].id as string;
  const model = tuned.tunedModel.model as string;
  // An empty split leaves the endpoint's as it is: the new deployment gets 0%.
  const zero = await call('POST', `/v1/${endpoint}:deployModel`, keys.trainer, { deployedModel: { model } });
  assert.equal(zero.status, 200, JSON.stringify(zero.json));
  let e = (await call('GET', `/v1/${endpoint}`, keys.trainer)).json;
  assert.deepEqual(e.trafficSplit, { [first]: 100 });
  // Splits that are not percentages of existing models summing to 100 are refused, naming traffic_split.
  for (const bad of [{ 0: 60, [first]: 30 }, { 0: 100, 12345: 0 }, { 0: 101, [first]: -1 }]) {
    const r = await call('POST', `/v1/${endpoint}:deployModel`, keys.trainer, { deployedModel: { model }, trafficSplit: bad });
    assert.equal(r.status, 400, JSON.stringify(bad));
    assert.match(r.json.error.message, /traffic_split/);
  }
  // An explicit 50/50 gives the new model half, the others what the split says (the 0% one: nothing).
  const half = await call('POST', `/v1/${endpoint}:deployModel`, keys.trainer, { deployedModel: { model }, trafficSplit: { 0: 50, [first]: 50 } });
  assert.equal(half.status, 200, JSON.stringify(half.json));
  const second = half.json.response.deployedModel.id as string;
  e = (await call('GET', `/v1/${endpoint}`, keys.trainer)).json;
  assert.deepEqual(e.trafficSplit, { [first]: 50, [second]: 50 });

  // Requests are served by a model drawn with those shares: 4,000 draws with a fixed seed fall within
  // 4 standard deviations of 50% (sd = sqrt(n p (1 - p)) = 31.6), the 0% model never.
  t.tuning.registry.random = seeded(20261129);
  const n = 4000;
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = (await t.tuning.registry.endpointTarget(PROJECT, 'us-central1', endpointId!)).deployed.id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  assert.equal(counts.get(zero.json.response.deployedModel.id), undefined);
  assert.ok(Math.abs((counts.get(first) ?? 0) - n / 2) < 4 * Math.sqrt(n / 4), JSON.stringify([...counts]));
  assert.equal((counts.get(first) ?? 0) + (counts.get(second) ?? 0), n);
  // 90/10 likewise.
  const split = await call('POST', `/v1/${endpoint}:deployModel`, keys.trainer, { deployedModel: { model }, trafficSplit: { 0: 10, [first]: 90 } });
  assert.equal(split.status, 200);
  let tenth = 0;
  for (let i = 0; i < n; i++) if ((await t.tuning.registry.endpointTarget(PROJECT, 'us-central1', endpointId!)).deployed.id === split.json.response.deployedModel.id) tenth++;
  assert.ok(Math.abs(tenth - n / 10) < 4 * Math.sqrt(n * 0.1 * 0.9), String(tenth));
  t.tuning.registry.random = Math.random;
  // Generation goes through the same draw.
  const prompt = { contents: [{ role: 'user', parts: [{ text: 'blue' }] }], generationConfig: { maxOutputTokens: 2 } };
  assert.equal((await call('POST', `/v1/${endpoint}:generateContent`, keys.trainer, prompt)).status, 200);

  // Undeploy: a model with traffic needs a split that takes its share; the undeployed one may not keep any.
  const refused = await call('POST', `/v1/${endpoint}:undeployModel`, keys.trainer, { deployedModelId: first });
  assert.equal(refused.json.error.status, 'FAILED_PRECONDITION');
  const keeps = await call('POST', `/v1/${endpoint}:undeployModel`, keys.trainer, { deployedModelId: first, trafficSplit: { [first]: 90, [second]: 10 } });
  assert.equal(keeps.status, 400);
  const ok = await call('POST', `/v1/${endpoint}:undeployModel`, keys.trainer, { deployedModelId: first, trafficSplit: { [second]: 100 } });
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  e = (await call('GET', `/v1/${endpoint}`, keys.trainer)).json;
  assert.deepEqual(e.trafficSplit, { [second]: 100 });
  // A model with no traffic goes without a split.
  assert.equal((await call('POST', `/v1/${endpoint}:undeployModel`, keys.trainer, { deployedModelId: zero.json.response.deployedModel.id })).status, 200);
});
