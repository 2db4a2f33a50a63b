// Leftovers, removed by one sweep: datasets staged by job creates that crashed before their job existed
// (`<work-root>/staging/uploads/<mark>-<hex>`), adapters being copied out by a process that died
// (`<work-root>/cache/adapters/<key>.tmp-<mark>-<time>`), the staged files and work directories of jobs
// that ended (a job needs them only while it may run: PENDING, RUNNING, CANCELLING), and the object
// store's temporary files of uploads whose process is gone, parts of resumable uploads that are gone (ObjectStore.recover),
// and base models in the blob store that a registration left incomplete or that nothing names (base-models.ts sweepModels).
// "Gone" is the database's answer (db.ts ownerGone): a dead pid with SQLite, a released advisory lock
// with PostgreSQL, so the sweep is right on a directory that several machines share.
// `tunekit serve` sweeps at start and hourly: with SQLite its job runner (jobs/runner.ts), with
// PostgreSQL the one replica that holds the maintenance lock (postgres/queue.ts).

import type { PlatformDb } from './db.js';
import { TERMINAL_JOB_STATES } from './jobs.js';
import type { ObjectStore } from './storage.js';
import type { JobStaging } from './jobs/spec.js';
import { sweepModels } from './base-models.js';
import { NotFoundError } from '../errors.js';

/** How often `tunekit serve` sweeps (besides at start). */
export const SWEEP_MS = 60 * 60 * 1000;

/**
 * Removes the leftovers listed in the file comment; `mayRun` adds job ids to keep (a runner's live
 * workers). Returns what was removed: paths, and `staging/tuning-jobs/<id>` for a job's staged files.
 */
export async function sweepLeftovers(
  db: PlatformDb, staging: JobStaging, storage: ObjectStore, mayRun: (jobId: string) => boolean = () => false,
): Promise<string[]> {
  const live = async () => new Set((await db.all<{ id: string }>(
    `SELECT id FROM tuning_jobs WHERE state NOT IN (${TERMINAL_JOB_STATES.map(() => '?').join(', ')})`, ...TERMINAL_JOB_STATES,
  )).map((r) => r.id));
  const removed = await staging.removeStaleUploads();
  const ended = await staging.removeEnded(async () => {
    const ids = await live();
    return (id) => ids.has(id) || mayRun(id);
  });
  removed.push(...ended.map((id) => `staging/tuning-jobs/${id}`));
  removed.push(...(await storage.recover()).removed);
  removed.push(...await sweepModels(db, staging.blobs, [...await live()], async (id) => {
    try {
      const spec = await staging.readSpec(id);
      return [spec.baseBlobs, spec.evaluation?.judge?.modelBlobs].filter((p): p is string => p !== undefined);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined; // its create has not stored it yet
      throw err;
    }
  }));
  return removed;
}

/** A log line for a sweep's result. */
export function sweepSummary(removed: string[]): string {
  return `${removed.length} leftover${removed.length === 1 ? '' : 's'} of interrupted work removed${removed.length ? `: ${removed.slice(0, 5).join(', ')}${removed.length > 5 ? ', ...' : ''}` : ''}`;
}
