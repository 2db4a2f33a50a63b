// Tuning jobs queued in PostgreSQL through pg-boss (docs/scaling.md says why pg-boss): `tunekit serve
// --database` sends one queue job per tuning job; every `tunekit worker` pulls them, one at a time.
// - The queue job carries only the tuning job's id; the tuning_jobs row stays the truth. A worker that
//   pulls one takes the row over (attempts + 1: the fencing token every later write checks, jobs.ts) and
//   runs it with runTuningJob, resuming from the newest checkpoint in the deployment's blob store (a
//   shared directory, or object storage every machine reaches: blob-store.ts).
// - Liveness: the worker heartbeats the queue job every heartbeatSeconds / 2; pg-boss's supervisor fails
//   a job whose heartbeat is older than heartbeatSeconds and makes it available again (retryLimit), so
//   the job of a worker killed mid-run goes to another worker. A worker that was only stalled finds at
//   its next step that the row has a higher attempt and stops without committing: one SUCCEEDED, one
//   registry version. The trainer yields to the event loop once per step, so the heartbeat interval
//   must be longer than the longest step.
// - pg-boss keeps its tables in its own schema (`pgboss`), beside the platform's.
// - Reconciliation: the row is written before its message is sent, so a send that fails (or a server
//   that dies between the two) would leave a PENDING job no worker ever pulls. Each queue job's id is
//   derived from the tuning job's id, and pg-boss inserts with ON CONFLICT DO NOTHING, so sending a
//   job twice is a no-op; serve resends every PENDING job at its start and every RECONCILE_SECONDS
//   (with its --job-heartbeat-seconds: workers do not know it, so they do not send), and the job
//   runs once.

import { createHash } from 'node:crypto';
import { PgBoss } from 'pg-boss';
import type { Platform } from '../platform.js';
import type { JobQueue } from '../jobs/runner.js';
import { runTuningJob, RunStopped } from '../jobs/worker.js';
import { TERMINAL_JOB_STATES, type TuningJobs } from '../jobs.js';

export const TUNING_QUEUE = 'tunekit-tuning-jobs';
import { DEFAULT_HEARTBEAT_SECONDS } from './heartbeat.js';
/** Retries after lost workers before a job fails (each resumes from the last checkpoint). */
const RETRY_LIMIT = 20;
/** pg-boss's longest allowed expiry: a job still running after it is handed on (from its checkpoint). */
const EXPIRE_SECONDS = 24 * 3600;
/** How often pg-boss's supervisor looks for jobs with stale heartbeats. */
const SUPERVISE_SECONDS = 5;
/** How often PENDING jobs are resent (besides at start). */
const RECONCILE_SECONDS = 60;

interface TuningMessage {
  jobId: string;
}

async function startBoss(database: string): Promise<PgBoss> {
  const boss = new PgBoss({ connectionString: database, superviseIntervalSeconds: SUPERVISE_SECONDS, max: 4 });
  boss.on('error', (err: unknown) => process.stderr.write(`tunekit: queue: ${err instanceof Error ? err.message : String(err)}\n`));
  await boss.start();
  return boss;
}

async function ensureQueue(boss: PgBoss, heartbeatSeconds: number): Promise<void> {
  if (!(await boss.getQueue(TUNING_QUEUE))) {
    await boss.createQueue(TUNING_QUEUE, { retryLimit: RETRY_LIMIT, expireInSeconds: EXPIRE_SECONDS, heartbeatSeconds }).catch(async (err: unknown) => {
      if (!(await boss.getQueue(TUNING_QUEUE))) throw err; // else another process created it meanwhile
    });
  }
}

/** The queue job's id of tuning job `jobId`: a name-based (version 5 style) UUID, the same in every process. */
export function queueJobId(jobId: string): string {
  const h = createHash('sha1').update(`${TUNING_QUEUE}:${jobId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** Sends job `jobId`'s queue job unless it exists (in any state): a no-op the second time. */
async function send(boss: PgBoss, jobId: string, heartbeatSeconds: number): Promise<void> {
  const message: TuningMessage = { jobId };
  await boss.send(TUNING_QUEUE, message, {
    id: queueJobId(jobId), heartbeatSeconds, retryLimit: RETRY_LIMIT, expireInSeconds: EXPIRE_SECONDS,
  });
}

/** Sends every PENDING job now and every RECONCILE_SECONDS until the returned stop is called. */
async function reconcile(boss: PgBoss, jobs: TuningJobs, heartbeatSeconds: number, log: (m: string) => void): Promise<() => void> {
  const pass = async (): Promise<void> => {
    for (const id of await jobs.pendingIds()) await send(boss, id, heartbeatSeconds);
  };
  await pass();
  const timer = setInterval(() => void pass().catch((err: unknown) => log(`reconciling the queue: ${err instanceof Error ? err.message : String(err)}`)), RECONCILE_SECONDS * 1000);
  timer.unref();
  return () => clearInterval(timer);
}

/** The serving side: `tunekit serve --database` queues each created job here instead of running it. */
export class PostgresJobQueue implements JobQueue {
  private stopReconcile = (): void => undefined;

  private constructor(private readonly boss: PgBoss, private readonly jobs: TuningJobs, private readonly heartbeatSeconds: number) {}

  static async open(database: string, jobs: TuningJobs, opts: { heartbeatSeconds?: number } = {}): Promise<PostgresJobQueue> {
    const heartbeatSeconds = opts.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS;
    const boss = await startBoss(database);
    await ensureQueue(boss, heartbeatSeconds);
    return new PostgresJobQueue(boss, jobs, heartbeatSeconds);
  }

  /** Sends the PENDING jobs that have no queue job (see Reconciliation above), now and periodically. */
  async start(): Promise<string[]> {
    this.stopReconcile();
    this.stopReconcile = await reconcile(this.boss, this.jobs, this.heartbeatSeconds, (m) => process.stderr.write(`tunekit: ${m}\n`));
    return [];
  }

  async enqueue(jobId: string): Promise<void> {
    await send(this.boss, jobId, this.heartbeatSeconds);
  }

  /** A cancel is seen by the job's worker at its next step (the row is CANCELLING). */
  async cancel(): Promise<void> {}

  async stop(): Promise<void> {
    this.stopReconcile();
    await this.boss.stop({ graceful: false });
  }
}

/**
 * A worker machine's loop (`tunekit worker`): pulls tuning jobs one at a time and runs them against
 * the shared database and blob store, until stop().
 */
export class PostgresWorker {
  private constructor(private readonly boss: PgBoss, private readonly log: (m: string) => void) {}

  static async start(platform: Platform, database: string, opts: { log?: (m: string) => void } = {}): Promise<PostgresWorker> {
    const log = opts.log ?? ((m: string) => process.stderr.write(`tunekit worker: ${m}\n`));
    const boss = await startBoss(database);
    await ensureQueue(boss, DEFAULT_HEARTBEAT_SECONDS);
    const worker = new PostgresWorker(boss, log);
    // Work directories that an earlier run on this machine left (killed mid-job), of jobs that have ended since.
    await platform.staging.removeEndedWork(async (id) => {
      const job = await platform.jobs.find(id);
      return !job || TERMINAL_JOB_STATES.includes(job.state);
    });
    await boss.work<TuningMessage>(TUNING_QUEUE, { batchSize: 1, pollingIntervalSeconds: 1 }, async ([job]) => {
      if (job) await worker.run(platform, job.data.jobId);
    });
    return worker;
  }

  private async run(platform: Platform, jobId: string): Promise<void> {
    const claim = await platform.jobs.takeOver(jobId, process.pid);
    if (!claim) {
      this.log(`job ${jobId}: nothing to run (it has ended)`);
      return;
    }
    this.log(`job ${jobId}: running (attempt ${claim.attempts})`);
    try {
      await runTuningJob({ db: platform.db, jobs: platform.jobs, storage: platform.storage, staging: platform.staging }, jobId, { attempt: claim.attempts });
      this.log(`job ${jobId}: done`);
    } catch (err) {
      if (!(err instanceof RunStopped)) throw err;
      if (err.why === 'cancelled') await platform.jobs.finish(jobId, { state: 'JOB_STATE_CANCELLED' }, claim.attempts);
      this.log(`job ${jobId}: stopped (${err.why})`);
      if (err.why === 'taken-over') return; // the job's directory is its new run's
    }
    // The job has ended: its staging copy (datasets, checkpoints) is no longer needed.
    const job = await platform.jobs.find(jobId);
    if (job && TERMINAL_JOB_STATES.includes(job.state)) {
      await platform.staging.remove(jobId).catch((err: unknown) => this.log(`job ${jobId}: removing its staged files: ${err instanceof Error ? err.message : String(err)}`));
    }
  }

  async stop(): Promise<void> {
    await this.boss.stop({ graceful: false });
  }
}
