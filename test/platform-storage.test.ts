// The object store: bucket and object name validation (path traversal in every spelling), nothing
// written outside the store (symlinks included), atomic uploads (a failing source or a killed process
// leaves the old object or none, never part of one), listing with prefix/delimiter/pages, gs:// URIs;
// `tunekit serve` removes at start what a killed `tunekit storage cp` left, not what a live one writes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { Platform } from '../src/platform/platform.js';
import { assertSameLocation } from '../src/platform/storage.js';
import { parseGsUri, validateBucketName, validateObjectName } from '../src/platform/gcs-names.js';
import { spawn } from 'node:child_process';
import { cliMain, platformDir, rejectsCode, runScript, tempDirs, throwsCode } from './helpers/platform.js';
import { startServe } from './helpers/serve.js';

const freshDir = tempDirs('platform-storage');

async function openWithBucket(location = 'us-central1'): Promise<Platform> {
  const p = await Platform.open({ dataDir: freshDir() });
  await p.storage.createBucket('gs://data-bkt', { location, project: 'proj' });
  return p;
}

/** Every file under `dir`, relative. */
function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.lstatSync(path.join(dir, f)).isFile()).sort();
}

test('bucket names follow GCS rules', () => {
  for (const ok of ['abc', 'my-bucket_1', 'a.b.c', 'x'.repeat(63)]) validateBucketName(ok);
  const cases: [string, RegExp][] = [
    ['ab', /3-63 characters/], ['x'.repeat(64), /3-63 characters/], ['Upper', /3-63 characters/], ['-abc', /3-63 characters/],
    ['abc-', /3-63 characters/], ['a/b', /3-63 characters/], ['..', /3-63 characters/], ['a..b', /doubled/], ['a.-b', /next to a dash/],
    ['192.168.1.1', /IP address/], ['goog-data', /reserved/], ['my-google-bucket', /reserved/], ['a\u0000b', /3-63 characters/],
  ];
  for (const [name, why] of cases) throwsCode(() => validateBucketName(name), 'INVALID_ARGUMENT', new RegExp(`bucket name .* is not valid: .*${why.source}`));
});

test('object names: traversal in every spelling, absolute paths, NUL and control characters, backslashes, length', () => {
  for (const ok of ['a', 'train.jsonl', 'dir/sub/file.jsonl', 'dir/', 'a..b', '...', 'dir/.hidden', 'ünïcødé/ok', 'a'.repeat(1024)]) {
    validateObjectName(ok);
  }
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['..', /"\." and "\.\." segments/], ['.', /segments/], ['../etc/passwd', /segments/], ['a/../../b', /segments/], ['a/./b', /segments/],
    ['a/..', /segments/], ['%2e%2e/etc', /segments/], ['%2E%2E%2Fetc', /segments/], ['a%2f..%2fb', /segments/],
    ['%252e%252e/x', /segments/], ['..%2fx', /segments/],
    ['/etc/passwd', /start with "\/"/], ['%2fetc', /start with "\/"/],
    ['a\u0000b', /control characters/], ['a%00b', /control characters/], ['line\nbreak', /control characters/], ['cr\r', /control characters/],
    ['..\\x', /backslashes/], ['a%5c..%5cb', /backslashes/],
    ['a'.repeat(1025), /longer than 1024 bytes/], ['é'.repeat(513), /longer than 1024 bytes/],
    ['bad\uD800', /not valid Unicode/],
  ];
  for (const [name, why] of cases) throwsCode(() => validateObjectName(name), 'INVALID_ARGUMENT', why);
});

test('gs:// URIs', () => {
  assert.deepEqual(parseGsUri('gs://b-1/a/b.jsonl'), { bucket: 'b-1', object: 'a/b.jsonl' });
  assert.deepEqual(parseGsUri('gs://b-1', { allowBucketOnly: true }), { bucket: 'b-1', object: '' });
  throwsCode(() => parseGsUri('s3://b/x'), 'INVALID_ARGUMENT', /not a gs:\/\/ URI/);
  throwsCode(() => parseGsUri('/local/file'), 'INVALID_ARGUMENT', /not a gs:\/\/ URI/);
  throwsCode(() => parseGsUri('gs://b-1/'), 'INVALID_ARGUMENT', /names a bucket, not an object/);
  throwsCode(() => parseGsUri('gs://../x'), 'INVALID_ARGUMENT', /bucket name "\.\." is not valid/);
  throwsCode(() => parseGsUri('gs://b-1/../../x'), 'INVALID_ARGUMENT', /segments/);
  throwsCode(() => parseGsUri('gs://b-1//etc/passwd'), 'INVALID_ARGUMENT', /start with "\/"/);
});

test('buckets: created once in a supported location, listed, deleted only when empty', async () => {
  const p = await Platform.open({ dataDir: freshDir() });
  const b = await p.storage.createBucket('gs://ds-us', { location: 'us-central1', project: 'proj' });
  assert.equal(b.location, 'us-central1');
  await p.storage.createBucket('ds-eu', { location: 'europe-west4', project: 'other' });
  assert.deepEqual((await p.storage.listBuckets()).map((x) => x.name), ['ds-eu', 'ds-us']);
  assert.deepEqual((await p.storage.listBuckets({ project: 'proj' })).map((x) => x.name), ['ds-us']);
  assert.ok(await p.projects.find('other'), 'the project was created with its first bucket');
  await rejectsCode(p.storage.createBucket('ds-us', { location: 'us-central1', project: 'proj' }), 'ALREADY_EXISTS', /bucket gs:\/\/ds-us already exists/);
  await rejectsCode(p.storage.createBucket('ds-asia', { location: 'asia-east1', project: 'proj' }), 'INVALID_ARGUMENT', /"asia-east1" is not supported.*us-central1, europe-west4/);
  await rejectsCode(p.storage.getBucket('nope-bucket'), 'NOT_FOUND', /bucket gs:\/\/nope-bucket does not exist/);
  await p.storage.putObject('ds-us', 'x.jsonl', '{}\n');
  await rejectsCode(p.storage.deleteBucket('ds-us'), 'FAILED_PRECONDITION', /not empty \(1 objects\)/);
  await p.storage.deleteObject('ds-us', 'x.jsonl');
  await p.storage.deleteBucket('ds-us');
  assert.equal(await p.storage.findBucket('ds-us'), undefined);
  assert.ok(!fs.existsSync(path.join(p.storage.root, 'ds-us')));
  await p.close();
});

test('put/get/stat/delete round trip; overwrites raise the generation and drop the old blob', async () => {
  const p = await openWithBucket();
  const s = p.storage;
  const a = await s.putObject('data-bkt', 'ds/train.jsonl', 'first\n');
  assert.equal(a.size, 6);
  assert.equal(a.md5Hash, createHash('md5').update('first\n').digest('base64'));
  assert.equal(a.contentType, 'application/jsonl');
  assert.equal((await s.readObject('data-bkt', 'ds/train.jsonl')).toString(), 'first\n');
  const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
  const b = await s.putObject('data-bkt', 'ds/train.jsonl', bytes);
  assert.ok(BigInt(b.generation) > BigInt(a.generation));
  assert.equal(b.createTime, a.createTime);
  assert.ok((await s.readObject('data-bkt', 'ds/train.jsonl')).equals(bytes));
  assert.deepEqual(await s.statObject('data-bkt', 'ds/train.jsonl'), b);
  assert.equal(filesUnder(path.join(s.root, 'data-bkt')).length, 1, 'the old blob is gone');
  const chunks: Buffer[] = [];
  for await (const c of await s.createReadStream('data-bkt', 'ds/train.jsonl')) chunks.push(c as Buffer);
  assert.ok(Buffer.concat(chunks).equals(bytes));
  await s.deleteObject('data-bkt', 'ds/train.jsonl');
  await rejectsCode(s.statObject('data-bkt', 'ds/train.jsonl'), 'NOT_FOUND', /object gs:\/\/data-bkt\/ds\/train\.jsonl does not exist/);
  await rejectsCode(s.deleteObject('data-bkt', 'ds/train.jsonl'), 'NOT_FOUND', /does not exist/);
  await rejectsCode(s.putObject('no-such-bucket', 'x', 'y'), 'NOT_FOUND', /bucket gs:\/\/no-such-bucket does not exist/);
  await rejectsCode(s.putObjectFromFile('data-bkt', 'x', path.join(p.dataDir, 'missing.jsonl')), 'NOT_FOUND', /local file .*missing\.jsonl does not exist/);
  assert.deepEqual(filesUnder(path.join(s.root, 'data-bkt')), []);
  await p.close();
});

test('traversal attempts never write or read outside the store', async () => {
  const p = await openWithBucket();
  const before = filesUnder(p.dataDir);
  for (const name of ['../escape', '../../escape', '/tmp/escape', '%2e%2e/escape', '..%2f..%2fescape', 'a/../../escape', 'a\\..\\escape', 'x\u0000y']) {
    await rejectsCode(p.storage.putObject('data-bkt', name, 'x'), 'INVALID_ARGUMENT', /object name .* is not valid/);
    await rejectsCode(p.storage.putObject('data-bkt', name, 'x'), 'INVALID_ARGUMENT', /is not valid/);
    await rejectsCode(p.storage.readObject('data-bkt', name), 'INVALID_ARGUMENT', /is not valid/);
    await rejectsCode(p.storage.resolveGsUri(`gs://data-bkt/${name}`), 'INVALID_ARGUMENT', /is not valid/);
  }
  for (const bucket of ['..', '../x', 'gs://..', '.', 'a/b']) {
    await rejectsCode(p.storage.putObject(bucket, 'ok', 'x'), 'INVALID_ARGUMENT', /bucket name .* is not valid/);
  }
  assert.deepEqual(filesUnder(p.dataDir), before);
  assert.ok(!fs.existsSync(path.join(path.dirname(p.dataDir), 'escape')));
  // Names that merely look odd are stored as data: the file on disk is a random blob id.
  const info = await p.storage.putObject('data-bkt', 'a..b/.hidden/%41', 'z');
  assert.equal((await p.storage.readObject('data-bkt', info.name)).toString(), 'z');
  assert.deepEqual(filesUnder(path.join(p.storage.root, 'data-bkt')).map((f) => /^[0-9a-f]{32}$/.test(f)), [true]);
  await p.close();
});

test('symlink tricks: a bucket directory replaced by a link outside the store is refused, nothing is written there', async () => {
  const p = await openWithBucket();
  await p.storage.putObject('data-bkt', 'x', 'secret data');
  const outside = path.join(path.dirname(p.dataDir), `outside-${path.basename(p.dataDir)}`);
  fs.mkdirSync(outside);
  const bucketDir = path.join(p.storage.root, 'data-bkt');
  fs.renameSync(bucketDir, `${bucketDir}.moved`);
  fs.symlinkSync(outside, bucketDir);
  await assert.rejects(p.storage.putObject('data-bkt', 'y', 'leak'), /not a plain directory .*symbolic link/);
  await assert.rejects(p.storage.readObject('data-bkt', 'x'), /not a plain directory/);
  assert.deepEqual(fs.readdirSync(outside), []);
  // A symlink planted where a blob would be read is not followed either.
  fs.rmSync(bucketDir);
  fs.renameSync(`${bucketDir}.moved`, bucketDir);
  const blob = path.join(bucketDir, filesUnder(bucketDir)[0]!);
  fs.rmSync(blob);
  fs.writeFileSync(path.join(outside, 'target'), 'not yours');
  fs.symlinkSync(path.join(outside, 'target'), blob);
  await assert.rejects(p.storage.createReadStream('data-bkt', 'x'), /ELOOP/);
  await p.close();
});

test('a source that fails mid-upload leaves no object and no temporary file; an overwrite that fails keeps the old object', async () => {
  const p = await openWithBucket();
  async function* failing(): AsyncIterable<Buffer> {
    yield Buffer.alloc(1 << 16, 1);
    yield Buffer.alloc(1 << 16, 2);
    throw new Error('connection reset');
  }
  await assert.rejects(p.storage.putObject('data-bkt', 'big.bin', failing()), /connection reset/);
  await rejectsCode(p.storage.statObject('data-bkt', 'big.bin'), 'NOT_FOUND', /does not exist/);
  assert.deepEqual(filesUnder(path.join(p.storage.root, 'data-bkt')), []);
  await p.storage.putObject('data-bkt', 'big.bin', 'complete old version');
  await assert.rejects(p.storage.putObject('data-bkt', 'big.bin', failing()), /connection reset/);
  assert.equal((await p.storage.readObject('data-bkt', 'big.bin')).toString(), 'complete old version');
  assert.equal(filesUnder(path.join(p.storage.root, 'data-bkt')).length, 1);
  await p.close();
});

test('a process killed mid-upload: the object is absent (new) or complete (overwrite); recover removes the leftovers', async () => {
  const p = await openWithBucket();
  await p.storage.putObject('data-bkt', 'old.bin', 'the complete old content');
  const dataDir = p.dataDir;
  await p.close();
  // The child streams 64 KiB chunks forever, printing after each; it is killed after the fifth.
  const script = `import { Platform } from ${JSON.stringify(path.join(platformDir, 'platform.js'))};
    const p = await Platform.open({ dataDir: process.argv[process.argv.length - 2] });
    async function* slow() {
      for (let i = 0; ; i++) {
        yield Buffer.alloc(65536, i % 256);
        process.stdout.write('chunk\\n');
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await p.storage.putObject('data-bkt', process.argv[process.argv.length - 1], slow());`;
  for (const name of ['new.bin', 'old.bin']) {
    let seen = 0;
    const r = await runScript(script, [dataDir, name], (chunk, kill) => {
      seen += chunk.split('\n').length - 1;
      if (seen >= 5) kill();
    });
    assert.equal(r.signal, 'SIGKILL', r.err);
  }
  const q = await Platform.open({ dataDir });
  await rejectsCode(q.storage.statObject('data-bkt', 'new.bin'), 'NOT_FOUND', /does not exist/);
  assert.equal((await q.storage.readObject('data-bkt', 'old.bin')).toString(), 'the complete old content');
  const dir = path.join(q.storage.root, 'data-bkt');
  const leftovers = fs.readdirSync(dir).filter((f) => f.startsWith('.tmp-'));
  assert.equal(leftovers.length, 2, 'the killed uploads left their temporary files');
  assert.ok(fs.statSync(path.join(dir, leftovers[0]!)).size >= 5 * 65536);
  // An orphan blob (renamed, never committed) is removed once it is old enough.
  const orphan = path.join(dir, 'f'.repeat(32));
  fs.writeFileSync(orphan, 'orphan');
  assert.deepEqual((await q.storage.recover({ minAgeMs: 60_000 })).removed.sort(), leftovers.map((f) => path.join(dir, f)).sort());
  assert.ok(fs.existsSync(orphan), 'a young unreferenced blob may be an upload about to commit');
  assert.deepEqual((await q.storage.recover({ minAgeMs: 0 })).removed, [orphan]);
  assert.equal(fs.readdirSync(dir).length, 1);
  assert.equal((await q.storage.readObject('data-bkt', 'old.bin')).toString(), 'the complete old content');
  // A restarted container reuses pids: a temporary file named after this process but older than it
  // is a leftover; one written since it started is an upload in progress.
  const mine = (id: string) => path.join(dir, `.tmp-${process.pid}-${id.repeat(32)}`);
  fs.writeFileSync(mine('a'), 'from before this process');
  const old = (Date.now() - process.uptime() * 1000 - 60_000) / 1000;
  fs.utimesSync(mine('a'), old, old);
  fs.writeFileSync(mine('b'), 'in progress');
  assert.deepEqual((await q.storage.recover()).removed, [mine('a')]);
  fs.rmSync(mine('b'));
  await q.close();
});

test('four processes overwriting one object at once: it ends as one complete version, with no stray files', async () => {
  const p = await openWithBucket();
  const dataDir = p.dataDir;
  await p.close();
  const start = Date.now() + 1000;
  const script = `import { Platform } from ${JSON.stringify(path.join(platformDir, 'platform.js'))};
    const id = Number(process.argv[process.argv.length - 1]);
    const p = await Platform.open({ dataDir: process.argv[process.argv.length - 2] });
    while (Date.now() < ${start}) {}
    for (let i = 0; i < 10; i++) await p.storage.putObject('data-bkt', 'shared.bin', Buffer.alloc(200_000 + id, id));
    p.close();`;
  const runs = await Promise.all([1, 2, 3, 4].map((id) => runScript(script, [dataDir, String(id)])));
  for (const r of runs) assert.equal(r.code, 0, r.err);
  const q = await Platform.open({ dataDir });
  const bytes = await q.storage.readObject('data-bkt', 'shared.bin');
  const id = bytes.length - 200_000;
  assert.ok(id >= 1 && id <= 4);
  assert.ok(bytes.equals(Buffer.alloc(200_000 + id, id)));
  assert.equal((await q.storage.statObject('data-bkt', 'shared.bin')).size, bytes.length);
  assert.equal(fs.readdirSync(path.join(q.storage.root, 'data-bkt')).length, 1);
  await q.close();
});

test('list: prefix, delimiter roll-up, pages that cover everything once', async () => {
  const p = await openWithBucket();
  const names = ['a.txt', 'ds/1.jsonl', 'ds/2.jsonl', 'ds/sub/3.jsonl', 'ds/sub/4.jsonl', 'ds2/x', 'logs/1', 'logs/2', 'z'];
  for (const n of names) await p.storage.putObject('data-bkt', n, n);
  const s = p.storage;
  assert.deepEqual((await s.listObjects('data-bkt')).objects.map((o) => o.name), names);
  const top = await s.listObjects('data-bkt', { delimiter: '/' });
  assert.deepEqual(top.objects.map((o) => o.name), ['a.txt', 'z']);
  assert.deepEqual(top.prefixes, ['ds/', 'ds2/', 'logs/']);
  const ds = await s.listObjects('data-bkt', { prefix: 'ds/', delimiter: '/' });
  assert.deepEqual(ds.objects.map((o) => o.name), ['ds/1.jsonl', 'ds/2.jsonl']);
  assert.deepEqual(ds.prefixes, ['ds/sub/']);
  assert.deepEqual((await s.listObjects('data-bkt', { prefix: 'ds' })).objects.map((o) => o.name), names.slice(1, 6));
  assert.deepEqual(await s.listObjects('data-bkt', { prefix: 'nothing/' }), { objects: [], prefixes: [] });
  for (const delimiter of [undefined, '/']) {
    for (const pageSize of [1, 2, 3]) {
      const seen: string[] = [];
      let pageToken: string | undefined;
      let pages = 0;
      do {
        const page = await s.listObjects('data-bkt', { delimiter, pageSize, pageToken });
        assert.ok(page.objects.length + page.prefixes.length <= pageSize);
        seen.push(...page.prefixes, ...page.objects.map((o) => o.name));
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken);
      const expected = delimiter ? ['a.txt', 'ds/', 'ds2/', 'logs/', 'z'] : names;
      assert.deepEqual(seen.sort(), [...expected].sort());
      assert.equal(pages, Math.ceil(expected.length / pageSize));
    }
  }
  await rejectsCode(s.listObjects('data-bkt', { pageSize: 0 }), 'INVALID_ARGUMENT', /pageSize must be an integer in \[1, 1000\], got 0/);
  await rejectsCode(s.listObjects('data-bkt', { pageToken: '!!' }), 'INVALID_ARGUMENT', /pageToken "!!" is not valid/);
  await rejectsCode(s.listObjects('missing-bkt'), 'NOT_FOUND', /bucket gs:\/\/missing-bkt does not exist/);
  await p.close();
});

test('resolveGsUri names what is missing; data sovereignty compares locations', async () => {
  const p = await openWithBucket('europe-west4');
  await p.storage.putObject('data-bkt', 'ds/train.jsonl', '{"contents":[]}\n');
  const r = await p.storage.resolveGsUri('gs://data-bkt/ds/train.jsonl');
  assert.equal(r.bucket, 'data-bkt');
  assert.equal(r.name, 'ds/train.jsonl');
  assert.equal(r.location, 'europe-west4');
  assert.equal(r.project, 'proj');
  assert.equal(r.uri, 'gs://data-bkt/ds/train.jsonl');
  assert.equal((await p.storage.readObject(r.bucket, r.name)).toString('utf8'), '{"contents":[]}\n');
  await rejectsCode(p.storage.resolveGsUri('gs://other-bkt/ds/train.jsonl'), 'NOT_FOUND', /^bucket gs:\/\/other-bkt does not exist \(from gs:\/\/other-bkt\/ds\/train\.jsonl\)$/);
  await rejectsCode(p.storage.resolveGsUri('gs://data-bkt/ds/missing.jsonl'), 'NOT_FOUND', /^object gs:\/\/data-bkt\/ds\/missing\.jsonl does not exist$/);
  await rejectsCode(p.storage.resolveGsUri('gs://data-bkt'), 'INVALID_ARGUMENT', /names a bucket, not an object/);
  assertSameLocation(r.location, 'europe-west4');
  throwsCode(() => assertSameLocation(r.location, 'us-central1', r.uri), 'FAILED_PRECONDITION',
    /data sovereignty: gs:\/\/data-bkt\/ds\/train\.jsonl is stored in europe-west4, but the job runs in us-central1/);
  await p.close();
});

test('tunekit serve removes at start what a killed `storage cp` left; a live upload keeps its file; objects stay intact', async () => {
  const p = await openWithBucket();
  await p.storage.putObject('data-bkt', 'kept.txt', 'committed before the crash');
  const dataDir = p.dataDir;
  const dir = path.join(p.storage.root, 'data-bkt');
  await p.close();
  const temps = () => fs.readdirSync(dir).filter((f) => f.startsWith('.tmp-'));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  // A real `tunekit storage cp` of a large (sparse) file, killed once its upload is under way.
  const src = freshDir();
  fs.mkdirSync(src, { recursive: true });
  const big = path.join(src, 'big.bin');
  fs.writeFileSync(big, '');
  fs.truncateSync(big, 8 * 1024 ** 3);
  const cp = spawn(process.execPath, [cliMain, 'storage', 'cp', big, 'gs://data-bkt/big.bin', '--data-dir', dataDir], { stdio: 'ignore' });
  const cpExit = new Promise((r) => cp.once('exit', r));
  for (let t0 = Date.now(); !temps().some((f) => fs.statSync(path.join(dir, f)).size > 1 << 20);) {
    assert.ok(Date.now() - t0 < 60_000, 'storage cp never started writing');
    await sleep(5);
  }
  cp.kill('SIGKILL');
  await cpExit;
  fs.rmSync(big);
  const killed = temps();
  assert.equal(killed.length, 1, 'the killed copy left its temporary file');

  // Another upload in progress (a live process) while the server starts.
  let stopUploader: (() => void) | undefined;
  const uploader = runScript(`import { Platform } from ${JSON.stringify(path.join(platformDir, 'platform.js'))};
    const p = await Platform.open({ dataDir: process.argv[process.argv.length - 1] });
    async function* slow() {
      for (;;) {
        yield Buffer.alloc(65536, 7);
        process.stdout.write('chunk\\n');
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await p.storage.putObject('data-bkt', 'live.bin', slow());`, [dataDir], (_chunk, kill) => { stopUploader = kill; });
  for (let t0 = Date.now(); !stopUploader || temps().length < 2;) {
    assert.ok(Date.now() - t0 < 60_000, 'the live upload never started');
    await sleep(10);
  }
  const live = temps().filter((f) => !killed.includes(f));
  assert.equal(live.length, 1);

  const server = await startServe(dataDir);
  try {
    const left = temps();
    assert.deepEqual(left, live, 'the killed copy\'s file is gone; the live upload\'s is not');
    assert.match(server.stderr, /1 leftover of interrupted work removed: \S+\/objects\/data-bkt\/\.tmp-\d+-/);
  } finally {
    await server.kill();
    stopUploader!();
    await uploader;
  }
  const q = await Platform.open({ dataDir });
  try {
    assert.equal((await q.storage.readObject('data-bkt', 'kept.txt')).toString(), 'committed before the crash');
    await rejectsCode(q.storage.statObject('data-bkt', 'big.bin'), 'NOT_FOUND', /does not exist/);
    assert.equal(fs.readdirSync(dir).filter((f) => !f.startsWith('.tmp-')).length, 1, 'one blob: the committed object');
  } finally {
    await q.close();
  }
});
