// Many machines with no shared directory (issue 15): `tunekit serve --database ... --storage gs://...` and
// three `tunekit worker` processes, each with its own data or work directory, every byte they exchange
// (datasets staged at create, checkpoints, the adapter) going through the GCS backend, here a second
// tunekit node serving the Cloud Storage JSON API (helpers/storage-node.ts). The job is created through
// serve's REST API; the worker running it is SIGKILLed after its first epoch checkpoint; another one
// checks the job out of the backend, resumes from that checkpoint and ends it SUCCEEDED (attempts 2,
// one model version), with the adapter bit-identical to an uninterrupted run's; serve then serves the
// tuned model from the adapter it downloaded from the backend. Nothing is left in the machines'
// directories, and no blob in serve's. Needs PostgreSQL (Debian's postgresql); skipped without it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Platform } from '../src/platform/platform.js';
import { readJobSpec, TRAIN_FILE } from '../src/platform/jobs/spec.js';
import { managedBucketName } from '../src/platform/jobs/outcome.js';
import { DbRegistrationStore } from '../src/api/db-store.js';
import { registerPublisherModel } from '../src/api/catalog.js';
import { tune } from '../src/train/trainer.js';
import { createDatabase, postgresMissing, startPostgres } from './helpers/postgres.js';
import { cliMain, tempDirs } from './helpers/platform.js';
import { createBody, JOBS, makeKeys, seedData } from './helpers/tuning.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import { startServe, type ServeProcess } from './helpers/serve.js';
import { backendNames, startStorageNode } from './helpers/storage-node.js';
import { sleep, until } from './helpers/until.js';

/** Files under `dir`, relative (none when it does not exist). */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.lstatSync(path.join(dir, f)).isFile()).sort();
}

test('serve and three workers with no shared directory, bytes through the GCS backend: a worker SIGKILLed mid-job, the job resumes elsewhere to the uninterrupted adapter, which serve serves', { skip: postgresMissing() }, async () => {
  const dirs = tempDirs('gcs-workers');
  const pg = startPostgres();
  const node = await startStorageNode(dirs());
  const database = await createDatabase(pg.url);
  const prefix = 'deployment';
  // The test's own view of the deployment (to seed it and to read the database), on a directory of its own.
  const platform = await Platform.open({ dataDir: dirs(), database, storage: node.config(prefix) });
  const workers: ChildProcess[] = [];
  const logs = new Map<number, string>();
  let serve: ServeProcess | undefined;
  try {
    await registerPublisherModel(new DbRegistrationStore(platform.db), tinyModelDir('gemma3'), { name: 'gemma3-tiny' });
    await seedData(platform);
    const keys = await makeKeys(platform);
    const serveDir = dirs();
    serve = await startServe(serveDir, {}, ['--database', database, '--job-heartbeat-seconds', '10', ...node.flags(prefix)]);
    const call = async (method: string, url: string, body?: unknown): Promise<Record<string, any>> => {
      const res = await fetch(serve!.url + url, { method, headers: { 'x-goog-api-key': keys.trainer, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      const json = await res.json() as Record<string, any>;
      assert.equal(res.status, 200, JSON.stringify(json));
      return json;
    };
    const created = await call('POST', JOBS, createBody({ epochs: 6, adapterSize: 'ADAPTER_SIZE_TWO', lrm: 1, validation: '' }));
    const id = String(created.name).split('/').pop()!;
    // Staged on the backend, not in serve's directory; kept for the uninterrupted reference run.
    assert.deepEqual(await backendNames(node, `${prefix}/staging/tuning-jobs/${id}/`), ['job.json', TRAIN_FILE].map((f) => `${prefix}/staging/tuning-jobs/${id}/${f}`));
    assert.deepEqual(filesUnder(path.join(serveDir, 'staging')), []);
    const ref = await platform.staging.checkOut(id);

    const workDirs: string[] = [];
    for (let i = 0; i < 3; i++) {
      workDirs.push(dirs());
      const w = spawn(process.execPath, [cliMain, 'worker', '--database', database, ...node.flags(prefix), '--work-dir', workDirs[i]!], { stdio: ['ignore', 'pipe', 'pipe'] });
      logs.set(w.pid!, '');
      const add = (d: Buffer) => logs.set(w.pid!, logs.get(w.pid!) + d.toString());
      w.stdout!.on('data', add);
      w.stderr!.on('data', add);
      workers.push(w);
    }

    const running = await until('the first checkpoint', async () => {
      const j = await platform.jobs.find(id);
      return j?.state === 'JOB_STATE_RUNNING' && j.checkpoint && j.workerPid ? j : undefined;
    }, 60_000);
    assert.equal(running.checkpoint, `gs://${node.bucket}/${prefix}/staging/tuning-jobs/${id}/out/checkpoints/epoch-1/`);
    const victim = workers.find((w) => w.pid === running.workerPid);
    assert.ok(victim, `the job runs in one of the three workers (pid ${running.workerPid})`);
    victim.kill('SIGKILL');

    const done = await until('the job to end', async () => {
      const j = await platform.jobs.find(id);
      return j && ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(j.state) ? j : undefined;
    }, 90_000);
    assert.equal(done.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(done.error) + [...logs.values()].join('\n'));
    assert.equal(done.attempts, 2, 'taken over once');
    const takers = [...logs.entries()].filter(([, log]) => log.includes(`job ${id}: running`)).map(([pid]) => pid);
    assert.equal(takers.length, 2, 'two workers ran it');
    assert.equal((await platform.db.all('SELECT model_id FROM model_versions WHERE tuning_job = ?', id)).length, 1);
    const losses = (await platform.jobs.metrics(id)).filter((m) => m.name === '/train_total_loss').map((m) => m.step);
    assert.deepEqual(losses, Array.from({ length: losses.length }, (_, i) => i + 1), 'each step once');

    // Nothing lost: the stored adapter (on the backend) equals an uninterrupted run's, bit for bit.
    const spec = readJobSpec(ref);
    await tune({ ...spec.options, baseDir: spec.baseDir, trainFile: path.join(ref, TRAIN_FILE), outDir: path.join(ref, 'out') });
    const reference = fs.readFileSync(path.join(ref, 'out', 'adapter_model.safetensors'));
    const stored = await platform.storage.readObject(managedBucketName('p', 'us-central1'), `tuningJobs/${id}/adapter/adapter_model.safetensors`);
    assert.ok(stored.equals(reference), 'resumed adapter equals the uninterrupted one');

    // serve serves the tuned model, from the adapter it fetched from the backend.
    const endpoint = (await call('GET', `/v1/${created.name}`)).tunedModel.endpoint as string;
    const answer = await call('POST', `/v1/${endpoint}:generateContent`, { contents: [{ role: 'user', parts: [{ text: 'hello' }] }], generationConfig: { maxOutputTokens: 4 } });
    assert.ok(answer.candidates?.[0]?.content?.parts?.length, JSON.stringify(answer));
    const cached = filesUnder(path.join(serveDir, 'cache', 'adapters')).filter((f) => f.endsWith('adapter_model.safetensors'));
    assert.equal(cached.length, 1);
    assert.ok(fs.readFileSync(path.join(serveDir, 'cache', 'adapters', cached[0]!)).equals(reference));

    // No shared directory: the blobs are on the backend; the machines keep no staged file, no work directory, no blob.
    assert.ok((await backendNames(node, `${prefix}/objects/${managedBucketName('p', 'us-central1')}/`)).length >= 1);
    // The staged files go when the job ends (removed by its worker just after the commit).
    await until('the staged files to go', async () => ((await backendNames(node, `${prefix}/staging/`)).length ? undefined : true), 10_000);
    assert.deepEqual(filesUnder(path.join(serveDir, 'objects')), []);
    const victimDir = workDirs[workers.indexOf(victim)]!;
    await until('the survivors to clean up', async () => (workDirs.every((d) => d === victimDir || filesUnder(path.join(d, 'work')).length === 0) ? true : undefined), 10_000);
    for (const d of workDirs) assert.deepEqual(filesUnder(path.join(d, 'objects')), []);
    // The killed worker's work directory stays until a worker starts on it again.
    assert.ok(filesUnder(path.join(victimDir, 'work')).length > 0);
    const again = spawn(process.execPath, [cliMain, 'worker', '--database', database, ...node.flags(prefix), '--work-dir', victimDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    workers.push(again);
    await new Promise<void>((resolve) => again.stdout!.on('data', (d: Buffer) => d.toString().includes('pulling tuning jobs') && resolve()));
    assert.deepEqual(filesUnder(path.join(victimDir, 'work')), []);
  } finally {
    for (const w of workers) w.kill('SIGKILL');
    await serve?.kill('SIGKILL');
    await platform.close();
    await node.kill();
    pg.stop();
  }
});
