// What a tuning job runs, fixed at create time and written next to its data: `job.json` in the job's
// staging directory `<data-dir>/staging/tuning-jobs/<id>/`, which also holds the datasets as validated
// (copied out of the object store, so a later overwrite of the gs:// object cannot change a run or
// break a resume) and the trainer's output (`out/`, with `out/checkpoints/epoch-N`). The worker reads
// only this; the API reads only the database.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DEFAULT_TUNE_OPTIONS, type TuneOptions } from '../../train/trainer.js';
import { CHECKPOINT_FILES } from '../../train/checkpoint.js';

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

export const JOB_FILE = 'job.json';
export const TRAIN_FILE = 'train.jsonl';
export const VALIDATION_FILE = 'validation.jsonl';

/** The trainer options of a job, without the paths (they follow from the staging directory). */
export type JobTuneOptions = Omit<TuneOptions, 'baseDir' | 'trainFile' | 'validationFile' | 'outDir' | 'resume' | 'stopAfterEpochs' | 'onEvent'>;

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

/** Removes uploads left by creates that crashed (their process is gone). */
export function removeStaleUploads(dataDir: string): string[] {
  const root = path.join(dataDir, 'staging', 'uploads');
  const removed: string[] = [];
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(root);
  } catch {
    return removed;
  }
  for (const e of entries) {
    const pid = Number(/^(\d+)-[0-9a-f]+$/.exec(e)?.[1]);
    if (!Number.isInteger(pid) || pid === process.pid || processAlive(pid)) continue;
    fs.rmSync(path.join(root, e), { recursive: true, force: true });
    removed.push(e);
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
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
