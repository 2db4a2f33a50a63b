// Many machines on PostgreSQL (issue 15): `tunekit serve --database`'s tuning service queues a job, three
// `tunekit worker` processes share the database and one storage directory, and the worker running the
// job is killed with SIGKILL after its first epoch checkpoint. Another worker takes the job over (after
// the heartbeat timeout), resumes from the checkpoint and ends it SUCCEEDED: attempts 2, one registry
// version, one endpoint, every step's metrics once, and an adapter byte-for-byte equal to an
// uninterrupted run's (the trainer's resume is exact: same seeds, same data order, same float ops on
// the same machine, so bit-identical is the claim, not a tolerance).
// Needs PostgreSQL's binaries (Debian's postgresql); skipped with a message without them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Platform } from '../src/platform/platform.js';
import { TuningService } from '../src/platform/jobs/service.js';
import { PostgresJobQueue } from '../src/platform/postgres/queue.js';
import { jobDir, readJobSpec, TRAIN_FILE } from '../src/platform/jobs/spec.js';
import { managedBucketName } from '../src/platform/jobs/outcome.js';
import { DbRegistrationStore } from '../src/api/db-store.js';
import { registerPublisherModel } from '../src/api/catalog.js';
import { tune } from '../src/train/trainer.js';
import { createDatabase, postgresMissing, startPostgres } from './helpers/postgres.js';
import { cliMain } from './helpers/platform.js';
import { seedData } from './helpers/tuning.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import { sleep, until } from './helpers/until.js';

test('three workers on PostgreSQL, the one running the job SIGKILLed mid-run: another resumes it to SUCCEEDED with the uninterrupted adapter', { skip: postgresMissing() }, async () => {
  const server = startPostgres();
  const database = await createDatabase(server.url);
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-shared-'));
  const platform = await Platform.open({ dataDir: storage, database });
  const queue = await PostgresJobQueue.open(database, platform, { heartbeatSeconds: 10 });
  const workers: ChildProcess[] = [];
  const logs = new Map<number, string>();
  try {
    await registerPublisherModel(new DbRegistrationStore(platform.db), tinyModelDir('gemma3'), { name: 'gemma3-tiny' });
    await seedData(platform);
    const tuning = new TuningService(platform, { queue });
    const job = await tuning.create({
      project: 'p', location: 'us-central1', baseModel: 'publishers/google/models/gemma3-tiny', baseDir: tinyModelDir('gemma3'),
      tunedModelDisplayName: 'many-machines', trainingDatasetUri: 'gs://us-data/train.jsonl', epochCount: 12,
      adapterSize: 'ADAPTER_SIZE_TWO', learningRateMultiplier: 1, authorizeRead: () => undefined,
    });
    // What the job trains, kept for the uninterrupted reference run (the staging copy goes when it ends).
    const ref = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-ref-'));
    fs.copyFileSync(path.join(jobDir(storage, job.id), TRAIN_FILE), path.join(ref, TRAIN_FILE));
    const spec = readJobSpec(jobDir(storage, job.id));

    for (let i = 0; i < 3; i++) {
      const w = spawn(process.execPath, [cliMain, 'worker', '--database', database, '--storage', storage], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      logs.set(w.pid!, '');
      const add = (d: Buffer) => logs.set(w.pid!, logs.get(w.pid!) + d.toString());
      w.stdout!.on('data', add);
      w.stderr!.on('data', add);
      workers.push(w);
    }

    // The worker holding the job, once its first epoch checkpoint is recorded.
    const running = await until('the first checkpoint', async () => {
      const j = await platform.jobs.find(job.id);
      return j?.state === 'JOB_STATE_RUNNING' && j.checkpoint && j.workerPid ? j : undefined;
    }, 60_000);
    const victim = workers.find((w) => w.pid === running.workerPid);
    assert.ok(victim, `the job runs in one of the three workers (pid ${running.workerPid})`);
    assert.equal(running.attempts, 1);
    victim.kill('SIGKILL');

    const done = await until('the job to end', async () => {
      const j = await platform.jobs.find(job.id);
      return j && ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(j.state) ? j : undefined;
    }, 90_000);
    assert.equal(done.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(done.error) + [...logs.values()].join('\n'));
    assert.equal(done.attempts, 2, 'taken over once');
    const takers = [...logs.entries()].filter(([, log]) => log.includes(`job ${job.id}: running`)).map(([pid]) => pid);
    assert.equal(takers.length, 2, 'two workers ran it');
    assert.ok(takers.includes(victim.pid!));

    // Nothing run twice: one model version for the job, one endpoint, each step's metrics once.
    const versions = await platform.db.all<{ model_id: string }>('SELECT model_id FROM model_versions WHERE tuning_job = ?', job.id);
    assert.equal(versions.length, 1);
    assert.equal((await platform.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM endpoints'))!.n, 1);
    assert.equal((await platform.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM tuning_jobs WHERE state = 'JOB_STATE_SUCCEEDED'"))!.n, 1);
    const losses = (await platform.jobs.metrics(job.id)).filter((m) => m.name === '/train_total_loss').map((m) => m.step);
    assert.deepEqual(losses, Array.from({ length: losses.length }, (_, i) => i + 1));
    // The staging copy is removed by the worker once the job has ended (just after the commit).
    await until('the staging copy to be removed', async () => (fs.existsSync(jobDir(storage, job.id)) ? undefined : true), 10_000);

    // Nothing lost: the stored adapter equals an uninterrupted run's, bit for bit.
    await tune({ ...spec.options, baseDir: spec.baseDir, trainFile: path.join(ref, TRAIN_FILE), outDir: path.join(ref, 'out') });
    const stored = await platform.storage.readObject(managedBucketName('p', 'us-central1'), `tuningJobs/${job.id}/adapter/adapter_model.safetensors`);
    assert.ok(stored.equals(fs.readFileSync(path.join(ref, 'out', 'adapter_model.safetensors'))), 'resumed adapter equals the uninterrupted one');
    fs.rmSync(ref, { recursive: true, force: true });
  } finally {
    for (const w of workers) w.kill('SIGKILL');
    await queue.stop();
    await platform.close();
    server.stop();
    fs.rmSync(storage, { recursive: true, force: true });
  }
});
