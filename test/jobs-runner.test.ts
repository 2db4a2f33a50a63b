// The job runner without HTTP: a server stop (runner.stop) puts a running job back to PENDING and the
// next runner resumes it to SUCCEEDED; a worker that cannot run its job ends it FAILED with a
// google.rpc.Status; a job whose worker dies is FAILED, never left RUNNING; uploads of creates that
// crashed are removed at start.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Platform } from '../src/platform/platform.js';
import { TuningService, type CreateJobRequest } from '../src/platform/jobs/service.js';
import { jobDir, listCheckpoints, TRAIN_FILE } from '../src/platform/jobs/spec.js';
import { seedData } from './helpers/tuning.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-runner-'));
const platform = Platform.open({ dataDir });
seedData(platform);
after(() => {
  platform.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const request = (epochs: number): CreateJobRequest => ({
  project: 'p', location: 'us-central1', baseModel: 'publishers/google/models/gemma3-tiny', baseDir: tinyModelDir('gemma3'),
  tunedModelDisplayName: 'runner', trainingDatasetUri: 'gs://us-data/train.jsonl', epochCount: epochs,
  adapterSize: 'ADAPTER_SIZE_TWO', learningRateMultiplier: 1, authorizeRead: () => undefined,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, f: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v) return v;
    assert.ok(Date.now() - t0 < timeoutMs, `timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('stop puts a running job back to PENDING; the next runner resumes it to SUCCEEDED', async () => {
  const slow = new TuningService(platform, { pollMs: 50, env: { ...process.env, TUNEKIT_JOB_STEP_DELAY_MS: '400' } });
  const job = await slow.create(request(3));
  slow.runner.start();
  const out = path.join(jobDir(dataDir, job.id), 'out');
  await until('the first checkpoint', () => listCheckpoints(out).length > 0);
  await slow.runner.stop();
  const stopped = platform.jobs.find(job.id)!;
  assert.equal(stopped.state, 'JOB_STATE_PENDING');
  assert.ok(stopped.startTime);

  const next = new TuningService(platform, { pollMs: 50 });
  next.runner.start();
  const done = await until('the job to end', () => {
    const j = platform.jobs.find(job.id)!;
    return ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED'].includes(j.state) ? j : undefined;
  });
  await next.runner.stop();
  assert.equal(done.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(done.error));
  assert.equal(done.startTime, stopped.startTime, 'startTime is when the job first ran');
  assert.equal(done.attempts, 2);
  assert.equal((done.result as any).tunedModel.checkpoints.length, 3);
});

test('a worker that cannot run its job ends it FAILED with a status; a killed worker fails its job', async () => {
  const service = new TuningService(platform, { pollMs: 50, env: { ...process.env, TUNEKIT_JOB_STEP_DELAY_MS: '400' } });
  const broken = await service.create(request(1));
  fs.rmSync(path.join(jobDir(dataDir, broken.id), TRAIN_FILE));
  service.runner.start();
  const failed = await until('the job to fail', () => {
    const j = platform.jobs.find(broken.id)!;
    return j.state === 'JOB_STATE_FAILED' ? j : undefined;
  });
  assert.ok(failed.error && failed.error.code > 0 && failed.error.message.length > 0, JSON.stringify(failed.error));

  const victim = await service.create(request(3));
  await until('the worker', () => platform.jobs.find(victim.id)!.state === 'JOB_STATE_RUNNING' && service.runner.running().includes(victim.id));
  await sleep(200);
  // Kill the worker behind the runner's back (an OOM kill, say).
  const { childPids } = await import('./helpers/serve.js');
  for (const pid of childPids(process.pid)) process.kill(pid, 'SIGKILL');
  const dead = await until('the job to fail', () => {
    const j = platform.jobs.find(victim.id)!;
    return j.state === 'JOB_STATE_FAILED' ? j : undefined;
  });
  assert.match(dead.error!.message, /worker was killed by SIGKILL/);
  await service.runner.stop();
});

test('uploads left by crashed creates are removed at start', async () => {
  const stale = path.join(dataDir, 'staging', 'uploads', '999999999-0123abcd');
  fs.mkdirSync(stale, { recursive: true });
  const service = new TuningService(platform);
  service.runner.start();
  await service.runner.stop();
  assert.ok(!fs.existsSync(stale));
});
