// Tuning jobs queued in PostgreSQL through pg-boss (docs/scaling.md says why pg-boss): `tunekit serve
// --database` sends one queue job per tuning job; every `tunekit worker` pulls them, one at a time.
// - Routing by executor: a job whose `tunekit-executor` label names one goes to that executor's queue
//   (queueOf), which only the workers that declared it (`--executors`) pull; a job naming none goes to
//   TUNING_QUEUE, which every worker pulls and runs with its first declared executor, recorded on the
//   job as the label (jobs.recordExecutor). A worker polls its executors' queues first, in its order.
//   A job named for an executor no worker has stays PENDING; the reconciliation logs it once.
// - The queue job carries only the tuning job's id; the tuning_jobs row stays the truth. A worker that
//   pulls one takes the row over (attempts + 1: the fencing token every later write checks, jobs.ts) and
//   runs it with runTuningJob, resuming from the newest checkpoint in the deployment's blob store (a
//   shared directory, or object storage every machine reaches: blob-store.ts).
// - Liveness: the worker heartbeats the queue job every heartbeatSeconds / 2; pg-boss's supervisor fails
//   a job whose heartbeat is older than heartbeatSeconds and makes it available again (retryLimit), so
//   the job of a worker killed mid-run goes to another worker. A worker that was only stalled finds at
//   its next step that the row has a higher attempt and stops without committing: one SUCCEEDED, one
//   registry version. The worker sends the heartbeat (pg-boss's touch) from a timer of its event loop; a training
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
import { PgBoss, type Job } from 'pg-boss';
import type { Platform } from '../platform.js';
import type { PlatformDb } from '../db.js';
import { PostgresDb } from '../db-postgres.js';
import type { JobQueue } from '../jobs/runner.js';
import { runTuningJob, RunStopped } from '../jobs/worker.js';
import { TERMINAL_JOB_STATES, type TuningJobRecord, type TuningJobs } from '../jobs.js';
import { EXECUTOR_LABEL, EXECUTORS, type Executor } from '../jobs/spec.js';
import { executorOf } from '../jobs/service.js';
import type { ObjectStore } from '../storage.js';
import type { JobStaging } from '../jobs/spec.js';
import { sweepLeftovers, sweepSummary, SWEEP_MS } from '../sweep.js';
import { DEFAULT_HEARTBEAT_SECONDS } from './heartbeat.js';

/** The queue of jobs that name no executor: every worker pulls it. */
export const TUNING_QUEUE = 'tunekit-tuning-jobs';
/** The queue of jobs that name `executor`, or TUNING_QUEUE for those naming none. */
export function queueOf(executor: Executor | undefined): string {
  return executor ? `${TUNING_QUEUE}-${executor}` : TUNING_QUEUE;
}
const QUEUES = [TUNING_QUEUE, ...EXECUTORS.map(queueOf)];
/** Retries after lost workers before a job fails (each resumes from the last checkpoint). */
export const RETRY_LIMIT = 20;
/** pg-boss's longest allowed expiry: a job still running after it is handed on (from its checkpoint). */
const EXPIRE_SECONDS = 24 * 3600;
/** How often pg-boss's supervisor looks for jobs with stale heartbeats. */
const SUPERVISE_SECONDS = 5;
/** A named-executor job still unclaimed this long after its send is logged by the reconciliation. */
export const UNCLAIMED_LOG_SECONDS = 10;
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

async function ensureQueues(boss: PgBoss, heartbeatSeconds: number): Promise<void> {
  for (const name of QUEUES) {
    if (await boss.getQueue(name)) continue;
    await boss.createQueue(name, { retryLimit: RETRY_LIMIT, expireInSeconds: EXPIRE_SECONDS, heartbeatSeconds }).catch(async (err: unknown) => {
      if (!(await boss.getQueue(name))) throw err; // else another process created it meanwhile
    });
  }
}

/** The id of tuning job `jobId`'s job in `queue`: a name-based (version 5 style) UUID, the same in every process. */
export function queueJobId(jobId: string, queue = TUNING_QUEUE): string {
  const h = createHash('sha1').update(`${queue}:${jobId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** The executor job `job`'s labels name (given at create, or recorded by the worker that ran it). */
function namedExecutor(job: TuningJobRecord): Executor | undefined {
  return executorOf((job.request as { labels?: Record<string, string> } | null)?.labels);
}

/** Sends job `jobId` to `queue` unless it is there (in any state): a no-op the second time. */
async function send(boss: PgBoss, queue: string, jobId: string, heartbeatSeconds: number): Promise<void> {
  const message: TuningMessage = { jobId };
  await boss.send(queue, message, {
    id: queueJobId(jobId, queue), heartbeatSeconds, retryLimit: RETRY_LIMIT, expireInSeconds: EXPIRE_SECONDS,
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
async function reconcile(boss: PgBoss, jobs: TuningJobs, heartbeatSeconds: number, waiting: Set<string>): Promise<string[]> {
  const done: string[] = [];
  for (const id of await jobs.pendingIds()) {
    const job = await jobs.find(id);
    if (!job) continue;
    const executor = namedExecutor(job);
    await send(boss, queueOf(executor), id, heartbeatSeconds);
    if (!executor || waiting.has(id)) continue;
    const [q] = await boss.findJobs(queueOf(executor), { id: queueJobId(id, queueOf(executor)) });
    if (q?.state === 'created' && Date.now() - new Date(q.createdOn).getTime() >= UNCLAIMED_LOG_SECONDS * 1000) {
      waiting.add(id);
      done.push(`job ${id}: PENDING: it names executor ${executor} (label ${EXECUTOR_LABEL}) and no worker with --executors ${executor} has taken it for ${UNCLAIMED_LOG_SECONDS} s (none running, or all busy)`);
    }
  }
  for (const id of waiting) if ((await jobs.find(id))?.state !== 'JOB_STATE_PENDING') waiting.delete(id);
  for (const run of await jobs.runs()) {
    // A job that named no executor is in TUNING_QUEUE, or (handed on, see PostgresWorker) in its recorded executor's.
    const job = await jobs.find(run.id);
    const executor = job && namedExecutor(job);
    const held = await Promise.all([...new Set([queueOf(executor), TUNING_QUEUE])].map(async (name) => (await boss.findJobs(name, { id: queueJobId(run.id, name) }))[0]));
    if (held.some((q) => q && !ENDED.has(q.state))) continue;
    const q = held.find((x) => x);
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
  /** PENDING jobs already logged as waiting for a worker of their executor. */
  private readonly waiting = new Set<string>();

  private constructor(
    private readonly boss: PgBoss, private readonly platform: QueueParts, private readonly db: PostgresDb,
    private readonly heartbeatSeconds: number, private readonly log: (m: string) => void,
  ) {}

  static async open(database: string, platform: QueueParts, opts: { heartbeatSeconds?: number; log?: (m: string) => void } = {}): Promise<PostgresJobQueue> {
    if (!(platform.db instanceof PostgresDb)) throw new Error('PostgresJobQueue needs a platform on PostgreSQL');
    const heartbeatSeconds = opts.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS;
    const boss = await startBoss(database);
    await ensureQueues(boss, heartbeatSeconds);
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
      const job = await this.platform.jobs.find(jobId);
      if (job) await send(this.boss, queueOf(namedExecutor(job)), jobId, this.heartbeatSeconds);
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
      for (const m of await reconcile(this.boss, this.platform.jobs, this.heartbeatSeconds, this.waiting)) this.log(m);
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
 * A worker machine's loop (`tunekit worker`): pulls tuning jobs one at a time, from the queues of its
 * executors (in their order) and then TUNING_QUEUE, and runs them against the shared database and
 * blob store, until stop(). It heartbeats the queue job it runs (touch, fenced to its fetch) every
 * heartbeatSeconds / 2, completes it when the run returns and fails it (pg-boss retries it) when it throws.
 */
export class PostgresWorker {
  private stopped = false;
  private wake: (() => void) | undefined;
  private readonly loop: Promise<void>;

  private constructor(
    private readonly boss: PgBoss, private readonly platform: Platform,
    private readonly executors: readonly Executor[], private readonly log: (m: string) => void,
  ) {
    this.loop = this.pull();
  }

  static async start(platform: Platform, database: string, opts: { executors?: readonly Executor[]; log?: (m: string) => void } = {}): Promise<PostgresWorker> {
    const log = opts.log ?? ((m: string) => process.stderr.write(`tunekit worker: ${m}\n`));
    const executors = opts.executors?.length ? opts.executors : ['tunekit' as const];
    const boss = await startBoss(database);
    await ensureQueues(boss, DEFAULT_HEARTBEAT_SECONDS);
    // Work directories that an earlier run on this machine left (killed mid-job), of jobs that have ended since.
    await platform.staging.removeEndedWork(async (id) => {
      const job = await platform.jobs.find(id);
      return !job || TERMINAL_JOB_STATES.includes(job.state);
    });
    // And base models that a process now gone was materializing into this machine's cache (base-models.ts).
    await platform.staging.removeStaleUploads();
    return new PostgresWorker(boss, platform, executors, log);
  }

  private async pull(): Promise<void> {
    const queues = [...this.executors.map(queueOf), TUNING_QUEUE];
    while (!this.stopped) {
      let ran = false;
      try {
        for (const queue of queues) {
          const [job] = await this.boss.fetch<TuningMessage>(queue, { batchSize: 1 });
          if (!job) continue;
          ran = true;
          await this.handle(queue, job);
          break; // back to the first queue
        }
      } catch (err) {
        if (!this.stopped) this.log(`queue: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (!ran && !this.stopped) await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 1000);
      });
    }
  }

  private async handle(queue: string, job: Job<TuningMessage>): Promise<void> {
    const beat = job.heartbeatSeconds ? setInterval(() => void this.boss.touch(queue, [job]).catch(() => undefined), job.heartbeatSeconds * 500) : undefined;
    try {
      await this.run(queue, job.data.jobId, job.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS);
      await this.boss.complete(queue, [job]);
    } catch (err) {
      if (this.stopped) return;
      await this.boss.fail(queue, [job], { message: err instanceof Error ? err.message : String(err) });
    } finally {
      clearInterval(beat);
    }
  }

  private async run(queue: string, jobId: string, heartbeatSeconds: number): Promise<void> {
    const platform = this.platform;
    const row = await platform.jobs.find(jobId);
    // Named at create, or recorded by an earlier worker of a job that named none (its checkpoints are that executor's).
    const named = row && namedExecutor(row);
    if (named && !this.executors.includes(named)) {
      // Only from TUNING_QUEUE: a job the lost worker recorded for an executor this one lacks goes to that executor's queue.
      await send(this.boss, queueOf(named), jobId, heartbeatSeconds); // serve's, carried by the job
      this.log(`job ${jobId}: handed to the ${queueOf(named)} queue (its executor ${named} is not one of this worker's)`);
      return;
    }
    const executor = named ?? this.executors[0]!;
    const claim = await platform.jobs.takeOver(jobId, process.pid);
    if (!claim) {
      this.log(`job ${jobId}: nothing to run (it has ended)`);
      return;
    }
    if (!named) await platform.jobs.recordExecutor(jobId, EXECUTOR_LABEL, executor, claim.attempts);
    this.log(`job ${jobId}: running (attempt ${claim.attempts}, executor ${executor}, from ${queue})`);
    try {
      await runTuningJob({ db: platform.db, jobs: platform.jobs, storage: platform.storage, staging: platform.staging, models: platform.models }, jobId, { attempt: claim.attempts, executor });
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
    this.stopped = true;
    this.wake?.();
    await this.boss.stop({ graceful: false });
  }
}
