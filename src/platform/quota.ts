// Quotas. "concurrent tuning jobs" per project and location: a job holds a slot from the moment its
// row is inserted until it reaches a terminal state, so the slot *is* the job row and there is nothing
// to release or leak. withTuningJobSlot counts the active rows and runs the insert in one IMMEDIATE
// transaction: two creates — in one process or in several sharing the data dir — cannot both see a
// free slot. A full quota is RESOURCE_EXHAUSTED at once; nothing is queued behind it.

import { ResourceExhaustedError } from '../errors.js';
import type { PlatformDb } from './db.js';
import { QUOTAS, type PlatformConfig } from './config.js';

/** Job states that hold a concurrent-tuning-jobs slot. */
export const ACTIVE_JOB_STATES = ['JOB_STATE_QUEUED', 'JOB_STATE_PENDING', 'JOB_STATE_RUNNING', 'JOB_STATE_CANCELLING'] as const;

export interface QuotaUsage {
  quota: string;
  project: string;
  location: string;
  limit: number;
  used: number;
}

export class Quotas {
  constructor(private readonly db: PlatformDb, private readonly config: PlatformConfig) {}

  /** Active tuning jobs in (project, location) against their limit. */
  async tuningJobUsage(project: string, location: string): Promise<QuotaUsage> {
    const placeholders = ACTIVE_JOB_STATES.map(() => '?').join(', ');
    const row = (await this.db.get(`SELECT COUNT(*) AS n FROM tuning_jobs WHERE project = ? AND location = ? AND state IN (${placeholders})`, project, location, ...ACTIVE_JOB_STATES)) as { n: number };
    return {
      quota: QUOTAS.concurrentTuningJobs.title, project, location,
      limit: await this.config.quotaLimit(QUOTAS.concurrentTuningJobs.id, project, location), used: row.n,
    };
  }

  /**
   * Runs `insertJob` (it must insert the job's row in an active state) inside a write
   * transaction that first checks the concurrent-tuning-jobs quota of (project, location). Throws
   * RESOURCE_EXHAUSTED naming the quota when it is full; `insertJob` then does not run.
   */
  async withTuningJobSlot<T>(project: string, location: string, insertJob: () => Promise<T>): Promise<T> {
    return this.db.transaction(async () => {
      const u = await this.tuningJobUsage(project, location);
      if (u.used >= u.limit) {
        const err = new ResourceExhaustedError(
          `Quota exceeded for quota "${u.quota}" in project ${project}, location ${location}: limit ${u.limit}, ${u.used} in use. ` +
            'Wait for a job to finish, cancel one, or raise the limit.',
        );
        // google.rpc.QuotaFailure and ErrorInfo metadata for the API (src/api/errors.ts reads `details`).
        const id = QUOTAS.concurrentTuningJobs.id;
        Object.assign(err, { details: {
          quota: { metric: `aiplatform.googleapis.com/${id}`, id, subject: `projects/${project}` },
          metadata: { quota_metric: `aiplatform.googleapis.com/${id}`, quota_limit: String(u.limit), consumer: `projects/${project}`, location },
        } });
        throw err;
      }
      return insertJob();
    });
  }
}
