// models.patch and endpoints create / patch as the protos define them (issue 12): UpdateModel and
// UpdateEndpoint answer the resource itself (not an operation), take an update_mask whose paths are
// honoured (display_name, description, labels; traffic_split for endpoints) or refused naming update_mask,
// with the etag's optimistic concurrency; CreateEndpoint keeps the description and refuses a traffic split
// on an endpoint with nothing deployed; unknown body fields are refused by path.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { checkMessage } from '../src/api/proto-json.js';
import { createBody, JOBS, tuningPlatform, waitForJob } from './helpers/tuning.js';

const t = await tuningPlatform();
after(() => t.close());
const { call, keys } = t;
const LOC = 'projects/p/locations/us-central1';

const violation = (json: Record<string, any>): string | undefined =>
  json.error.details.find((d: any) => d.fieldViolations)?.fieldViolations[0].field;

test('models.patch, endpoint create and endpoints.patch with update masks', async () => {
  const created = await call('POST', JOBS, keys.trainer, createBody({ epochs: 1 }));
  assert.equal(created.status, 200, JSON.stringify(created.json));
  const job = await waitForJob(async () => (await call('GET', `/v1/${created.json.name}`, keys.trainer)).json);
  assert.equal(job.state, 'JOB_STATE_SUCCEEDED');
  const model = (job.tunedModel.model as string).replace(/@\d+$/, '');
  const endpoint = job.tunedModel.endpoint as string;

  // models.patch: the Model back, description kept.
  const m0 = (await call('GET', `/v1/${model}`, keys.viewer)).json;
  const patched = await call('PATCH', `/v1beta1/${model}?updateMask=description,displayName`, keys.trainer, { description: 'tone model', displayName: 'tone-2', etag: m0.etag });
  assert.equal(patched.status, 200, JSON.stringify(patched.json));
  checkMessage(patched.json, 'Model', 'v1beta1');
  assert.equal(patched.json.description, 'tone model');
  assert.equal((await call('GET', `/v1/${model}`, keys.viewer)).json.description, 'tone model');
  const notField = await call('PATCH', `/v1/${model}?updateMask=bogusField`, keys.trainer, { displayName: 'x' });
  assert.equal(notField.status, 400);
  assert.equal(violation(notField.json), 'update_mask');
  assert.match(notField.json.error.message, /"bogus_field" is not a field of Model/);
  const unsupported = await call('PATCH', `/v1/${model}?update_mask=version_description`, keys.trainer, { versionDescription: 'x' });
  assert.equal(unsupported.status, 400);
  assert.equal(violation(unsupported.json), 'update_mask');
  assert.match(unsupported.json.error.message, /"version_description" is not supported/);
  const unknownBody = await call('PATCH', `/v1/${model}?updateMask=description`, keys.trainer, { description: 'x', colour: 'red' });
  assert.equal(unknownBody.status, 400);
  assert.match(unknownBody.json.error.message, /colour/);
  const long = await call('PATCH', `/v1/${model}?updateMask=description`, keys.trainer, { description: 'x'.repeat(2049) });
  assert.equal(long.status, 400);
  assert.equal(violation(long.json), 'model.description');

  // Endpoint create keeps the description; a traffic split on an empty endpoint is refused.
  const op = await call('POST', `/v1/${LOC}/endpoints`, keys.trainer, { displayName: 'canary', description: 'for canaries' });
  assert.equal(op.status, 200, JSON.stringify(op.json));
  assert.equal(op.json.response.description, 'for canaries');
  assert.equal((await call('GET', `/v1/${op.json.response.name}`, keys.viewer)).json.description, 'for canaries');
  const withSplit = await call('POST', `/v1/${LOC}/endpoints`, keys.trainer, { displayName: 'x', trafficSplit: { 1: 100 } });
  assert.equal(withSplit.status, 400);
  assert.equal(violation(withSplit.json), 'endpoint.traffic_split');
  assert.equal((await call('POST', `/v1/${LOC}/endpoints`, keys.trainer, { displayName: 'x', network: 'projects/1/global/networks/n' })).status, 400);

  // endpoints.patch: a second deployment, then display name, description, labels and the split.
  const deploy = await call('POST', `/v1/${endpoint}:deployModel`, keys.trainer, { deployedModel: { model: `${model}@1`, checkpointId: '1' } });
  assert.equal(deploy.status, 200, JSON.stringify(deploy.json));
  const e0 = (await call('GET', `/v1/${endpoint}`, keys.viewer)).json;
  const [first, second] = e0.deployedModels.map((d: any) => d.id as string);
  assert.deepEqual(e0.trafficSplit, { [first]: 100 });
  const update = await call('PATCH', `/v1/${endpoint}?updateMask=displayName,description,labels,trafficSplit`, keys.trainer, {
    displayName: 'tone-endpoint', description: 'two versions', labels: { stage: 'canary' }, trafficSplit: { [first]: 90, [second]: 10 }, etag: e0.etag,
  });
  assert.equal(update.status, 200, JSON.stringify(update.json));
  checkMessage(update.json, 'Endpoint', 'v1');
  assert.equal(update.json.name, endpoint); // the Endpoint, not an Operation
  const e1 = (await call('GET', `/v1/${endpoint}`, keys.viewer)).json;
  assert.deepEqual([e1.displayName, e1.description, e1.labels, e1.trafficSplit], ['tone-endpoint', 'two versions', { stage: 'canary' }, { [first]: 90, [second]: 10 }]);
  // Only the masked fields change.
  const onlyName = await call('PATCH', `/v1/${endpoint}?updateMask=displayName`, keys.trainer, { displayName: 'renamed', description: 'ignored by the mask' });
  assert.equal(onlyName.status, 200);
  assert.equal(onlyName.json.description, 'two versions');

  const refused = async (query: string, body: Record<string, unknown>, status: number, field?: string, message?: RegExp, key = keys.trainer) => {
    const r = await call('PATCH', `/v1/${endpoint}${query}`, key, body);
    assert.equal(r.status, status, JSON.stringify(r.json));
    if (field) assert.equal(violation(r.json), field, JSON.stringify(r.json));
    if (message) assert.match(r.json.error.message, message);
  };
  await refused('?updateMask=trafficSplit', { trafficSplit: { [first]: 90, [second]: 20 } }, 400, undefined, /add up to 100/);
  await refused('?updateMask=trafficSplit', { trafficSplit: { [first]: 100, 42: 0 } }, 400, undefined, /not on the endpoint/);
  await refused('?updateMask=trafficSplit', { trafficSplit: {} }, 400, undefined, /percentages summing to 100/);
  await refused('', { displayName: 'x' }, 400, 'update_mask');
  await refused('?updateMask=network', { network: 'projects/1/global/networks/n' }, 400, 'update_mask', /not supported/);
  await refused('?updateMask=nope', {}, 400, 'update_mask', /not a field of Endpoint/);
  await refused('?updateMask=displayName', { displayName: '' }, 400, 'endpoint.display_name');
  await refused('?updateMask=labels', { labels: { Bad: 'x' } }, 400, 'endpoint.labels');
  await refused('?updateMask=displayName', { displayName: 'x', bogus: true }, 400, undefined, /bogus/);
  await refused('?updateMask=displayName', { displayName: 'lost', etag: e0.etag }, 409);
  await refused('?updateMask=displayName', { displayName: 'x' }, 403, undefined, undefined, keys.viewer);
  const longRunning = await call('POST', `/v1/${endpoint}:update`, keys.trainer, { endpoint: { displayName: 'x' } });
  assert.equal(longRunning.status, 400);
  assert.equal(violation(longRunning.json), 'endpoint.client_connection_config');
  const missing = await call('PATCH', `/v1/${LOC}/endpoints/404?updateMask=displayName`, keys.trainer, { displayName: 'x' });
  assert.equal(missing.status, 404);
  // The split patched is what serving draws from: the 10% model is undeployable only with a split that moves its share.
  const undeploy = await call('POST', `/v1/${endpoint}:undeployModel`, keys.trainer, { deployedModelId: second });
  assert.equal(undeploy.status, 400);
  assert.match(undeploy.json.error.message, /10%/);
});
