// A tuning-job create whose client goes away (issue 8): the POST handler hands the request's signal to
// the service, which stops between copy, check and insert and inside the dataset check. Through the
// API in-process, a create aborted before it starts and one aborted while its dataset (one example of
// 30,000 turns: seconds of checking) is being checked both end with 499 CANCELLED, no job row and
// nothing left under the data directory's staging area; no error is logged as a bug. A server
// shutdown during the check ends it the same way, answered 503 UNAVAILABLE.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createApp } from '../src/api/app.js';
import { createBody, JOBS, tuningPlatform } from './helpers/tuning.js';

const t = await tuningPlatform();
after(() => t.close());

const LONG = JSON.stringify({
  contents: Array.from({ length: 30_000 }, (_, i) => ({ role: i % 2 ? 'model' : 'user', parts: [{ text: `turn ${i} of a long conversation` }] })),
}) + '\n';
await t.platform.storage.putObject('us-data', 'long.jsonl', LONG);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function create(signal?: AbortSignal, app = t.app): Promise<Response> {
  return app.request(JOBS, {
    method: 'POST', signal,
    headers: { 'content-type': 'application/json', 'x-goog-api-key': t.keys.trainer },
    body: JSON.stringify(createBody({ train: 'gs://us-data/long.jsonl', validation: '' })),
  });
}

/** Files under <data-dir>/staging (uploads and job directories), relative. */
function staged(): string[] {
  const root = path.join(t.dataDir, 'staging');
  if (!fs.existsSync(root)) return [];
  return (fs.readdirSync(root, { recursive: true }) as string[]).filter((p) => !['uploads', 'tuning-jobs'].includes(p));
}

async function assertCancelled(res: Response, status = 499, name = 'CANCELLED'): Promise<void> {
  const body = await res.json() as { error: { status: string; message: string } };
  assert.equal(res.status, status, JSON.stringify(body));
  assert.equal(body.error.status, name);
  assert.deepEqual((await t.tuning.jobs.list('p', 'us-central1')).jobs, []);
  assert.deepEqual(staged(), []);
  assert.deepEqual(t.errors, []);
}

test('a create whose signal has already fired is CANCELLED and leaves nothing', async () => {
  await assertCancelled(await create(AbortSignal.abort('Client connection prematurely closed.')));
});

/** Resolves once the upload's train.jsonl is in place (renamed there when the copy is done), then a
 * little later: the dataset check (seconds for this dataset) is under way. */
async function checking(): Promise<void> {
  const uploads = path.join(t.dataDir, 'staging', 'uploads');
  const copied = () => fs.existsSync(uploads) && fs.readdirSync(uploads).some((d) => fs.existsSync(path.join(uploads, d, 'train.jsonl')));
  const t0 = Date.now();
  while (!copied()) {
    assert.ok(Date.now() - t0 < 30_000, 'the dataset was never copied for checking');
    await sleep(5);
  }
  await sleep(300);
}

test('a create aborted while its dataset is checked is CANCELLED and leaves no job and no staging directory', async () => {
  const controller = new AbortController();
  const pending = create(controller.signal);
  await checking();
  controller.abort('Client connection prematurely closed.');
  await assertCancelled(await pending);
});

test('a server shutdown while a create checks its dataset answers 503 and leaves nothing', async () => {
  const shutdown = new AbortController();
  const app = createApp({
    catalog: t.catalog, auth: t.platform.iam, assertLocation: async (l) => await t.platform.config.assertLocation(l), tuning: t.tuning,
    log: (e) => t.errors.push(e), shutdown: shutdown.signal,
  });
  const pending = create(undefined, app);
  await checking();
  shutdown.abort();
  await assertCancelled(await pending, 503, 'UNAVAILABLE');
});
