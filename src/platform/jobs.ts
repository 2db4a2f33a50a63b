// Tuning-job records: the state machine and its timestamps, kept in the tuning_jobs table. The HTTP
// layer turns records into TuningJob JSON; the runner (jobs/runner.ts) claims PENDING jobs, round-robin
// across projects (oldest first within one), and workers report progress. Lists are newest first, in
// pages bounded in items and in bytes (limits.ts).
// States: PENDING -> RUNNING -> SUCCEEDED | FAILED | CANCELLED; cancel of a PENDING job ends it at once,
// of a RUNNING one asks the worker (CANCELLING) and the worker ends it. A job holds a quota slot while
// it is in ACTIVE_JOB_STATES. Every transition is one UPDATE guarded by the state it expects.

import { FailedPreconditionError, InvalidRequestError, NotFoundError } from '../errors.js';
import { newNumericId, now, type PlatformDb } from './db.js';
import type { Quotas } from './quota.js';
import { fitPage, LIMITS, type PageOptions } from './limits.js';

export type JobState =
  | 'JOB_STATE_QUEUED' | 'JOB_STATE_PENDING' | 'JOB_STATE_RUNNING' | 'JOB_STATE_SUCCEEDED' | 'JOB_STATE_FAILED'
  | 'JOB_STATE_CANCELLING' | 'JOB_STATE_CANCELLED' | 'JOB_STATE_PAUSED' | 'JOB_STATE_EXPIRED';

export const TERMINAL_JOB_STATES: readonly JobState[] = ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED', 'JOB_STATE_EXPIRED'];

/** google.rpc.Status */
export interface JobError {
  code: number;
  message: string;
  details?: unknown[];
}

export interface TuningJobRecord {
  id: string;
  /** projects/{p}/locations/{l}/tuningJobs/{id} */
  name: string;
  project: string;
  location: string;
  state: JobState;
  baseModel: string;
  displayName: string;
  request: unknown;
  result?: unknown;
  error?: JobError;
  checkpoint?: string;
  workerPid?: number;
  attempts: number;
  createTime: string;
  startTime?: string;
  endTime?: string;
  updateTime: string;
}

export interface MetricPoint {
  name: string;
  step: number;
  value: number;
  epoch?: number;
  time: string;
}

interface JobRow {
  id: string; project: string; location: string; state: JobState; base_model: string; display_name: string;
  request: string; result: string | null; error: string | null; checkpoint: string | null; worker_pid: number | null;
  attempts: number; create_time: string; start_time: string | null; end_time: string | null; update_time: string;
}

const MAX_PAGE = LIMITS.pageSize.tuningJobs;

export class TuningJobs {
  constructor(private readonly db: PlatformDb, private readonly quotas: Quotas) {}

  /** Inserts a PENDING job if the concurrent-tuning-jobs quota allows (else RESOURCE_EXHAUSTED). */
  async create(input: { project: string; location: string; baseModel: string; displayName?: string; request: unknown }): Promise<TuningJobRecord> {
    const id = newNumericId();
    const t = now();
    await this.quotas.withTuningJobSlot(input.project, input.location, () => this.db.run(
      `INSERT INTO tuning_jobs (id, project, location, state, base_model, display_name, request, create_time, update_time, queue_seq)
       VALUES (?, ?, ?, 'JOB_STATE_PENDING', ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(queue_seq), 0) + 1 FROM tuning_jobs))`,
      id, input.project, input.location, input.baseModel, input.displayName ?? '', JSON.stringify(input.request), t, t,
    ));
    return await this.require(id);
  }

  /** Every PENDING job's id, oldest first (the queue's reconciliation, postgres/queue.ts). */
  async pendingIds(): Promise<string[]> {
    const rows = await this.db.all<{ id: string }>("SELECT id FROM tuning_jobs WHERE state = 'JOB_STATE_PENDING' ORDER BY queue_seq");
    return rows.map((r) => r.id);
  }

  /** The jobs a worker holds (RUNNING, CANCELLING) with the attempt it holds them under. */
  async runs(): Promise<{ id: string; state: JobState; attempts: number }[]> {
    return await this.db.all("SELECT id, state, attempts FROM tuning_jobs WHERE state IN ('JOB_STATE_RUNNING', 'JOB_STATE_CANCELLING') ORDER BY queue_seq");
  }

  /** The job in (project, location), or NOT_FOUND naming it. */
  async get(project: string, location: string, id: string): Promise<TuningJobRecord> {
    const row = (await this.db.get('SELECT * FROM tuning_jobs WHERE id = ? AND project = ? AND location = ?', id, project, location)) as JobRow | undefined;
    if (!row) throw new NotFoundError(`tuning job projects/${project}/locations/${location}/tuningJobs/${id} does not exist`);
    return toRecord(row);
  }

  async find(id: string): Promise<TuningJobRecord | undefined> {
    const row = (await this.db.get('SELECT * FROM tuning_jobs WHERE id = ?', id)) as JobRow | undefined;
    return row && toRecord(row);
  }

  /**
   * Newest first, optionally only `states` and only jobs whose tuned model display name is `displayName`.
   * A page holds at most `pageSize` jobs (100 at most) and about LIMITS.listPageBytes of JSON (measured by
   * `sizeOf`); the page token is opaque (the last job's create time and id).
   */
  async list(project: string, location: string, opts: PageOptions<TuningJobRecord> & { states?: readonly JobState[]; displayName?: string } = {}): Promise<{
    jobs: TuningJobRecord[];
    nextPageToken?: string;
  }> {
    const pageSize = opts.pageSize ?? MAX_PAGE;
    if (!Number.isInteger(pageSize) || pageSize < 1) throw new InvalidRequestError(`pageSize must be a positive integer, got ${pageSize}`);
    const size = Math.min(pageSize, MAX_PAGE);
    let after: [string, string] = ['\u{10FFFF}', ''];
    if (opts.pageToken) {
      try {
        after = JSON.parse(Buffer.from(opts.pageToken, 'base64url').toString('utf8')) as [string, string];
        if (!Array.isArray(after) || after.length !== 2 || after.some((x) => typeof x !== 'string')) throw new Error();
      } catch {
        throw new InvalidRequestError(`pageToken ${JSON.stringify(opts.pageToken)} is not valid`);
      }
    }
    const states = opts.states ?? [];
    const stateSql = states.length ? `AND state IN (${states.map(() => '?').join(', ')})` : '';
    const nameSql = opts.displayName === undefined ? '' : 'AND display_name = ?';
    const rows = (await this.db.all(`SELECT * FROM tuning_jobs WHERE project = ? AND location = ? AND (create_time, id) < (?, ?) ${stateSql} ${nameSql}
         ORDER BY create_time DESC, id DESC LIMIT ?`, project, location, after[0], after[1], ...states, ...(opts.displayName === undefined ? [] : [opts.displayName]), size + 1)) as JobRow[];
    const records = rows.slice(0, size).map(toRecord);
    const jobs = records.slice(0, fitPage(records, opts.sizeOf, opts.maxBytes));
    const last = jobs[jobs.length - 1];
    return (rows.length > jobs.length) && last
      ? { jobs, nextPageToken: Buffer.from(JSON.stringify([last.createTime, last.id])).toString('base64url') }
      : { jobs };
  }

  /**
   * Best-effort cancel: a PENDING/QUEUED job becomes CANCELLED (error.code 1) at once, a RUNNING one
   * CANCELLING until its worker stops. FAILED_PRECONDITION for a job that has already ended.
   */
  async cancel(project: string, location: string, id: string): Promise<TuningJobRecord> {
    return await this.db.transaction(async () => {
      const job = await this.get(project, location, id);
      const t = now();
      if (job.state === 'JOB_STATE_PENDING' || job.state === 'JOB_STATE_QUEUED' || job.state === 'JOB_STATE_PAUSED') {
        await this.db.run("UPDATE tuning_jobs SET state = 'JOB_STATE_CANCELLED', error = ?, end_time = ?, update_time = ? WHERE id = ?", JSON.stringify(CANCELLED_ERROR), t, t, id);
      } else if (job.state === 'JOB_STATE_RUNNING') {
        await this.db.run("UPDATE tuning_jobs SET state = 'JOB_STATE_CANCELLING', update_time = ? WHERE id = ?", t, id);
      } else if (job.state !== 'JOB_STATE_CANCELLING') {
        throw new FailedPreconditionError(`tuning job ${job.name} is in state ${job.state} and cannot be cancelled`);
      }
      return await this.require(id);
    });
  }

  /**
   * For a runner: moves a PENDING job to RUNNING for `workerPid`, or returns undefined. Fair across
   * projects: the job is the oldest PENDING one of the project whose last turn (`lastTurn`: project ->
   * a number that grows with each claim, kept by the runner) is the oldest; projects that never had a
   * turn come first, the one with the oldest PENDING job first among them (oldest: created first, queue_seq). So one project's queue never
   * holds another's job back by more than one job per project.
   */
  async claimNext(workerPid: number, lastTurn: ReadonlyMap<string, number> = new Map()): Promise<TuningJobRecord | undefined> {
    return await this.db.transaction(async () => {
      const heads = await this.db.all<{ project: string; first: number }>(
        "SELECT project, MIN(queue_seq) AS first FROM tuning_jobs WHERE state = 'JOB_STATE_PENDING' GROUP BY project",
      );
      const turn = (p: string): number => lastTurn.get(p) ?? -Infinity;
      const head = heads.sort((a, b) => turn(a.project) - turn(b.project) || a.first - b.first)[0];
      const row = head && await this.db.get<{ id: string }>('SELECT id FROM tuning_jobs WHERE queue_seq = ?', head.first);
      if (!row) return undefined;
      const t = now();
      await this.db.run(
        `UPDATE tuning_jobs SET state = 'JOB_STATE_RUNNING', worker_pid = ?, attempts = attempts + 1,
           start_time = COALESCE(start_time, ?), update_time = ? WHERE id = ?`,
        workerPid, t, t, row.id,
      );
      return await this.require(row.id);
    });
  }

  /**
   * For a worker that pulled job `id` from the queue (src/platform/postgres/queue.ts): takes the job
   * over, PENDING or RUNNING (the queue hands a job on only when its previous worker lost it), as
   * RUNNING with attempts + 1, the fencing token of the new run. A CANCELLING job whose worker was
   * lost ends CANCELLED. Undefined when there is nothing to run (ended, cancelled, or no such job).
   */
  async takeOver(id: string, workerPid: number): Promise<TuningJobRecord | undefined> {
    return await this.db.transaction(async () => {
      const job = await this.find(id);
      if (!job) return undefined;
      const t = now();
      if (job.state === 'JOB_STATE_CANCELLING') {
        await this.db.run(
          "UPDATE tuning_jobs SET state = 'JOB_STATE_CANCELLED', error = ?, worker_pid = NULL, end_time = ?, update_time = ? WHERE id = ?",
          JSON.stringify(CANCELLED_ERROR), t, t, id,
        );
        return undefined;
      }
      if (job.state !== 'JOB_STATE_PENDING' && job.state !== 'JOB_STATE_RUNNING') return undefined;
      await this.db.run(
        `UPDATE tuning_jobs SET state = 'JOB_STATE_RUNNING', worker_pid = ?, attempts = attempts + 1,
           start_time = COALESCE(start_time, ?), update_time = ? WHERE id = ?`,
        workerPid, t, t, id,
      );
      return await this.require(id);
    });
  }

  /**
   * Records on a job that named no executor the one its worker runs it with: label `label` of its
   * request (the TuningJob's labels), under the attempt `attempt` (a lost worker's late write is dropped).
   */
  async recordExecutor(id: string, label: string, executor: string, attempt: number): Promise<void> {
    await this.db.transaction(async () => {
      const job = await this.find(id);
      if (!job || job.attempts !== attempt) return;
      const request = job.request as { labels?: Record<string, string> };
      request.labels = { ...request.labels, [label]: executor };
      await this.db.run('UPDATE tuning_jobs SET request = ?, update_time = ? WHERE id = ? AND attempts = ?', JSON.stringify(request), now(), id, attempt);
    });
  }

  async setCheckpoint(id: string, checkpoint: string): Promise<void> {
    await this.db.run('UPDATE tuning_jobs SET checkpoint = ?, update_time = ? WHERE id = ?', checkpoint, now(), id);
  }

  /**
   * Ends a RUNNING or CANCELLING job (only while its attempts count is `attempt`, when given: the run
   * that ends it must still hold it). Returns false if it was not in one of those states.
   */
  async finish(
    id: string, outcome: { state: 'JOB_STATE_SUCCEEDED'; result: unknown } | { state: 'JOB_STATE_FAILED'; error: JobError } | { state: 'JOB_STATE_CANCELLED' },
    attempt?: number,
  ): Promise<boolean> {
    const t = now();
    const error = outcome.state === 'JOB_STATE_FAILED' ? outcome.error : outcome.state === 'JOB_STATE_CANCELLED' ? CANCELLED_ERROR : null;
    const result = outcome.state === 'JOB_STATE_SUCCEEDED' ? JSON.stringify(outcome.result) : null;
    const r = await this.db.run(
      `UPDATE tuning_jobs SET state = ?, result = COALESCE(?, result), error = ?, worker_pid = NULL, end_time = ?, update_time = ?
       WHERE id = ? AND state IN ('JOB_STATE_RUNNING', 'JOB_STATE_CANCELLING') ${attempt === undefined ? '' : 'AND attempts = ?'}`,
      outcome.state, result, error && JSON.stringify(error), t, t, id, ...(attempt === undefined ? [] : [attempt]),
    );
    return r.changes === 1;
  }

  /**
   * After a crash: jobs whose worker is gone go back to PENDING (to resume from their checkpoint), or to
   * CANCELLED if a cancel was asked. `alive` says whether a worker pid still runs.
   */
  async recoverInterrupted(alive: (pid: number) => boolean): Promise<string[]> {
    return await this.db.transaction(async () => {
      const rows = (await this.db.all("SELECT id, state, worker_pid FROM tuning_jobs WHERE state IN ('JOB_STATE_RUNNING', 'JOB_STATE_CANCELLING')")) as { id: string; state: JobState; worker_pid: number | null }[];
      const t = now();
      const recovered: string[] = [];
      for (const r of rows) {
        if (r.worker_pid !== null && alive(r.worker_pid)) continue;
        if (r.state === 'JOB_STATE_CANCELLING') {
          await this.db.run("UPDATE tuning_jobs SET state = 'JOB_STATE_CANCELLED', error = ?, worker_pid = NULL, end_time = ?, update_time = ? WHERE id = ?", JSON.stringify(CANCELLED_ERROR), t, t, r.id);
        } else {
          await this.db.run("UPDATE tuning_jobs SET state = 'JOB_STATE_PENDING', worker_pid = NULL, update_time = ? WHERE id = ?", t, r.id);
        }
        recovered.push(r.id);
      }
      return recovered;
    });
  }

  /** Records metric values at a step (a re-run step after a resume overwrites its values). */
  async recordMetrics(id: string, step: number, values: Record<string, number>, epoch?: number): Promise<void> {
    const entries = Object.entries(values);
    if (entries.length === 0) return;
    const t = now();
    // One statement for every value of the step: atomic without a transaction.
    await this.db.run(
      `INSERT INTO job_metrics (job_id, step, name, value, epoch, time) VALUES ${entries.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}
       ON CONFLICT (job_id, name, step) DO UPDATE SET value = excluded.value, epoch = excluded.epoch, time = excluded.time`,
      ...entries.flatMap(([name, value]) => [id, step, name, value, epoch ?? null, t]),
    );
  }

  /** Metric points ordered by name, then step. */
  async metrics(id: string): Promise<MetricPoint[]> {
    const rows = (await this.db.all('SELECT name, step, value, epoch, time FROM job_metrics WHERE job_id = ? ORDER BY name, step', id)) as { name: string; step: number; value: number; epoch: number | null; time: string }[];
    return rows.map(({ epoch, ...p }) => (epoch === null ? p : { ...p, epoch }));
  }

  private async require(id: string): Promise<TuningJobRecord> {
    const job = await this.find(id);
    if (!job) throw new Error(`tuning job ${id} vanished`);
    return job;
  }
}

const CANCELLED_ERROR: JobError = { code: 1, message: 'CANCELLED' };

function toRecord(r: JobRow): TuningJobRecord {
  const rec: TuningJobRecord = {
    id: r.id, name: `projects/${r.project}/locations/${r.location}/tuningJobs/${r.id}`, project: r.project, location: r.location,
    state: r.state, baseModel: r.base_model, displayName: r.display_name, request: JSON.parse(r.request) as unknown,
    attempts: r.attempts, createTime: r.create_time, updateTime: r.update_time,
  };
  if (r.result !== null) rec.result = JSON.parse(r.result) as unknown;
  if (r.error !== null) rec.error = JSON.parse(r.error) as JobError;
  if (r.checkpoint !== null) rec.checkpoint = r.checkpoint;
  if (r.worker_pid !== null) rec.workerPid = r.worker_pid;
  if (r.start_time !== null) rec.startTime = r.start_time;
  if (r.end_time !== null) rec.endTime = r.end_time;
  return rec;
}
