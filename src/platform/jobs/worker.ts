// A tuning job's run (runTuningJob), in the worker process `node worker.js <data-dir> <job-id>` (the
// storage configuration in $TUNEKIT_WORKER_STORAGE, JSON: not on the command line, which others can read) that the runner of `tunekit serve` forks (runner.ts) for a job it has moved to RUNNING, or in a `tunekit
// worker` that pulled it from the queue (src/platform/postgres). The worker owns the run end to end and
// writes everything to the database and the blob store itself, so nothing depends on the server staying up:
// - checks the job's staged files out into a work directory (spec.ts JobStaging), materializes a base
//   model registered through object storage into its cache (base-models.ts), and trains with the
//   job's options, resuming from the newest complete epoch checkpoint stored when there is one (the
//   trainer's resume is exact);
// - records per-step metrics under Vertex's names, stores each epoch checkpoint back in the blob store
//   (so another machine can resume) and records it as the job's checkpoint;
// - on success uploads the adapter to the location's tunekit bucket, registers the model version,
//   deploys it on an endpoint and ends the job SUCCEEDED, in one transaction (registry.ts);
// - with an evaluation_config, evaluates the tuned model against its base before the commit
//   (evaluation.ts; its outcome, an EvaluateDatasetRun, is committed with the job);
// - on a training error ends the job FAILED with a google.rpc.Status; so does object storage that fails
//   or is unreachable after the client's retries (UNAVAILABLE naming it): the job is not retried.
// Between steps it stops when the job is no longer RUNNING under its attempt (cancelled, or taken over
// by another worker) or when its parent is gone (the server died: the next server resumes the job from
// its checkpoint, so no orphan keeps training). The trainer awaits the step callback, where these
// checks and the database writes run.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TunekitError } from '../../errors.js';
import { tune, type TrainEvent, type TuneOptions } from '../../train/trainer.js';
import { trlRunOptionsFromEnv, tuneWithTrl } from '../../train/trl-executor.js';
import { PlatformConfig } from '../config.js';
import { PlatformDb } from '../db.js';
import { TuningJobs } from '../jobs.js';
import { Quotas } from '../quota.js';
import { ObjectStore } from '../storage.js';
import { openBlobStore, type StorageConfig } from '../blob-store.js';
import { BaseModelFiles } from '../base-models.js';
import { gsUri, parseGsUri } from '../gcs-names.js';
import { Registry, type CheckpointInfo } from './registry.js';
import { WORKER_MODEL_CACHE_ENV, WORKER_STORAGE_ENV } from './runner.js';
import { ensureManagedBucket, jobError, METRIC_NAMES } from './outcome.js';
import { evaluateTunedModel } from './evaluation.js';
import { INIT_ADAPTER_DIR, JobStaging, listCheckpoints, readJobSpec, TRAIN_FILE, VALIDATION_FILE, type Executor, type JobSpec } from './spec.js';

/** Thrown between steps when the run must stop without ending the job (see runTuningJob). */
export class RunStopped extends Error {
  constructor(readonly why: 'cancelled' | 'taken-over' | 'parent-gone') {
    super(`tuning run stopped: ${why}`);
  }
}

export interface RunParts {
  db: PlatformDb;
  jobs: TuningJobs;
  storage: ObjectStore;
  staging: JobStaging;
  /** Where the job's base (and judge) model are materialized when they are in the blob store. */
  models: BaseModelFiles;
}

/**
 * Runs job `jobId`, which this run holds as `attempt` (the job's `attempts` when it was claimed: a
 * fencing token). Between steps, and before it commits, it checks that the job is still RUNNING under
 * that attempt: a cancel (CANCELLING) or another run that took the job over (a higher attempt) stops
 * it with RunStopped and nothing of its own is committed, so a job is never finished twice.
 * `parentGone` stops it too (a forked worker whose server died). Training errors end the job FAILED.
 */
export async function runTuningJob(
  parts: RunParts, jobId: string, opts: { attempt: number; parentGone?: () => boolean; executor?: Executor },
): Promise<void> {
  const { db, jobs, storage, staging, models } = parts;
  const stillMine = async (): Promise<void> => {
    if (opts.parentGone?.()) throw new RunStopped('parent-gone');
    const job = await jobs.find(jobId);
    if (!job || job.attempts !== opts.attempt) throw new RunStopped('taken-over');
    if (job.state !== 'JOB_STATE_RUNNING') throw new RunStopped('cancelled');
  };
  const onEvent = async (e: TrainEvent): Promise<void> => {
    if (e.type === 'step') {
      await jobs.recordMetrics(jobId, e.metrics.step, pick(e.metrics, METRIC_NAMES.train), e.metrics.epoch);
      await stillMine();
    } else if (e.type === 'eval') {
      await jobs.recordMetrics(jobId, e.metrics.step, pick(e.metrics, METRIC_NAMES.eval), e.metrics.epoch);
    } else if (e.type === 'checkpoint') {
      await stillMine();
      await jobs.setCheckpoint(jobId, await staging.saveCheckpoint(jobId, e.dir));
    }
  };

  // The evaluation's progress callback is synchronous: it throws what a poll of stillMine found.
  const evaluate = async (spec: JobSpec, dir: string, outDir: string): Promise<Record<string, unknown>> => {
    let stop: RunStopped | undefined;
    const poll = setInterval(() => void stillMine().catch((err: unknown) => {
      if (err instanceof RunStopped) stop = err;
    }), 1000);
    try {
      return await evaluateTunedModel(spec, dir, outDir, storage, () => {
        if (stop) throw stop;
      });
    } finally {
      clearInterval(poll);
    }
  };

  const held: string[] = [];
  try {
    await stillMine();
    const dir = await staging.checkOut(jobId);
    const spec = await localModels(readJobSpec(dir), models, held);
    const outDir = path.join(dir, 'out');
    const resume = listCheckpoints(outDir).pop()?.dir;
    await stillMine();
    // The executor (spec.ts EXECUTORS): tunekit's trainer, or TRL in a Python process (TUNEKIT_PYTHON);
    // the job's own, else (a job queued in PostgreSQL that named none) its worker's choice.
    const log = (m: string) => process.stderr.write(`tunekit worker: job ${jobId}: ${m}\n`);
    const train = (spec.executor ?? opts.executor) === 'trl' ? (o: TuneOptions) => tuneWithTrl(o, { ...trlRunOptionsFromEnv(), log }) : tune;
    await train({
      ...spec.options, baseDir: spec.baseDir, trainFile: path.join(dir, TRAIN_FILE),
      ...(spec.hasValidation ? { validationFile: path.join(dir, VALIDATION_FILE) } : {}),
      outDir, ...(resume ? { resume } : {}), ...(spec.initAdapter ? { initAdapter: path.join(dir, INIT_ADAPTER_DIR) } : {}), onEvent,
    });
    await stillMine();
    const evaluation = spec.evaluation ? await evaluate(spec, dir, outDir) : undefined;
    await stillMine();
    if (evaluation) await staging.save(jobId, 'evaluation/run.json');
    await commit(db, jobs, storage, spec, outDir, opts.attempt, evaluation);
  } catch (err) {
    if (err instanceof RunStopped) throw err;
    const job = await jobs.find(jobId);
    if (job?.attempts === opts.attempt) {
      if (job.state === 'JOB_STATE_CANCELLING') await jobs.finish(jobId, { state: 'JOB_STATE_CANCELLED' }, opts.attempt);
      else await jobs.finish(jobId, { state: 'JOB_STATE_FAILED', error: jobError(err) }, opts.attempt);
    }
    if (!(err instanceof TunekitError)) process.stderr.write(`tunekit worker: job ${jobId}: ${err instanceof Error ? err.stack : String(err)}\n`);
  } finally {
    for (const prefix of held) models.release(prefix);
  }
}

/** `spec` with its base (and judge) model directories on this machine: materialized when they are in the blob store. */
async function localModels(spec: JobSpec, files: BaseModelFiles, held: string[]): Promise<JobSpec> {
  const out: JobSpec = { ...spec };
  const local = async (prefix: string, model: string): Promise<string> => {
    const dir = await files.localDir(prefix, model);
    held.push(prefix);
    return dir;
  };
  if (spec.baseBlobs !== undefined) out.baseDir = await local(spec.baseBlobs, spec.baseModel);
  const judge = spec.evaluation?.judge;
  if (judge?.modelBlobs !== undefined) out.evaluation = { ...spec.evaluation!, judge: { ...judge, modelDir: await local(judge.modelBlobs, judge.model) } };
  return out;
}

/** The forked worker of `tunekit serve` (runner.ts): runs the job its runner claimed. */
async function runForked(dataDir: string, jobId: string, storageConfig: StorageConfig | undefined, cacheBytes: number | undefined): Promise<void> {
  const db = await PlatformDb.open({ dataDir });
  try {
    const config = new PlatformConfig(db);
    const jobs = new TuningJobs(db, new Quotas(db, config));
    const blobs = await openBlobStore(storageConfig ?? { kind: 'local', dir: dataDir }, db.owner);
    const storage = new ObjectStore(db, config, { blobs });
    const parent = process.ppid;
    const job = await jobs.find(jobId);
    if (!job) return;
    await runTuningJob({ db, jobs, storage, staging: new JobStaging(blobs, dataDir, db), models: new BaseModelFiles(blobs, dataDir, db.owner, cacheBytes) }, jobId, {
      attempt: job.attempts, parentGone: () => process.ppid !== parent,
    });
  } catch (err) {
    // Cancelled, or the server is gone: the runner (or the next server) ends or resumes the job.
    if (!(err instanceof RunStopped)) throw err;
  } finally {
    await db.close();
  }
}

/** Uploads the adapter, registers and deploys it, and ends the job SUCCEEDED (if `attempt` still holds it). */
async function commit(
  db: PlatformDb, jobs: TuningJobs, storage: ObjectStore, spec: JobSpec, outDir: string, attempt: number, evaluation?: Record<string, unknown>,
): Promise<void> {
  const bucket = await ensureManagedBucket(storage, spec.project, spec.location);
  const prefix = `tuningJobs/${spec.jobId}/adapter/`;
  for (const f of fs.readdirSync(outDir).filter((f) => f.startsWith('adapter_')).sort()) {
    await storage.putObject(bucket, prefix + f, fs.readFileSync(path.join(outDir, f)));
  }
  if (spec.outputUri) {
    // TuningJob.outputUri receives the adapter too (its bucket and the job identity's write access were
    // checked at create), at <outputUri>/<jobId>/adapter/.
    const { bucket: outBucket, object } = parseGsUri(spec.outputUri, { allowBucketOnly: true });
    const outPrefix = `${object && !object.endsWith('/') ? `${object}/` : object}${spec.jobId}/adapter/`;
    for (const f of fs.readdirSync(outDir).filter((f) => f.startsWith('adapter_')).sort()) {
      await storage.putObject(outBucket, outPrefix + f, fs.readFileSync(path.join(outDir, f)));
    }
  }
  let stored = listCheckpoints(outDir);
  if (spec.exportLastCheckpointOnly) stored = stored.slice(-1);
  // Each kept checkpoint's PEFT adapter (the trainer writes one into every epoch checkpoint) is stored,
  // so that any of them can be deployed (DeployedModel.checkpoint_id).
  const checkpoints: CheckpointInfo[] = [];
  for (const c of stored) {
    const at = `tuningJobs/${spec.jobId}/checkpoints/${c.epoch}/`;
    const files = fs.readdirSync(c.dir).filter((f) => f.startsWith('adapter_')).sort();
    for (const f of files) await storage.putObject(bucket, at + f, fs.readFileSync(path.join(c.dir, f)));
    checkpoints.push({ checkpointId: String(c.epoch), epoch: c.epoch, step: c.step, ...(files.length ? { adapterUri: gsUri(bucket, at) } : {}) });
  }
  const done = await new Registry(db).commitTunedModel(
    jobs,
    {
      id: spec.jobId, project: spec.project, location: spec.location, displayName: spec.displayName, baseModel: spec.baseModel, labels: spec.labels,
      ...(spec.parentModelId ? { parentModelId: spec.parentModelId } : {}), attempt,
    },
    { adapterUri: gsUri(bucket, prefix), checkpoints },
    ({ model, endpoint }) => ({
      tunedModel: {
        model, endpoint,
        checkpoints: checkpoints.map((c, i) => ({
          checkpointId: c.checkpointId, epoch: String(c.epoch), step: String(c.step), ...(i === checkpoints.length - 1 ? { endpoint } : {}),
        })),
      },
      ...(evaluation ? { evaluateDatasetRuns: [evaluation] } : {}),
    }),
  );
  if (!done.finished) throw new RunStopped('taken-over');
}

function pick(metrics: object, names: Record<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, name] of Object.entries(names)) {
    const v = (metrics as Record<string, unknown>)[k];
    if (typeof v === 'number' && Number.isFinite(v)) out[name] = v;
  }
  return out;
}

const [dataDir, jobId] = process.argv.slice(2);
if (process.argv[1] === fileURLToPath(import.meta.url) && dataDir && jobId) {
  const storageEnv = process.env[WORKER_STORAGE_ENV];
  const cacheEnv = process.env[WORKER_MODEL_CACHE_ENV];
  runForked(dataDir, jobId, storageEnv ? JSON.parse(storageEnv) as StorageConfig : undefined, cacheEnv ? Number(cacheEnv) : undefined).then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`tunekit worker: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
