// The object store's bytes on its two blob stores (src/platform/blob-store.ts), for docs/scaling.md: the
// data directory (local) and the GCS backend, here a second `tunekit serve` serving the Cloud Storage
// JSON API on this machine (as the tests use it; real GCS adds the network). For each: one large object
// written with putObject and read back with readObject (MB/s), and 100 small objects (64 KiB) written
// and read one after another (ms per operation).
//
//   npx tsc -p tsconfig.json && node dist/bench/blob-store.js [MiB]      (default 64)

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Platform } from '../src/platform/platform.js';
import { startStorageNode } from '../test/helpers/storage-node.js';
import type { StorageConfig } from '../src/platform/blob-store.js';

const MiB = 1 << 20;
const size = Number(process.argv[2] ?? 64) * MiB;
const SMALL = 100;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-bench-blobs-'));
const node = await startStorageNode(path.join(root, 'node'));

async function measure(label: string, storage: StorageConfig | undefined): Promise<void> {
  const p = await Platform.open({ dataDir: fs.mkdtempSync(path.join(root, 'd-')), ...(storage ? { storage } : {}) });
  try {
    await p.storage.createBucket('bench', { project: 'p', location: 'us-central1' });
    const big = randomBytes(size);
    let t = performance.now();
    await p.storage.putObject('bench', 'big.bin', big);
    const up = performance.now() - t;
    t = performance.now();
    const back = await p.storage.readObject('bench', 'big.bin');
    const down = performance.now() - t;
    if (!back.equals(big)) throw new Error('read back different bytes');
    const small = randomBytes(64 << 10);
    t = performance.now();
    for (let i = 0; i < SMALL; i++) await p.storage.putObject('bench', `small/${i}`, small);
    const smallUp = (performance.now() - t) / SMALL;
    t = performance.now();
    for (let i = 0; i < SMALL; i++) await p.storage.readObject('bench', `small/${i}`);
    const smallDown = (performance.now() - t) / SMALL;
    const mbs = (ms: number) => (size / 1e6 / (ms / 1000)).toFixed(0);
    process.stdout.write(`${label}: ${size / MiB} MiB object: upload ${mbs(up)} MB/s, download ${mbs(down)} MB/s; 64 KiB objects: upload ${smallUp.toFixed(1)} ms, download ${smallDown.toFixed(1)} ms each\n`);
  } finally {
    await p.close();
  }
}

try {
  await measure('local directory', undefined);
  await measure('GCS backend (tunekit node, localhost)', node.config('bench'));
} finally {
  await node.kill();
  fs.rmSync(root, { recursive: true, force: true });
}
