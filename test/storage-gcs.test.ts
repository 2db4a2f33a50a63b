// Object storage behind gs:// on a shared backend (issue 15), on a second tunekit node serving the
// Cloud Storage JSON API (helpers/storage-node.ts), reached through @google-cloud/storage:
// - the object store keeps its bytes there, not in the data directory: round trip, an overwrite gets a
//   new blob and the old one goes, a second writer of a blob is refused (ifGenerationMatch=0);
// - the backend killed mid-upload: a clear UNAVAILABLE error, no object and no blob, also after the
//   node is back; a tuning job whose checkpoint upload finds the backend gone ends FAILED saying so;
// - bad configuration refused with a message naming the flag: s3://, unknown schemes, bad bucket or
//   prefix, bad endpoint, unreadable credentials, GCS flags without gs://, a bucket that does not exist,
//   a key the backend refuses, and a deployment opened with another storage than its objects are in.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Platform } from '../src/platform/platform.js';
import { TuningService } from '../src/platform/jobs/service.js';
import { openBlobStore, storageConfig } from '../src/platform/blob-store.js';
import { registerPublisherModel } from '../src/api/catalog.js';
import { DbRegistrationStore } from '../src/api/db-store.js';
import { cliMain, rejectsCode, runNode, tempDirs, throwsCode } from './helpers/platform.js';
import { backendNames, startStorageNode } from './helpers/storage-node.js';
import { seedData } from './helpers/tuning.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const dirs = tempDirs('storage-gcs');
const node = await startStorageNode(dirs());
after(() => node.kill());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the object store on the GCS backend: bytes on the backend only, overwrites replace the blob, a blob is never written twice', async () => {
  const dataDir = dirs();
  const p = await Platform.open({ dataDir, storage: node.config('dep-a') });
  try {
    await p.storage.createBucket('data-bkt', { location: 'us-central1', project: 'proj' });
    const a = await p.storage.putObject('data-bkt', 'ds/train.jsonl', 'first\n');
    const blobs = await backendNames(node, 'dep-a/objects/data-bkt/');
    assert.equal(blobs.length, 1);
    assert.match(blobs[0]!, /^dep-a\/objects\/data-bkt\/[0-9a-f]{32}$/);
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    const b = await p.storage.putObject('data-bkt', 'ds/train.jsonl', bytes);
    assert.ok(BigInt(b.generation) > BigInt(a.generation));
    assert.ok((await p.storage.readObject('data-bkt', 'ds/train.jsonl')).equals(bytes));
    const chunks: Buffer[] = [];
    for await (const c of await p.storage.createReadStream('data-bkt', 'ds/train.jsonl', { start: 10, end: 19 })) chunks.push(c as Buffer);
    assert.ok(Buffer.concat(chunks).equals(bytes.subarray(10, 20)));
    const after = await backendNames(node, 'dep-a/objects/data-bkt/');
    assert.equal(after.length, 1, 'the old blob is gone');
    assert.notEqual(after[0], blobs[0]);
    // The backend's copy is the object's bytes; nothing of it is in the data directory.
    const [stored] = await node.client().bucket(node.bucket).file(after[0]!).download();
    assert.ok(stored.equals(bytes));
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'objects')).flatMap((d) => fs.readdirSync(path.join(dataDir, 'objects', d))), []);
    // A blob is created once: a second writer is refused by the backend's precondition.
    await rejectsCode(p.blobs.put(after[0]!.slice('dep-a/'.length), 'other bytes', { ifAbsent: true }), 'FAILED_PRECONDITION', /ifGenerationMatch=0/);
    assert.ok((await p.storage.readObject('data-bkt', 'ds/train.jsonl')).equals(bytes));
    await p.storage.deleteObject('data-bkt', 'ds/train.jsonl');
    assert.deepEqual(await backendNames(node, 'dep-a/objects/'), []);
  } finally {
    await p.close();
  }
});

test('a resumable upload keeps its received bytes on the backend (any serve replica can take the next chunk), none on the machine', async () => {
  const dataDir = dirs();
  const p = await Platform.open({ dataDir, storage: node.config('dep-r') });
  try {
    await p.storage.createBucket('data-bkt', { location: 'us-central1', project: 'proj' });
    const bytes = Buffer.from(Array.from({ length: (3 << 20) + 12_345 }, (_, i) => (i * 7) % 253));
    const session = await p.storage.startUpload('data-bkt', 'big.bin', { total: bytes.length });
    async function* of(b: Buffer): AsyncIterable<Buffer> {
      for (let i = 0; i < b.length; i += 200_000) yield b.subarray(i, i + 200_000);
    }
    const first = await p.storage.writeUpload(session.id, 0, of(bytes.subarray(0, 2_500_000)));
    assert.equal(first.session.persisted, 2_500_000);
    const parts = await backendNames(node, `dep-r/uploads/${session.id}/`);
    assert.deepEqual(parts, [0, 1_200_000, 2_400_000].map((o) => `dep-r/uploads/${session.id}/${String(o).padStart(16, '0')}`), 'a part per MiB (in 200 kB pieces) and one at the chunk\'s end');
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'objects')), []);
    // The next chunk overlaps what was received: the overlap is skipped.
    const done = await p.storage.writeUpload(session.id, 2_000_000, of(bytes.subarray(2_000_000)));
    assert.equal(done.object?.size, bytes.length);
    assert.ok((await p.storage.readObject('data-bkt', 'big.bin')).equals(bytes));
    assert.deepEqual(await backendNames(node, `dep-r/uploads/`), [], 'the parts go once the object is written');
  } finally {
    await p.close();
  }
});

test('the backend killed mid-upload: UNAVAILABLE naming it, no object, no blob once it is back', async () => {
  const p = await Platform.open({ dataDir: dirs(), storage: node.config('dep-b') });
  try {
    await p.storage.createBucket('data-bkt', { location: 'us-central1', project: 'proj' });
    await p.storage.putObject('data-bkt', 'old.bin', 'the complete old content');
    let sent = 0;
    async function* slow(): AsyncIterable<Buffer> {
      for (;;) {
        yield Buffer.alloc(256 << 10, sent % 251);
        if (++sent === 8) await node.kill();
        await sleep(5);
      }
    }
    for (const name of ['new.bin', 'old.bin']) {
      sent = 0;
      await rejectsCode(p.storage.putObject('data-bkt', name, slow()), 'UNAVAILABLE', new RegExp(`object storage at ${node.url} failed or is unreachable`));
      await node.restart();
    }
    await rejectsCode(p.storage.statObject('data-bkt', 'new.bin'), 'NOT_FOUND', /does not exist/);
    assert.equal((await p.storage.readObject('data-bkt', 'old.bin')).toString(), 'the complete old content');
    assert.equal((await backendNames(node, 'dep-b/objects/data-bkt/')).length, 1, 'only the old object\'s blob');
  } finally {
    await p.close();
  }
});

test('a tuning job whose backend goes away after its first checkpoint ends FAILED with UNAVAILABLE naming the backend', async () => {
  const dataDir = dirs();
  const platform = await Platform.open({ dataDir, storage: node.config('dep-c') });
  const tuning = new TuningService(platform, { pollMs: 50 });
  try {
    await registerPublisherModel(new DbRegistrationStore(platform.db), tinyModelDir('gemma3'), { name: 'gemma3-tiny' });
    await seedData(platform);
    await tuning.runner.start();
    const job = await tuning.create({
      project: 'p', location: 'us-central1', baseModel: 'publishers/google/models/gemma3-tiny', baseDir: tinyModelDir('gemma3'),
      tunedModelDisplayName: 'unreachable', trainingDatasetUri: 'gs://us-data/train.jsonl', epochCount: 12,
      adapterSize: 'ADAPTER_SIZE_TWO', learningRateMultiplier: 1, authorizeRead: () => undefined,
    });
    assert.ok((await backendNames(node, `dep-c/staging/tuning-jobs/${job.id}/`)).includes(`dep-c/staging/tuning-jobs/${job.id}/job.json`), 'staged on the backend');
    for (let t0 = Date.now(); !(await platform.jobs.find(job.id))?.checkpoint;) {
      assert.ok(Date.now() - t0 < 60_000, 'no checkpoint after 60 s');
      await sleep(20);
    }
    assert.match((await platform.jobs.find(job.id))!.checkpoint!, new RegExp(`^gs://${node.bucket}/dep-c/staging/tuning-jobs/${job.id}/out/checkpoints/epoch-1/$`));
    await node.kill();
    let done;
    for (let t0 = Date.now(); !['JOB_STATE_FAILED', 'JOB_STATE_SUCCEEDED'].includes((done = (await platform.jobs.find(job.id))!).state);) {
      assert.ok(Date.now() - t0 < 90_000, `still ${done.state} after 90 s`);
      await sleep(100);
    }
    assert.equal(done.state, 'JOB_STATE_FAILED');
    assert.equal(done.error?.code, 14, JSON.stringify(done.error));
    assert.match(done.error!.message, new RegExp(`object storage at ${node.url} failed or is unreachable .*ECONNREFUSED`));
  } finally {
    await tuning.runner.stop();
    await platform.close();
    await node.restart();
  }
});

test('bad storage configuration is refused naming the flag', async () => {
  const bad = (flags: Parameters<typeof storageConfig>[0], message: RegExp) => throwsCode(() => storageConfig(flags, '/default'), 'INVALID_ARGUMENT', message);
  bad({ storage: 's3://bucket/prefix' }, /^--storage s3:\/\/bucket\/prefix: S3-compatible storage is not supported yet/);
  bad({ storage: 'azure://x/y' }, /^--storage azure:\/\/x\/y: unknown storage scheme azure:\/\//);
  bad({ storage: 'gs://Bad_Bucket/p' }, /^--storage gs:\/\/Bad_Bucket\/p: bucket name "Bad_Bucket" is not valid/);
  bad({ storage: 'gs://good-bucket/a b/' }, /^--storage gs:\/\/good-bucket\/a b\/: the prefix "a b\/" must be/);
  bad({ storage: 'gs://good-bucket/../x' }, /^--storage .*: the prefix/);
  bad({ storage: 'gs://good-bucket', storageEndpoint: 'ftp://host' }, /^--storage-endpoint "ftp:\/\/host" is not an http\(s\) URL/);
  bad({ storage: 'gs://good-bucket', storageKeyFile: '/nonexistent/key.json' }, /^--storage-key-file \/nonexistent\/key\.json: not a readable JSON credentials file/);
  bad({ storage: 'gs://good-bucket', storageApiKeyFile: '/nonexistent/key' }, /^--storage-api-key-file \/nonexistent\/key: not readable/);
  bad({ storage: 'gs://good-bucket', storageApiKeyFile: node.keyFile, storageKeyFile: node.keyFile }, /--storage-key-file .* and --storage-api-key-file .*not both/);
  bad({ storageEndpoint: node.url }, /^--storage-endpoint configures a gs:\/\/ storage backend: give --storage gs:\/\/BUCKET\[\/PREFIX\] too/);
  bad({ storage: '/some/dir', storageApiKeyFile: node.keyFile }, /^--storage-api-key-file configures a gs:\/\/ storage backend/);
  assert.deepEqual(storageConfig({}, '/default'), { kind: 'local', dir: '/default' });
  assert.deepEqual(storageConfig({ storage: 'file:///x/y' }, '/default'), { kind: 'local', dir: '/x/y' });
  assert.deepEqual(storageConfig({ storage: 'gs://good-bucket/a/b', storageEndpoint: `${node.url}/` }, '/d'), { kind: 'gcs', bucket: 'good-bucket', prefix: 'a/b/', endpoint: node.url });

  // Checked against the backend at start: the bucket, the credentials.
  await rejectsCode(openBlobStore({ ...node.config('x'), bucket: 'no-such-bucket' }), 'INVALID_ARGUMENT', /^--storage gs:\/\/no-such-bucket\/x\/: bucket no-such-bucket does not exist at http/);
  await rejectsCode(openBlobStore({ ...node.config('x'), apiKey: 'tk1.not-a-key' }), 'INVALID_ARGUMENT', /^--storage gs:\/\/tk-backend\/x\/: the storage server refused the credentials \(--storage-api-key-file\)/);

  // The CLI: one line naming the flag, exit status 1, for serve and worker alike.
  const serve = await runNode([cliMain, 'serve', '--port', '0', '--data-dir', dirs(), '--storage', 's3://bucket/prefix']);
  assert.equal(serve.code, 1, serve.err);
  assert.match(serve.err, /--storage s3:\/\/bucket\/prefix: S3-compatible storage is not supported yet/);
  const worker = await runNode([cliMain, 'worker', '--database', 'postgres://nobody@localhost/none', '--storage', 'gs://tk-backend/w', '--storage-api-key-file', '/nonexistent/key']);
  assert.equal(worker.code, 1, worker.err);
  assert.match(worker.err, /--storage-api-key-file \/nonexistent\/key: not readable/);

  // A deployment keeps the storage its objects are in.
  const dataDir = dirs();
  const local = await Platform.open({ dataDir });
  await local.storage.createBucket('b-local', { location: 'us-central1', project: 'proj' });
  await local.storage.putObject('b-local', 'x', 'local bytes');
  await local.close();
  await rejectsCode(Platform.open({ dataDir, storage: node.config('dep-d') }), 'FAILED_PRECONDITION', /keeps the bytes of its 1 objects in a directory, but this process was given --storage gs:\/\/tk-backend\/dep-d\//);
  const remote = dirs();
  await (await Platform.open({ dataDir: remote, storage: node.config('dep-e') })).close();
  await rejectsCode(Platform.open({ dataDir: remote }), 'FAILED_PRECONDITION', /keeps its objects in gs:\/\/tk-backend\/dep-e\/, but this process was given a directory \(the default\): give --storage gs:\/\/tk-backend\/dep-e\//);
  await rejectsCode(Platform.open({ dataDir: remote, storage: node.config('dep-f') }), 'FAILED_PRECONDITION', /keeps its objects in gs:\/\/tk-backend\/dep-e\//);
});
