// Limits (src/platform/limits.ts) and paging without HTTP: display names, descriptions and labels as
// Vertex and Cloud labels state them, every list page bounded in bytes as well as in items (stopping
// early with a token that continues exactly), malformed page tokens INVALID_ARGUMENT (never a SQLite
// error), and the runner's choice of the next job fair across projects.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Platform } from '../src/platform/platform.js';
import { Registry } from '../src/platform/jobs/registry.js';
import { checkDescription, checkDisplayName, checkLabels, fitPage, jsonBytes, LIMITS } from '../src/platform/limits.js';
import { tempDirs, throwsCode, rejectsCode } from './helpers/platform.js';

const dirs = tempDirs('platform-limits');
const platform = await Platform.open({ dataDir: dirs() });
await platform.config.setQuotaLimit('concurrent_tuning_jobs', 1000);
after(async () => {
  await platform.close();
  fs.rmSync(platform.dataDir, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');

test('display names: at most 128 characters (code points), any UTF-8', () => {
  checkDisplayName('x'.repeat(128), 'tuned_model_display_name');
  checkDisplayName('😀'.repeat(128), 'tuned_model_display_name'); // 256 UTF-16 units, 128 characters
  throwsCode(() => checkDisplayName('x'.repeat(129), 'tuned_model_display_name'), 'INVALID_ARGUMENT', /^Invalid value at 'tuned_model_display_name'.*at most 128 characters/);
  throwsCode(() => checkDisplayName('😀'.repeat(129), 'deployed_model.display_name'), 'INVALID_ARGUMENT', /'deployed_model\.display_name'/);
});

test('descriptions: at most 2,048 characters; the message does not echo a huge value', () => {
  checkDescription('d'.repeat(LIMITS.descriptionChars));
  let message = '';
  try {
    checkDescription('d'.repeat(15_000_000));
  } catch (err) {
    message = (err as Error).message;
  }
  assert.match(message, /^Invalid value at 'description'.*at most 2048 characters/);
  assert.ok(message.length < 300, message);
});

test('labels: at most 64; keys 1-63 starting with a lowercase letter, values 0-63; lowercase, digits, _ and -, international allowed', () => {
  checkLabels(undefined);
  checkLabels({});
  checkLabels({ team: 'research', env: '', 'cost-center_2': 'a-b_c9', 'équipe': 'données', 名前: 'テスト', k: 'v'.repeat(63), ['k'.repeat(63)]: 'v' });
  checkLabels(Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, `${i}`])));
  const bad: [unknown, RegExp][] = [
    [Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, `${i}`])), /at most 64 labels/],
    [{ Team: 'x' }, /key "Team"/],
    [{ '1abc': 'x' }, /key "1abc"/],
    [{ '': 'x' }, /key ""/],
    [{ ['k'.repeat(64)]: 'x' }, /label keys are 1-63 characters/],
    [{ 'a.b': 'x' }, /key "a\.b"/],
    [{ k: 'UPPER' }, /\["k"\]'.*"UPPER"/],
    [{ k: 'v'.repeat(64) }, /label values are 0-63 characters/],
    [{ k: 'a b' }, /\["k"\]'/],
    [{ k: 7 }, /label values are strings/],
    [['a'], /map<string, string>/],
    ['labels', /map<string, string>/],
  ];
  for (const [labels, message] of bad) throwsCode(() => checkLabels(labels), 'INVALID_ARGUMENT', new RegExp(`^Invalid value at 'labels[^]*${message.source}`));
});

test('fitPage: items up to the byte budget, at least one', () => {
  const items = ['a'.repeat(10), 'b'.repeat(10), 'c'.repeat(10)];
  assert.equal(fitPage(items, jsonBytes, 1000), 3);
  assert.equal(fitPage(items, jsonBytes, 26), 2); // 13 + 13 bytes with separators
  assert.equal(fitPage(items, jsonBytes, 25), 1);
  assert.equal(fitPage(items, jsonBytes, 1), 1, 'an item over the budget is a page of its own');
  assert.equal(fitPage([], jsonBytes, 1), 0);
});

async function addJobs(project: string, n: number, descriptionBytes = 0): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    ids.push((await platform.jobs.create({
      project, location: 'us-central1', baseModel: 'publishers/google/models/m', displayName: i % 2 ? 'odd' : 'even',
      request: { description: 'd'.repeat(descriptionBytes) },
    })).id);
  }
  return ids;
}

/** Every page of a list, following its tokens. */
async function pages<T>(list: (token?: string) => Promise<{ items: T[]; nextPageToken?: string }>): Promise<T[][]> {
  const out: T[][] = [];
  let token: string | undefined;
  do {
    const page = await list(token);
    out.push(page.items);
    token = page.nextPageToken;
  } while (token && out.length < 1000);
  return out;
}

test('tuning job lists stop a page early at the byte budget and the token continues exactly', async () => {
  const ids = await addJobs('bytes', 7, 1000);
  const size = jsonBytes(await platform.jobs.find(ids[0]!));
  const list = (maxBytes: number, extra: { displayName?: string } = {}) => pages(async (pageToken) => {
    const r = await platform.jobs.list('bytes', 'us-central1', { pageToken, maxBytes, ...extra });
    return { items: r.jobs.map((j) => j.id), nextPageToken: r.nextPageToken };
  });
  assert.deepEqual((await list(LIMITS.listPageBytes)).map((p) => p.length), [7]);
  const byTwo = await list(2 * size + 10);
  assert.deepEqual(byTwo.map((p) => p.length), [2, 2, 2, 1]);
  assert.deepEqual(byTwo.flat().sort(), [...ids].sort(), 'every job once');
  assert.deepEqual((await list(1)).map((p) => p.length), [1, 1, 1, 1, 1, 1, 1]);
  // The display-name filter runs in SQL and pages the same way.
  const odd = await list(size + 10, { displayName: 'odd' });
  assert.deepEqual(odd.map((p) => p.length), [1, 1, 1]);
  for (const id of odd.flat()) assert.equal((await platform.jobs.find(id))!.displayName, 'odd');
  // Items are counted as the caller serves them (sizeOf).
  const r = await platform.jobs.list('bytes', 'us-central1', { maxBytes: 100, sizeOf: () => 40 });
  assert.equal(r.jobs.length, 2);
  assert.ok(r.nextPageToken);
});

test('model and endpoint lists stop at the byte budget; the registry tokens are offsets and nothing else', async () => {
  const registry = new Registry(platform.db);
  for (const id of await addJobs('reg', 5)) {
    const job = (await platform.jobs.find(id))!;
    await registry.commitTunedModel(platform.jobs, { ...job, displayName: `model-${id}` }, { adapterUri: `gs://b/${id}/`, checkpoints: [] }, () => ({}));
  }
  const models = (maxBytes: number) => pages(async (pageToken) => {
    const r = await registry.listModels('reg', 'us-central1', { pageToken, maxBytes });
    return { items: r.models.map((m) => m.id), nextPageToken: r.nextPageToken };
  });
  const endpoints = (maxBytes: number) => pages(async (pageToken) => {
    const r = await registry.listEndpoints('reg', 'us-central1', { pageToken, maxBytes });
    return { items: r.endpoints.map((e) => e.id), nextPageToken: r.nextPageToken };
  });
  assert.deepEqual((await models(LIMITS.listPageBytes)).map((p) => p.length), [5]);
  const modelSize = jsonBytes((await registry.listModels('reg', 'us-central1', { pageSize: 1 })).models[0]);
  const m2 = await models(2 * modelSize + 10);
  assert.deepEqual(m2.map((p) => p.length), [2, 2, 1]);
  assert.equal(new Set(m2.flat()).size, 5);
  assert.deepEqual((await endpoints(1)).map((p) => p.length), [1, 1, 1, 1, 1]);
  assert.equal(new Set((await endpoints(1)).flat()).size, 5);

  // The attack's token, base64url("1e+300"), was a SQLite "datatype mismatch" (500); now it and every
  // other malformed token are INVALID_ARGUMENT naming pageToken.
  for (const token of [b64('1e+300'), b64('-0'), b64('0x10'), b64('1.5'), b64('-1'), b64('99999999999999999999'), b64(' 1'), '1e+300', '%%%']) {
    await rejectsCode(registry.listModels('reg', 'us-central1', { pageToken: token }), 'INVALID_ARGUMENT', /pageToken/);
    await rejectsCode(registry.listEndpoints('reg', 'us-central1', { pageToken: token }), 'INVALID_ARGUMENT', /pageToken/);
  }
  assert.deepEqual((await registry.listModels('reg', 'us-central1', { pageToken: b64('100000') })).models, []);
});

test('tuning job and object list tokens: malformed ones are INVALID_ARGUMENT naming pageToken', async () => {
  for (const token of ['1e+300', b64('1e+300'), b64('[1, 2]'), b64('["a"]'), b64('{"a": 1}'), b64('null'), '!!', b64('["a", "b", "c"]')]) {
    await rejectsCode(platform.jobs.list('bytes', 'us-central1', { pageToken: token }), 'INVALID_ARGUMENT', /pageToken/);
  }
  await platform.storage.createBucket('tok-bucket', { project: 'p', location: 'us-central1' });
  for (const name of ['a', 'b', 'c']) await platform.storage.putObject('tok-bucket', name, name);
  const first = await platform.storage.listObjects('tok-bucket', { pageSize: 1 });
  assert.deepEqual((await platform.storage.listObjects('tok-bucket', { pageSize: 5, pageToken: first.nextPageToken })).objects.map((o) => o.name), ['b', 'c']);
  for (const token of ['1e+300', '!!', 'YQ=', `${first.nextPageToken}=`]) {
    await rejectsCode(platform.storage.listObjects('tok-bucket', { pageToken: token }), 'INVALID_ARGUMENT', /pageToken/);
  }
});

test('claimNext is round-robin across projects, oldest first within one', async () => {
  const fresh = await Platform.open({ dataDir: dirs() });
  after(() => fresh.close());
  await fresh.config.setQuotaLimit('concurrent_tuning_jobs', 1000);
  const addJobs = async (project: string, n: number): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await fresh.jobs.create({ project, location: 'us-central1', baseModel: 'publishers/google/models/m', request: {} })).id);
    return ids;
  };
  const a = await addJobs('fair-a', 3);
  const b = await addJobs('fair-b', 1);
  const c = await addJobs('fair-c', 2);
  const turns = new Map<string, number>();
  const order: string[] = [];
  for (let n = 1; ; n++) {
    const job = await fresh.jobs.claimNext(process.pid, turns);
    if (!job) break;
    turns.set(job.project, n);
    order.push(job.id);
  }
  assert.deepEqual(order, [a[0], b[0], c[0], a[1], c[1], a[2]]);
  // Without turns (a runner that just started): the oldest PENDING job first, as before.
  const d = await addJobs('fair-d', 2);
  const e = await addJobs('fair-e', 1);
  assert.equal((await fresh.jobs.claimNext(process.pid))!.id, d[0]);
  assert.equal((await fresh.jobs.claimNext(process.pid, new Map([['fair-d', 1]])))!.id, e[0]);
});
