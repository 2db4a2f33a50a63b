// SIGTERM to a real `tunekit serve` during each kind of work (issue 8): the process stops accepting,
// its clients in flight get 503 UNAVAILABLE (a status, or a last SSE error event), it exits 0 with
// "stopped", and a new server on the same data directory finds everything as it was. A server whose
// output nobody reads any more keeps serving.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyModelDir } from './helpers/tiny-models.js';
import { startServe, type ServeProcess } from './helpers/serve.js';
import { PREFIX, userText } from './helpers/api-app.js';
import { Platform } from '../src/platform/platform.js';
import { jobDir } from '../src/platform/jobs/spec.js';
import { createBody, JOBS, makeKeys, seedData, waitForJob } from './helpers/tuning.js';
import { childPids } from './helpers/serve.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-shutdown-'));
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));
execFileSync(process.execPath, [CLI, 'publisher-models', 'register', tinyModelDir('gemma3'), '--name', 'gemma3-tiny', '--data-dir', dataDir]);

const LONG = { ...userText('Go on'), generationConfig: { temperature: 0, maxOutputTokens: 4000 } };

async function serve(): Promise<ServeProcess> {
  return startServe(dataDir, {}, ['--insecure-no-auth']);
}

/** SIGTERM, then the exit; fails the test if the process outlives a generous guard. */
async function terminate(s: ServeProcess): Promise<void> {
  const guard = setTimeout(() => void s.kill('SIGKILL'), 30_000);
  await s.kill('SIGTERM');
  clearTimeout(guard);
  assert.match(s.stderr, /SIGTERM: shutting down/);
  assert.match(s.stderr, /tunekit: stopped/, `the server did not stop cleanly:\n${s.stderr}`);
  assert.doesNotMatch(s.stderr, /internal error|database connection is not open|Controller is already closed/i);
}

const post = (s: ServeProcess, verb: string, body: unknown) =>
  fetch(`${s.url}${PREFIX}/gemma3-tiny:${verb}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

test('SIGTERM while generating: the non-streaming client gets 503, the SSE client a 503 error event', async () => {
  const s = await serve();
  const sse = await post(s, 'streamGenerateContent?alt=sse', LONG);
  assert.equal(sse.status, 200);
  const reader = sse.body!.getReader();
  assert.ok(!(await reader.read()).done, 'the stream started');
  const plain = post(s, 'generateContent', LONG); // queued behind the stream
  await new Promise((r) => setTimeout(r, 100));
  const stopped = terminate(s);
  let rest = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    rest += new TextDecoder().decode(value);
  }
  const events = rest.split('\r\n\r\n').filter((e) => e !== '');
  assert.deepEqual(JSON.parse(events[events.length - 1]!.slice('data: '.length)), {
    error: { code: 503, message: 'The server is shutting down; retry the request.', status: 'UNAVAILABLE', details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'UNAVAILABLE', domain: 'aiplatform.googleapis.com' }, { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '5s' }] },
  });
  const res = await plain;
  assert.equal(res.status, 503);
  assert.equal(((await res.json()) as { error: { status: string } }).error.status, 'UNAVAILABLE');
  await stopped;
});

test('SIGTERM while a large prompt is tokenized on a worker thread: 503, and the process exits', async () => {
  const s = await serve();
  const counting = post(s, 'countTokens', userText('fox jumps '.repeat(6000)));
  await new Promise((r) => setTimeout(r, 50));
  await terminate(s);
  const res = await counting;
  assert.equal(res.status, 503);
});

test('SIGTERM when idle exits at once; connections are refused afterwards; a new server sees the same data', async () => {
  const s = await serve();
  const before = await (await fetch(`${s.url}/v1/publishers/google/models`)).json();
  await terminate(s);
  await assert.rejects(fetch(`${s.url}/v1/publishers/google/models`));
  const again = await serve();
  try {
    assert.deepEqual(await (await fetch(`${again.url}/v1/publishers/google/models`)).json(), before);
    const r = await post(again, 'generateContent', { ...userText('hi'), generationConfig: { maxOutputTokens: 2 } });
    assert.equal(r.status, 200);
  } finally {
    await terminate(again);
  }
});

test('clients that disconnect mid-stream, queued or mid-body leave no noise in the log and the model free', async () => {
  const s = await serve();
  try {
    const { request } = await import('node:http');
    const giveUp = (verb: string, body: string, ms: number, partial = false) => new Promise<void>((resolve) => {
      const req = request(`${s.url}${PREFIX}/gemma3-tiny:${verb}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(partial ? { 'content-length': String(body.length * 2) } : {}) } }, (res) => res.resume());
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      if (partial) req.write(body);
      else req.end(body);
      setTimeout(() => req.destroy(), ms);
    });
    const long = JSON.stringify(LONG);
    await Promise.all([
      giveUp('streamGenerateContent?alt=sse', long, 300),
      giveUp('streamGenerateContent?alt=sse', long, 100),
      giveUp('generateContent', long, 200),
      giveUp('countTokens', long, 100, true),
    ]);
    const r = await post(s, 'generateContent', { ...userText('hi'), generationConfig: { maxOutputTokens: 2 } });
    assert.equal(r.status, 200);
    await r.json();
  } finally {
    await terminate(s);
  }
  assert.equal(s.stderr.replace(/.*(SIGTERM: shutting down|tunekit: stopped|no BLAS library found|matrix products via|\*\*\*|WARNING).*\n?/g, '').trim(), '', 'stderr');
  assert.doesNotMatch(s.stdout, /aborted|Error/);
});

test('SIGTERM while a tuning job trains: its worker is stopped, the job waits PENDING and the next server finishes it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-shutdown-job-'));
  try {
    const setup = await Platform.open({ dataDir: dir });
    execFileSync(process.execPath, [CLI, 'publisher-models', 'register', tinyModelDir('gemma3'), '--name', 'gemma3-tiny', '--data-dir', dir]);
    await seedData(setup);
    const keys = await makeKeys(setup);
    await setup.close();
    const call = (s: ServeProcess) => async (method: string, url: string, body?: unknown): Promise<Record<string, any>> => {
      const res = await fetch(s.url + url, { method, headers: { 'x-goog-api-key': keys.trainer, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      return await res.json() as Record<string, any>;
    };
    const first = await startServe(dir);
    // 8 epochs of one step each: still training when the server is told to stop.
    const job = await call(first)('POST', JOBS, createBody({ epochs: 8 }));
    assert.equal(job.state, 'JOB_STATE_PENDING', JSON.stringify(job));
    const id = job.name.split('/').pop();
    const t0 = Date.now();
    while ((await call(first)('GET', `/v1/${job.name}`)).state !== 'JOB_STATE_RUNNING') {
      assert.ok(Date.now() - t0 < 60_000, 'the job never ran');
      await new Promise((r) => setTimeout(r, 50));
    }
    const workers = childPids(first.pid);
    assert.equal(workers.length, 1);
    await terminate(first);
    assert.deepEqual(workers.filter((pid) => fs.existsSync(`/proc/${pid}`)), [], 'no orphaned worker');
    const stopped = await Platform.open({ dataDir: dir });
    assert.equal((await stopped.jobs.find(id))?.state, 'JOB_STATE_PENDING');
    await stopped.close();
    assert.ok(fs.existsSync(jobDir(dir, id)), 'the staged datasets are kept for the resumed run');

    const second = await startServe(dir);
    try {
      const done = await waitForJob(() => call(second)('GET', `/v1/${job.name}`));
      assert.equal(done.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(done.error));
    } finally {
      await terminate(second);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the reader of its output goes away (the script that started it was killed): the server keeps serving', async () => {
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => { const p = (probe.address() as net.AddressInfo).port; probe.close(() => resolve(p)); });
  });
  const child = spawn(process.execPath, [CLI, 'serve', '--port', String(port), '--data-dir', dataDir, '--insecure-no-auth'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
  // Nobody reads stdout or stderr any more: the server's first line ("serving ... at") meets a closed pipe (EPIPE).
  child.stdout.destroy();
  child.stderr.destroy();
  let answered = false;
  for (let i = 0; i < 300 && !answered && child.exitCode === null; i++) {
    answered = await fetch(`http://127.0.0.1:${port}/v1/publishers/google/models`).then((r) => r.ok, () => false);
    if (!answered) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(answered, `the server stopped (exit ${child.exitCode}) instead of serving`);
  const r = await post({ url: `http://127.0.0.1:${port}` } as ServeProcess, 'generateContent', { ...userText('hi'), generationConfig: { maxOutputTokens: 2 } });
  assert.equal(r.status, 200);
  child.kill('SIGTERM');
  assert.equal(await exit, 0);
});
