// What a tuning job runs, fixed at create time and written next to its data: `job.json` in the job's
// staging directory `<data-dir>/staging/tuning-jobs/<id>/`, which also holds the datasets as validated
// (copied out of the object store, so a later overwrite of the gs:// object cannot change a run or
// break a resume) and the trainer's output (`out/`, with `out/checkpoints/epoch-N`). The worker reads
// only this; the API reads only the database. The directory lives while the job may run (PENDING,
// RUNNING, CANCELLING); the runner removes it when the job ends (the adapter is in the object store by
// then) and, at start, removes those of jobs that ended while no server watched.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DEFAULT_TUNE_OPTIONS, type TuneOptions } from '../../train/trainer.js';
import { CHECKPOINT_FILES } from '../../train/checkpoint.js';
import { isLeftover } from '../storage.js';
import { throwIfAborted } from '../../errors.js';
import { loadModelConfig } from '../../models/loader.js';
import { Tokenizer } from '../../tokenizer/tokenizer.js';
import { readDataset } from '../../data/dataset.js';
import { renderForTraining } from '../../data/render.js';
import { planEpoch } from '../../train/batches.js';
import type { JobEvaluationSpec } from '../../eval/job-evaluation.js';

/** Vertex's AdapterSize enum and the LoRA rank of each. */
export const ADAPTER_SIZES = {
  ADAPTER_SIZE_ONE: 1, ADAPTER_SIZE_TWO: 2, ADAPTER_SIZE_FOUR: 4, ADAPTER_SIZE_EIGHT: 8,
  ADAPTER_SIZE_SIXTEEN: 16, ADAPTER_SIZE_THIRTY_TWO: 32,
} as const;
export type AdapterSizeName = keyof typeof ADAPTER_SIZES;
export const ADAPTER_SIZE_NAMES = ['ADAPTER_SIZE_UNSPECIFIED', ...Object.keys(ADAPTER_SIZES)] as readonly string[];

export function adapterSizeName(rank: number): AdapterSizeName {
  const name = (Object.keys(ADAPTER_SIZES) as AdapterSizeName[]).find((k) => ADAPTER_SIZES[k] === rank);
  if (!name) throw new Error(`no AdapterSize for rank ${rank}`);
  return name;
}

export const EPOCH_RANGE = { min: 1, max: 100 } as const;
/** learningRateMultiplier must be in (0, max]. */
export const LEARNING_RATE_MULTIPLIER_MAX = 100;

/**
 * What trains a job: tunekit's own trainer (src/train/trainer.ts) or Hugging Face TRL in a Python
 * process (src/train/trl-executor.ts). A job picks one with the label EXECUTOR_LABEL; without it,
 * the server's default (`tunekit serve --executor`, default tunekit).
 */
export const EXECUTORS = ['tunekit', 'trl'] as const;
export type Executor = (typeof EXECUTORS)[number];
export const EXECUTOR_LABEL = 'tunekit-executor';

export const JOB_FILE = 'job.json';
export const TRAIN_FILE = 'train.jsonl';
export const VALIDATION_FILE = 'validation.jsonl';
/** The pre-tuned model's adapter a continuous tuning job starts from (staged with its datasets). */
export const INIT_ADAPTER_DIR = 'init-adapter';

/** The trainer options of a job, without the paths (they follow from the staging directory). */
export type JobTuneOptions = Omit<TuneOptions, 'baseDir' | 'trainFile' | 'validationFile' | 'outDir' | 'resume' | 'initAdapter' | 'stopAfterEpochs' | 'onEvent'>;

export interface JobSpec {
  jobId: string;
  project: string;
  location: string;
  /** publishers/{pub}/models/{name} */
  baseModel: string;
  /** The base model's directory when the job was created. */
  baseDir: string;
  displayName: string;
  hasValidation: boolean;
  options: JobTuneOptions;
  /** The job's labels, carried to the Model and Endpoint it creates. */
  labels?: Record<string, string>;
  /** TuningJob.outputUri (gs://BUCKET[/PREFIX]): the adapter is also written under it, at <outputUri>/<jobId>/adapter/. */
  outputUri?: string;
  /** supervised_tuning_spec.export_last_checkpoint_only: the Model and the job list only the last checkpoint. */
  exportLastCheckpointOnly?: boolean;
  /** Continuous tuning: training starts from the adapter staged in INIT_ADAPTER_DIR. */
  initAdapter?: boolean;
  /** Continuous tuning: the result is a new version of this Model (else a new Model). */
  parentModelId?: string;
  /** supervised_tuning_spec.evaluation_config: the tuned model is evaluated after tuning (evaluation.ts). */
  evaluation?: JobEvaluationSpec;
  /** What trains it (absent in jobs created before executors existed: tunekit). */
  executor?: Executor;
}

/** Trainer options for a Vertex request: LoRA of `adapterSize`, the trainer's defaults otherwise. */
export function jobTuneOptions(h: { epochs: number; adapterSize: number; learningRateMultiplier: number; learningRate?: number }, contextLength: number): JobTuneOptions {
  const maxSeqLen = Math.min(DEFAULT_TUNE_OPTIONS.maxSeqLen, contextLength);
  const o: JobTuneOptions = {
    ...DEFAULT_TUNE_OPTIONS, mode: 'lora', adapterSize: h.adapterSize, epochs: h.epochs,
    learningRateMultiplier: h.learningRateMultiplier, maxSeqLen, batchTokens: Math.max(DEFAULT_TUNE_OPTIONS.batchTokens, maxSeqLen),
  };
  if (h.learningRate !== undefined) o.learningRate = h.learningRate;
  return o;
}

export function stagingRoot(dataDir: string): string {
  return path.join(dataDir, 'staging', 'tuning-jobs');
}

export function jobDir(dataDir: string, jobId: string): string {
  if (!/^\d+$/.test(jobId)) throw new Error(`bad tuning job id ${JSON.stringify(jobId)}`);
  return path.join(stagingRoot(dataDir), jobId);
}

/** A fresh directory to stage a job's datasets in before the job (and its id) exists. */
export function newUploadDir(dataDir: string): string {
  const dir = path.join(dataDir, 'staging', 'uploads', `${process.pid}-${randomBytes(8).toString('hex')}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/**
 * Removes uploads left by creates that crashed (their process is gone), and copies of adapters that a
 * crashed server was putting in `<data-dir>/cache/adapters/` (service.ts adapterDir).
 */
export function removeStaleUploads(dataDir: string): string[] {
  const removed: string[] = [];
  const sweep = (root: string, name: RegExp): void => {
    for (const e of readdir(root)) {
      const pid = Number(name.exec(e)?.[1]);
      const p = path.join(root, e);
      if (!Number.isInteger(pid) || !isLeftover(pid, () => fs.statSync(p).mtimeMs)) continue;
      fs.rmSync(p, { recursive: true, force: true });
      removed.push(e);
    }
  };
  sweep(path.join(dataDir, 'staging', 'uploads'), /^(\d+)-[0-9a-f]+$/);
  sweep(path.join(dataDir, 'cache', 'adapters'), /^[0-9a-f]+\.tmp-(\d+)-\d+$/);
  return removed;
}

/** Removes a job's staging directory (its datasets and trainer output): once it has ended, nothing reads it. */
export function removeJobDir(dataDir: string, jobId: string): void {
  fs.rmSync(jobDir(dataDir, jobId), { recursive: true, force: true });
}

/**
 * Removes the staging directories of jobs that have ended (or that the database does not know): a job
 * needs its directory only while it may still run (PENDING, RUNNING, CANCELLING: resume after a crash).
 */
export function removeEndedJobDirs(dataDir: string, mayRun: (jobId: string) => boolean): string[] {
  const removed: string[] = [];
  for (const e of readdir(stagingRoot(dataDir))) {
    if (!/^\d+$/.test(e) || mayRun(e)) continue;
    removeJobDir(dataDir, e);
    removed.push(e);
  }
  return removed;
}

function readdir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Moves a staged upload into place as the job's directory, with its job.json. */
export function commitJobDir(dataDir: string, uploadDir: string, spec: JobSpec): string {
  fs.writeFileSync(path.join(uploadDir, JOB_FILE), JSON.stringify(spec, null, 2) + '\n');
  const dir = jobDir(dataDir, spec.jobId);
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
  fs.renameSync(uploadDir, dir);
  return dir;
}

export function readJobSpec(dir: string): JobSpec {
  return JSON.parse(fs.readFileSync(path.join(dir, JOB_FILE), 'utf8')) as JobSpec;
}

/** Epoch checkpoints written so far (complete ones only: the trainer renames them into place), oldest first. */
export function listCheckpoints(outDir: string): { epoch: number; step: number; dir: string }[] {
  const root = path.join(outDir, 'checkpoints');
  let entries: string[];
  try {
    entries = fs.readdirSync(root);
  } catch {
    return [];
  }
  const out: { epoch: number; step: number; dir: string }[] = [];
  for (const e of entries) {
    const m = /^epoch-(\d+)$/.exec(e);
    if (!m) continue;
    const dir = path.join(root, e);
    try {
      const state = JSON.parse(fs.readFileSync(path.join(dir, CHECKPOINT_FILES.state), 'utf8')) as { epoch: number; step: number };
      out.push({ epoch: Number(m[1]), step: state.step, dir });
    } catch {
      // Not a complete checkpoint.
    }
  }
  return out.sort((a, b) => a.epoch - b.epoch);
}

/**
 * The optimizer steps a job runs: the trainer's own plan (train/batches.ts planEpoch: each epoch
 * shuffled with its seed, examples packed into rows of maxSeqLen tokens, rows into micro-batches of
 * batchTokens, gradAccum micro-batches a step), summed over the epochs, on the examples rendered as
 * the trainer renders them. This is tuningStepCount: Vertex counts examples / batch size per epoch,
 * but tunekit's steps are token-budget packed, so a count of examples per batch (the former figure: 30
 * for a 40-example, 2-epoch job whose trainer ran 6 steps) said nothing about the run.
 */
export async function plannedSteps(baseDir: string, trainFile: string, o: JobTuneOptions, signal?: AbortSignal): Promise<number> {
  const config = loadModelConfig(baseDir);
  const tokenizer = Tokenizer.loadSync(baseDir, { vocabSize: config.vocabSize });
  const { conversations } = await readDataset(trainFile);
  const examples = conversations.map((c, index) => {
    if (index % 256 === 0) throwIfAborted(signal);
    const r = renderForTraining(c, tokenizer);
    return { tokens: r.tokens, lossMask: r.lossMask, index };
  });
  const batching = { maxSeqLen: o.maxSeqLen, batchTokens: o.batchTokens, gradAccum: o.gradAccum, seed: o.seed, shuffle: true };
  let steps = 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) steps += planEpoch(examples, epoch, batching).steps.length;
  return steps;
}
