// A tuning-job create whose client goes away (issue 8): the POST handler hands the request's signal to
// the service, which stops between copy, check and insert and inside the dataset check. Through the
// API in-process, a create aborted before it starts and one aborted while its dataset (one example of
// 30,000 turns: seconds of checking) is being checked both end with 499 CANCELLED, no job row and
// nothing left under the data directory's staging area; no error is logged as a bug.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createBody, JOBS, tuningPlatform } from './helpers/tuning.js';

const t = tuningPlatform();
after(() => t.close());

const LONG = JSON.stringify({
  contents: Array.from({ length: 30_000 }, (_, i) => ({ role: i % 2 ? 'model' : 'user', parts: [{ text: `turn ${i} of a long conversation` }] })),
}) + '\n';
t.platform.storage.putObjectSync('us-data', 'long.jsonl', LONG);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function create(signal: AbortSignal): Promise<Response> {
  return t.app.request(JOBS, {
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

async function assertCancelled(res: Response): Promise<void> {
  const body = await res.json() as { error: { status: string; message: string } };
  assert.equal(res.status, 499, JSON.stringify(body));
  assert.equal(body.error.status, 'CANCELLED');
  assert.deepEqual(t.tuning.jobs.list('p', 'us-central1').jobs, []);
  assert.deepEqual(staged(), []);
  assert.deepEqual(t.errors, []);
}

test('a create whose signal has already fired is CANCELLED and leaves nothing', async () => {
  await assertCancelled(await create(AbortSignal.abort('Client connection prematurely closed.')));
});

test('a create aborted while its dataset is checked is CANCELLED and leaves no job and no staging directory', async () => {
  const controller = new AbortController();
  const pending = create(controller.signal);
  // The upload's train.jsonl appears (renamed into place) once the copy is done; the check follows.
  const uploads = path.join(t.dataDir, 'staging', 'uploads');
  const copied = () => fs.existsSync(uploads) && fs.readdirSync(uploads).some((d) => fs.existsSync(path.join(uploads, d, 'train.jsonl')));
  const t0 = Date.now();
  while (!copied()) {
    assert.ok(Date.now() - t0 < 30_000, 'the dataset was never copied for checking');
    await sleep(5);
  }
  await sleep(300);
  controller.abort('Client connection prematurely closed.');
  const res = await pending;
  await assertCancelled(res);
});
