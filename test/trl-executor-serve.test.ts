// `tunekit serve --executor trl`: jobs without a tunekit-executor label are trained by the trl
// executor (train.py's torch backend here, TRL being absent). Its server and worker are killed with
// SIGKILL after the job's first epoch checkpoint: the Python process dies with its worker, and a new
// server resumes the job from that checkpoint (train.py --resume) to SUCCEEDED, each step's metrics
// once. A label tunekit-executor=tunekit overrides the default. A bad --executor is refused by name.
// Skipped, saying why, where python3-torch is missing.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jobDir } from '../src/platform/jobs/spec.js';
import { TRL_PROGRAM } from '../src/train/trl-executor.js';
import { createBody, JOBS, prepareServeDataDir, waitForJob } from './helpers/tuning.js';
import { childPids, startServe, type ServeProcess } from './helpers/serve.js';
import { PYTHON, torchMissing } from './helpers/torch-grads.js';

const skip = torchMissing();
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-trl-serve-'));
const servers: ServeProcess[] = [];
after(async () => {
  for (const s of servers) await s.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ENV = { TUNEKIT_PYTHON: PYTHON };

test('serve --executor refuses an unknown executor by name', () => {
  const r = spawnSync(process.execPath, [CLI, 'serve', '--executor', 'deepspeed', '--data-dir', dataDir], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--executor must be one of tunekit, trl, got "deepspeed"/);
});

test('serve --executor trl: a lost worker\'s trl job resumes from its checkpoint; a label overrides the default', { skip }, async () => {
  const keys = await prepareServeDataDir(dataDir);
  const api = (s: ServeProcess) => async (method: string, url: string, body?: unknown): Promise<Record<string, any>> => {
    const res = await fetch(s.url + url, { method, headers: { 'x-goog-api-key': keys.trainer, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    return await res.json() as Record<string, any>;
  };

  // 8 epochs of one step each, no label: the server's default executor, trl.
  const first = await startServe(dataDir, ENV, ['--executor', 'trl']);
  servers.push(first);
  const job = await api(first)('POST', JOBS, createBody({ epochs: 8 }));
  assert.equal(job.state, 'JOB_STATE_PENDING', JSON.stringify(job));
  const id = job.name.split('/').pop();
  const out = path.join(jobDir(dataDir, id), 'out');
  const t0 = Date.now();
  while (!fs.existsSync(path.join(out, 'checkpoints', 'epoch-1', 'trainer_state.json'))) { // stored last: the checkpoint is complete
    assert.ok(Date.now() - t0 < 60_000, `no checkpoint after 60 s: ${first.stderr}`);
    await sleep(20);
  }
  const [worker] = childPids(first.pid);
  const pythons = childPids(worker!).filter((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(TRL_PROGRAM));
  assert.equal(pythons.length, 1, 'the worker runs train.py');
  process.kill(worker!, 'SIGKILL');
  await first.kill('SIGKILL');
  const alive = (pid: number) => {
    try {
      return !/\) [ZX]/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  for (let i = 0; alive(pythons[0]!); i++) {
    assert.ok(i < 500, 'train.py outlived its worker');
    await sleep(20);
  }
  assert.match(first.stderr, new RegExp(`job ${id}: trl executor: backend torch-reference\\n`));

  const second = await startServe(dataDir, ENV, ['--executor', 'trl']);
  servers.push(second);
  const call = api(second);
  const done = await waitForJob(() => call('GET', `/v1/${job.name}`));
  assert.equal(done.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(done.error));
  assert.match(second.stderr, new RegExp(`job ${id}: trl executor: backend torch-reference, resuming at step \\d+\\n`));
  const loss = (await call('GET', `/v1/${job.name}/metrics`)).metrics.find((m: any) => m.name === '/train_total_loss');
  assert.deepEqual(loss.points.map((p: any) => Number(p.step)), [1, 2, 3, 4, 5, 6, 7, 8]);

  // The label overrides the server's default: tunekit's own trainer, no Python.
  const own = await call('POST', JOBS, { ...createBody({ epochs: 1 }), labels: { 'tunekit-executor': 'tunekit' } });
  assert.equal((await waitForJob(() => call('GET', `/v1/${own.name}`))).state, 'JOB_STATE_SUCCEEDED');
  assert.doesNotMatch(second.stderr, new RegExp(`job ${own.name.split('/').pop()}: trl executor`));
});
