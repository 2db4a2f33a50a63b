// Base models through the blob store (platform/base-models.ts), on the local store: the stored files
// and manifest, reuse of identical files, a materialized copy equal to the original, two processes'
// caches materializing at once into one directory, and a damaged blob refused (naming the file and the
// model) with nothing left in the cache; the sweep removing an old incomplete upload and a model no
// registration names, keeping a registered one and an upload in progress. The same through object storage, with serve and a worker on
// other machines: storage-gcs-models.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { LocalBlobStore } from '../src/platform/blob-store.js';
import { BaseModelFiles, MANIFEST_FILE, type ModelManifest } from '../src/platform/base-models.js';
import { FailedPreconditionError } from '../src/errors.js';
import { tempDirs } from './helpers/platform.js';
import { Platform } from '../src/platform/platform.js';
import { DbRegistrationStore } from '../src/api/db-store.js';
import { sweepLeftovers } from '../src/platform/sweep.js';
import { scratchCopy, tinyModelDir } from './helpers/tiny-models.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('a model directory stored as content-addressed blobs, reused, and materialized by two caches at once', async () => {
  const dirs = tempDirs('base-models');
  const blobs = new LocalBlobStore(dirs());
  const src = tinyModelDir('gemma3');
  const names = fs.readdirSync(src).sort();
  const prefix = await new BaseModelFiles(blobs, dirs(), process.pid).store(src);
  assert.match(prefix, /^models\/[0-9a-f]{64}\/$/);
  const manifest = JSON.parse((await blobs.read(prefix + MANIFEST_FILE)).toString()) as ModelManifest;
  assert.deepEqual(manifest.files, names.map((n) => ({ name: n, size: fs.statSync(path.join(src, n)).size, sha256: sha256(fs.readFileSync(path.join(src, n))) })));
  const stored = (await blobs.list(prefix)).blobs;
  assert.deepEqual(stored.map((b) => b.key), [prefix + MANIFEST_FILE, ...names.map((n) => `${prefix}files/${n}`)].sort());

  // The same files again (another directory): the same prefix, nothing rewritten.
  const again = await new BaseModelFiles(blobs, dirs(), process.pid).store(scratchCopy(src));
  assert.equal(again, prefix);
  assert.deepEqual((await blobs.list(prefix)).blobs, stored);

  // Two caches on one machine root (as two processes have): one directory, equal to the original.
  const root = dirs();
  const [a, b] = await Promise.all([
    new BaseModelFiles(blobs, root, 101).localDir(prefix, 'publishers/google/models/m'),
    new BaseModelFiles(blobs, root, 102).localDir(prefix, 'publishers/google/models/m'),
  ]);
  assert.equal(a, b);
  assert.equal(a, path.join(root, 'cache', 'models', prefix.split('/')[1]!));
  for (const n of names) assert.ok(fs.readFileSync(path.join(a, n)).equals(fs.readFileSync(path.join(src, n))), n);
  assert.deepEqual(fs.readdirSync(path.join(root, 'cache', 'models')), [prefix.split('/')[1]], 'no temporary directory left');
});

test('a blob that does not match the manifest is refused, naming the file and the model, and nothing is cached', async () => {
  const dirs = tempDirs('base-models-bad');
  const blobs = new LocalBlobStore(dirs());
  const prefix = await new BaseModelFiles(blobs, dirs(), process.pid).store(tinyModelDir('gemma3'));
  const file = blobs.where(`${prefix}files/model.safetensors`);
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 1] ^= 0xff; // same size, other bytes
  fs.writeFileSync(file, bytes);
  const root = dirs();
  await assert.rejects(new BaseModelFiles(blobs, root, process.pid).localDir(prefix, 'publishers/google/models/m'), (err: Error) => {
    assert.ok(err instanceof FailedPreconditionError, String(err));
    assert.match(err.message, /base model publishers\/google\/models\/m: model\.safetensors .* does not match its manifest/);
    return true;
  });
  assert.deepEqual(fs.readdirSync(path.join(root, 'cache', 'models')), []);

  // A missing blob is refused the same way.
  fs.rmSync(file);
  await assert.rejects(new BaseModelFiles(blobs, root, process.pid).localDir(prefix, 'publishers/google/models/m'), /base model publishers\/google\/models\/m: model\.safetensors is missing from the blob store/);
  assert.deepEqual(fs.readdirSync(path.join(root, 'cache', 'models')), []);
});

test('the sweep removes an incomplete upload past its grace and a model no registration names, and keeps the rest', async () => {
  const dirs = tempDirs('base-models-sweep');
  const platform = await Platform.open({ dataDir: dirs() });
  try {
    const { blobs } = platform;
    const files = new BaseModelFiles(blobs, dirs(), platform.db.owner);
    const store = new DbRegistrationStore(platform.db);
    const [live, replaced, failed, uploading] = await Promise.all([1, 2, 3, 4].map((seed) => files.store(tinyModelDir('gemma3', { seed }))));
    assert.equal(new Set([live, replaced, failed, uploading]).size, 4);
    const register = (name: string, prefix: string) => store.put({ publisher: 'google', name, dir: blobs.where(prefix), blobs: prefix, createTime: new Date().toISOString() });
    await register('live', live);
    // 'b' named `replaced`, then was registered again from other files: nothing names `replaced` now.
    await register('b', replaced);
    await register('b', live);
    // Two registrations that stopped before their manifest: one two days ago, one in progress.
    await blobs.delete(failed + MANIFEST_FILE);
    await blobs.delete(uploading + MANIFEST_FILE);
    const old = new Date(Date.now() - 2 * 24 * 3600_000);
    for (const b of (await blobs.list(failed)).blobs) fs.utimesSync(blobs.where(b.key), old, old);
    // A complete model registered long ago is not removed for its age.
    for (const b of (await blobs.list(live)).blobs) fs.utimesSync(blobs.where(b.key), old, old);

    const removed = await sweepLeftovers(platform.db, platform.staging, platform.storage);
    assert.deepEqual(removed.filter((r) => r.startsWith('models/')).sort(), [replaced, failed].sort());
    assert.deepEqual((await blobs.list('models/', { delimiter: '/' })).prefixes.sort(), [live, uploading].sort());
    assert.equal((await blobs.list(uploading)).blobs.length, fs.readdirSync(tinyModelDir('gemma3', { seed: 4 })).length, 'the upload in progress keeps its files');
    await files.checkComplete(live);
    // A second sweep finds nothing more.
    assert.deepEqual((await sweepLeftovers(platform.db, platform.staging, platform.storage)).filter((r) => r.startsWith('models/')), []);
  } finally {
    await platform.close();
  }
});

test('the model cache keeps its bound: the least recently used copy not in use is evicted, one in use never is', async () => {
  const dirs = tempDirs('base-models-cache');
  const blobs = new LocalBlobStore(dirs());
  const [p1, p2, p3] = await Promise.all([1, 2, 3].map((seed) => new BaseModelFiles(blobs, dirs(), process.pid).store(tinyModelDir('gemma3', { seed }))));
  const sizeOf = async (p: string) => JSON.parse((await blobs.read(p + MANIFEST_FILE)).toString()).files.reduce((n: number, f: { size: number }) => n + f.size, 0) as number;
  const size = await sizeOf(p1!);
  assert.equal(await sizeOf(p2!), size);
  const root = dirs();
  const files = new BaseModelFiles(blobs, root, process.pid, Math.floor(size * 1.5)); // room for one copy
  const a = await files.localDir(p1!, 'publishers/google/models/a');
  files.release(p1!);
  const b = await files.localDir(p2!, 'publishers/google/models/b');
  assert.ok(!fs.existsSync(a), 'the unused copy is evicted');
  assert.ok(fs.existsSync(b));
  assert.deepEqual(fs.readdirSync(path.join(root, 'cache', 'models')), [p2!.split('/')[1]], 'nothing else left');

  // b is held: a third model does not fit, and b stays.
  await assert.rejects(files.localDir(p3!, 'publishers/google/models/c'), (err: Error) => {
    assert.ok(err instanceof FailedPreconditionError, String(err));
    assert.match(err.message, /base model publishers\/google\/models\/c: the model cache \(--model-cache-size \d+ bytes\) is full of copies in use/);
    return true;
  });
  assert.ok(fs.existsSync(b), 'the copy in use is kept');
  // Released, it goes for the next one.
  files.release(p2!);
  const c = await files.localDir(p3!, 'publishers/google/models/c');
  assert.deepEqual(fs.readdirSync(path.join(root, 'cache', 'models')), [path.basename(c)]);

  // Another process on the machine (its own mark) holding c: c is not evicted; released, it is.
  const other = new BaseModelFiles(blobs, root, process.pid + 1, Math.floor(size * 1.5));
  assert.equal(await other.localDir(p3!, 'publishers/google/models/c'), c);
  files.release(p3!);
  await assert.rejects(files.localDir(p1!, 'publishers/google/models/a'), /the model cache \(--model-cache-size \d+ bytes\) is full of copies in use/);
  assert.ok(fs.existsSync(c), 'the copy another process holds is kept');
  other.release(p3!);
  await files.localDir(p1!, 'publishers/google/models/a');
  assert.ok(!fs.existsSync(c));
  assert.deepEqual(fs.readdirSync(path.join(root, 'cache', 'models')), [p1!.split('/')[1]]);

  // A bound smaller than one model is refused, naming the flag.
  await assert.rejects(new BaseModelFiles(blobs, dirs(), process.pid, size - 1).localDir(p1!, 'publishers/google/models/a'),
    new RegExp(`base model publishers/google/models/a: its files \\(${size} bytes\\) are larger than the model cache \\(--model-cache-size ${size - 1} bytes\\); give --model-cache-size at least ${size}`));
});
