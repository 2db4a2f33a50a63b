// A tuning job's worker process: `node worker.js <data-dir> <job-id>`, forked by the runner (runner.ts)
// for a job it has moved to RUNNING. The worker owns the run end to end and writes everything to the
// database itself, so nothing depends on the server staying up:
// - trains with the job's options (spec.ts), resuming from the newest complete epoch checkpoint in the
//   job's output directory when there is one (the trainer's resume is exact);
// - records per-step metrics under Vertex's names and the last checkpoint as it goes;
// - on success uploads the adapter to the location's tunekit bucket, registers the model version,
//   deploys it on an endpoint and ends the job SUCCEEDED, in one transaction (registry.ts);
// - with an evaluation_config, evaluates the tuned model against its base before the commit
//   (evaluation.ts; its outcome, an EvaluateDatasetRun, is committed with the job);
// - on a training error ends the job FAILED with a google.rpc.Status.
// Between steps it stops (exit 0) when the job is no longer RUNNING (cancelled) or when its parent is
// gone (the server died: the next server resumes the job from its checkpoint, so no orphan keeps
// training). The training loop does not yield to the event loop, so these checks run in the step
// callback, not on IPC events.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TunekitError } from '../../errors.js';
import { tune, type TrainEvent } from '../../train/trainer.js';
import { PlatformConfig } from '../config.js';
import { PlatformDb } from '../db.js';
import { TuningJobs } from '../jobs.js';
import { Quotas } from '../quota.js';
import { ObjectStore } from '../storage.js';
import { gsUri, parseGsUri } from '../gcs-names.js';
import { Registry, type CheckpointInfo } from './registry.js';
import { ensureManagedBucket, jobError, METRIC_NAMES } from './outcome.js';
import { evaluateTunedModel } from './evaluation.js';
import { INIT_ADAPTER_DIR, jobDir, listCheckpoints, readJobSpec, TRAIN_FILE, VALIDATION_FILE, type JobSpec } from './spec.js';

async function run(dataDir: string, jobId: string): Promise<void> {
  const db = PlatformDb.open(dataDir);
  const config = new PlatformConfig(db);
  const jobs = new TuningJobs(db, new Quotas(db, config));
  const storage = new ObjectStore(db, config);
  const parent = process.ppid;

  const stillMine = (): void => {
    if (process.ppid !== parent) process.exit(0); // the server is gone; the next one resumes the job
    const job = jobs.find(jobId);
    if (!job || job.state !== 'JOB_STATE_RUNNING') process.exit(0); // cancelled: the runner ends it
  };
  const onEvent = (e: TrainEvent): void => {
    if (e.type === 'step') {
      jobs.recordMetrics(jobId, e.metrics.step, pick(e.metrics, METRIC_NAMES.train), e.metrics.epoch);
      stillMine();
    } else if (e.type === 'eval') {
      jobs.recordMetrics(jobId, e.metrics.step, pick(e.metrics, METRIC_NAMES.eval), e.metrics.epoch);
    } else if (e.type === 'checkpoint') {
      jobs.setCheckpoint(jobId, e.dir);
      stillMine();
    }
  };

  let spec: JobSpec | undefined;
  try {
    const dir = jobDir(dataDir, jobId);
    spec = readJobSpec(dir);
    const outDir = path.join(dir, 'out');
    const resume = listCheckpoints(outDir).pop()?.dir;
    stillMine();
    await tune({
      ...spec.options, baseDir: spec.baseDir, trainFile: path.join(dir, TRAIN_FILE),
      ...(spec.hasValidation ? { validationFile: path.join(dir, VALIDATION_FILE) } : {}),
      outDir, ...(resume ? { resume } : {}), ...(spec.initAdapter ? { initAdapter: path.join(dir, INIT_ADAPTER_DIR) } : {}), onEvent,
    });
    stillMine();
    const evaluation = spec.evaluation ? await evaluateTunedModel(spec, dir, outDir, storage, stillMine) : undefined;
    stillMine();
    commit(db, jobs, storage, spec, outDir, evaluation);
  } catch (err) {
    const job = jobs.find(jobId);
    if (job?.state === 'JOB_STATE_CANCELLING') jobs.finish(jobId, { state: 'JOB_STATE_CANCELLED' });
    else jobs.finish(jobId, { state: 'JOB_STATE_FAILED', error: jobError(err) });
    if (!(err instanceof TunekitError)) process.stderr.write(`tunekit worker: job ${jobId}: ${err instanceof Error ? err.stack : String(err)}\n`);
  } finally {
    db.close();
  }
}

/** Uploads the adapter, registers and deploys it, and ends the job SUCCEEDED. */
function commit(db: PlatformDb, jobs: TuningJobs, storage: ObjectStore, spec: JobSpec, outDir: string, evaluation?: Record<string, unknown>): void {
  const bucket = ensureManagedBucket(storage, spec.project, spec.location);
  const prefix = `tuningJobs/${spec.jobId}/adapter/`;
  for (const f of fs.readdirSync(outDir).filter((f) => f.startsWith('adapter_')).sort()) {
    storage.putObjectSync(bucket, prefix + f, fs.readFileSync(path.join(outDir, f)));
  }
  if (spec.outputUri) {
    // TuningJob.outputUri receives the adapter too (its bucket and the job identity's write access were
    // checked at create), at <outputUri>/<jobId>/adapter/.
    const { bucket: outBucket, object } = parseGsUri(spec.outputUri, { allowBucketOnly: true });
    const outPrefix = `${object && !object.endsWith('/') ? `${object}/` : object}${spec.jobId}/adapter/`;
    for (const f of fs.readdirSync(outDir).filter((f) => f.startsWith('adapter_')).sort()) {
      storage.putObjectSync(outBucket, outPrefix + f, fs.readFileSync(path.join(outDir, f)));
    }
  }
  let stored = listCheckpoints(outDir);
  if (spec.exportLastCheckpointOnly) stored = stored.slice(-1);
  // Each kept checkpoint's PEFT adapter (the trainer writes one into every epoch checkpoint) is stored,
  // so that any of them can be deployed (DeployedModel.checkpoint_id).
  const checkpoints: CheckpointInfo[] = stored.map((c) => {
    const at = `tuningJobs/${spec.jobId}/checkpoints/${c.epoch}/`;
    const files = fs.readdirSync(c.dir).filter((f) => f.startsWith('adapter_')).sort();
    for (const f of files) storage.putObjectSync(bucket, at + f, fs.readFileSync(path.join(c.dir, f)));
    return { checkpointId: String(c.epoch), epoch: c.epoch, step: c.step, ...(files.length ? { adapterUri: gsUri(bucket, at) } : {}) };
  });
  new Registry(db).commitTunedModel(
    jobs,
    {
      id: spec.jobId, project: spec.project, location: spec.location, displayName: spec.displayName, baseModel: spec.baseModel, labels: spec.labels,
      ...(spec.parentModelId ? { parentModelId: spec.parentModelId } : {}),
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
  run(dataDir, jobId).then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`tunekit worker: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
