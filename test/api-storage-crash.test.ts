// A resumable upload survives the server being killed (SIGKILL) mid-chunk: after a restart on the same
// data directory, the status query reports the bytes synced before the kill, and the official client
// resumes through the session URI to an object with the right md5 (storage.ts, routes/storage-api.ts).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Storage, type StorageOptions } from '@google-cloud/storage';
import { OAuth2Client } from 'google-auth-library';
import { Platform } from '../src/platform/platform.js';
import { startServe, type ServeProcess } from './helpers/serve.js';

const MiB = 1 << 20;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-storage-crash-'));
let serve: ServeProcess | undefined;
after(async () => {
  await serve?.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('a resumable upload resumes after the server is killed mid-chunk', async () => {
  const platform = await Platform.open({ dataDir });
  await platform.storage.createBucket('crash-data', { project: 'p', location: 'us-central1' });
  const sa = await platform.iam.createServiceAccount('p', 'uploader');
  await platform.iam.addBinding('p', `serviceAccount:${sa.email}`, 'roles/storage.objectAdmin');
  const key = (await platform.iam.createKey(sa.email)).key;
  await platform.close();

  const data = randomBytes(5 * MiB + 3);
  const client = (url: string) => {
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: key });
    return new Storage({ apiEndpoint: url, projectId: 'p', useAuthWithCustomEndpoint: true, authClient: authClient as unknown as StorageOptions['authClient'], retryOptions: { maxRetries: 0 } });
  };
  serve = await startServe(dataDir);
  const [uri] = await client(serve.url).bucket('crash-data').file('big.bin').createResumableUpload();
  const status = async (u: string): Promise<number> => {
    const r = await fetch(u, { method: 'PUT', headers: { 'content-range': 'bytes */*' } });
    assert.equal(r.status, 308);
    return r.headers.get('range') ? Number(r.headers.get('range')!.split('-')[1]) + 1 : 0;
  };

  // A chunk that stalls after 3 MiB: the server is killed once it has synced 2 MiB of it.
  const controller = new AbortController();
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent) return new Promise(() => undefined); // stalls until aborted
      sent = true;
      c.enqueue(data.subarray(0, 3 * MiB));
    },
  });
  const put = fetch(uri, { method: 'PUT', headers: { 'content-range': 'bytes 0-*/*' }, body, duplex: 'half', signal: controller.signal } as RequestInit)
    .catch(() => undefined);
  while (await status(uri) < 2 * MiB) await new Promise((r) => setTimeout(r, 50));
  await serve.kill('SIGKILL');
  controller.abort();
  await put;

  serve = await startServe(dataDir, {}, ['--max-object-size', '6M']);
  const moved = uri.replace(/^http:\/\/[^/]+/, serve.url); // the restarted server listens on another port
  const persisted = await status(moved);
  assert.ok(persisted >= 2 * MiB && persisted <= 3 * MiB, `persisted ${persisted}`);
  const file = client(serve.url).bucket('crash-data').file('big.bin');
  await new Promise<void>((resolve, reject) => {
    const w = file.createWriteStream({ uri: moved, resumable: true });
    w.on('error', reject).on('finish', resolve);
    w.end(data);
  });
  const [m] = await file.getMetadata();
  assert.equal(m.md5Hash, createHash('md5').update(data).digest('base64'));
  assert.ok((await file.download())[0].equals(data));

  // --max-object-size: one byte over is refused as it arrives, and nothing is stored.
  const over = await fetch(`${serve.url}/upload/storage/v1/b/crash-data/o?uploadType=media&name=over.bin`, {
    method: 'POST', headers: { authorization: `Bearer ${key}` }, body: randomBytes(6 * MiB + 1),
  });
  assert.equal(over.status, 413);
  assert.equal((await over.json() as any).error.errors[0].reason, 'uploadTooLarge');
  assert.equal((await file.bucket.file('over.bin').exists())[0], false);
});
