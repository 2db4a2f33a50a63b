// Every route authenticates (401 without or with a bad key) and checks its named permission (403
// naming it) before it looks at the resource or the body.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Iam } from '../src/platform/iam.js';
import { PREFIX, tinyApi, userText } from './helpers/api-app.js';

let iam!: Iam;
const api = await tinyApi({ withDb: (db) => (iam = new Iam(db), { auth: iam }) });
await iam.createServiceAccount('p', 'viewer-sa');
await iam.addBinding('p', 'serviceAccount:viewer-sa@p.iam.gserviceaccount.com', 'roles/aiplatform.viewer');
await iam.createServiceAccount('p', 'user-sa');
await iam.addBinding('p', 'serviceAccount:user-sa@p.iam.gserviceaccount.com', 'roles/aiplatform.user');
const viewer = (await iam.createKey('viewer-sa@p.iam.gserviceaccount.com')).key;
const user = (await iam.createKey('user-sa@p.iam.gserviceaccount.com')).key;

const GEN = `${PREFIX}/gemma3-tiny:generateContent`;
const body = { ...userText('hi'), generationConfig: { maxOutputTokens: 2 } };

async function status(res: Response): Promise<[number, string, string]> {
  const b = await res.json() as { error?: { status: string; message: string } };
  return [res.status, b.error?.status ?? 'OK', b.error?.message ?? ''];
}

test('no credentials or a bad key: 401 UNAUTHENTICATED', async () => {
  const [code, s, message] = await status(await api.post(GEN, body));
  assert.deepEqual([code, s], [401, 'UNAUTHENTICATED']);
  assert.match(message, /missing required authentication credential/);
  assert.deepEqual((await status(await api.post(GEN, body, { headers: { 'x-goog-api-key': 'nope' } }))).slice(0, 2), [401, 'UNAUTHENTICATED']);
  assert.deepEqual((await status(await api.request(`${PREFIX}/gemma3-tiny`))).slice(0, 2), [401, 'UNAUTHENTICATED']);
});

test('a viewer may read the model but not generate: 403 naming aiplatform.endpoints.predict', async () => {
  assert.equal((await api.request(`${PREFIX}/gemma3-tiny`, { headers: { 'x-goog-api-key': viewer } })).status, 200);
  assert.deepEqual(await status(await api.post(GEN, body, { headers: { 'x-goog-api-key': viewer } })), [403, 'PERMISSION_DENIED',
    "Permission 'aiplatform.endpoints.predict' denied on resource 'projects/p' (or it may not exist)."]);
  // Unknown models are not revealed before the permission check.
  assert.equal((await api.post(`${PREFIX}/secret:countTokens`, body, { headers: { 'x-goog-api-key': viewer } })).status, 403);
});

test('a user generates with x-goog-api-key or Authorization: Bearer; not in another project', async () => {
  assert.equal((await api.post(GEN, body, { headers: { 'x-goog-api-key': user } })).status, 200);
  assert.equal((await api.post(GEN, body, { headers: { authorization: `Bearer ${user}` } })).status, 200);
  const other = GEN.replace('/projects/p/', '/projects/q/');
  assert.equal((await api.post(other, body, { headers: { 'x-goog-api-key': user } })).status, 403);
});

test('express mode (no project in the path): the key\'s own project is checked', async () => {
  const EXPRESS = '/v1beta1/publishers/google/models/gemma3-tiny:generateContent';
  assert.equal((await api.post(EXPRESS, body, { headers: { 'x-goog-api-key': user } })).status, 200);
  assert.deepEqual(await status(await api.post(EXPRESS, body, { headers: { 'x-goog-api-key': viewer } })), [403, 'PERMISSION_DENIED',
    "Permission 'aiplatform.endpoints.predict' denied on resource 'projects/p' (or it may not exist)."]);
  assert.deepEqual((await status(await api.post(EXPRESS, body))).slice(0, 2), [401, 'UNAUTHENTICATED']);
});
