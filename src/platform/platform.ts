// The platform's state in one object: open a data directory, get the database, settings, object store,
// identities, quotas and job records that share it (SQLite in the data directory, or PostgreSQL with
// `database`; the bytes in the data directory, or in the blob store `storage` names, blob-store.ts).
// A deployment records the object storage it was first given one with (config key object_storage):
// opening it with another one is refused, since the objects' bytes would not be found. `tunekit serve` and `tunekit worker` open one; each CLI command opens one for its run;
// tests open one per temporary directory.

import { PlatformDb, defaultDataDir } from './db.js';
import { PlatformConfig } from './config.js';
import { ObjectStore, type ResolvedObject } from './storage.js';
import { Iam, type Principal } from './iam.js';
import { Quotas } from './quota.js';
import { TuningJobs } from './jobs.js';
import { Projects } from './projects.js';
import { parseGsUri } from './gcs-names.js';
import { FailedPreconditionError, NotFoundError } from '../errors.js';
import { LocalBlobStore, openBlobStore, type BlobStore, type StorageConfig } from './blob-store.js';
import { JobStaging } from './jobs/spec.js';
import { BaseModelFiles } from './base-models.js';
import type { Permission } from './roles.js';

export interface PlatformOptions {
  /** Default $TUNEKIT_DATA_DIR or ~/.tunekit. With `database`, the directory every machine shares. */
  dataDir?: string;
  /** A postgres:// URL: the platform state lives there instead of the data directory's SQLite file. */
  database?: string;
  /** Every request is the insecure principal, allowed everything (local play only). */
  insecureNoAuth?: boolean;
  /** Overrides the stored supported locations for this process. */
  locations?: readonly string[];
  /** Where the bytes are (objects, staged jobs): default the data directory. */
  storage?: StorageConfig;
  /** Where this machine runs jobs (`<work-dir>/work/`) and caches base models; default the data directory. */
  workDir?: string;
  /** The bound of this machine's base-model cache (BaseModelFiles; default LIMITS.modelCacheBytes). */
  modelCacheBytes?: number;
}

const STORAGE_SETTING = 'object_storage';

export class Platform {
  readonly db: PlatformDb;
  readonly config: PlatformConfig;
  readonly projects: Projects;
  readonly storage: ObjectStore;
  readonly iam: Iam;
  readonly quotas: Quotas;
  readonly jobs: TuningJobs;
  readonly blobs: BlobStore;
  /** The blob store's configuration (undefined: the data directory). */
  readonly storageConfig: StorageConfig | undefined;
  /** Tuning jobs' staged files (in the blob store) and this machine's work directories. */
  readonly staging: JobStaging;
  /** Base models in the blob store, materialized in `<work-dir>/cache/models/` (one per process: it knows the copies in use). */
  readonly models: BaseModelFiles;

  private constructor(db: PlatformDb, blobs: BlobStore, opts: PlatformOptions) {
    this.db = db;
    this.blobs = blobs;
    this.storageConfig = opts.storage;
    this.staging = new JobStaging(blobs, opts.workDir ?? db.dataDir, db);
    this.models = new BaseModelFiles(blobs, opts.workDir ?? db.dataDir, db.owner, opts.modelCacheBytes);
    this.config = new PlatformConfig(db, { locations: opts.locations });
    this.projects = new Projects(db);
    this.storage = new ObjectStore(db, this.config, { blobs });
    this.iam = new Iam(db, { insecureNoAuth: opts.insecureNoAuth });
    this.quotas = new Quotas(db, this.config);
    this.jobs = new TuningJobs(db, this.quotas);
  }

  static async open(opts: PlatformOptions = {}): Promise<Platform> {
    const db = await PlatformDb.open({ dataDir: opts.dataDir ?? defaultDataDir(), ...(opts.database !== undefined ? { database: opts.database } : {}) });
    try {
      const blobs = opts.storage ? await openBlobStore(opts.storage, db.owner) : new LocalBlobStore(db.dataDir, db.owner);
      await checkDeploymentStorage(db, new PlatformConfig(db), blobs);
      return new Platform(db, blobs, opts);
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  get dataDir(): string {
    return this.db.dataDir;
  }

  /**
   * An object the caller may act on with `permission` (storage.objects.get to read a dataset): 404 if
   * the bucket does not exist, 403 naming the permission if the caller lacks it in the bucket's
   * project (checked before the object is looked up, so a 403 reveals nothing about the objects), then
   * 404 if the object does not exist.
   */
  async resolveForCaller(principal: Principal, uri: string, permission: Permission = 'storage.objects.get'): Promise<ResolvedObject> {
    const { bucket, object } = parseGsUri(uri);
    const b = await this.storage.findBucket(bucket);
    if (!b) throw new NotFoundError(`bucket gs://${bucket} does not exist (from ${uri})`);
    await this.iam.authorize(principal, permission, b.project, `projects/_/buckets/${bucket}/objects/${object}`);
    return this.storage.resolveGsUri(uri);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

/** Refuses a blob store other than the one the deployment's objects are in (see the file comment). */
async function checkDeploymentStorage(db: PlatformDb, config: PlatformConfig, blobs: BlobStore): Promise<void> {
  const recorded = (await config.getSetting<string>(STORAGE_SETTING)) ?? 'local';
  if (recorded === blobs.kind) return;
  const hint = (kind: string) => (kind === 'local' ? 'a directory (the default)' : kind);
  if (recorded === 'local') {
    const n = (await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM objects'))!.n;
    if (n === 0) {
      await config.setSetting(STORAGE_SETTING, blobs.kind);
      return;
    }
    throw new FailedPreconditionError(`${db.describe()} keeps the bytes of its ${n} objects in a directory, but this process was given --storage ${blobs.kind}: moving a deployment's objects is not supported; use --storage with a directory`);
  }
  throw new FailedPreconditionError(`${db.describe()} keeps its objects in ${recorded}, but this process was given ${hint(blobs.kind)}: give --storage ${recorded} (and its --storage-endpoint and credentials)`);
}
