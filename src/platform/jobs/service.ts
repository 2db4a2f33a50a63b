// Tuning jobs as a service: what the API's routes call. Create checks everything before a job exists —
// location, hyper-parameter ranges, the sizes of display name, description and labels (limits.ts),
// the datasets (gs:// URIs that resolve, that the caller may read,
// in a bucket of the job's own location), the concurrent-jobs quota, then the dataset contents with
// the dataset module — and only then queues the job. Rules it keeps:
// - Dataset problems that make rows unreadable (bad JSON, wrong roles, ...) fail the create with
//   INVALID_ARGUMENT listing them by line; rows Vertex tolerates (over the token limit: dropped or
//   truncated; nothing to train on) are left to the trainer and reported in tuningDataStats.
// - The datasets are copied out of the object store as validated, into the job's staging directory
//   (spec.ts): the job trains exactly what was checked.
// - The quota is checked before the (slow) dataset checks, to fail fast, and again, atomically, when
//   the job row is inserted (quota.ts), so concurrent creates cannot overshoot it.
// - A create whose request signal fires (the client went away) stops between its steps (copy, check,
//   insert) and inside the dataset check, with CANCELLED; it leaves no job row and no upload directory.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { InvalidRequestError, NotFoundError, throwIfAborted } from '../../errors.js';
import { loadModelConfig } from '../../models/loader.js';
import { problemLocation, type DatasetProblem } from '../../data/errors.js';
import { PROBLEM_KINDS, type ProblemKind } from '../../data/problems.js';
import { RowStatus, type DatasetScan } from '../../data/scan.js';
import { statsFromScan, type TuningDataStats } from '../../data/stats.js';
import { validateDataset } from '../../data/validate.js';
import type { PlatformConfig } from '../config.js';
import type { PlatformDb } from '../db.js';
import { parseGsUri } from '../gcs-names.js';
import type { TuningJobRecord, TuningJobs } from '../jobs.js';
import type { Quotas } from '../quota.js';
import { checkDescription, checkDisplayName, checkLabels } from '../limits.js';
import { assertSameLocation, type ObjectStore, type ResolvedObject } from '../storage.js';
import type { StorageConfig } from '../blob-store.js';
import { Registry } from './registry.js';
import type { JobEvaluationSpec } from '../../eval/job-evaluation.js';
import { Operations } from '../operations.js';
import { JobRunner, type JobQueue, type RunnerOptions } from './runner.js';
import {
  ADAPTER_SIZES, EXECUTOR_LABEL, EXECUTORS, INIT_ADAPTER_DIR, type Executor, plannedSteps, EPOCH_RANGE, jobTuneOptions, LEARNING_RATE_MULTIPLIER_MAX, TRAIN_FILE,
  VALIDATION_FILE, type AdapterSizeName, type JobSpec, type JobStaging,
} from './spec.js';

/** Error-severity dataset problems that only drop a row, as Vertex does; every other error fails the create. */
export const TOLERATED_PROBLEMS: readonly ProblemKind[] = ['too_long_dropped', 'nothing_to_train'];
/** Dataset problems listed in a failed create's message. */
const PROBLEMS_SHOWN = 10;

export interface CreateJobRequest {
  project: string;
  location: string;
  /** publishers/{pub}/models/{name} */
  baseModel: string;
  /** The base model's directory (on this machine). */
  baseDir: string;
  /** The base model's files in the blob store, when registered through object storage (JobSpec.baseBlobs). */
  baseBlobs?: string;
  tunedModelDisplayName: string;
  description?: string;
  labels?: Record<string, string>;
  trainingDatasetUri: string;
  validationDatasetUri?: string;
  epochCount: number;
  adapterSize: AdapterSizeName;
  learningRateMultiplier: number;
  learningRate?: number;
  /** TuningJob.service_account: the identity the job runs as (its dataset reads and output writes). */
  serviceAccount?: string;
  /** TuningJob.output_uri (v1beta1): gs://BUCKET[/PREFIX] that receives the adapter. */
  outputUri?: string;
  exportLastCheckpointOnly?: boolean;
  /**
   * TuningJob.pre_tuned_model (continuous tuning): the job starts from the adapter stored at `adapterUri`
   * (a version's, or one of its checkpoints'); the result becomes a new version of `parentModelId`, or a new
   * Model without it.
   */
  preTunedModel?: { tunedModelName: string; checkpointId?: string; adapterUri: string; parentModelId?: string };
  /** supervised_tuning_spec.evaluation_config, checked (the job evaluates after tuning), and as given. */
  evaluation?: JobEvaluationSpec;
  evaluationConfig?: Record<string, unknown>;
  /**
   * Throws PERMISSION_DENIED unless the job's identity (its service account, else the caller) holds
   * storage.objects.get in the bucket's project.
   */
  authorizeRead: (bucketProject: string, resource: string) => void | Promise<void>;
  /** The same for storage.objects.create (outputUri); required when outputUri is set. */
  authorizeWrite?: (bucketProject: string, resource: string) => void | Promise<void>;
  /** The request's: once it fires the create stops with CANCELLED and leaves nothing behind. */
  signal?: AbortSignal;
}

export interface TuningServiceParts {
  db: PlatformDb;
  config: PlatformConfig;
  jobs: TuningJobs;
  quotas: Quotas;
  storage: ObjectStore;
  staging: JobStaging;
  /** The blob store's configuration, for forked workers (default: the data directory). */
  storageConfig?: StorageConfig;
  /** The base-model cache (its bound goes to the forked workers). */
  models?: { cacheBytes: number };
}

export class TuningService {
  readonly db: PlatformDb;
  readonly config: PlatformConfig;
  readonly jobs: TuningJobs;
  readonly quotas: Quotas;
  readonly storage: ObjectStore;
  readonly staging: JobStaging;
  readonly registry: Registry;
  readonly operations: Operations;
  /** Runs the jobs: a JobRunner of this process (default), or a queue other machines pull (`queue`). */
  readonly runner: JobQueue;

  /**
   * The executor of jobs without the EXECUTOR_LABEL label (`tunekit serve --executor`). None with a
   * queue: there the worker that pulls such a job picks (postgres/queue.ts).
   */
  readonly defaultExecutor: Executor | undefined;

  constructor(parts: TuningServiceParts, runner: RunnerOptions & { queue?: JobQueue; defaultExecutor?: Executor } = {}) {
    ({ db: this.db, config: this.config, jobs: this.jobs, quotas: this.quotas, storage: this.storage, staging: this.staging } = parts);
    if (runner.queue && runner.defaultExecutor) throw new InvalidRequestError('a default executor applies to this process\'s own workers: with a queue, the worker that pulls a job without the label picks');
    this.defaultExecutor = runner.queue ? undefined : runner.defaultExecutor ?? 'tunekit';
    this.registry = new Registry(this.db);
    this.operations = new Operations(this.db);
    this.runner = runner.queue ?? new JobRunner(this.db, this.jobs, { ...runner, ...(parts.storageConfig ? { storage: parts.storageConfig } : {}), ...(parts.models ? { modelCacheBytes: parts.models.cacheBytes } : {}) }, this.storage, this.staging);
  }

  /** Validates and queues a job (see the file comment for the order of checks). */
  async create(req: CreateJobRequest): Promise<TuningJobRecord> {
    await this.config.assertLocation(req.location);
    checkRanges(req);
    const executor = executorOf(req.labels) ?? this.defaultExecutor;
    if (req.serviceAccount !== undefined) await this.checkServiceAccount(req.serviceAccount);
    if (req.outputUri !== undefined) await this.writableOutput(req, req.outputUri);
    if (req.evaluation?.outputUriPrefix !== undefined) await this.writableOutput(req, req.evaluation.outputUriPrefix, 'supervised_tuning_spec.evaluation_config.output_config.gcs_destination.output_uri_prefix');
    const train = await this.readableDataset(req, req.trainingDatasetUri, 'supervised_tuning_spec.training_dataset_uri');
    const validation = req.validationDatasetUri === undefined
      ? undefined
      : await this.readableDataset(req, req.validationDatasetUri, 'supervised_tuning_spec.validation_dataset_uri');
    await this.quotas.withTuningJobSlot(req.project, req.location, async () => undefined);
    throwIfAborted(req.signal);

    const upload = this.staging.newUploadDir();
    try {
      const options = jobTuneOptions(
        { epochs: req.epochCount, adapterSize: ADAPTER_SIZES[req.adapterSize], learningRateMultiplier: req.learningRateMultiplier, learningRate: req.learningRate },
        loadModelConfig(req.baseDir).maxPositionEmbeddings,
      );
      const trainFile = path.join(upload, TRAIN_FILE);
      const validationFile = path.join(upload, VALIDATION_FILE);
      await this.storage.copyToFile(train.bucket, train.name, trainFile);
      if (req.preTunedModel) await this.copyAdapter(req.preTunedModel.adapterUri, path.join(upload, INIT_ADAPTER_DIR));
      if (validation) await this.storage.copyToFile(validation.bucket, validation.name, validationFile);
      throwIfAborted(req.signal);
      const stats = await checkDatasets(
        { file: trainFile, uri: train.uri }, validation && { file: validationFile, uri: validation.uri },
        { dir: req.baseDir, limit: options.maxSeqLen }, req.epochCount, req.signal,
      );
      throwIfAborted(req.signal);
      // tuningStepCount: the steps the trainer will run (its own plan), not examples / a batch size.
      stats.supervisedTuningDataStats.tuningStepCount = String(await plannedSteps(req.baseDir, trainFile, options, req.signal));
      throwIfAborted(req.signal);
      const request = tuningJobJson(req, stats);
      const job = await this.jobs.create({ project: req.project, location: req.location, baseModel: req.baseModel, displayName: req.tunedModelDisplayName, request });
      const spec: JobSpec = {
        jobId: job.id, project: req.project, location: req.location, baseModel: req.baseModel, baseDir: req.baseDir,
        ...(req.baseBlobs !== undefined ? { baseBlobs: req.baseBlobs } : {}),
        displayName: req.tunedModelDisplayName, hasValidation: validation !== undefined, options,
        ...(req.labels && Object.keys(req.labels).length ? { labels: req.labels } : {}),
        ...(req.outputUri ? { outputUri: req.outputUri } : {}),
        ...(req.exportLastCheckpointOnly ? { exportLastCheckpointOnly: true } : {}),
        ...(req.evaluation ? { evaluation: req.evaluation } : {}),
        ...(executor ? { executor } : {}),
        ...(req.preTunedModel ? { initAdapter: true, ...(req.preTunedModel.parentModelId ? { parentModelId: req.preTunedModel.parentModelId } : {}) } : {}),
      };
      await this.staging.commit(upload, spec);
      await this.runner.enqueue(job.id);
      return job;
    } catch (err) {
      fs.rmSync(upload, { recursive: true, force: true });
      throw err;
    }
  }

  /** Cancels (best effort): PENDING ends at once, RUNNING once its worker is stopped. */
  async cancel(project: string, location: string, id: string): Promise<TuningJobRecord> {
    const job = await this.jobs.cancel(project, location, id);
    await this.runner.cancel(id);
    return job;
  }

  /**
   * A local directory holding the adapter stored at `adapterUri` (gs://bucket/prefix/), copied out of
   * the object store once per object generation into `<data-dir>/cache/adapters/`.
   */
  async adapterDir(adapterUri: string): Promise<string> {
    const { bucket, object: prefix } = parseGsUri(adapterUri, { allowBucketOnly: true });
    const { objects } = await this.storage.listObjects(bucket, { prefix });
    if (objects.length === 0) throw new NotFoundError(`no adapter files under ${adapterUri}`);
    const key = createHash('sha256').update(JSON.stringify(objects.map((o) => [o.name, o.generation]))).digest('hex').slice(0, 24);
    const dir = path.join(this.staging.workRoot, 'cache', 'adapters', key);
    if (fs.existsSync(dir)) return dir;
    const tmp = `${dir}.tmp-${this.db.owner}-${Date.now()}`;
    fs.mkdirSync(tmp, { recursive: true, mode: 0o700 });
    for (const o of objects) {
      const base = o.name.slice(prefix.length);
      if (base.includes('/')) continue;
      await this.storage.copyToFile(bucket, o.name, path.join(tmp, base));
    }
    try {
      fs.renameSync(tmp, dir);
    } catch {
      fs.rmSync(tmp, { recursive: true, force: true }); // another request put it in place first
    }
    return dir;
  }

  /** The LoRA rank of the adapter stored at `adapterUri` (its adapter_config.json's r). */
  async adapterRank(adapterUri: string): Promise<number> {
    const { bucket, object: prefix } = parseGsUri(adapterUri, { allowBucketOnly: true });
    const config = JSON.parse((await this.storage.readObject(bucket, `${prefix}adapter_config.json`)).toString('utf8')) as { r?: unknown };
    if (typeof config.r !== 'number') throw new Error(`${adapterUri}adapter_config.json has no rank r`);
    return config.r;
  }

  /** Copies the adapter files stored under `adapterUri` into the new directory `dir`. */
  private async copyAdapter(adapterUri: string, dir: string): Promise<void> {
    const { bucket, object: prefix } = parseGsUri(adapterUri, { allowBucketOnly: true });
    fs.mkdirSync(dir, { mode: 0o700 });
    for (const o of (await this.storage.listObjects(bucket, { prefix })).objects) {
      const base = o.name.slice(prefix.length);
      if (!base.includes('/')) await this.storage.copyToFile(bucket, o.name, path.join(dir, base));
    }
  }

  /** A service account of tunekit's IAM (400 naming service_account otherwise). */
  private async checkServiceAccount(email: string): Promise<void> {
    const row = (await this.db.get('SELECT email FROM service_accounts WHERE email = ?', email));
    if (!row) {
      throw Object.assign(new InvalidRequestError(`service_account ${JSON.stringify(email)} is not a service account of this tunekit (create it with \`tunekit iam service-accounts create\`).`),
        { details: { fieldViolations: [{ field: 'service_account', description: 'no such service account' }] } });
    }
  }

  /** An output location the job's identity may write, in the job's location (400, 404, 403 otherwise). */
  private async writableOutput(req: CreateJobRequest, uri: string, field = 'output_uri'): Promise<void> {
    if (!uri.startsWith('gs://')) throw new InvalidRequestError(`${field} must be a gs:// URI (gs://BUCKET[/PREFIX]), got ${JSON.stringify(uri)}`);
    const { bucket, object } = parseGsUri(uri, { allowBucketOnly: true });
    const b = await this.storage.findBucket(bucket);
    if (!b) throw new NotFoundError(`${field} ${uri}: bucket gs://${bucket} does not exist.`);
    if (!req.authorizeWrite) throw new Error('outputUri without authorizeWrite');
    await req.authorizeWrite(b.project, `projects/_/buckets/${bucket}/objects/${object}`);
    assertSameLocation(b.location, req.location, uri);
  }

  /** A dataset object the caller may read, in the job's location (404, 403, 400 otherwise). */
  private async readableDataset(req: CreateJobRequest, uri: string, field: string): Promise<ResolvedObject> {
    if (typeof uri !== 'string' || !uri.startsWith('gs://')) {
      throw new InvalidRequestError(`${field} must be a gs:// URI (gs://BUCKET/OBJECT), got ${JSON.stringify(uri)}`);
    }
    const { bucket, object } = parseGsUri(uri);
    const b = await this.storage.findBucket(bucket);
    if (!b) throw new NotFoundError(`Dataset ${uri} not found: bucket gs://${bucket} does not exist.`);
    await req.authorizeRead(b.project, `projects/_/buckets/${bucket}/objects/${object}`);
    let resolved: ResolvedObject;
    try {
      resolved = await this.storage.resolveGsUri(uri);
    } catch (err) {
      if (err instanceof NotFoundError) throw new NotFoundError(`Dataset ${uri} not found: ${err.message}.`);
      throw err;
    }
    assertSameLocation(resolved.location, req.location, uri);
    return resolved;
  }
}

function checkRanges(req: CreateJobRequest): void {
  const hp = 'supervised_tuning_spec.hyper_parameters';
  if (!Number.isInteger(req.epochCount) || req.epochCount < EPOCH_RANGE.min || req.epochCount > EPOCH_RANGE.max) {
    throw new InvalidRequestError(`${hp}.epoch_count must be an integer in [${EPOCH_RANGE.min}, ${EPOCH_RANGE.max}], got ${req.epochCount}.`);
  }
  if (!(req.learningRateMultiplier > 0 && req.learningRateMultiplier <= LEARNING_RATE_MULTIPLIER_MAX)) {
    throw new InvalidRequestError(`${hp}.learning_rate_multiplier must be in (0, ${LEARNING_RATE_MULTIPLIER_MAX}], got ${req.learningRateMultiplier}.`);
  }
  if (req.learningRate !== undefined && !(req.learningRate > 0 && req.learningRate < 1)) {
    throw new InvalidRequestError(`${hp}.learning_rate must be in (0, 1), got ${req.learningRate}.`);
  }
  if (!(req.adapterSize in ADAPTER_SIZES)) {
    throw new InvalidRequestError(`${hp}.adapter_size ${req.adapterSize} is not supported: use one of ${Object.keys(ADAPTER_SIZES).join(', ')}.`);
  }
  checkDisplayName(req.tunedModelDisplayName, 'tuned_model_display_name');
  if (req.description !== undefined) checkDescription(req.description, 'description');
  checkLabels(req.labels, 'labels');
}

/** The executor a job's labels ask for (EXECUTOR_LABEL), or undefined; an unknown one is refused by name. */
export function executorOf(labels: Record<string, string> | undefined): Executor | undefined {
  const v = labels?.[EXECUTOR_LABEL];
  if (v === undefined) return undefined;
  if (!(EXECUTORS as readonly string[]).includes(v)) {
    throw new InvalidRequestError(`Invalid value at 'labels[${JSON.stringify(EXECUTOR_LABEL)}]' (TYPE_STRING), ${JSON.stringify(v)}: the executor must be one of ${EXECUTORS.join(', ')}.`);
  }
  return v as Executor;
}

/**
 * Validates the datasets with the dataset module (token limits from the base model) and returns the
 * training set's tuningDataStats; INVALID_ARGUMENT listing the problems by line when rows are unreadable
 * or nothing would be trained.
 */
async function checkDatasets(
  train: { file: string; uri: string }, validation: { file: string; uri: string } | undefined,
  model: { dir: string; limit: number }, epochs: number, signal?: AbortSignal,
): Promise<TuningDataStats> {
  const { report, scans } = await validateDataset(train.file, { validationFile: validation?.file, model, maxPerKind: PROBLEMS_SHOWN, signal });
  const uriOf = (file: string): string => (file === validation?.file ? validation.uri : file === train.file ? train.uri : file);
  const fatal: DatasetProblem[] = [];
  let count = 0;
  for (const k of report.kinds) {
    if (k.severity !== 'error' || TOLERATED_PROBLEMS.includes(k.kind)) continue;
    count += k.count;
    fatal.push(...k.first);
  }
  if (count > 0) {
    fatal.sort((a, b) => (a.file === b.file ? a.line - b.line : a.file === train.file ? -1 : 1));
    const lines = fatal.slice(0, PROBLEMS_SHOWN).map((p) => `${problemLocation({ ...p, file: uriOf(p.file) })}: ${p.message}` +
      (p.kind ? ` [${p.kind}: ${PROBLEM_KINDS[p.kind].title}]` : ''));
    throw new InvalidRequestError(
      `The dataset is not valid: ${count} problem${count === 1 ? '' : 's'} make${count === 1 ? 's' : ''} rows unreadable. ` +
        `Fix ${count === 1 ? 'it' : 'them'} and create the job again.\n${lines.join('\n')}` +
        (count > lines.length ? `\n... and ${count - lines.length} more (run \`tunekit validate\` on the file for all of them)` : ''),
    );
  }
  for (const s of scans) {
    if (trainedRows(s) === 0) {
      throw new InvalidRequestError(`The dataset ${uriOf(s.file)} has no example to train on: every row was dropped (${s.dropped.slice(0, 3).map(([, r]) => r).join('; ')}).`);
    }
  }
  return statsFromScan(scans[0]!, { epochs });
}

function trainedRows(scan: DatasetScan): number {
  let n = 0;
  for (let row = 1; row <= scan.rows; row++) {
    const s = scan.columns.status.get(row);
    if (s === RowStatus.Kept || s === RowStatus.Truncated) n++;
  }
  return n;
}

/** The TuningJob as created, in proto3 JSON (what the API serves with the job's state added). */
function tuningJobJson(req: CreateJobRequest, stats: TuningDataStats): Record<string, unknown> {
  const hyperParameters: Record<string, unknown> = {
    epochCount: String(req.epochCount), learningRateMultiplier: req.learningRateMultiplier, adapterSize: req.adapterSize,
  };
  if (req.learningRate !== undefined) hyperParameters.learningRate = req.learningRate;
  const spec: Record<string, unknown> = { trainingDatasetUri: req.trainingDatasetUri };
  if (req.validationDatasetUri !== undefined) spec.validationDatasetUri = req.validationDatasetUri;
  spec.hyperParameters = hyperParameters;
  if (req.exportLastCheckpointOnly) spec.exportLastCheckpointOnly = true;
  if (req.evaluationConfig) spec.evaluationConfig = req.evaluationConfig;
  // base_model and pre_tuned_model are one oneof (source_model): a continuous tuning job names its base in pre_tuned_model.
  const job: Record<string, unknown> = req.preTunedModel
    ? {
      preTunedModel: {
        tunedModelName: req.preTunedModel.tunedModelName, ...(req.preTunedModel.checkpointId !== undefined ? { checkpointId: req.preTunedModel.checkpointId } : {}),
        baseModel: req.baseModel,
      },
    }
    : { baseModel: req.baseModel };
  Object.assign(job, { supervisedTuningSpec: spec, tunedModelDisplayName: req.tunedModelDisplayName });
  if (req.description) job.description = req.description;
  if (req.labels && Object.keys(req.labels).length) job.labels = req.labels;
  if (req.serviceAccount) job.serviceAccount = req.serviceAccount;
  if (req.outputUri) job.outputUri = req.outputUri;
  job.tuningDataStats = stats;
  return job;
}
