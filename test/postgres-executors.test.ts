// Routing by worker capability on PostgreSQL (issue 15): a `tunekit worker --executors tunekit` and,
// later, a `tunekit worker --executors trl` (train.py's torch backend, TRL being absent here) share the
// queue. A job labelled tunekit-executor=trl waits PENDING while only the tunekit worker runs (serve's
// reconciler logs why), then the trl worker runs it; jobs labelled tunekit go only to the tunekit
// worker; jobs without the label go to either, which records its executor as the job's label, and a
// retry of one recorded trl, pulled by the tunekit worker, is handed to the trl queue and run there. And
// `--executors` with an unknown name, or trl without a Python that can run it, is refused by name, and
// so is `serve --database --executor` (the workers choose there).
// Needs PostgreSQL's binaries and /usr/bin/python3 with torch; skipped, saying why, without them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Platform } from '../src/platform/platform.js';
import { TuningService } from '../src/platform/jobs/service.js';
import { PgBoss } from 'pg-boss';
import { PostgresJobQueue, TUNING_QUEUE } from '../src/platform/postgres/queue.js';
import { DbRegistrationStore } from '../src/api/db-store.js';
import { registerPublisherModel } from '../src/api/catalog.js';
import { createDatabase, postgresMissing, startPostgres } from './helpers/postgres.js';
import { cliMain } from './helpers/platform.js';
import { seedData } from './helpers/tuning.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import { PYTHON, torchMissing } from './helpers/torch-grads.js';
import { until } from './helpers/until.js';

const TRL_ENV = { TUNEKIT_PYTHON: PYTHON, TUNEKIT_TRL_BACKEND: 'torch' };
const worker = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [cliMain, 'worker', '--database', 'postgres://nobody@localhost/none', '--storage', os.tmpdir(), ...args], { encoding: 'utf8', env: { ...process.env, ...env } });

test('worker --executors refuses an unknown executor, and trl without a Python that runs it, by name', () => {
  let r = worker(['--executors', 'tunekit,deepspeed']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--executors: "deepspeed" is not an executor \(known: tunekit, trl\)/);
  r = worker(['--executors', 'trl'], { TUNEKIT_PYTHON: '/nonexistent/python3', TUNEKIT_TRL_BACKEND: 'torch' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--executors trl: the Python interpreter \/nonexistent\/python3 \(TUNEKIT_PYTHON\) does not start/);
  // A Python without the modules (python3 -I -S imports nothing from site-packages).
  const bare = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-py-')), 'python');
  fs.writeFileSync(bare, `#!/bin/sh\nexec ${PYTHON} -I -S "$@"\n`, { mode: 0o755 });
  r = worker(['--executors', 'tunekit,trl'], { TUNEKIT_PYTHON: bare, TUNEKIT_TRL_BACKEND: 'auto' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--executors trl: the Python interpreter \S+ \(TUNEKIT_PYTHON\) cannot import torch, peft, transformers, trl \(TUNEKIT_TRL_BACKEND=auto needs/);
  fs.rmSync(path.dirname(bare), { recursive: true, force: true });
  // With PostgreSQL the workers choose, so serve's --executor (its own workers' default) is refused.
  r = spawnSync(process.execPath, [cliMain, 'serve', '--database', 'postgres://nobody@localhost/none', '--executor', 'trl'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--executor applies to serve's own workers \(without --database\)/);
});

test('jobs go to the workers of their executor; a trl job waits PENDING until a trl worker starts', { skip: postgresMissing() || torchMissing() }, async () => {
  const server = startPostgres();
  const database = await createDatabase(server.url);
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-shared-'));
  const platform = await Platform.open({ dataDir: storage, database });
  const log: string[] = [];
  const queue = await PostgresJobQueue.open(database, platform, { heartbeatSeconds: 10, log: (m) => log.push(m) });
  const workers = new Map<string, { p: ChildProcess; log: string }>();
  const start = (name: string, executors: string, env: NodeJS.ProcessEnv = {}) => {
    const p = spawn(process.execPath, [cliMain, 'worker', '--database', database, '--storage', storage, '--executors', executors], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
    });
    const w = { p, log: '' };
    p.stdout!.on('data', (d: Buffer) => (w.log += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (w.log += d.toString()));
    workers.set(name, w);
  };
  try {
    await registerPublisherModel(new DbRegistrationStore(platform.db), tinyModelDir('gemma3'), { name: 'gemma3-tiny' });
    await seedData(platform, 8);
    await platform.config.setQuotaLimit('concurrent_tuning_jobs', 10);
    await queue.start();
    const tuning = new TuningService(platform, { queue });
    const create = async (labels?: Record<string, string>) => (await tuning.create({
      project: 'p', location: 'us-central1', baseModel: 'publishers/google/models/gemma3-tiny', baseDir: tinyModelDir('gemma3'),
      tunedModelDisplayName: 'routed', trainingDatasetUri: 'gs://us-data/train.jsonl', epochCount: 1,
      adapterSize: 'ADAPTER_SIZE_TWO', learningRateMultiplier: 1, authorizeRead: () => undefined, ...(labels ? { labels } : {}),
    })).id;
    const ended = (id: string) => until(`job ${id} to end`, async () => {
      const j = await platform.jobs.find(id);
      return j && ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(j.state) ? j : undefined;
    }, 45_000);
    const ranBy = (id: string) => [...workers.entries()].filter(([, w]) => w.log.includes(`job ${id}: running`)).map(([name]) => name);
    const labelOf = async (id: string) => ((await platform.jobs.find(id))!.request as { labels?: Record<string, string> }).labels?.['tunekit-executor'];
    const all = () => [...workers.values()].map((w) => w.log).join('\n');

    // A job that named none, taken by a trl worker that was then lost (by hand: fetched, taken over,
    // its executor recorded, failed so that pg-boss hands it out again): it keeps its executor.
    const handed = await create();
    const boss = new PgBoss({ connectionString: database });
    await boss.start();
    const [q] = await boss.fetch<{ jobId: string }>(TUNING_QUEUE);
    assert.equal(q?.data.jobId, handed);
    const claim = (await platform.jobs.takeOver(handed, 999_999))!;
    await platform.jobs.recordExecutor(handed, 'tunekit-executor', 'trl', claim.attempts);
    await boss.fail(TUNING_QUEUE, [q!]);
    await boss.stop({ graceful: false });

    start('tunekit', 'tunekit');
    const trlJob = await create({ 'tunekit-executor': 'trl' });
    const ownJob = await create({ 'tunekit-executor': 'tunekit' });
    const anyJob = await create();
    for (const id of [ownJob, anyJob]) assert.equal((await ended(id)).state, 'JOB_STATE_SUCCEEDED', all());
    assert.deepEqual(ranBy(ownJob), ['tunekit']);
    assert.deepEqual(ranBy(anyJob), ['tunekit']);
    assert.equal(await labelOf(anyJob), 'tunekit', 'the executor that ran it is recorded as its label');
    assert.match(workers.get('tunekit')!.log, new RegExp(`job ${anyJob}: running \\(attempt 1, executor tunekit, from tunekit-tuning-jobs\\)`));

    // The trl job: no worker of its executor, so PENDING, and the reconciler says why.
    await until('the reconciler to log the waiting trl job', () => log.find((m) => m.startsWith(`job ${trlJob}: PENDING: it names executor trl`)), 45_000);
    assert.equal((await platform.jobs.find(trlJob))!.state, 'JOB_STATE_PENDING');
    assert.deepEqual(ranBy(trlJob), []);
    // The tunekit worker pulled the lost trl run's retry and handed it to the trl queue, unrun.
    assert.match(workers.get('tunekit')!.log, new RegExp(`job ${handed}: handed to the tunekit-tuning-jobs-trl queue`));
    assert.equal((await platform.jobs.find(handed))!.state, 'JOB_STATE_RUNNING');

    start('trl', 'trl', TRL_ENV);
    const done = await ended(trlJob);
    assert.equal(done.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(done.error) + all());
    assert.deepEqual(ranBy(trlJob), ['trl']);
    assert.match(workers.get('trl')!.log, new RegExp(`job ${trlJob}: trl executor: backend torch-reference`));
    assert.equal(await labelOf(trlJob), 'trl');
    const resumed = await ended(handed);
    assert.equal(resumed.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(resumed.error) + all());
    assert.equal(resumed.attempts, 2);
    assert.deepEqual(ranBy(handed), ['trl']);

    // Both running: tunekit jobs still only on the tunekit worker; one without a label on either, recorded.
    const own2 = await create({ 'tunekit-executor': 'tunekit' });
    const any2 = await create();
    for (const id of [own2, any2]) assert.equal((await ended(id)).state, 'JOB_STATE_SUCCEEDED', all());
    assert.deepEqual(ranBy(own2), ['tunekit']);
    const [by, ...more] = ranBy(any2);
    assert.ok(by && more.length === 0, 'one worker ran it');
    assert.equal(await labelOf(any2), by);
  } finally {
    for (const w of workers.values()) w.p.kill('SIGKILL');
    await queue.stop();
    await platform.close();
    server.stop();
    fs.rmSync(storage, { recursive: true, force: true });
  }
});
