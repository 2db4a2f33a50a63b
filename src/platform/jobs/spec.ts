// What a tuning job runs, fixed at create time and written next to its data: `job.json` under the
// job's staging prefix `staging/tuning-jobs/<id>/` of the deployment's blob store (blob-store.ts: the
// data directory, or object storage every machine reaches), which also holds the datasets as
// validated (copied out of the object store, so a later overwrite of the gs:// object cannot change a
// run or break a resume), a continuous tuning job's initial adapter, the epoch checkpoints
// (`out/checkpoints/epoch-N/`, trainer_state.json stored last: a checkpoint without it is incomplete)
// and the evaluation's outcome (`evaluation/run.json`). job.json is stored last at create.
// A worker checks the job out into its machine's work directory `<work-dir>/work/tuning-jobs/<id>/`
// (JobStaging.checkOut: everything above), trains there and stores each checkpoint back as it is
// written, so any machine can resume the job. The API reads only the database. Both live while the job
// may run (PENDING, RUNNING, CANCELLING); the runner removes them when the job ends (the adapter is in
// the object store by then) and, at start, removes those of jobs that ended while no server watched.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DEFAULT_TUNE_OPTIONS, type TuneOptions } from '../../train/trainer.js';
import { CHECKPOINT_FILES } from '../../train/checkpoint.js';
import type { BlobStore } from '../blob-store.js';
import type { PlatformDb } from '../db.js';
import { throwIfAborted } from '../../errors.js';
import { loadModelConfig } from '../../models/loader.js';
import { Tokenizer } from '../../tokenizer/tokenizer.js';
import { readDataset } from '../../data/dataset.js';
import { renderForTraining } from '../../data/render.js';
import { runSteps } from '../../train/batches.js';
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
 * the server's default (`tunekit serve --executor`, default tunekit), or with PostgreSQL the first
 * executor of the worker that pulls it (postgres/queue.ts).
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
  /** The base model's directory when the job was created (on the machine that created it). */
  baseDir: string;
  /** The base model's files in the blob store (base-models.ts): a worker materializes them and trains on its own copy. */
  baseBlobs?: string;
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

const STAGING = 'staging/tuning-jobs/';

function checkJobId(jobId: string): void {
  if (!/^\d+$/.test(jobId)) throw new Error(`bad tuning job id ${JSON.stringify(jobId)}`);
}

/** Where a local blob store rooted at `dataDir` keeps job `jobId`'s staged files (the default deployment). */
export function jobDir(dataDir: string, jobId: string): string {
  checkJobId(jobId);
  return path.join(dataDir, ...STAGING.split('/'), jobId);
}

/** The work directory of job `jobId` on a machine whose work root is `workRoot` (JobStaging.checkOut). */
export function workDir(workRoot: string, jobId: string): string {
  checkJobId(jobId);
  return path.join(workRoot, 'work', 'tuning-jobs', jobId);
}

/** Tuning jobs' staged files in the blob store, and this machine's work directories (see the file comment). */
export class JobStaging {
  /** `marks`: this process's owner mark and whose marks are gone (the database's, db.ts). */
  constructor(readonly blobs: BlobStore, readonly workRoot: string, private readonly marks: Pick<PlatformDb, 'owner' | 'ownerGone'>) {}

  private key(jobId: string, rel = ''): string {
    checkJobId(jobId);
    return `${STAGING}${jobId}/${rel}`;
  }

  /** Where `rel` of job `jobId` is stored, for messages and the job's checkpoint field. */
  where(jobId: string, rel = ''): string {
    return this.blobs.where(this.key(jobId, rel));
  }

  /** A fresh local directory to stage a job's datasets in before the job (and its id) exists. */
  newUploadDir(): string {
    const dir = path.join(this.workRoot, 'staging', 'uploads', `${this.marks.owner}-${randomBytes(8).toString('hex')}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** Stores a staged upload as the job's files, job.json last; the upload directory is consumed. */
  async commit(uploadDir: string, spec: JobSpec): Promise<void> {
    for (const rel of filesUnder(uploadDir)) await this.blobs.putFile(this.key(spec.jobId, rel), path.join(uploadDir, rel), { move: true });
    await this.blobs.put(this.key(spec.jobId, JOB_FILE), JSON.stringify(spec, null, 2) + '\n');
    fs.rmSync(uploadDir, { recursive: true, force: true });
  }

  async readSpec(jobId: string): Promise<JobSpec> {
    return JSON.parse((await this.blobs.read(this.key(jobId, JOB_FILE))).toString('utf8')) as JobSpec;
  }

  /**
   * A fresh work directory holding the job's staged files: job.json, the datasets, the initial adapter,
   * every complete epoch checkpoint (in out/checkpoints/) and the evaluation's run.json when stored.
   */
  async checkOut(jobId: string): Promise<string> {
    const dir = workDir(this.workRoot, jobId);
    fs.rmSync(dir, { recursive: true, force: true });
    const prefix = this.key(jobId);
    const blobs = (await this.blobs.list(prefix)).blobs.map((b) => b.key.slice(prefix.length));
    const complete = new Set(blobs.filter((r) => r.startsWith('out/checkpoints/') && r.endsWith(`/${CHECKPOINT_FILES.state}`)).map((r) => path.posix.dirname(r)));
    for (const rel of blobs) {
      if (rel.startsWith('out/checkpoints/') && !complete.has(path.posix.dirname(rel))) continue;
      fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true, mode: 0o700 });
      await this.blobs.download(prefix + rel, path.join(dir, rel));
    }
    if (!fs.existsSync(path.join(dir, JOB_FILE))) throw new Error(`tuning job ${jobId} has no staged files (${this.where(jobId, JOB_FILE)} is missing)`);
    return dir;
  }

  /** Stores the checkpoint the trainer wrote at `checkpointDir` (in the job's work directory), its state file last. */
  async saveCheckpoint(jobId: string, checkpointDir: string): Promise<string> {
    const rel = path.relative(workDir(this.workRoot, jobId), checkpointDir).split(path.sep).join('/');
    const files = fs.readdirSync(checkpointDir).filter((f) => fs.lstatSync(path.join(checkpointDir, f)).isFile()).sort((a, b) => Number(a === CHECKPOINT_FILES.state) - Number(b === CHECKPOINT_FILES.state));
    for (const f of files) await this.blobs.putFile(this.key(jobId, `${rel}/${f}`), path.join(checkpointDir, f));
    return this.where(jobId, `${rel}/`);
  }

  /** Stores `rel` of the job's work directory. */
  async save(jobId: string, rel: string): Promise<void> {
    await this.blobs.putFile(this.key(jobId, rel), path.join(workDir(this.workRoot, jobId), ...rel.split('/')));
  }

  /** Removes a job's staged files and work directory: once it has ended, nothing reads them. */
  async remove(jobId: string): Promise<void> {
    fs.rmSync(workDir(this.workRoot, jobId), { recursive: true, force: true });
    await this.blobs.deletePrefix(this.key(jobId));
  }

  /** Whether job `jobId` has staged files. */
  async has(jobId: string): Promise<boolean> {
    return (await this.blobs.stat(this.key(jobId, JOB_FILE))) !== undefined;
  }

  /**
   * Removes the staged files and work directories of jobs that have ended (or that the database does not
   * know): a job needs them only while it may still run (PENDING, RUNNING, CANCELLING: resume after a crash).
   * `mayRun` is asked after the listing: a create inserts its job's row before it stores the job's files,
   * so a job listed here that may not run by then has ended.
   */
  async removeEnded(mayRun: () => Promise<(jobId: string) => boolean>): Promise<string[]> {
    const staged = (await this.blobs.list(STAGING, { delimiter: '/' })).prefixes.map((p) => p.slice(STAGING.length, -1));
    const ids = new Set([...staged, ...readdir(path.dirname(workDir(this.workRoot, '0')))]);
    const keep = await mayRun();
    const removed: string[] = [];
    for (const id of ids) {
      if (!/^\d+$/.test(id) || keep(id)) continue;
      await this.remove(id);
      removed.push(id);
    }
    return removed;
  }

  /** Removes this machine's work directories of jobs that have ended (a worker killed mid-job leaves its own). */
  async removeEndedWork(ended: (jobId: string) => Promise<boolean>): Promise<string[]> {
    const removed: string[] = [];
    for (const id of readdir(path.dirname(workDir(this.workRoot, '0')))) {
      if (!/^\d+$/.test(id) || !await ended(id)) continue;
      fs.rmSync(workDir(this.workRoot, id), { recursive: true, force: true });
      removed.push(id);
    }
    return removed;
  }

  /**
   * Removes uploads left by creates whose process is gone (db.ts ownerGone: on any machine, when the work
   * root is shared), and copies of adapters that such a process was putting in `cache/adapters/`
   * (service.ts adapterDir), base models it was materializing in `cache/models/` and its holds on them
   * in `cache/model-holds/` (base-models.ts).
   * Returns the paths removed.
   */
  async removeStaleUploads(): Promise<string[]> {
    const removed: string[] = [];
    const sweep = async (root: string, name: RegExp): Promise<void> => {
      for (const e of readdir(root)) {
        const mark = Number(name.exec(e)?.[1]);
        const p = path.join(root, e);
        if (!Number.isInteger(mark) || !await this.marks.ownerGone(mark, () => fs.statSync(p).mtimeMs)) continue;
        fs.rmSync(p, { recursive: true, force: true });
        removed.push(p);
      }
    };
    await sweep(path.join(this.workRoot, 'staging', 'uploads'), /^(\d+)-[0-9a-f]+$/);
    await sweep(path.join(this.workRoot, 'cache', 'adapters'), /^[0-9a-f]+\.tmp-(\d+)-\d+$/);
    await sweep(path.join(this.workRoot, 'cache', 'models'), /^[0-9a-f]{64}\.tmp-(\d+)-[0-9a-f]+$/);
    await sweep(path.join(this.workRoot, 'cache', 'model-holds'), /^[0-9a-f]{64}-(\d+)$/);
    return removed;
  }
}

/** Files under `dir`, relative, '/'-separated. */
function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => fs.lstatSync(path.join(dir, f)).isFile()).map((f) => f.split(path.sep).join('/')).sort();
}

function readdir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
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
  return runSteps(examples, o.epochs, batching);
}
