// The platform's state in one object: open a data directory, get the database, settings, object store,
// identities, quotas and job records that share it (SQLite in the data directory, or PostgreSQL with
// `database`). `tunekit serve` and `tunekit worker` open one; each CLI command opens one for its run;
// tests open one per temporary directory.

import { PlatformDb, defaultDataDir } from './db.js';
import { PlatformConfig } from './config.js';
import { ObjectStore, type ResolvedObject } from './storage.js';
import { Iam, type Principal } from './iam.js';
import { Quotas } from './quota.js';
import { TuningJobs } from './jobs.js';
import { Projects } from './projects.js';
import { parseGsUri } from './gcs-names.js';
import { NotFoundError } from '../errors.js';
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
}

export class Platform {
  readonly db: PlatformDb;
  readonly config: PlatformConfig;
  readonly projects: Projects;
  readonly storage: ObjectStore;
  readonly iam: Iam;
  readonly quotas: Quotas;
  readonly jobs: TuningJobs;

  private constructor(db: PlatformDb, opts: PlatformOptions) {
    this.db = db;
    this.config = new PlatformConfig(db, { locations: opts.locations });
    this.projects = new Projects(db);
    this.storage = new ObjectStore(db, this.config);
    this.iam = new Iam(db, { insecureNoAuth: opts.insecureNoAuth });
    this.quotas = new Quotas(db, this.config);
    this.jobs = new TuningJobs(db, this.quotas);
  }

  static async open(opts: PlatformOptions = {}): Promise<Platform> {
    const db = await PlatformDb.open({ dataDir: opts.dataDir ?? defaultDataDir(), ...(opts.database !== undefined ? { database: opts.database } : {}) });
    try {
      return new Platform(db, opts);
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
