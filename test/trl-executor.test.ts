// The trl executor (src/train/trl-executor.ts + executors/trl/train.py) through the API, on CPU: here
// TRL is not installed, so train.py's torch backend runs (tools/torch-reference/model.py under a plain
// loop that follows the TRL spec); the contract — files in, events, checkpoints, adapter out — is the
// one the TRL backend keeps. A job labelled tunekit-executor=trl ends SUCCEEDED with Vertex's metrics,
// a registered, served adapter whose eval loss matches the same job trained by tunekit's own trainer
// (same data, seed and initial adapter) within EVAL_LOSS_TOLERANCE, with the same greedy answers on
// held-out prompts; the metrics are visible while it runs; cancel kills the Python process; a Python
// process killed by SIGKILL after a checkpoint is restarted from it and ends with the uninterrupted
// run's adapter, bit for bit; a Python error fails the job with its last lines; a malformed event
// line or a bad adapter is refused by name. Skipped, saying why, where python3-torch is missing.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PYTHON, torchMissing } from './helpers/torch-grads.js';
import { createBody, JOBS, tuningPlatform, waitForJob } from './helpers/tuning.js';
import { formatTask, writeVertexJsonl } from './helpers/format-task.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import { workDir } from '../src/platform/jobs/spec.js';
import { DEFAULT_TUNE_OPTIONS, type TuneOptions } from '../src/train/trainer.js';
import { parseEventLine, TRL_PROGRAM, tuneWithTrl } from '../src/train/trl-executor.js';
import { sleep, until } from './helpers/until.js';

const skip = torchMissing();
/** |eval loss (trl) − eval loss (tunekit)| / eval loss (tunekit); observed ~1e-7 (float32 both sides). */
const EVAL_LOSS_TOLERANCE = 1e-4;
const HELD_OUT = formatTask(4, 3).map((e) => e.input);
/** The parity job: enough steps and learning rate that the tuned answers differ from the base model's. */
const PARITY = { epochs: 5, lrm: 25 } as const;

if (!skip) process.env.TUNEKIT_PYTHON = PYTHON; // the workers the runner forks inherit it
// 160 examples: 3 optimizer steps an epoch (2048-token batches)
const t = skip ? undefined : await tuningPlatform({ examples: 160 });
after(() => t?.close());
const call = (method: string, url: string, body?: unknown) => t!.call(method, url, t!.keys.trainer, body);
const get = (name: string) => async () => (await call('GET', `/v1/${name}`)).json;
const trl = (extra: Parameters<typeof createBody>[0] = {}) => ({ ...createBody(extra), labels: { 'tunekit-executor': 'trl' } });

async function run(body: Record<string, unknown>): Promise<Record<string, any>> {
  const created = await call('POST', JOBS, body);
  assert.equal(created.status, 200, JSON.stringify(created.json));
  return created.json;
}

async function metric(job: string, name: string): Promise<{ step: string; value: number }[]> {
  const m = (await call('GET', `/v1/${job}/metrics`)).json;
  return m.metrics.find((s: any) => s.name === name)?.points ?? [];
}

async function adapterBytes(job: Record<string, any>): Promise<Buffer> {
  const uri = (await call('GET', `/v1/${job.tunedModel.model}`)).json.artifactUri as string;
  return fs.readFileSync(path.join(await t!.tuning.adapterDir(uri), 'adapter_model.safetensors'));
}

async function answers(endpoint: string): Promise<string[]> {
  const out: string[] = [];
  for (const text of HELD_OUT) {
    const r = await call('POST', `/v1/${endpoint}:generateContent`, { contents: [{ role: 'user', parts: [{ text }] }], generationConfig: { temperature: 0, maxOutputTokens: 8 } });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    out.push(r.json.candidates[0].content.parts?.[0]?.text ?? '');
  }
  return out;
}

/** Pids of the live train.py processes of a job (its work directory is in their command line). */
function pythonPids(jobName: string): number[] {
  const dir = workDir(t!.dataDir, jobName.split('/').pop()!);
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      const state = /\) (\S)/.exec(fs.readFileSync(`/proc/${e}/stat`, 'utf8'))?.[1];
      if (cmd.includes(TRL_PROGRAM) && cmd.some((a) => a.startsWith(dir)) && state !== 'Z') out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

/** Whether a process exists and has not exited (a zombie has). */
function alive(pid: number): boolean {
  try {
    return !/\) [ZX]/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

let tunekitJob: Record<string, any>;
let trlJob: Record<string, any>;

test('an unknown executor is refused by name at create', { skip }, async () => {
  const r = await call('POST', JOBS, { ...createBody(), labels: { 'tunekit-executor': 'deepspeed' } });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /labels\["tunekit-executor"\].*"deepspeed".*one of tunekit, trl/);
});

test('a trl job ends SUCCEEDED and matches the same job trained by tunekit: eval loss, learning rates, greedy answers', { skip }, async () => {
  tunekitJob = await waitForJob(get((await run(createBody(PARITY))).name));
  assert.equal(tunekitJob.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(tunekitJob.error));
  trlJob = await waitForJob(get((await run(trl(PARITY))).name));
  assert.equal(trlJob.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(trlJob.error));
  assert.deepEqual(trlJob.labels, { 'tunekit-executor': 'trl' });
  const [a, b] = [tunekitJob.name, trlJob.name];

  // The same steps (tunekit's plan), the same schedule (transformers' lambdas vs tunekit's), close losses.
  const lrA = await metric(a, '/learning_rate');
  const lrB = await metric(b, '/learning_rate');
  assert.deepEqual(lrB.map((p) => p.step), lrA.map((p) => p.step));
  lrA.forEach((p, i) => assert.ok(Math.abs(lrB[i]!.value - p.value) <= 1e-12 + 1e-9 * p.value, `learning rate at step ${p.step}`));
  assert.deepEqual((await metric(b, '/train_num_predictions')).map((p) => p.value), (await metric(a, '/train_num_predictions')).map((p) => p.value));
  const evalA = (await metric(a, '/eval_total_loss')).at(-1)!;
  const evalB = (await metric(b, '/eval_total_loss')).at(-1)!;
  assert.equal(evalB.step, evalA.step);
  const rel = Math.abs(evalB.value - evalA.value) / evalA.value;
  assert.ok(rel <= EVAL_LOSS_TOLERANCE, `eval loss ${evalB.value} (trl) vs ${evalA.value} (tunekit): ${rel}`);
  process.stderr.write(`trl executor parity: eval loss ${evalB.value} (trl, torch backend) vs ${evalA.value} (tunekit), relative difference ${rel.toExponential(2)}\n`);

  // Registered like tunekit's own: a model version with the PEFT adapter, checkpoints, an endpoint that serves it.
  const tm = trlJob.tunedModel;
  assert.deepEqual(tm.checkpoints.map((c: any) => [c.checkpointId, c.epoch, c.step]), tunekitJob.tunedModel.checkpoints.map((c: any) => [c.checkpointId, c.epoch, c.step]));
  const model = (await call('GET', `/v1/${tm.model}`)).json;
  const adapter = await t!.tuning.adapterDir(model.artifactUri);
  assert.deepEqual(fs.readdirSync(adapter).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
  const said = await answers(tm.endpoint);
  assert.deepEqual(said, await answers(tunekitJob.tunedModel.endpoint));
  process.stderr.write(`greedy answers of both: ${JSON.stringify(said)}\n`);
});

test('metrics are visible in Vertex names while a trl job runs; cancel kills its Python process', { skip }, async () => {
  const job = await run(trl({ epochs: 20 }));
  const losses = await until('a train loss while RUNNING', async () => {
    const [state, points] = [(await get(job.name)()).state, await metric(job.name, '/train_total_loss')];
    return state === 'JOB_STATE_RUNNING' && points.length > 0 ? points : undefined;
  });
  assert.ok(losses[0]!.value > 0);
  const pids = pythonPids(job.name);
  assert.equal(pids.length, 1, `one train.py process: ${JSON.stringify(pids)}`);
  assert.equal((await call('POST', `/v1/${job.name}:cancel`, {})).status, 200);
  const ended = await waitForJob(get(job.name));
  assert.equal(ended.state, 'JOB_STATE_CANCELLED', JSON.stringify(ended));
  await until('the Python process gone', () => (alive(pids[0]!) ? undefined : true), 10_000);
});

test('a Python process killed after a checkpoint is restarted from it and ends with the uninterrupted adapter', { skip }, async () => {
  const job = await run(trl(PARITY));
  const dir = workDir(t!.dataDir, job.name.split('/').pop()!);
  await until('the epoch-1 checkpoint', () => fs.existsSync(path.join(dir, 'out', 'checkpoints', 'epoch-1')) || undefined);
  const [pid] = pythonPids(job.name);
  assert.ok(pid, 'train.py runs after its first checkpoint');
  process.kill(pid, 'SIGKILL');
  const done = await waitForJob(get(job.name));
  assert.equal(done.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(done.error));
  assert.ok((await adapterBytes(done)).equals(await adapterBytes(trlJob)), 'the resumed adapter equals the uninterrupted run\'s');
});

test('a Python error ends the job FAILED with its last lines', { skip }, async () => {
  process.env.TUNEKIT_TRL_BACKEND = 'trl'; // TRL is not installed here: train.py stops with an error
  try {
    const failed = await waitForJob(get((await run(trl({ epochs: 1 }))).name));
    assert.equal(failed.state, 'JOB_STATE_FAILED');
    assert.equal(failed.error.code, 13);
    assert.match(failed.error.message, /trl executor .*exited with code 1 at step 0; its last output:\n.*--backend trl: TRL, PEFT or transformers is not importable here \(No module named/s);
  } finally {
    delete process.env.TUNEKIT_TRL_BACKEND;
  }
});

test('malformed event lines are refused naming the line and the field', () => {
  const bad: [string, RegExp][] = [
    ['not json', /event line 7 \("not json"\) is not JSON/],
    ['[1]', /is not a JSON object/],
    ['{"type":"log"}', /field "type" must be one of start, step, eval, checkpoint, done/],
    ['{"type":"checkpoint","epoch":1}', /field "step" must be a non-negative integer, got undefined/],
    ['{"type":"checkpoint","epoch":1.5,"step":3}', /field "epoch" must be a non-negative integer/],
    ['{"type":"eval","step":1,"epoch":1,"eval_total_loss":"NaN","eval_fraction_of_correct_next_step_preds":0,"eval_num_predictions":3}', /field "eval_total_loss" must be a finite number, got "NaN"/],
    ['{"type":"done","extra":1}', /unknown field "extra" in a done event/],
  ];
  for (const [line, message] of bad) assert.throws(() => parseEventLine(line, 7), message);
  assert.deepEqual(parseEventLine('{"type":"checkpoint","epoch":1,"step":6}', 1), { type: 'checkpoint', epoch: 1, step: 6 });
});

/** A run of tuneWithTrl whose interpreter is a shell script around the real one (`body` runs it). */
async function runWith(body: string): Promise<unknown> {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-trl-'));
  try {
    writeVertexJsonl(path.join(d, 'train.jsonl'), formatTask(12, 1));
    const python = path.join(d, 'python');
    fs.writeFileSync(python, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    const o: TuneOptions = {
      ...DEFAULT_TUNE_OPTIONS, adapterSize: 2, epochs: 1, maxSeqLen: 256, batchTokens: 256,
      baseDir: tinyModelDir('llama'), trainFile: path.join(d, 'train.jsonl'), outDir: path.join(d, 'out'),
    };
    return await tuneWithTrl(o, { python, backend: 'auto' }).then(() => 'no error', (err: unknown) => err);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}

test('a malformed event line stops the program and fails the run', { skip }, async () => {
  const err = await runWith(`echo 'step 1 loss 2.5' >&3\nexec ${PYTHON} "$@"`);
  assert.match(String(err), /the trl executor's event line 1 \("step 1 loss 2.5"\) is not JSON/);
});

test('an adapter that does not match the job is refused', { skip }, async () => {
  // The real program, then its adapter's rank changed from 2 to 4.
  const err = await runWith(`${PYTHON} "$@" || exit $?\nout=$(echo "$@" | sed 's/.*--out \\([^ ]*\\).*/\\1/')\nsed -i 's/"r": 2/"r": 4/' "$out/adapter_config.json"`);
  assert.match(String(err), /the trl executor wrote the final adapter, which tunekit cannot use: .*adapter_model\.safetensors.*shape/);
});
