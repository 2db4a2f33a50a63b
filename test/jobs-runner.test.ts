// The job runner without HTTP: a server stop (runner.stop) puts a running job back to PENDING and the
// next runner resumes it to SUCCEEDED; a worker that cannot run its job ends it FAILED with a
// google.rpc.Status; a job whose worker dies is FAILED, never left RUNNING; uploads of creates that
// crashed are removed at start; a job's staging directory goes when the job ends (cancelled while
// PENDING or RUNNING, failed) and at start for jobs that ended unwatched; one worker is shared fairly
// across projects (A queues 3 jobs, then B 1: B's runs second). A job the test acts on while it runs
// has LONG epochs: one epoch is one step on the 40 examples, so the run lasts well past the first step
// or checkpoint the test waits for.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Platform } from '../src/platform/platform.js';
import { TuningService, type CreateJobRequest } from '../src/platform/jobs/service.js';
import { jobDir, listCheckpoints, TRAIN_FILE } from '../src/platform/jobs/spec.js';
import type { TuningJobRecord } from '../src/platform/jobs.js';
import { seedData } from './helpers/tuning.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import type { JobRunner } from '../src/platform/jobs/runner.js';
import { sleep, until } from './helpers/until.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-runner-'));
const platform = await Platform.open({ dataDir });
await seedData(platform);
after(async () => {
  await platform.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const request = (epochs: number): CreateJobRequest => ({
  project: 'p', location: 'us-central1', baseModel: 'publishers/google/models/gemma3-tiny', baseDir: tinyModelDir('gemma3'),
  tunedModelDisplayName: 'runner', trainingDatasetUri: 'gs://us-data/train.jsonl', epochCount: epochs,
  adapterSize: 'ADAPTER_SIZE_TWO', learningRateMultiplier: 1, authorizeRead: () => undefined,
});

const LONG = 12;

test('stop puts a running job back to PENDING; the next runner resumes it to SUCCEEDED', async () => {
  const slow = new TuningService(platform, { pollMs: 50 });
  const job = await slow.create(request(LONG));
  await slow.runner.start();
  const out = path.join(jobDir(dataDir, job.id), 'out');
  await until('the first checkpoint', () => listCheckpoints(out).length > 0);
  await slow.runner.stop();
  const stopped = (await platform.jobs.find(job.id))!;
  assert.equal(stopped.state, 'JOB_STATE_PENDING');
  assert.ok(stopped.startTime);

  const next = new TuningService(platform, { pollMs: 50 });
  await next.runner.start();
  const done = await until('the job to end', async () => {
    const j = (await platform.jobs.find(job.id))!;
    return ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED'].includes(j.state) ? j : undefined;
  });
  await next.runner.stop();
  assert.equal(done.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(done.error));
  assert.equal(done.startTime, stopped.startTime, 'startTime is when the job first ran');
  assert.equal(done.attempts, 2);
  assert.equal((done.result as any).tunedModel.checkpoints.length, LONG);
});

test('a worker that cannot run its job ends it FAILED with a status; a killed worker fails its job', async () => {
  const service = new TuningService(platform, { pollMs: 50 });
  const broken = await service.create(request(1));
  fs.rmSync(path.join(jobDir(dataDir, broken.id), TRAIN_FILE));
  await service.runner.start();
  const failed = await until('the job to fail', async () => {
    const j = (await platform.jobs.find(broken.id))!;
    return j.state === 'JOB_STATE_FAILED' ? j : undefined;
  });
  assert.ok(failed.error && failed.error.code > 0 && failed.error.message.length > 0, JSON.stringify(failed.error));

  const victim = await service.create(request(LONG));
  await until('the worker', async () => (await platform.jobs.find(victim.id))!.state === 'JOB_STATE_RUNNING' && (service.runner as JobRunner).running().includes(victim.id));
  await until('its first step', async () => (await platform.jobs.metrics(victim.id)).length > 0);
  // Kill the worker behind the runner's back (an OOM kill, say).
  const { childPids } = await import('./helpers/serve.js');
  for (const pid of childPids(process.pid)) process.kill(pid, 'SIGKILL');
  const dead = await until('the job to fail', async () => {
    const j = (await platform.jobs.find(victim.id))!;
    return j.state === 'JOB_STATE_FAILED' ? j : undefined;
  });
  assert.match(dead.error!.message, /worker was killed by SIGKILL/);
  await service.runner.stop();
});

test('uploads left by crashed creates are removed at start', async () => {
  const stale = path.join(dataDir, 'staging', 'uploads', '999999999-0123abcd');
  fs.mkdirSync(stale, { recursive: true });
  const adapterCopy = path.join(dataDir, 'cache', 'adapters', `${'0'.repeat(24)}.tmp-999999999-1700000000000`);
  fs.mkdirSync(adapterCopy, { recursive: true });
  const service = new TuningService(platform);
  await service.runner.start();
  await service.runner.stop();
  assert.ok(!fs.existsSync(stale));
  assert.ok(!fs.existsSync(adapterCopy), 'a half-made adapter copy of a crashed server is removed too');
});

test('a job\'s staging directory is removed when it ends, and at start for jobs that ended unwatched', async () => {
  await platform.config.setQuotaLimit('concurrent_tuning_jobs', 10);
  try {
    const service = new TuningService(platform, { pollMs: 50 });
    // Cancelled while PENDING (the runner has not started): at once.
    const pending = await service.create(request(1));
    assert.ok(fs.existsSync(jobDir(dataDir, pending.id)));
    assert.equal((await service.cancel('p', 'us-central1', pending.id)).state, 'JOB_STATE_CANCELLED');
    assert.ok(!fs.existsSync(jobDir(dataDir, pending.id)), 'a cancelled PENDING job keeps no staging directory');

    // Ended while no runner watched (another process cancelled it): at the next start.
    const unwatched = await service.create(request(1));
    await platform.jobs.cancel('p', 'us-central1', unwatched.id);
    assert.ok(fs.existsSync(jobDir(dataDir, unwatched.id)));
    // A job that may still run keeps its directory (a resume after a crash needs it).
    const queued = await service.create(request(LONG));
    await service.runner.start();
    assert.ok(!fs.existsSync(jobDir(dataDir, unwatched.id)), 'removed at start');
    assert.ok(fs.existsSync(jobDir(dataDir, queued.id)));

    // Cancelled while RUNNING: once its worker is gone.
    await until('the job to run', async () => (await platform.jobs.find(queued.id))!.state === 'JOB_STATE_RUNNING' && (service.runner as JobRunner).running().includes(queued.id));
    await until('its first step', async () => (await platform.jobs.metrics(queued.id)).length > 0);
    await service.cancel('p', 'us-central1', queued.id);
    await until('the job to be cancelled', async () => (await platform.jobs.find(queued.id))!.state === 'JOB_STATE_CANCELLED');
    await until('its staging directory to go', () => !fs.existsSync(jobDir(dataDir, queued.id)));

    // Failed (no dataset): once its worker is gone.
    const broken = await service.create(request(1));
    fs.rmSync(path.join(jobDir(dataDir, broken.id), TRAIN_FILE));
    await until('the job to fail', async () => (await platform.jobs.find(broken.id))!.state === 'JOB_STATE_FAILED');
    await until('its staging directory to go', () => !fs.existsSync(jobDir(dataDir, broken.id)));
    await service.runner.stop();
  } finally {
    await platform.config.setQuotaLimit('concurrent_tuning_jobs', 1);
  }
});

test('one worker for all projects, shared fairly: A queues 3 jobs, then B queues 1; B\'s job runs second, not fourth', async () => {
  await platform.config.setQuotaLimit('concurrent_tuning_jobs', 10);
  try {
    const service = new TuningService(platform, { pollMs: 50 });
    const a: TuningJobRecord[] = [];
    for (let i = 0; i < 3; i++) a.push(await service.create({ ...request(1), project: 'proj-a' }));
    const b = await service.create({ ...request(1), project: 'proj-b' });
    // Short runs: without its dataset a worker fails at once. What is tested is the order they run in.
    for (const j of [...a, b]) fs.rmSync(path.join(jobDir(dataDir, j.id), TRAIN_FILE));
    await service.runner.start();
    const ended = await until('the four jobs to end', async () => {
      const js = await Promise.all([...a, b].map(async (j) => (await platform.jobs.find(j.id))!));
      return js.every((j) => j.state === 'JOB_STATE_FAILED') ? js : undefined;
    });
    await service.runner.stop();
    const order = [...ended].sort((x, y) => x.startTime!.localeCompare(y.startTime!)).map((j) => j.project);
    assert.deepEqual(order, ['proj-a', 'proj-b', 'proj-a', 'proj-a']);
  } finally {
    await platform.config.setQuotaLimit('concurrent_tuning_jobs', 1);
  }
});
