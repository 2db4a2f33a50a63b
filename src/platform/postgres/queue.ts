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
//   registry version. pg-boss sends the heartbeat from a timer of the worker's event loop; a training
//   step runs on it without yielding (the engine's kernels are synchronous), so heartbeats go out
//   between steps only and the heartbeat timeout must be longer than the longest step (docs/scaling.md).
// - pg-boss keeps its tables in its own schema (`pgboss`), beside the platform's.
// - Reconciliation: the row is written before its message is sent, so a send that fails (or a server
//   that dies between the two) would leave a PENDING job no worker ever pulls. Each queue job's id is
//   derived from the tuning job's id, and pg-boss inserts with ON CONFLICT DO NOTHING, so sending a
//   job twice is a no-op; serve resends every PENDING job (with its --job-heartbeat-seconds: workers
//   do not know it, so they do not send), and the job runs once. The same pass ends the RUNNING jobs
//   whose queue job pg-boss will hand out no more (retries exhausted): FAILED, saying so.
// - The reconciliation and the sweeps of the shared directory run on one serve replica at a time, the
//   holder of the maintenance lock (PostgresJobQueue below).

import { createHash } from 'node:crypto';
import { PgBoss } from 'pg-boss';
import type { Platform } from '../platform.js';
import type { PlatformDb } from '../db.js';
import { PostgresDb } from '../db-postgres.js';
import type { JobQueue } from '../jobs/runner.js';
import { runTuningJob, RunStopped } from '../jobs/worker.js';
import { TERMINAL_JOB_STATES, type TuningJobs } from '../jobs.js';
import type { ObjectStore } from '../storage.js';
import type { JobStaging } from '../jobs/spec.js';
import { sweepLeftovers, sweepSummary, SWEEP_MS } from '../sweep.js';
import { DEFAULT_HEARTBEAT_SECONDS } from './heartbeat.js';

export const TUNING_QUEUE = 'tunekit-tuning-jobs';
/** Retries after lost workers before a job fails (each resumes from the last checkpoint). */
export const RETRY_LIMIT = 20;
/** pg-boss's longest allowed expiry: a job still running after it is handed on (from its checkpoint). */
const EXPIRE_SECONDS = 24 * 3600;
/** How often pg-boss's supervisor looks for jobs with stale heartbeats. */
const SUPERVISE_SECONDS = 5;
/** How often each serve replica asks for the maintenance lock; its holder then reconciles (and sweeps hourly). */
export const MAINTENANCE_SECONDS = 10;

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

/** A queue job's states after which pg-boss hands it to no worker again. */
const ENDED = new Set(['completed', 'failed', 'cancelled']);

/**
 * One reconciliation pass: sends every PENDING job (a no-op for those already sent), and ends the
 * RUNNING or CANCELLING jobs that no worker will run again: their queue job failed for good (its
 * workers were lost more than RETRY_LIMIT times), ended otherwise, or is gone. RUNNING ones end FAILED
 * with an error that says so, CANCELLING ones CANCELLED, under the attempt they hold (a late write of a
 * lost worker is refused). Returns what it did, for the log.
 */
async function reconcile(boss: PgBoss, jobs: TuningJobs, heartbeatSeconds: number): Promise<string[]> {
  const done: string[] = [];
  for (const id of await jobs.pendingIds()) await send(boss, id, heartbeatSeconds);
  for (const run of await jobs.runs()) {
    const [q] = await boss.findJobs(TUNING_QUEUE, { id: queueJobId(run.id) });
    if (q && !ENDED.has(q.state)) continue;
    if (run.state === 'JOB_STATE_CANCELLING') {
      if (await jobs.finish(run.id, { state: 'JOB_STATE_CANCELLED' }, run.attempts)) done.push(`job ${run.id}: its worker was lost while cancelling: CANCELLED`);
      continue;
    }
    const message = q?.state === 'failed'
      ? `The tuning job's worker was lost ${q.retryCount + 1} times (each stopped heartbeating or failed); it is not retried again (limit ${RETRY_LIMIT} retries). Create the job again to start over.`
      : `The tuning job's queue entry ${q ? `ended (${q.state})` : 'is gone'} while the job was running, so no worker will resume it. Create the job again to start over.`;
    if (await jobs.finish(run.id, { state: 'JOB_STATE_FAILED', error: { code: 13, message } }, run.attempts)) done.push(`job ${run.id}: FAILED: ${message}`);
  }
  return done;
}

/** What the serving side uses of the platform. */
export interface QueueParts {
  db: PlatformDb;
  jobs: TuningJobs;
  storage: ObjectStore;
  staging: JobStaging;
}

/**
 * The serving side: `tunekit serve --database` queues each created job here instead of running it.
 * Every MAINTENANCE_SECONDS each replica asks for the maintenance lock (db-postgres.ts lead); the one
 * holding it reconciles the queue (above) and sweeps the shared directory's leftovers (sweep.ts) when
 * it takes the lock and hourly after. When it stops or dies its session ends, the lock is free, and
 * the next replica to ask takes the work over: it runs on one replica at a time.
 */
export class PostgresJobQueue implements JobQueue {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private leading = false;
  private lastSweep = 0;

  private constructor(
    private readonly boss: PgBoss, private readonly platform: QueueParts, private readonly db: PostgresDb,
    private readonly heartbeatSeconds: number, private readonly log: (m: string) => void,
  ) {}

  static async open(database: string, platform: QueueParts, opts: { heartbeatSeconds?: number; log?: (m: string) => void } = {}): Promise<PostgresJobQueue> {
    if (!(platform.db instanceof PostgresDb)) throw new Error('PostgresJobQueue needs a platform on PostgreSQL');
    const heartbeatSeconds = opts.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS;
    const boss = await startBoss(database);
    await ensureQueue(boss, heartbeatSeconds);
    return new PostgresJobQueue(boss, platform, platform.db, heartbeatSeconds, opts.log ?? ((m) => process.stderr.write(`tunekit: ${m}\n`)));
  }

  /** Asks for the maintenance lock now (its holder does the work before this returns) and every MAINTENANCE_SECONDS. */
  async start(): Promise<string[]> {
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), MAINTENANCE_SECONDS * 1000);
      this.timer.unref();
    }
    await this.tick();
    return [];
  }

  /**
   * Sends the job's queue message. A failed send is logged, not thrown: the job's row exists and the
   * reconciliation sends it within MAINTENANCE_SECONDS, so the create answers the job.
   */
  async enqueue(jobId: string): Promise<void> {
    try {
      await send(this.boss, jobId, this.heartbeatSeconds);
    } catch (err) {
      this.log(`job ${jobId}: queue send failed (${err instanceof Error ? err.message : String(err)}); the queue's reconciliation sends it`);
    }
  }

  /** A cancel is seen by the job's worker at its next step (the row is CANCELLING). */
  async cancel(): Promise<void> {}

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.ticking;
    await this.boss.stop({ graceful: false });
  }

  private tick(): Promise<void> {
    this.ticking ??= this.maintain().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  private async maintain(): Promise<void> {
    try {
      if (!this.db.isOpen || !(await this.db.lead())) {
        this.leading = false;
        return;
      }
      if (!this.leading) {
        this.leading = true;
        this.lastSweep = 0;
        this.log('this replica runs the periodic work (queue reconciliation, sweeps of the shared storage)');
      }
      for (const m of await reconcile(this.boss, this.platform.jobs, this.heartbeatSeconds)) this.log(m);
      if (Date.now() - this.lastSweep >= SWEEP_MS) {
        this.lastSweep = Date.now();
        this.log(`swept the shared storage: ${sweepSummary(await sweepLeftovers(this.db, this.platform.staging, this.platform.storage))}`);
      }
    } catch (err) {
      this.log(`periodic work: ${err instanceof Error ? err.message : String(err)}`);
    }
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
    // And base models that a process now gone was materializing into this machine's cache (base-models.ts).
    await platform.staging.removeStaleUploads();
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
