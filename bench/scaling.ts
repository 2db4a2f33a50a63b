// The platform database's costs on SQLite and PostgreSQL, for docs/scaling.md:
//   npm run bench:scaling            (starts a throwaway PostgreSQL 15 from Debian's binaries)
//   npm run bench:scaling -- --database postgres://...   (an existing, empty database)
// - request path: authenticate an API key and check a permission (two reads) per request, by C clients;
// - write path: tuning-job creates, each a read-then-write transaction under the write lock, by C clients;
// - queue: a job sent to pg-boss until a worker's handler starts, one at a time.
// Prints one line per measurement.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PgBoss } from 'pg-boss';
import { Platform } from '../src/platform/platform.js';
import { createDatabase, startPostgres } from '../test/helpers/postgres.js';

const CLIENTS = [1, 8, 32];
const SECONDS = 2;

async function forSeconds(clients: number, op: () => Promise<unknown>): Promise<number> {
  let n = 0;
  const end = Date.now() + SECONDS * 1000;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (Date.now() < end) {
      await op();
      n++;
    }
  }));
  return n / SECONDS;
}

async function measure(label: string, p: Platform): Promise<void> {
  const sa = await p.iam.createServiceAccount('bench', 'bencher');
  await p.iam.addBinding('bench', `serviceAccount:${sa.email}`, 'roles/aiplatform.user');
  const { key } = await p.iam.createKey(sa.email);
  await p.config.setQuotaLimit('concurrent_tuning_jobs', 1_000_000);
  for (const c of CLIENTS) {
    const rate = await forSeconds(c, async () => {
      const who = await p.iam.authenticate({ 'x-goog-api-key': key });
      await p.iam.authorize(who, 'aiplatform.tuningJobs.get', 'bench');
    });
    process.stdout.write(`${label}\tauthenticate+authorize\t${c} clients\t${rate.toFixed(0)}/s\n`);
  }
  for (const c of CLIENTS) {
    const rate = await forSeconds(c, () => p.jobs.create({ project: 'bench', location: 'us-central1', baseModel: 'm', request: {} }));
    process.stdout.write(`${label}\ttuning-job create (write lock)\t${c} clients\t${rate.toFixed(0)}/s\n`);
  }
}

async function queueLatency(database: string): Promise<void> {
  const boss = new PgBoss({ connectionString: database });
  await boss.start();
  await boss.createQueue('bench');
  const started = new Map<string, number>();
  const latencies: number[] = [];
  let wake: (() => void) | undefined;
  await boss.work<{ t: number }>('bench', { pollingIntervalSeconds: 0.5 }, async ([job]) => {
    if (job) latencies.push(Date.now() - job.data.t);
    wake?.();
  });
  for (let i = 0; i < 20; i++) {
    const done = new Promise<void>((r) => { wake = r; });
    const id = await boss.send('bench', { t: Date.now() });
    started.set(id ?? '', Date.now());
    await done;
  }
  await boss.stop({ graceful: false });
  latencies.sort((a, b) => a - b);
  process.stdout.write(`postgres\tqueue send -> handler start\t20 jobs\tmedian ${latencies[10]} ms, max ${latencies[19]} ms\n`);
}

const arg = process.argv.indexOf('--database');
const given = arg >= 0 ? process.argv[arg + 1] : undefined;
const server = given ? undefined : startPostgres();
const database = given ?? await createDatabase(server!.url);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-bench-scaling-'));
try {
  const sqlite = await Platform.open({ dataDir: path.join(dir, 'sqlite') });
  await measure('sqlite', sqlite);
  await sqlite.close();
  const pg = await Platform.open({ dataDir: path.join(dir, 'pg'), database });
  await measure('postgres', pg);
  await pg.close();
  await queueLatency(database);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
  server?.stop();
}
