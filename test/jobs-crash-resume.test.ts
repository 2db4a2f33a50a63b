// Crash safety of tuning jobs: `tunekit serve` and its worker are killed with SIGKILL once the job's
// first epoch checkpoint exists; a new server finds the job RUNNING without a worker, resumes it from
// that checkpoint, and it reaches SUCCEEDED with exactly the adapter bytes of an uninterrupted run of
// the same job. Nothing is left RUNNING and the loss curve has every step once.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Platform } from '../src/platform/platform.js';
import { jobDir, workDir } from '../src/platform/jobs/spec.js';
import { createBody, JOBS, prepareServeDataDir, waitForJob } from './helpers/tuning.js';
import { childPids, startServe, type ServeProcess } from './helpers/serve.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-crash-'));
const servers: ServeProcess[] = [];
after(async () => {
  for (const s of servers) await s.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('kill -9 of the server mid-training: the job resumes from its checkpoint and ends with the uninterrupted adapter', async () => {
  const keys = await prepareServeDataDir(dataDir);

  const api = (s: ServeProcess) => async (method: string, url: string, body?: unknown): Promise<Record<string, any>> => {
    const res = await fetch(s.url + url, { method, headers: { 'x-goog-api-key': keys.trainer, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return await res.json() as Record<string, any>;
  };
  // 12 epochs of one step each: the run lasts well past the epoch-1 checkpoint the test waits for.
  const body = createBody({ epochs: 12 });

  // The first server, killed right after the epoch-1 checkpoint.
  const first = await startServe(dataDir);
  servers.push(first);
  const job = await api(first)('POST', JOBS, body);
  assert.equal(job.state, 'JOB_STATE_PENDING', JSON.stringify(job));
  const id = job.name.split('/').pop();
  const out = path.join(jobDir(dataDir, id), 'out');
  const t0 = Date.now();
  while (!fs.existsSync(path.join(out, 'checkpoints', 'epoch-1', 'trainer_state.json'))) { // stored last: the checkpoint is complete
    assert.ok(Date.now() - t0 < 60_000, `no checkpoint after 60 s: ${first.stderr}`);
    await sleep(20);
  }
  const workers = childPids(first.pid);
  assert.equal(workers.length, 1, 'one worker process');
  process.kill(workers[0]!, 'SIGKILL');
  await first.kill('SIGKILL');
  const killedAt = new Date().toISOString();
  assert.ok(!fs.existsSync(path.join(workDir(dataDir, id), 'out', 'adapter_model.safetensors')), 'killed before the end');
  assert.ok(!fs.existsSync(path.join(out, 'checkpoints', 'epoch-12')));
  const stuck = await Platform.open({ dataDir });
  assert.equal((await stuck.jobs.find(id))?.state, 'JOB_STATE_RUNNING');
  await stuck.close();

  // A new server resumes it.
  const second = await startServe(dataDir);
  servers.push(second);
  const call = api(second);
  const resumed = await waitForJob(() => call('GET', `/v1/${job.name}`));
  assert.equal(resumed.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(resumed.error));
  assert.ok(resumed.startTime < killedAt, 'startTime is when the job first ran');
  assert.match(second.stderr, new RegExp(`job ${id}: interrupted`));

  // The same job, uninterrupted.
  const again = await call('POST', JOBS, body);
  const clean = await waitForJob(() => call('GET', `/v1/${again.name}`));
  assert.equal(clean.state, 'JOB_STATE_SUCCEEDED');

  const adapter = async (tuned: Record<string, any>) => {
    const model = await call('GET', `/v1/${tuned.tunedModel.model}`);
    const uri = new URL(model.artifactUri.replace(/^gs:/, 'http:'));
    const p = await Platform.open({ dataDir });
    try {
      return await p.storage.readObject(uri.hostname, `${uri.pathname.slice(1)}adapter_model.safetensors`);
    } finally {
      await p.close();
    }
  };
  assert.ok((await adapter(resumed)).equals(await adapter(clean)), 'resumed adapter equals the uninterrupted one');
  assert.deepEqual(resumed.tunedModel.checkpoints.map((c: any) => c.step), clean.tunedModel.checkpoints.map((c: any) => c.step));

  const p = await Platform.open({ dataDir });
  try {
    assert.equal((await p.jobs.find(id))?.attempts, 2);
    const steps = (await p.jobs.metrics(id)).filter((m) => m.name === '/train_total_loss').map((m) => m.step);
    assert.deepEqual(steps, Array.from({ length: steps.length }, (_, i) => i + 1));
    const lossA = (await p.jobs.metrics(id)).filter((m) => m.name === '/train_total_loss').map((m) => m.value);
    const lossB = (await p.jobs.metrics(again.name.split('/').pop())).filter((m) => m.name === '/train_total_loss').map((m) => m.value);
    assert.deepEqual(lossA, lossB);
    assert.equal((await p.jobs.list('p', 'us-central1', { states: ['JOB_STATE_RUNNING', 'JOB_STATE_PENDING'] })).jobs.length, 0);
  } finally {
    await p.close();
  }
});
