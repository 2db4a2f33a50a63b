// TuningJob fields as the contract has them (issue 12): labels carried to the Model and the Endpoint;
// outputUri (v1beta1) receives the adapter; exportLastCheckpointOnly keeps one checkpoint;
// serviceAccount is one of tunekit's service accounts, the caller must be allowed to act as it, and
// the job reads its datasets and writes its output with that identity's permissions.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createBody, PROJECT, tuningPlatform, waitForJob } from './helpers/tuning.js';

const t = tuningPlatform();
after(() => t.close());
const { call, keys, platform } = t;
const JOBS = '/v1beta1/projects/p/locations/us-central1/tuningJobs';

// A runner account that may read the data and write outputs; a caller who may not read the data but
// may act as the runner; the test's trainer may read data but not act as anyone.
const runner = platform.iam.createServiceAccount(PROJECT, 'job-runner');
platform.iam.addBinding(PROJECT, `serviceAccount:${runner.email}`, 'roles/storage.objectAdmin');
platform.iam.addBinding(PROJECT, 'serviceAccount:no-data-sa@p.iam.gserviceaccount.com', 'roles/iam.serviceAccountUser');
const reader = platform.iam.createServiceAccount(PROJECT, 'reader-only');
platform.iam.addBinding(PROJECT, `serviceAccount:${reader.email}`, 'roles/storage.objectViewer');
platform.storage.createBucket('us-out', { project: PROJECT, location: 'us-central1' });

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
  assert.equal(job.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(job.error));
  // One checkpoint, the last epoch's.
  assert.deepEqual(job.tunedModel.checkpoints.map((c: any) => c.epoch), ['2']);
  const id = created.json.name.split('/').pop();
  const out = platform.storage.listObjects('us-out', { prefix: `results/${id}/adapter/` }).objects.map((o) => o.name.split('/').pop());
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
