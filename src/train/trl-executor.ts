// The `trl` executor: a tuning run trained by Hugging Face TRL (SFTTrainer + PEFT LoRA) in a Python
// process, on exactly the data the TypeScript trainer would train. This side renders and plans the
// run as trainer.ts does (chat template, loss mask, packing, micro-batches, steps, epochs, seed,
// learning-rate schedule), writes it as files, runs executors/trl/train.py on them and turns what
// that program reports into the trainer's events. The contract (executors/trl/README.md):
// - in: `<outDir>/trl-input/` — job.json (hyper-parameters, schedule, fingerprint), the initial LoRA
//   adapter (PEFT layout; the one trainer.ts would start from), and per split the examples of every
//   micro-batch of every step of every epoch in training order: input_ids and labels as little-endian
//   int32 files (labels -100 where the loss mask is 0, Hugging Face's convention) plus a layout file;
// - out: one JSON object per line on file descriptor 3 (start, step, eval, checkpoint, done; the
//   fields of trainer.ts's StepMetrics and EvalMetrics), epoch checkpoints in `<outDir>/checkpoints/
//   epoch-N/` (trainer_state.json with epoch and step, the PEFT adapter, the optimizer's moments), and
//   the final PEFT adapter in `<outDir>`. A line that breaks the contract, or an adapter that does not
//   load against the base model, fails the run with an error naming it.
// Failures: the program's exit with an error fails the run with its last lines (its stdout and stderr
// also go to `<outDir>/trl-executor.log`). Killed by a signal (OOM killer, an operator), it is started
// again from its newest checkpoint when it wrote one since its last start; otherwise the run fails.
// The program dies with this process (PR_SET_PDEATHSIG, and a parent check between steps), so a
// cancelled job's worker, killed, takes it along.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidRequestError } from '../errors.js';
import { loadModelConfig } from '../models/loader.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { initLoraAdapter } from '../lora/lora.js';
import { loadAdapter, saveAdapter } from '../lora/peft.js';
import type { LoraTarget } from '../lora/lora.js';
import { DEFAULT_ADAMW } from './adamw.js';
import { warmupStepsFor } from './schedule.js';
import { planEpoch, type StepPlan } from './batches.js';
import { checkpointDir, CHECKPOINT_FILES } from './checkpoint.js';
import {
  batchingOf, DEFAULT_LEARNING_RATE, fingerprintOf, initialAdapter, loraConfigFor, tokenizeDataset, validateTuneOptions,
  type EvalMetrics, type StepMetrics, type TrainEvent, type TuneOptions,
} from './trainer.js';

/** The program the executor runs (shipped in the repository, next to its README). */
export const TRL_PROGRAM = fileURLToPath(new URL('../../../executors/trl/train.py', import.meta.url));
export const TRL_INPUT_DIR = 'trl-input';
export const TRL_INPUT_FORMAT = 'tunekit-trl-input/1';
export const TRL_LOG_FILE = 'trl-executor.log';
/** The file descriptor the program writes its event lines to. */
const EVENTS_FD = 3;
/** train.py --backend: TRL + PEFT, the plain-PyTorch reference model, or TRL when importable. */
export const TRL_BACKENDS = ['auto', 'trl', 'torch'] as const;
export type TrlBackend = (typeof TRL_BACKENDS)[number];
/** Lines of the program's output quoted in a failed run's error. */
const ERROR_TAIL_LINES = 20;
/** Labels (Hugging Face convention) of a token that carries no loss. */
const IGNORE = -100;

export interface TrlRunOptions {
  /** The Python interpreter (with torch; TRL, PEFT and transformers for the trl backend). */
  python: string;
  backend: TrlBackend;
  log?: (message: string) => void;
}

/** The Python interpreter and backend of a worker: TUNEKIT_PYTHON (default python3), TUNEKIT_TRL_BACKEND (default auto). */
export function trlRunOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): TrlRunOptions {
  const backend = env.TUNEKIT_TRL_BACKEND ?? 'auto';
  if (!(TRL_BACKENDS as readonly string[]).includes(backend)) {
    throw new InvalidRequestError(`TUNEKIT_TRL_BACKEND=${JSON.stringify(backend)} is not a backend of the trl executor (known: ${TRL_BACKENDS.join(', ')})`);
  }
  return { python: env.TUNEKIT_PYTHON || 'python3', backend: backend as TrlBackend };
}

/**
 * Why this machine cannot run the trl executor with `x` (a worker's `--executors trl` at its start), or
 * undefined: the interpreter must start and import torch, and peft, transformers and trl unless the
 * backend is torch (the reference model). Names the interpreter, its source and the missing modules.
 */
export function trlMissing(x: TrlRunOptions): string | undefined {
  const modules = x.backend === 'torch' ? ['torch'] : ['torch', 'peft', 'transformers', 'trl'];
  const probe = 'import sys\nbad = []\nfor m in sys.argv[1:]:\n    try:\n        __import__(m)\n    except Exception:\n        bad.append(m)\nprint(" ".join(bad))';
  const r = spawnSync(x.python, ['-c', probe, ...modules], { encoding: 'utf8' });
  const which = `the Python interpreter ${x.python} (TUNEKIT_PYTHON)`;
  if (r.error) return `${which} does not start: ${r.error.message}`;
  if (r.status !== 0) return `${which} exited with ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').pop()}`;
  const bad = r.stdout.trim();
  return bad ? `${which} cannot import ${bad.split(' ').join(', ')} (TUNEKIT_TRL_BACKEND=${x.backend} needs ${modules.join(', ')}; =torch needs torch only)` : undefined;
}

/** A run of the trl executor: what trainer.ts's tune() does, trained by executors/trl/train.py. */
export async function tuneWithTrl(o: TuneOptions, x: TrlRunOptions): Promise<{ outDir: string; finalLoss: number | null }> {
  validateTuneOptions(o);
  if (o.mode !== 'lora') throw new InvalidRequestError(`the trl executor trains LoRA adapters; mode ${o.mode} is not supported by it`);
  if (o.stopAfterEpochs !== undefined) throw new InvalidRequestError('the trl executor does not take stopAfterEpochs');
  const t0 = performance.now();
  const config = loadModelConfig(o.baseDir);
  if (o.maxSeqLen > config.maxPositionEmbeddings) {
    throw new InvalidRequestError(`max sequence length ${o.maxSeqLen} exceeds the model's context (${config.maxPositionEmbeddings})`);
  }
  const tokenizer = Tokenizer.loadSync(o.baseDir, { vocabSize: config.vocabSize });
  const train = await tokenizeDataset(o.trainFile, tokenizer);
  const validation = o.validationFile ? await tokenizeDataset(o.validationFile, tokenizer) : [];
  const batching = batchingOf(o);
  const epochs = Array.from({ length: o.epochs }, (_, e) => planEpoch(train, e, batching));
  const stepsPerEpoch = epochs[0]!.steps.length;
  if (stepsPerEpoch === 0) throw new InvalidRequestError(`${o.trainFile}: no example has a token to train on`);
  // As trainer.ts (batches.ts runSteps): the schedule's and the metrics' total is every epoch's steps.
  const totalSteps = epochs.reduce((sum, e) => sum + e.steps.length, 0);

  // The adapter trainer.ts would start from: fresh from the seed, or the continuous-tuning one.
  const init = initialAdapter(o, config);
  const lc = loraConfigFor(o, init);
  const start = initLoraAdapter(config, lc, o.seed);
  start.baseModel = path.resolve(o.baseDir);
  init?.layers.forEach((pairs, l) => {
    for (const [t, pair] of Object.entries(pairs)) {
      start.layers[l]![t as LoraTarget]!.A.set(pair.A);
      start.layers[l]![t as LoraTarget]!.B.set(pair.B);
    }
  });

  const input = path.join(o.outDir, TRL_INPUT_DIR);
  fs.rmSync(input, { recursive: true, force: true });
  fs.mkdirSync(input, { recursive: true });
  saveAdapter(path.join(input, 'init-adapter'), start, { inferenceMode: false });
  const fingerprint = fingerprintOf(o, config, train.length, 'trl');
  const job = {
    format: TRL_INPUT_FORMAT,
    base_model: path.resolve(o.baseDir),
    fingerprint,
    seed: o.seed,
    lora: { rank: lc.rank, alpha: lc.alpha, dropout: lc.dropout, targets: lc.targets },
    init_adapter: 'init-adapter',
    epochs: o.epochs,
    total_steps: totalSteps,
    peak_learning_rate: (o.learningRate ?? DEFAULT_LEARNING_RATE.lora) * o.learningRateMultiplier,
    warmup_steps: warmupStepsFor(totalSteps, o.warmupRatio),
    schedule: o.decay,
    weight_decay: o.weightDecay,
    clip_norm: o.clipNorm,
    adam: { beta1: DEFAULT_ADAMW.beta1, beta2: DEFAULT_ADAMW.beta2, eps: DEFAULT_ADAMW.eps },
    eval_every_steps: o.evalEverySteps,
    train: writeSplit(input, 'train', epochs.map((e) => e.steps)),
    validation: validation.length
      ? writeSplit(input, 'validation', [planEpoch(validation, 0, { ...batching, shuffle: false, gradAccum: 1 }).steps])
      : null,
  };
  fs.writeFileSync(path.join(input, 'job.json'), JSON.stringify(job, null, 1) + '\n');

  fs.mkdirSync(o.outDir, { recursive: true });
  const metricsFile = path.join(o.outDir, 'metrics.jsonl');
  if (!o.resume) fs.writeFileSync(metricsFile, '');
  await o.onEvent?.({
    type: 'start', totalSteps, stepsPerEpoch, examples: train.length, trainableParameters: countParameters(start),
    truncated: epochs[0]!.truncated, dropped: epochs[0]!.dropped, recomputedLayers: 0, layers: config.numLayers,
  });

  let resume = o.resume;
  let lastLoss: number | null = null;
  for (;;) {
    const run = await runProgram(o, x, input, resume, metricsFile, (loss) => { lastLoss = loss; });
    if (run.ok) break;
    // Killed by a signal after a checkpoint of its own: start again from the newest one.
    if (run.signal && run.checkpoint) {
      x.log?.(`trl executor: the program was killed by ${run.signal}; starting it again from ${run.checkpoint}`);
      resume = run.checkpoint;
      continue;
    }
    throw run.error;
  }
  checkAdapter(o.outDir, config, lc, 'the final adapter');
  await o.onEvent?.({ type: 'done', outDir: o.outDir, seconds: (performance.now() - t0) / 1000 });
  return { outDir: o.outDir, finalLoss: lastLoss };
}

function countParameters(a: ReturnType<typeof initLoraAdapter>): number {
  let n = 0;
  for (const pairs of a.layers) for (const p of Object.values(pairs)) n += p.A.length + p.B.length;
  return n;
}

/**
 * Writes `<name>.input_ids.i32`, `<name>.labels.i32` (every example of every micro-batch, in order) and
 * `<name>.layout.json` (where each example, micro-batch, step and epoch starts), and returns their names.
 * A packed micro-batch becomes its examples: each one's tokens, with labels[j] = tokens[j] where the
 * trainer's target of token j - 1 is set (it carries loss), else -100.
 */
function writeSplit(dir: string, name: string, epochs: StepPlan[][]): Record<string, string> {
  const ids: number[] = [];
  const labels: number[] = [];
  const exampleOffsets = [0];
  const batchExamples = [0];
  const stepBatches = [0];
  const epochSteps = [0];
  for (const steps of epochs) {
    for (const step of steps) {
      for (const b of step.batches) {
        for (let s = 0; s < b.N;) {
          let e = s + 1;
          while (e < b.N && b.segStart[e] === s) e++;
          if (b.targets[e - 1] !== -1) throw new Error(`internal: the last token of an example carries a target (${name})`);
          for (let t = s; t < e; t++) {
            ids.push(b.tokens[t]!);
            labels.push(t === s || b.targets[t - 1] === -1 ? IGNORE : b.targets[t - 1]!);
          }
          exampleOffsets.push(ids.length);
          s = e;
        }
        batchExamples.push(exampleOffsets.length - 1);
      }
      stepBatches.push(batchExamples.length - 1);
    }
    epochSteps.push(stepBatches.length - 1);
  }
  const files = { input_ids: `${name}.input_ids.i32`, labels: `${name}.labels.i32`, layout: `${name}.layout.json` };
  fs.writeFileSync(path.join(dir, files.input_ids), new Uint8Array(Int32Array.from(ids).buffer));
  fs.writeFileSync(path.join(dir, files.labels), new Uint8Array(Int32Array.from(labels).buffer));
  fs.writeFileSync(path.join(dir, files.layout), JSON.stringify({
    example_offsets: exampleOffsets, batch_examples: batchExamples, step_batches: stepBatches, epoch_steps: epochSteps,
  }) + '\n');
  return files;
}

/** The fields (and kinds) of each event line; nothing else is accepted. */
const EVENT_FIELDS = {
  start: { backend: 'string', step: 'int' },
  step: {
    step: 'int', epoch: 'int', train_total_loss: 'number', train_fraction_of_correct_next_step_preds: 'number', train_num_predictions: 'int',
    learning_rate: 'number', grad_norm: 'number', tokens_per_second: 'number', elapsed_seconds: 'number', total_steps: 'int',
  },
  eval: { step: 'int', epoch: 'int', eval_total_loss: 'number', eval_fraction_of_correct_next_step_preds: 'number', eval_num_predictions: 'int' },
  checkpoint: { epoch: 'int', step: 'int' },
  done: {},
} as const satisfies Record<string, Record<string, 'string' | 'int' | 'number'>>;
type EventType = keyof typeof EVENT_FIELDS;

/** An event line parsed and checked against EVENT_FIELDS; throws naming the line and the field. */
export function parseEventLine(line: string, lineNo: number): { type: EventType } & Record<string, unknown> {
  const where = `the trl executor's event line ${lineNo} (${JSON.stringify(line.length > 200 ? line.slice(0, 200) + '…' : line)})`;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error(`${where} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where} is not a JSON object`);
  const obj = v as Record<string, unknown>;
  const type = obj.type;
  if (typeof type !== 'string' || !Object.hasOwn(EVENT_FIELDS, type)) {
    throw new Error(`${where}: field "type" must be one of ${Object.keys(EVENT_FIELDS).join(', ')}`);
  }
  const fields = EVENT_FIELDS[type as EventType] as Record<string, string>;
  for (const [k, kind] of Object.entries(fields)) {
    const f = obj[k];
    const ok = kind === 'string' ? typeof f === 'string'
      : kind === 'int' ? Number.isInteger(f) && (f as number) >= 0
      : typeof f === 'number' && Number.isFinite(f);
    if (!ok) throw new Error(`${where}: field "${k}" must be ${kind === 'int' ? 'a non-negative integer' : kind === 'number' ? 'a finite number' : 'a string'}, got ${JSON.stringify(f)}`);
  }
  for (const k of Object.keys(obj)) {
    if (k !== 'type' && !Object.hasOwn(fields, k)) throw new Error(`${where}: unknown field "${k}" in a ${type} event`);
  }
  return obj as { type: EventType } & Record<string, unknown>;
}

type RunResult = { ok: true } | { ok: false; error: Error; signal: NodeJS.Signals | null; checkpoint: string | undefined };

/** One run of the program, from `resume` or the start; its events go to o.onEvent in order. */
async function runProgram(
  o: TuneOptions, x: TrlRunOptions, input: string, resume: string | undefined, metricsFile: string, onLoss: (loss: number) => void,
): Promise<RunResult> {
  const resumeStep = resume ? readStateStep(resume) : 0;
  const args = [TRL_PROGRAM, '--input', input, '--out', o.outDir, '--backend', x.backend, '--parent', String(process.pid), ...(resume ? ['--resume', resume] : [])];
  const log = fs.openSync(path.join(o.outDir, TRL_LOG_FILE), 'a');
  const child = spawn(x.python, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
  let tail = '';
  const keep = (d: Buffer) => {
    fs.writeSync(log, d);
    tail = (tail + d.toString()).slice(-16_384);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // 'close': the program has exited and its output (events included) has been read to the end.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; spawnError?: Error }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
    child.once('error', (err) => resolve({ code: null, signal: null, spawnError: err }));
  });

  // Events are handled one at a time, in order; the first failure stops the program.
  let failure: Error | undefined;
  let chain = Promise.resolve();
  let lineNo = 0;
  let pending = '';
  let step = resumeStep;
  let started = false;
  let done = false;
  let checkpoint: string | undefined;
  const record = (m: object) => fs.appendFileSync(metricsFile, JSON.stringify(m) + '\n');
  const handle = async (line: string, n: number): Promise<void> => {
    const e = parseEventLine(line, n);
    const where = `the trl executor's event line ${n}`;
    if (done) throw new Error(`${where}: a ${e.type} event after done`);
    if (!started && e.type !== 'start') throw new Error(`${where}: the first event must be start, got ${e.type}`);
    switch (e.type) {
      case 'start':
        if (started) throw new Error(`${where}: a second start event`);
        if (e.step !== resumeStep) throw new Error(`${where}: started at step ${String(e.step)}, but the run resumes at step ${resumeStep}`);
        started = true;
        x.log?.(`trl executor: backend ${String(e.backend)}${resume ? `, resuming at step ${resumeStep}` : ''}`);
        return;
      case 'step': {
        if (e.step !== step + 1) throw new Error(`${where}: step ${String(e.step)} follows step ${step}`);
        step++;
        const m = stripType(e) as unknown as StepMetrics;
        onLoss(m.train_total_loss);
        record(m);
        await o.onEvent?.({ type: 'step', metrics: m });
        return;
      }
      case 'eval': {
        if (e.step !== step) throw new Error(`${where}: an eval at step ${String(e.step)}, but the run is at step ${step}`);
        const m = stripType(e) as unknown as EvalMetrics;
        record(m);
        await o.onEvent?.({ type: 'eval', metrics: m });
        return;
      }
      case 'checkpoint': {
        const dir = checkpointDir(o.outDir, e.epoch as number);
        if (e.step !== step) throw new Error(`${where}: a checkpoint at step ${String(e.step)}, but the run is at step ${step}`);
        const saved = readStateStep(dir, `${where}: checkpoint ${dir}`);
        if (saved !== step) throw new Error(`${where}: checkpoint ${dir} holds step ${saved}, not ${step}`);
        checkAdapter(dir, loadModelConfig(o.baseDir), undefined, `the adapter of checkpoint ${dir}`);
        checkpoint = dir;
        await o.onEvent?.({ type: 'checkpoint', epoch: e.epoch as number, dir });
        return;
      }
      case 'done':
        done = true;
        return;
    }
  };
  const stop = (err: unknown) => {
    failure ??= err instanceof Error ? err : new Error(String(err));
    child.kill('SIGKILL');
  };
  (child.stdio[EVENTS_FD] as NodeJS.ReadableStream | null)?.on('data', (d: Buffer) => {
    pending += d.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const n = ++lineNo;
      chain = chain.then(() => (failure ? undefined : handle(line, n))).catch(stop);
    }
  });
  const exit = await exited;
  if (pending !== '' && !failure) {
    const n = ++lineNo;
    chain = chain.then(() => handle(pending, n)).catch(stop);
  }
  await chain;
  fs.closeSync(log);
  // A bad event line, or a stop found between steps (a cancel: RunStopped), outranks how the program ended.
  if (failure) throw failure;
  if (exit.spawnError) {
    return { ok: false, error: new Error(`the trl executor could not start ${x.python}: ${exit.spawnError.message} (set TUNEKIT_PYTHON to a Python with torch)`), signal: null, checkpoint: undefined };
  }
  if (exit.code === 0 && done) return { ok: true };
  const how = exit.signal ? `was killed by ${exit.signal}` : exit.code === 0 ? 'exited without a done event' : `exited with code ${exit.code}`;
  const lines = tail.trimEnd().split('\n').slice(-ERROR_TAIL_LINES).join('\n');
  return {
    ok: false, signal: exit.signal, checkpoint,
    error: new Error(`the trl executor (${x.python} ${path.relative(process.cwd(), TRL_PROGRAM) || TRL_PROGRAM}) ${how} at step ${step}; its last output:\n${lines}`),
  };
}

function stripType(e: Record<string, unknown>): Record<string, unknown> {
  const { type: _type, ...rest } = e;
  return rest;
}

function readStateStep(dir: string, what = `checkpoint ${dir}`): number {
  let state: { step?: unknown };
  try {
    state = JSON.parse(fs.readFileSync(path.join(dir, CHECKPOINT_FILES.state), 'utf8')) as { step?: unknown };
  } catch (err) {
    throw new Error(`${what}: no readable ${CHECKPOINT_FILES.state} (${(err as Error).message})`);
  }
  if (!Number.isInteger(state.step)) throw new Error(`${what}: ${CHECKPOINT_FILES.state} has no integer "step"`);
  return state.step as number;
}

/** The adapter in `dir` loads against the base model, matches the run's LoRA config, and holds finite numbers. */
function checkAdapter(dir: string, config: ReturnType<typeof loadModelConfig>, lc: ReturnType<typeof loraConfigFor> | undefined, what: string): void {
  let a;
  try {
    a = loadAdapter(dir, config);
  } catch (err) {
    throw new Error(`the trl executor wrote ${what}, which tunekit cannot use: ${(err as Error).message}`);
  }
  if (lc && (a.config.rank !== lc.rank || a.config.alpha !== lc.alpha || [...a.config.targets].sort().join() !== [...lc.targets].sort().join())) {
    throw new Error(`the trl executor wrote ${what} with rank ${a.config.rank}, alpha ${a.config.alpha}, targets ${a.config.targets.join(',')}; ` +
      `the job asked for rank ${lc.rank}, alpha ${lc.alpha}, targets ${lc.targets.join(',')}`);
  }
  a.layers.forEach((pairs, l) => {
    for (const [t, p] of Object.entries(pairs)) {
      for (const [which, v] of [['A', p.A], ['B', p.B]] as const) {
        if (!v.every(Number.isFinite)) throw new Error(`the trl executor wrote ${what} with a non-finite value in layer ${l} ${t} lora_${which}`);
      }
    }
  });
}
