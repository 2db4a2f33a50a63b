// The Cloud Storage JSON API (src/api/routes/storage-api.ts) driven by the official @google-cloud/storage
// client pointed at tunekit (apiEndpoint), with a tunekit key as its bearer token: buckets, uploads of
// every uploadType (small and multi-MB), compose, a resumable upload whose client is killed mid-upload and resumed
// through its session URI, ranged downloads, lists, deletes, permission denied, the size limit, and an
// uploaded file trained on by a tuning job. Hashes are checked against the client's own validation and
// Node's md5; crc32c against the client's CRC32C implementation.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Storage, CRC32C, type StorageOptions } from '@google-cloud/storage';
import { OAuth2Client } from 'google-auth-library';
import { createApp } from '../src/api/app.js';
import { listen } from '../src/api/server.js';
import { Crc32c } from '../src/platform/crc32c.js';
import { createBody, JOBS, tuningPlatform, vertexJsonl, waitForJob } from './helpers/tuning.js';
import { formatTask } from './helpers/format-task.js';

const t = await tuningPlatform();
const server = await listen(t.app, { port: 0, host: '127.0.0.1' });
// A second app over the same platform with a 1 MiB object limit.
const small = await listen(createApp({ catalog: t.catalog, auth: t.platform.iam, tuning: t.tuning, maxObjectBytes: 1 << 20 }), { port: 0, host: '127.0.0.1' });
after(async () => {
  await server.close();
  await small.close();
  await t.close();
});

function client(key: string, url = server.url): Storage {
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: key });
  return new Storage({ apiEndpoint: url, projectId: 'p', useAuthWithCustomEndpoint: true, authClient: authClient as unknown as StorageOptions['authClient'], retryOptions: { maxRetries: 0 } });
}

/**
 * A resumable upload as the client makes one to a custom endpoint: the session is created with
 * createResumableUpload() (save/createWriteStream with resumable: true send no credentials to a custom
 * endpoint in @google-cloud/storage 8.4.0: startResumableUpload_ drops useAuthWithCustomEndpoint), and
 * the upload goes through its URI, which is the credential for the chunks.
 */
async function resumableSave(file: ReturnType<ReturnType<Storage['bucket']>['file']>, data: Buffer | string, opts: Record<string, unknown> = {}): Promise<void> {
  const [uri] = await file.createResumableUpload();
  await file.save(data, { ...opts, resumable: true, uri });
}

const crc = (b: Buffer): string => {
  const c = new CRC32C();
  c.update(b);
  return c.toString();
};
const md5 = (b: Buffer) => createHash('md5').update(b).digest('base64');
const MiB = 1 << 20;

test('crc32c equals the client library\'s CRC32C', () => {
  for (const len of [0, 1, 7, 8, 9, 1000, 65_537]) {
    const b = randomBytes(len);
    assert.equal(new Crc32c().update(b).base64(), crc(b), `length ${len}`);
  }
  assert.equal(new Crc32c().update(Buffer.from('123456789')).value(), 0xe3069283); // the check value
});

test('buckets, uploads of every type, ranged downloads, list, delete with the official client', async () => {
  const sa = await t.platform.iam.createServiceAccount('p', 'storage-admin');
  await t.platform.iam.addBinding('p', `serviceAccount:${sa.email}`, 'roles/storage.admin');
  const gcs = client((await t.platform.iam.createKey(sa.email)).key);
  await assert.rejects(client(t.keys.trainer).createBucket('not-allowed', { location: 'us-central1' }), (e: any) => e.code === 403 && /storage\.buckets\.create/.test(e.message));
  const [bucket] = await gcs.createBucket('client-data', { location: 'us-central1' });
  const [meta] = await bucket.getMetadata();
  assert.equal(meta.location, 'US-CENTRAL1');
  const [buckets] = await gcs.getBuckets();
  assert.ok(buckets.some((b) => b.name === 'client-data'));
  assert.equal((await gcs.bucket('no-such-bucket').exists())[0], false);
  const [firstPage, nextQuery] = await gcs.getBuckets({ maxResults: 1, autoPaginate: false });
  assert.equal(firstPage.length, 1);
  const [secondPage] = await gcs.getBuckets({ ...nextQuery, autoPaginate: false });
  assert.ok(secondPage.length >= 1 && secondPage[0]!.name > firstPage[0]!.name);
  // Query parameters tunekit does not honour (partial responses, requester pays) are refused by name.
  const fields = await fetch(`${server.url}/storage/v1/b/client-data?fields=name`, { headers: { authorization: `Bearer ${t.keys.trainer}` } });
  assert.equal(fields.status, 400);
  assert.match(((await fields.json()) as any).error.message, /'fields'/);
  await assert.rejects(gcs.createBucket('no-location'), (e: any) => e.code === 400 && /location/.test(e.message));
  await assert.rejects(gcs.createBucket('client-data', { location: 'us-central1' }), (e: any) => e.code === 409);

  const big = randomBytes(3 * MiB + 12345);
  const smallText = Buffer.from('{"hello": "world"}\n');
  // multipart (resumable: false), resumable in one request, resumable in 1 MiB chunks; the client checks
  // the md5Hash / crc32c the server reports against its own.
  for (const [name, data, opts] of [
    ['multipart/small.jsonl', smallText, { resumable: false }],
    ['multipart/big.bin', big, { resumable: false }],
    ['resumable/small.jsonl', smallText, { resumable: true }],
    ['resumable/big.bin', big, { resumable: true }],
    ['chunked/big.bin', big, { resumable: true, chunkSize: MiB }],
  ] as const) {
    if (opts.resumable) await resumableSave(bucket.file(name), data, { ...opts, validation: 'md5' });
    else await bucket.file(name).save(data, { ...opts, validation: 'md5' });
    const [m] = await bucket.file(name).getMetadata();
    assert.equal(m.md5Hash, md5(data), name);
    assert.equal(m.crc32c, crc(data), name);
    assert.equal(Number(m.size), data.length, name);
    const [back] = await bucket.file(name).download(); // validated by crc32c from x-goog-hash
    assert.ok(back.equals(data), name);
  }
  // uploadType=media, as curl or gsutil send it.
  const media = await fetch(`${server.url}/upload/storage/v1/b/client-data/o?uploadType=media&name=media%2Fbig.bin`, {
    method: 'POST', headers: { authorization: `Bearer ${t.keys.trainer}`, 'content-type': 'application/x-test' }, body: big,
  });
  assert.equal(media.status, 200);
  const mediaJson = await media.json() as Record<string, string>;
  assert.equal(mediaJson.md5Hash, md5(big));
  assert.equal(mediaJson.contentType, 'application/x-test');
  // Preconditions: ifGenerationMatch 0 (must not exist) on an existing object is 412.
  await assert.rejects(bucket.file('media/big.bin').save('x', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }), (e: any) => e.code === 412);
  // A wrong md5 declared in the metadata is refused and nothing changes.
  await assert.rejects(bucket.file('media/big.bin').save('changed', { resumable: false, metadata: { md5Hash: md5(Buffer.from('other')) } }), (e: any) => e.code === 400);
  assert.equal((await bucket.file('media/big.bin').getMetadata())[0].md5Hash, md5(big));
  // Fields tunekit does not keep are refused by name.
  await assert.rejects(bucket.file('x.txt').save('x', { resumable: false, metadata: { cacheControl: 'no-cache' } }), (e: any) => e.code === 400 && /cacheControl/.test(e.message));

  // Compose: the sources' bytes in order, hashes of the whole; a stale source generation is 412.
  const [combined] = await bucket.combine(['multipart/small.jsonl', 'chunked/big.bin'], 'combined/all.bin');
  const whole = Buffer.concat([smallText, big]);
  assert.equal((await combined.getMetadata())[0].md5Hash, md5(whole));
  assert.ok((await combined.download())[0].equals(whole));
  const stale = bucket.file('chunked/big.bin', { generation: 1 });
  await assert.rejects(bucket.combine([stale], 'combined/stale.bin'), (e: any) => e.code === 412);
  await combined.delete();

  // Ranges: start-end, start-, the tail; past the end is 416.
  const [part] = await bucket.file('chunked/big.bin').download({ start: 1000, end: 1999 });
  assert.ok(part.equals(big.subarray(1000, 2000)));
  const tail = await fetch(`${server.url}/storage/v1/b/client-data/o/chunked%2Fbig.bin?alt=media`, { headers: { authorization: `Bearer ${t.keys.trainer}`, range: 'bytes=-100' } });
  assert.equal(tail.status, 206);
  assert.equal(tail.headers.get('content-range'), `bytes ${big.length - 100}-${big.length - 1}/${big.length}`);
  assert.ok(Buffer.from(await tail.arrayBuffer()).equals(big.subarray(big.length - 100)));
  const past = await fetch(`${server.url}/storage/v1/b/client-data/o/chunked%2Fbig.bin?alt=media`, { headers: { authorization: `Bearer ${t.keys.trainer}`, range: `bytes=${big.length}-` } });
  assert.equal(past.status, 416);
  assert.equal(past.headers.get('content-range'), `bytes */${big.length}`);

  // Lists: prefix, delimiter (prefixes), pages.
  const [files, , res] = await bucket.getFiles({ delimiter: '/', autoPaginate: false });
  assert.deepEqual(files.map((f) => f.name), []);
  assert.deepEqual((res as any).prefixes, ['chunked/', 'media/', 'multipart/', 'resumable/']);
  const [under] = await bucket.getFiles({ prefix: 'multipart/' });
  assert.deepEqual(under.map((f) => f.name), ['multipart/big.bin', 'multipart/small.jsonl']);
  const [page1, next] = await bucket.getFiles({ maxResults: 2, autoPaginate: false });
  assert.deepEqual(page1.map((f) => f.name), ['chunked/big.bin', 'media/big.bin']);
  const [page2] = await bucket.getFiles({ ...next, autoPaginate: false });
  assert.deepEqual(page2.map((f) => f.name), ['multipart/big.bin', 'multipart/small.jsonl']);

  // Delete; a bucket with objects cannot be deleted.
  await assert.rejects(bucket.delete(), (e: any) => e.code === 409);
  await bucket.file('multipart/small.jsonl').delete();
  assert.equal((await bucket.file('multipart/small.jsonl').exists())[0], false);
  await assert.rejects(bucket.file('multipart/small.jsonl').delete(), (e: any) => e.code === 404);
});

test('permission denied, no credentials, and objects over the size limit are refused', async () => {
  const viewer = client(t.keys.viewer);
  await assert.rejects(viewer.bucket('us-data').file('v.txt').save('x', { resumable: false }), (e: any) => e.code === 403 && /storage\.objects\.create/.test(e.message));
  await assert.rejects(viewer.bucket('us-data').file('v.txt').createResumableUpload(), (e: any) => e.code === 403);
  await assert.rejects(viewer.bucket('us-data').file('train.jsonl').delete(), (e: any) => e.code === 403);
  assert.ok((await viewer.bucket('us-data').file('train.jsonl').download())[0].length > 0); // objectViewer may read
  const anonymous = await fetch(`${server.url}/storage/v1/b/us-data/o`);
  assert.equal(anonymous.status, 401);

  const limited = client(t.keys.trainer, small.url);
  const over = randomBytes(MiB + 1);
  const file = limited.bucket('us-data').file('over.bin');
  await assert.rejects(file.save(over, { resumable: false }), (e: any) => e.code === 413);
  await assert.rejects(resumableSave(file, over), (e: any) => e.code === 413);
  await assert.rejects(resumableSave(file, over, { chunkSize: 256 * 1024 }), (e: any) => e.code === 413);
  // A resumable session that declares its size says so at once.
  await assert.rejects(file.createResumableUpload({ metadata: { contentLength: over.length } }), (e: any) => e.code === 413);
  const media = await fetch(`${small.url}/upload/storage/v1/b/us-data/o?uploadType=media&name=over.bin`, {
    method: 'POST', headers: { authorization: `Bearer ${t.keys.trainer}` }, body: over,
  });
  assert.equal(media.status, 413);
  assert.equal((await client(t.keys.trainer).bucket('us-data').file('over.bin').exists())[0], false);
  await limited.bucket('us-data').file('at-limit.bin').save(randomBytes(MiB), { resumable: false }); // exactly the limit is fine
});

test('a resumable upload whose client is killed mid-upload resumes through its session URI', async () => {
  const gcs = client(t.keys.trainer);
  const data = randomBytes(6 * MiB + 777);
  const file = gcs.bucket('us-data').file('resumed.bin');
  const [uri] = await file.createResumableUpload();
  assert.match(uri, /upload_id=[0-9a-f]{32}/);
  const status = async (): Promise<number> => {
    const r = await fetch(uri, { method: 'PUT', headers: { 'content-range': 'bytes */*', 'content-length': '0' } });
    assert.equal(r.status, 308);
    const range = r.headers.get('range');
    return range ? Number(range.split('-')[1]) + 1 : 0;
  };
  assert.equal(await status(), 0);
  // A child process streams the first 3 MiB through the client, then stalls; it is killed once the
  // server has synced at least 2 MiB.
  const script = `
    import { Storage } from '@google-cloud/storage';
    import { OAuth2Client } from 'google-auth-library';
    import { PassThrough } from 'node:stream';
    import { randomBytes } from 'node:crypto';
    const authClient = new OAuth2Client(); authClient.setCredentials({ access_token: ${JSON.stringify(t.keys.trainer)} });
    const gcs = new Storage({ apiEndpoint: ${JSON.stringify(server.url)}, projectId: 'p', useAuthWithCustomEndpoint: true, authClient, retryOptions: { maxRetries: 0 } });
    const src = new PassThrough();
    src.pipe(gcs.bucket('us-data').file('resumed.bin').createWriteStream({ uri: ${JSON.stringify(uri)}, resumable: true, validation: false }));
    process.stdin.on('data', (d) => src.write(d));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'inherit', 'inherit'] });
  child.stdin.write(data.subarray(0, 3 * MiB));
  const exited = new Promise((r) => child.once('exit', r));
  let persisted = 0;
  try {
    while ((persisted = await status()) < 2 * MiB) {
      assert.equal(child.exitCode, null, 'the uploading child exited early');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  assert.ok(persisted >= 2 * MiB && persisted <= 3 * MiB, `persisted ${persisted}`);
  assert.equal((await file.exists())[0], false);

  // Resume with the client through the same URI: it asks the server where to continue.
  await new Promise<void>((resolve, reject) => {
    const w = file.createWriteStream({ uri, resumable: true });
    w.on('error', reject).on('finish', resolve);
    w.end(data);
  });
  const [m] = await file.getMetadata();
  assert.equal(m.md5Hash, md5(data));
  assert.ok((await file.download())[0].equals(data));
  // The finished session answers with the object; a cancelled one is gone.
  assert.equal((await fetch(uri, { method: 'PUT', headers: { 'content-range': 'bytes */*' } })).status, 200);
  const [other] = await gcs.bucket('us-data').file('cancelled.bin').createResumableUpload();
  assert.equal((await fetch(other, { method: 'DELETE' })).status, 499);
  assert.equal((await fetch(other, { method: 'PUT', headers: { 'content-range': 'bytes */*' } })).status, 404);
});

test('a dataset uploaded with the client trains a tuning job; its adapter downloads with the client', async () => {
  const gcs = client(t.keys.trainer);
  await resumableSave(gcs.bucket('us-data').file('uploaded/train.jsonl'), vertexJsonl(formatTask(24, 3)));
  const created = await t.call('POST', JOBS, t.keys.trainer, createBody({ train: 'gs://us-data/uploaded/train.jsonl', validation: '', epochs: 1 }));
  assert.equal(created.status, 200, JSON.stringify(created.json));
  const job = await waitForJob(async () => (await t.call('GET', `/v1/${created.json.name}`, t.keys.trainer)).json);
  assert.equal(job.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(job.error));
  const model = (await t.call('GET', `/v1/${job.tunedModel.model}`, t.keys.trainer)).json;
  const m = /^gs:\/\/([^/]+)\/(.*)$/.exec(model.artifactUri)!;
  const [files] = await gcs.bucket(m[1]!).getFiles({ prefix: m[2] });
  assert.deepEqual(files.map((f) => f.name.slice(m[2]!.length)).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
  const [config] = await gcs.bucket(m[1]!).file(`${m[2]}adapter_config.json`).download();
  assert.equal(JSON.parse(config.toString()).r, 4);
});
