// Base models through object storage (issue 15, platform/base-models.ts): `tunekit publisher-models
// register DIR --storage gs://...` stores the model's files on the GCS backend (a second tunekit node,
// helpers/storage-node.ts) and DIR is deleted; a tuning job then runs on a worker whose machine never
// had the model (its own --work-dir) and serve (its own --data-dir) answers on the base model and on
// the tuned endpoint, each from its own materialized copy. Identical files reuse the stored blobs; a
// registration whose upload fails registers nothing; a blob damaged on the backend is refused, naming
// the file and the model, and nothing is loaded. A sweep keeps a fresh partial upload; a registration whose
// files a sweep removed just before its row is written stores them again; the worker's --model-cache-size
// evicts an unused copy; a bad size is refused naming the flag. Needs PostgreSQL (Debian's postgresql); skipped without it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Platform } from '../src/platform/platform.js';
import { BaseModelFiles } from '../src/platform/base-models.js';
import { DbRegistrationStore } from '../src/api/db-store.js';
import { registerPublisherModel, type ModelRegistration } from '../src/api/catalog.js';
import { sweepLeftovers } from '../src/platform/sweep.js';
import { createDatabase, postgresMissing, startPostgres } from './helpers/postgres.js';
import { cliMain, runNode, tempDirs } from './helpers/platform.js';
import { createBody, JOBS, makeKeys, seedData } from './helpers/tuning.js';
import { scratchCopy, tinyModelDir } from './helpers/tiny-models.js';
import { startServe, type ServeProcess } from './helpers/serve.js';
import { backendNames, startStorageNode } from './helpers/storage-node.js';
import { until } from './helpers/until.js';

const MODELS = '/v1/projects/p/locations/us-central1/publishers/google/models';

test('a base model registered through the GCS backend: trained on a worker and served by serve that never had its directory; damaged blobs refused', { skip: postgresMissing() }, async () => {
  const dirs = tempDirs('gcs-models');
  const pg = startPostgres();
  // Objects over 2 MiB are refused by the backend: the failed registration below.
  const node = await startStorageNode(dirs(), 'tk-backend', ['--max-object-size', '2M']);
  const database = await createDatabase(pg.url);
  const prefix = 'deployment';
  const platform = await Platform.open({ dataDir: dirs(), database, storage: node.config(prefix) });
  const store = new DbRegistrationStore(platform.db);
  let serve: ServeProcess | undefined;
  let worker: ChildProcess | undefined;
  let workerLog = '';
  try {
    // Registered by the CLI from a directory that is then deleted.
    const original = tinyModelDir('gemma3');
    const modelDir = scratchCopy(original);
    const register = (dir: string, name: string) => runNode([cliMain, 'publisher-models', 'register', dir, '--name', name, '--data-dir', dirs(), '--database', database, ...node.flags(prefix)]);
    const reg = await register(modelDir, 'gemma3-tiny');
    assert.equal(reg.code, 0, reg.err);
    fs.rmSync(modelDir, { recursive: true });
    const r = (await store.get('google', 'gemma3-tiny'))!;
    assert.match(r.blobs ?? '', /^models\/[0-9a-f]{64}\/$/);
    assert.equal(reg.out, `registered publishers/google/models/gemma3-tiny (gs://${node.bucket}/${prefix}/${r.blobs})\n`);
    const id = r.blobs!.split('/')[1]!;
    const names = fs.readdirSync(original).sort();
    const stored = await backendNames(node, `${prefix}/models/`);
    assert.deepEqual(stored, [`${prefix}/models/${id}/manifest.json`, ...names.map((n) => `${prefix}/models/${id}/files/${n}`)].sort());
    const generations = async () => (await node.client().bucket(node.bucket).getFiles({ prefix: `${prefix}/models/` }))[0].map((f) => `${f.name}#${f.metadata.generation}`);
    const before = await generations();

    // The same files under another name reuse the blobs (nothing rewritten).
    const files = new BaseModelFiles(platform.blobs, dirs(), platform.db.owner);
    const same = await registerPublisherModel(store, scratchCopy(original), { name: 'gemma3-same', files });
    assert.equal(same.blobs, r.blobs);
    assert.deepEqual(await generations(), before);

    // An upload the backend refuses (a 3 MiB file) registers nothing.
    const big = scratchCopy(original);
    fs.writeFileSync(path.join(big, 'padding.bin'), Buffer.alloc(3 << 20, 1));
    const failed = await register(big, 'too-big');
    assert.notEqual(failed.code, 0);
    assert.match(failed.err, /padding\.bin/);
    assert.equal(await store.get('google', 'too-big'), undefined);
    // Its files stored so far stay through a sweep while they are fresh (a retry reuses them), as does the registered model.
    const partial = (await backendNames(node, `${prefix}/models/`)).filter((n) => !n.startsWith(`${prefix}/models/${id}/`));
    assert.ok(partial.length > 0 && partial.every((n) => n.includes('/files/')), partial.join());
    assert.deepEqual((await sweepLeftovers(platform.db, platform.staging, platform.storage)).filter((k) => k.startsWith('models/')), []);
    assert.deepEqual((await backendNames(node, `${prefix}/models/`)).length, stored.length + partial.length);

    // A sweep that removes the files (unreferenced) just before the registration's row is written: stored again.
    const racing = scratchCopy(tinyModelDir('gemma3', { seed: 3 }));
    let swept = false;
    const sweptFirst = {
      get: store.get.bind(store), list: store.list.bind(store),
      async put(reg: ModelRegistration, check?: () => Promise<void>) {
        if (!swept) {
          swept = true;
          await platform.blobs.deletePrefix(reg.blobs!);
        }
        await store.put(reg, check);
      },
    };
    const raced = await registerPublisherModel(sweptFirst, racing, { name: 'gemma3-raced', files });
    assert.ok(swept);
    await files.checkComplete(raced.blobs!);
    assert.equal((await store.get('google', 'gemma3-raced'))?.blobs, raced.blobs);

    await seedData(platform);
    const keys = await makeKeys(platform);
    const serveDir = dirs();
    serve = await startServe(serveDir, {}, ['--database', database, ...node.flags(prefix)]);
    const call = async (method: string, url: string, body?: unknown): Promise<{ status: number; json: Record<string, any> }> => {
      const res = await fetch(serve!.url + url, { method, headers: { 'x-goog-api-key': keys.trainer, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      return { status: res.status, json: await res.json() as Record<string, any> };
    };
    const ok = async (method: string, url: string, body?: unknown): Promise<Record<string, any>> => {
      const { status, json } = await call(method, url, body);
      assert.equal(status, 200, JSON.stringify(json));
      return json;
    };
    const hello = { contents: [{ role: 'user', parts: [{ text: 'hello' }] }], generationConfig: { maxOutputTokens: 4 } };

    const created = await ok('POST', JOBS, createBody({ epochs: 1, adapterSize: 'ADAPTER_SIZE_TWO', lrm: 1, validation: '' }));
    const jobId = String(created.name).split('/').pop()!;
    const workDir = dirs();
    // A copy a worker killed mid-download left (its mark's lock is free, untouched for two minutes): swept at start.
    const leftover = path.join(workDir, 'cache', 'models', `${'0'.repeat(64)}.tmp-999999999-0123abcd`);
    fs.mkdirSync(leftover, { recursive: true });
    const old = new Date(Date.now() - 120_000);
    fs.utimesSync(leftover, old, old);
    // An older copy of another model, unused: evicted for the job's model, as --model-cache-size leaves room for one.
    const modelBytes = names.reduce((n, f) => n + fs.statSync(path.join(original, f)).size, 0);
    const unused = path.join(workDir, 'cache', 'models', '1'.repeat(64));
    fs.mkdirSync(unused);
    fs.writeFileSync(path.join(unused, 'model.safetensors'), Buffer.alloc(Math.ceil(modelBytes * 0.75)));
    fs.utimesSync(unused, old, old);
    worker = spawn(process.execPath, [cliMain, 'worker', '--database', database, ...node.flags(prefix), '--work-dir', workDir, '--model-cache-size', String(Math.floor(modelBytes * 1.5))], { stdio: ['ignore', 'pipe', 'pipe'] });
    worker.stdout!.on('data', (d: Buffer) => { workerLog += d.toString(); });
    worker.stderr!.on('data', (d: Buffer) => { workerLog += d.toString(); });
    const badSize = await runNode([cliMain, 'worker', '--database', database, ...node.flags(prefix), '--work-dir', workDir, '--model-cache-size', 'lots']);
    assert.notEqual(badSize.code, 0);
    assert.match(badSize.err, /--model-cache-size must be a size like 512M, 2G or a number of bytes, got "lots"/);
    const done = await until('the job to end', async () => {
      const j = await platform.jobs.find(jobId);
      return j && ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(j.state) ? j : undefined;
    }, 60_000);
    assert.equal(done.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(done.error) + workerLog);
    assert.ok(!fs.existsSync(leftover), 'a dead process\'s partial copy is removed');
    assert.ok(!fs.existsSync(unused), 'the unused copy is evicted');
    assert.deepEqual(fs.readdirSync(path.join(workDir, 'cache', 'models')), [id]);
    // The worker trained on its own copy, equal to the original files.
    for (const n of names) assert.ok(fs.readFileSync(path.join(workDir, 'cache', 'models', id, n)).equals(fs.readFileSync(path.join(original, n))), n);

    // serve answers on the base model and on the tuned endpoint, from its own copy.
    const base = await ok('POST', `${MODELS}/gemma3-tiny:generateContent`, hello);
    assert.ok(base.candidates?.[0]?.content?.parts?.length, JSON.stringify(base));
    const endpoint = (await ok('GET', `/v1/${created.name}`)).tunedModel.endpoint as string;
    const tuned = await ok('POST', `/v1/${endpoint}:generateContent`, hello);
    assert.ok(tuned.candidates?.[0]?.content?.parts?.length, JSON.stringify(tuned));
    assert.deepEqual(fs.readdirSync(path.join(serveDir, 'cache', 'models')), [id]);

    // A blob damaged on the backend (same size, other bytes): refused, naming the file and the model.
    const other = await registerPublisherModel(store, scratchCopy(tinyModelDir('gemma3', { seed: 2 })), { name: 'gemma3-other', files });
    const otherId = other.blobs!.split('/')[1]!;
    const blob = node.client().bucket(node.bucket).file(`${prefix}/${other.blobs}files/model.safetensors`);
    const [bytes] = await blob.download();
    bytes[bytes.length - 1] ^= 0xff;
    await blob.save(bytes, { resumable: false });
    for (const [url, body] of [[`${MODELS}/gemma3-other:generateContent`, hello], [JOBS, { ...createBody({ epochs: 1, validation: '' }), baseModel: 'gemma3-other' }]] as const) {
      const { status, json } = await call('POST', url, body);
      assert.equal(status, 400, JSON.stringify(json));
      assert.equal(json.error.status, 'FAILED_PRECONDITION');
      assert.match(json.error.message, /base model publishers\/google\/models\/gemma3-other: model\.safetensors \(gs:\/\/.*\) does not match its manifest/);
    }
    assert.deepEqual(fs.readdirSync(path.join(serveDir, 'cache', 'models')).filter((e) => e.startsWith(otherId)), [], 'nothing of it cached');
  } finally {
    worker?.kill('SIGKILL');
    await serve?.kill('SIGKILL');
    await platform.close();
    await node.kill();
    pg.stop();
  }
});
