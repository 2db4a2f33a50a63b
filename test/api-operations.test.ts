// Long-running operations (issue 12): deployModel, undeployModel, endpoint create / delete and model
// delete answer a google.longrunning.Operation (done, with the response as a typed Any); operations
// can be got, listed, waited on, cancelled and deleted under their resource; a model cannot be deleted
// while deployed, nor an endpoint while it serves; Model.deployedModels names where a version runs.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkMessage } from '../src/api/proto-json.js';
import { registryEndpoints } from '../src/api/routes/registry.js';
import { createBody, JOBS, tuningPlatform, waitForJob } from './helpers/tuning.js';

const t = await tuningPlatform();
after(() => t.close());
const { call, keys } = t;
const LOC = 'projects/p/locations/us-central1';
const TYPE = 'type.googleapis.com/google.cloud.aiplatform.v1.';

function isOperation(op: Record<string, any>, metadata: string, response: string): void {
  checkMessage(op, 'google.longrunning.Operation', 'v1');
  assert.equal(op.done, true);
  assert.equal(op.metadata['@type'], TYPE + metadata);
  assert.ok(op.metadata.genericMetadata.createTime <= op.metadata.genericMetadata.updateTime);
  assert.equal(op.response['@type'], response.startsWith('google.') ? `type.googleapis.com/${response}` : TYPE + response);
  const { '@type': _, ...payload } = op.response;
  if (!response.startsWith('google.protobuf')) checkMessage(payload, response, 'v1');
}

test('endpoint create, deploy, undeploy, delete and model delete are operations; operations get/list/wait/cancel/delete', async () => {
  const created = await call('POST', JOBS, keys.trainer, createBody({ epochs: 2 }));
  assert.equal(created.status, 200, JSON.stringify(created.json));
  const job = await waitForJob(async () => (await call('GET', `/v1/${created.json.name}`, keys.trainer)).json);
  assert.equal(job.state, 'JOB_STATE_SUCCEEDED');
  const model = (job.tunedModel.model as string).replace(/@\d+$/, '');

  // A new endpoint: an operation under the location whose response is the Endpoint.
  const badCreate = await call('POST', `/v1/${LOC}/endpoints`, keys.trainer, {});
  assert.equal(badCreate.status, 400);
  assert.equal(badCreate.json.error.details.find((d: any) => d.fieldViolations).fieldViolations[0].field, 'endpoint.display_name');
  const op = await call('POST', `/v1/${LOC}/endpoints`, keys.trainer, { displayName: 'canary', labels: { team: 'tone' } });
  assert.equal(op.status, 200, JSON.stringify(op.json));
  isOperation(op.json, 'CreateEndpointOperationMetadata', 'Endpoint');
  assert.match(op.json.name, /^projects\/p\/locations\/us-central1\/operations\/\d+$/);
  const endpoint = op.json.response.name as string;
  assert.deepEqual((await call('GET', `/v1/${endpoint}`, keys.viewer)).json.labels, { team: 'tone' });
  assert.equal((await call('POST', `/v1/${LOC}/endpoints`, keys.viewer, { displayName: 'x' })).status, 403);

  // Deploy: an operation under the endpoint; on an empty endpoint the model gets all the traffic.
  const deploy = await call('POST', `/v1/${endpoint}:deployModel`, keys.trainer, { deployedModel: { model } });
  assert.equal(deploy.status, 200, JSON.stringify(deploy.json));
  isOperation(deploy.json, 'DeployModelOperationMetadata', 'DeployModelResponse');
  assert.ok(deploy.json.name.startsWith(`${endpoint}/operations/`));
  const deployedId = deploy.json.response.deployedModel.id as string;
  assert.deepEqual((await call('GET', `/v1/${endpoint}`, keys.viewer)).json.trafficSplit, { [deployedId]: 100 });

  // The operation can be got, listed, waited on, cancelled (done: nothing changes) and deleted.
  const got = await call('GET', `/v1/${deploy.json.name}`, keys.viewer);
  assert.deepEqual(got.json, deploy.json);
  const listed = await call('GET', `/v1/${endpoint}/operations`, keys.viewer);
  assert.deepEqual(listed.json.operations.map((o: any) => o.name), [deploy.json.name]);
  checkMessage(listed.json, 'google.longrunning.ListOperationsResponse', 'v1');
  assert.deepEqual((await call('POST', `/v1/${deploy.json.name}:wait`, keys.viewer, { timeout: '5s' })).json, deploy.json);
  assert.equal((await call('POST', `/v1/${deploy.json.name}:cancel`, keys.trainer, {})).status, 200);
  assert.equal((await call('POST', `/v1/${deploy.json.name}:cancel`, keys.viewer, {})).status, 403);
  assert.deepEqual((await call('GET', `/v1/${deploy.json.name}`, keys.viewer)).json, deploy.json);
  assert.equal((await call('GET', `/v1/${endpoint}/operations?filter=done%3Dtrue`, keys.viewer)).status, 400);
  assert.equal((await call('POST', `/v1/${endpoint}/operations/1:wait`, keys.viewer, {})).status, 404);
  assert.equal((await call('POST', `/v1/${endpoint}/operations/1:pause`, keys.viewer, {})).status, 404);

  // :listVersions, :listCheckpoints, and models.list filters honoured (or refused naming the filter).
  const versions = await call('GET', `/v1/${model}:listVersions`, keys.viewer);
  assert.equal(versions.status, 200, JSON.stringify(versions.json));
  checkMessage(versions.json, 'ListModelVersionsResponse', 'v1');
  assert.deepEqual(versions.json.models.map((v: any) => v.versionId), ['1']);
  const checkpoints = await call('GET', `/v1/${model}@1:listCheckpoints`, keys.viewer);
  assert.equal(checkpoints.status, 200, JSON.stringify(checkpoints.json));
  assert.deepEqual(checkpoints.json.checkpoints, job.tunedModel.checkpoints.map((k: any) => ({ checkpointId: k.checkpointId, epoch: k.epoch, step: k.step })));
  assert.deepEqual(checkpoints.json.checkpoints.map((k: any) => k.checkpointId), ['1', '2']);
  assert.equal((await call('GET', `/v1/${LOC}/models/123:listVersions`, keys.viewer)).status, 404);
  const modelsWhere = async (filter: string) => (await call('GET', `/v1/${LOC}/models?filter=${encodeURIComponent(filter)}`, keys.viewer));
  assert.deepEqual((await modelsWhere('display_name="tone"')).json.models.map((x: any) => x.name), [model]);
  assert.deepEqual((await modelsWhere('display_name="nobody"')).json, {});
  assert.deepEqual((await modelsWhere('labels.team:*')).json, {});
  for (const bad of ['garbage((', 'display_name=tone', 'create_time>"2020"']) {
    const r = await modelsWhere(bad);
    assert.equal(r.status, 400, bad);
    assert.equal(r.json.error.details.find((d: any) => d.fieldViolations).fieldViolations[0].field, 'filter');
  }

  // models.patch with an update mask and the etag: a stale etag is 409 ABORTED.
  const before = (await call('GET', `/v1/${model}`, keys.viewer)).json;
  assert.ok(before.etag);
  const patched = await call('PATCH', `/v1/${model}?updateMask=displayName,labels`, keys.trainer, { displayName: 'tone-v2', labels: { stage: 'prod' }, etag: before.etag });
  assert.equal(patched.status, 200, JSON.stringify(patched.json));
  assert.deepEqual([patched.json.displayName, patched.json.labels], ['tone-v2', { stage: 'prod' }]);
  assert.notEqual(patched.json.etag, before.etag);
  const stale = await call('PATCH', `/v1/${model}?updateMask=displayName`, keys.trainer, { displayName: 'lost-update', etag: before.etag });
  assert.equal(stale.status, 409);
  assert.equal(stale.json.error.status, 'ABORTED');
  assert.equal((await call('PATCH', `/v1/${model}`, keys.trainer, { displayName: 'x' })).status, 400);
  assert.equal((await call('PATCH', `/v1/${model}?updateMask=artifactUri`, keys.trainer, { artifactUri: 'gs://x/' })).status, 400);
  assert.equal((await call('PATCH', `/v1/${model}?updateMask=displayName`, keys.viewer, { displayName: 'x' })).status, 403);
  assert.deepEqual((await modelsWhere('labels.stage="prod"')).json.models.map((x: any) => x.name), [model]);
  assert.equal((await call('PATCH', `/v1/${model}?updateMask=displayName`, keys.trainer, { displayName: 'tone' })).status, 200);

  // A stored checkpoint can be deployed: the endpoint then serves that epoch's adapter, not the final one.
  const noSuch = await call('POST', `/v1/${endpoint}:deployModel`, keys.trainer, { deployedModel: { model, checkpointId: '9' } });
  assert.equal(noSuch.status, 400);
  assert.match(noSuch.json.error.message, /checkpoint_id "9" is not a stored checkpoint .* \(stored: 1, 2\)/);
  const early = await call('POST', `/v1/${endpoint}:deployModel`, keys.trainer, { deployedModel: { model, checkpointId: '1' }, trafficSplit: { 0: 100 } });
  assert.equal(early.status, 200, JSON.stringify(early.json));
  assert.equal(early.json.response.deployedModel.checkpointId, '1');
  const endpointId = endpoint.split('/').pop()!;
  const served = await registryEndpoints(t.tuning).resolve('p', 'us-central1', endpointId);
  const finalDir = await t.tuning.adapterDir((await call('GET', `/v1/${model}`, keys.viewer)).json.artifactUri);
  // The served files are the epoch-1 checkpoint's as stored (its adapter_config says inference_mode
  // false, the final adapter's true), not the final adapter's.
  const bucket = ((await call('GET', `/v1/${model}`, keys.viewer)).json.artifactUri as string).slice(5).split('/')[0]!;
  const jobId = (job.name as string).split('/').pop();
  for (const f of ['adapter_config.json', 'adapter_model.safetensors']) {
    assert.deepEqual(fs.readFileSync(path.join(served.adapterDir!, f)), await t.platform.storage.readObject(bucket, `tuningJobs/${jobId}/checkpoints/1/${f}`), f);
  }
  const config = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')).inference_mode;
  assert.deepEqual([config(served.adapterDir!), config(finalDir)], [false, true]);
  const prompt = { contents: [{ role: 'user', parts: [{ text: 'blue' }] }], generationConfig: { maxOutputTokens: 2 } };
  assert.equal((await call('POST', `/v1/${endpoint}:generateContent`, keys.trainer, prompt)).status, 200);
  assert.equal((await call('POST', `/v1/${endpoint}:undeployModel`, keys.trainer, { deployedModelId: early.json.response.deployedModel.id, trafficSplit: { [deployedId]: 100 } })).status, 200);

  // Model.deployedModels names where its version runs; the model cannot be deleted while deployed,
  // nor an endpoint while it serves.
  const m = (await call('GET', `/v1/${model}`, keys.viewer)).json;
  assert.ok(m.versionUpdateTime);
  assert.deepEqual(m.deployedModels.map((d: any) => d.endpoint).sort(), [endpoint, job.tunedModel.endpoint].sort());
  const busyModel = await call('DELETE', `/v1/${model}`, keys.trainer);
  assert.equal(busyModel.status, 400);
  assert.equal(busyModel.json.error.status, 'FAILED_PRECONDITION');
  const busyEndpoint = await call('DELETE', `/v1/${endpoint}`, keys.trainer);
  assert.equal(busyEndpoint.json.error.status, 'FAILED_PRECONDITION');

  // Undeploy (the last model on the endpoint), delete the endpoint, then the model once it runs nowhere.
  const undeploy = await call('POST', `/v1/${endpoint}:undeployModel`, keys.trainer, { deployedModelId: deployedId });
  assert.equal(undeploy.status, 200, JSON.stringify(undeploy.json));
  isOperation(undeploy.json, 'UndeployModelOperationMetadata', 'UndeployModelResponse');
  const del = await call('DELETE', `/v1/${endpoint}`, keys.trainer);
  assert.equal(del.status, 200, JSON.stringify(del.json));
  isOperation(del.json, 'DeleteOperationMetadata', 'google.protobuf.Empty');
  assert.equal((await call('GET', `/v1/${endpoint}`, keys.viewer)).status, 404);
  const first = (await call('GET', `/v1/${job.tunedModel.endpoint}`, keys.viewer)).json.deployedModels[0].id;
  assert.equal((await call('POST', `/v1/${job.tunedModel.endpoint}:undeployModel`, keys.trainer, { deployedModelId: first })).status, 200);
  const delModel = await call('DELETE', `/v1/${model}`, keys.trainer);
  assert.equal(delModel.status, 200, JSON.stringify(delModel.json));
  isOperation(delModel.json, 'DeleteOperationMetadata', 'google.protobuf.Empty');
  assert.equal((await call('GET', `/v1/${model}`, keys.viewer)).status, 404);
  assert.equal((await call('DELETE', `/v1/${model}`, keys.trainer)).status, 404);
  const locationOps = (await call('GET', `/v1/${LOC}/operations`, keys.viewer)).json.operations.map((o: any) => o.name);
  assert.deepEqual(locationOps, [delModel.json.name, del.json.name, op.json.name]);

  // Deleting an operation forgets it.
  assert.equal((await call('DELETE', `/v1/${deploy.json.name}`, keys.trainer)).status, 200);
  assert.equal((await call('GET', `/v1/${deploy.json.name}`, keys.viewer)).status, 404);
  assert.deepEqual(t.errors, []);
});
