// The queue reconciles (issue 15): `serve --database` writes the job row before it sends the queue
// message, so a send that fails leaves a PENDING job with no message. Here the serving process's queue
// connection is gone when the job is created (its pg-boss is stopped): the create still answers the job
// (it will run), logs the failed send, and pg-boss holds no message for it. Two serve processes then
// start (a restart and a replica); each resends every PENDING job, and the job is sent once more by
// hand. A worker runs it once: SUCCEEDED, attempts 1, one queue job, one model version.
// And a RUNNING job whose queue job pg-boss will not hand out again (its workers lost more than
// RETRY_LIMIT times) ends FAILED at the next reconciliation, with an error that says so.
// Needs PostgreSQL's binaries (Debian's postgresql); skipped with a message without them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Platform } from '../src/platform/platform.js';
import { TuningService } from '../src/platform/jobs/service.js';
import { PgBoss } from 'pg-boss';
import { PostgresJobQueue, PostgresWorker, RETRY_LIMIT, TUNING_QUEUE } from '../src/platform/postgres/queue.js';
import { jobDir } from '../src/platform/jobs/spec.js';
import { DbRegistrationStore } from '../src/api/db-store.js';
import { registerPublisherModel } from '../src/api/catalog.js';
import { createDatabase, postgresMissing, startPostgres } from './helpers/postgres.js';
import { seedData } from './helpers/tuning.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a job whose queue send failed is resent by the next serve start and runs exactly once', { skip: postgresMissing() }, async () => {
  const server = startPostgres();
  const database = await createDatabase(server.url);
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-shared-'));
  const platform = await Platform.open({ dataDir: storage, database });
  const queues: PostgresJobQueue[] = [];
  let worker: PostgresWorker | undefined;
  const log: string[] = [];
  try {
    await registerPublisherModel(new DbRegistrationStore(platform.db), tinyModelDir('gemma3'), { name: 'gemma3-tiny' });
    await seedData(platform);
    const queuedFor = async (id: string) =>
      (await platform.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM pgboss.job WHERE name = ? AND data->>'jobId' = ?", TUNING_QUEUE, id))!.n;

    // The first serve process: its queue connection is gone when the job is created.
    const lost = await PostgresJobQueue.open(database, platform, { heartbeatSeconds: 10, log: (m) => log.push(m) });
    await lost.stop();
    const tuning = new TuningService(platform, { queue: lost });
    const created = await tuning.create({
      project: 'p', location: 'us-central1', baseModel: 'publishers/google/models/gemma3-tiny', baseDir: tinyModelDir('gemma3'),
      tunedModelDisplayName: 'unsent', trainingDatasetUri: 'gs://us-data/train.jsonl', epochCount: 2,
      adapterSize: 'ADAPTER_SIZE_TWO', learningRateMultiplier: 1, authorizeRead: () => undefined,
    });
    assert.equal(created.state, 'JOB_STATE_PENDING', 'the create answers the job: it will run');
    assert.match(log.join('\n'), new RegExp(`job ${created.id}: queue send failed \\(.+\\); the queue's reconciliation sends it`));
    const [id, ...others] = await platform.jobs.pendingIds();
    assert.ok(id === created.id && others.length === 0, 'the row was written');
    assert.ok(fs.existsSync(jobDir(storage, id)), 'and its staging directory');
    assert.equal(Number(await queuedFor(id)), 0, 'but no queue message was sent');

    // A restarted serve and a second one: each start resends the PENDING job; a third send by hand.
    for (let i = 0; i < 2; i++) {
      const q = await PostgresJobQueue.open(database, platform, { heartbeatSeconds: 10 });
      queues.push(q);
      await q.start();
    }
    assert.equal(Number(await queuedFor(id)), 1, 'the starts sent it, once');
    await queues[0]!.enqueue(id);
    assert.equal(Number(await queuedFor(id)), 1, 'one queue job, however often it is sent');

    worker = await PostgresWorker.start(platform, database, { log: (m) => log.push(m) });
    let job = await platform.jobs.find(id);
    for (const t0 = Date.now(); job && !['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(job.state); job = await platform.jobs.find(id)) {
      if (Date.now() - t0 > 60_000) throw new Error(`timed out waiting for the job to end: ${job.state}\n${log.join('\n')}\n${JSON.stringify(await platform.db.all('SELECT id, state, retry_count, data FROM pgboss.job'))}\n${JSON.stringify(await platform.db.all("SELECT * FROM pg_locks WHERE locktype = 'advisory'"))}`);
      await sleep(100);
    }
    assert.equal(job?.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(job?.error) + log.join('\n'));
    assert.equal(job.attempts, 1, 'taken by one worker, once');
    assert.equal(log.filter((m) => m.includes(`job ${id}: running`)).length, 1);
    // A later pass leaves the ended job alone: nothing is PENDING, nothing is sent.
    await queues[1]!.start();
    assert.equal(Number(await queuedFor(id)), 1);
    assert.deepEqual(await platform.jobs.pendingIds(), []);
    const versions = await platform.db.all<{ model_id: string }>('SELECT model_id FROM model_versions WHERE tuning_job = ?', id);
    assert.equal(versions.length, 1);
  } finally {
    await worker?.stop();
    for (const q of queues) await q.stop();
    await platform.close();
    server.stop();
    fs.rmSync(storage, { recursive: true, force: true });
  }
});

test('a RUNNING job whose queue retries are exhausted ends FAILED at the next reconciliation, saying why', { skip: postgresMissing() }, async () => {
  const server = startPostgres();
  const database = await createDatabase(server.url);
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-shared-'));
  const platform = await Platform.open({ dataDir: storage, database });
  const log: string[] = [];
  const queue = await PostgresJobQueue.open(database, platform, { heartbeatSeconds: 10, log: (m) => log.push(m) });
  const boss = new PgBoss({ connectionString: database, supervise: false, schedule: false });
  try {
    await registerPublisherModel(new DbRegistrationStore(platform.db), tinyModelDir('gemma3'), { name: 'gemma3-tiny' });
    await seedData(platform);
    const job = await new TuningService(platform, { queue }).create({
      project: 'p', location: 'us-central1', baseModel: 'publishers/google/models/gemma3-tiny', baseDir: tinyModelDir('gemma3'),
      tunedModelDisplayName: 'lost', trainingDatasetUri: 'gs://us-data/train.jsonl', epochCount: 2,
      adapterSize: 'ADAPTER_SIZE_TWO', learningRateMultiplier: 1, authorizeRead: () => undefined,
    });
    // Workers that are lost, RETRY_LIMIT + 1 of them: each pulls the queue job, takes the row over, and
    // its attempt fails (what pg-boss records for a worker whose run threw or whose heartbeat stopped).
    await boss.start();
    for (let i = 0; i <= RETRY_LIMIT; i++) {
      const [q] = await boss.fetch<{ jobId: string }>(TUNING_QUEUE);
      assert.equal(q?.data.jobId, job.id, `attempt ${i + 1} pulls the job`);
      assert.ok(await platform.jobs.takeOver(job.id, 1000 + i));
      await boss.fail(TUNING_QUEUE, q.id);
    }
    assert.deepEqual(await boss.fetch(TUNING_QUEUE), [], 'pg-boss hands it out no more');
    const stuck = await platform.jobs.find(job.id);
    assert.equal(stuck?.state, 'JOB_STATE_RUNNING');
    assert.equal(stuck.attempts, RETRY_LIMIT + 1);

    await queue.start(); // serve's maintenance pass (this process holds the maintenance lock)
    const failed = await platform.jobs.find(job.id);
    assert.equal(failed?.state, 'JOB_STATE_FAILED', log.join('\n'));
    assert.equal(failed.error?.code, 13);
    assert.match(failed.error!.message, new RegExp(`worker was lost ${RETRY_LIMIT + 1} times .*not retried again \\(limit ${RETRY_LIMIT} retries\\)`));
    assert.ok(log.some((m) => m.startsWith(`job ${job.id}: FAILED:`)), log.join('\n'));
    // The last lost worker, were it to wake up, could not end the job again.
    assert.equal(await platform.jobs.finish(job.id, { state: 'JOB_STATE_SUCCEEDED', result: {} }, RETRY_LIMIT + 1), false);
    assert.equal(fs.existsSync(jobDir(storage, job.id)), false, 'the same pass swept its staging directory away');
    assert.match(log.join('\n'), new RegExp(`swept the shared storage: 1 leftover of interrupted work removed: staging/tuning-jobs/${job.id}`));
  } finally {
    await boss.stop({ graceful: false });
    await queue.stop();
    await platform.close();
    server.stop();
    fs.rmSync(storage, { recursive: true, force: true });
  }
});
