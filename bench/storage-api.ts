// Throughput of the Cloud Storage JSON API (src/api/routes/storage-api.ts) with the official
// @google-cloud/storage client against `tunekit serve` run as a child process on a temporary data
// directory: a 256 MiB object uploaded by uploadType=multipart, resumable in one request and resumable
// in 16 MiB chunks, then downloaded (crc32c checked by the client). Prints MB/s and the server's peak RSS.
//
//   npx tsc -p tsconfig.json && node dist/bench/storage-api.js [MiB]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Storage, type StorageOptions } from '@google-cloud/storage';
import { OAuth2Client } from 'google-auth-library';
import { Platform } from '../src/platform/platform.js';

const MiB = 1 << 20;
const size = Number(process.argv[2] ?? 256) * MiB;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-bench-storage-'));
const platform = await Platform.open({ dataDir });
await platform.storage.createBucket('bench-data', { project: 'p', location: 'us-central1' });
const sa = await platform.iam.createServiceAccount('p', 'bench-uploader');
await platform.iam.addBinding('p', `serviceAccount:${sa.email}`, 'roles/storage.objectAdmin');
const key = (await platform.iam.createKey(sa.email)).key;
await platform.close();

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const server = spawn(process.execPath, [cli, 'serve', '--port', '0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise<string>((resolve, reject) => {
  let out = '';
  server.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    const m = / at (http:\/\/\S+)/.exec(out);
    if (m) resolve(m[1]!);
  });
  server.once('exit', (code) => reject(new Error(`tunekit serve exited with ${code}`)));
});
const peakRss = (): number => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

const authClient = new OAuth2Client();
authClient.setCredentials({ access_token: key });
const gcs = new Storage({ apiEndpoint: url, projectId: 'p', useAuthWithCustomEndpoint: true, authClient: authClient as unknown as StorageOptions['authClient'] });
const bucket = gcs.bucket('bench-data');
const data = randomBytes(size);
const rate = (ms: number) => `${(size / MiB / (ms / 1000)).toFixed(0)} MiB/s`;

try {
  for (const [label, opts] of [
    ['multipart', { resumable: false }], ['resumable, one request', { resumable: true }], ['resumable, 16 MiB chunks', { resumable: true, chunkSize: 16 * MiB }],
  ] as const) {
    const file = bucket.file(`bench-${label.replace(/\W+/g, '-')}.bin`);
    const t0 = performance.now();
    if (opts.resumable) {
      const [uri] = await file.createResumableUpload();
      await file.save(data, { ...opts, uri });
    } else {
      await file.save(data, opts);
    }
    console.log(`upload ${label}: ${(size / MiB).toFixed(0)} MiB in ${((performance.now() - t0) / 1000).toFixed(2)} s, ${rate(performance.now() - t0)}`);
  }
  const t0 = performance.now();
  const [back] = await bucket.file('bench-multipart.bin').download();
  const ms = performance.now() - t0;
  if (!back.equals(data)) throw new Error('downloaded bytes differ');
  console.log(`download (crc32c validated): ${rate(ms)}`);
  console.log(`server peak RSS: ${peakRss().toFixed(0)} MiB (object ${(size / MiB).toFixed(0)} MiB)`);
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  fs.rmSync(dataDir, { recursive: true, force: true });
}
