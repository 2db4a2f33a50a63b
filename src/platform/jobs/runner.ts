// The job runner inside `tunekit serve`: moves PENDING jobs to RUNNING and forks a worker process for
// each (worker.ts), so training never blocks the API's event loop. Rules it keeps:
// - A job's worker_pid is the pid of the server whose runner claimed it. At start, every job still
//   RUNNING or CANCELLING whose server is gone (not this process, and no live `tunekit serve` with that
//   pid) is recovered: RUNNING ones go back to PENDING and their new worker resumes from the last epoch
//   checkpoint, CANCELLING ones end CANCELLED. No job stays RUNNING without a worker. Run one server per
//   data directory: a second one leaves the first one's jobs alone but does not watch them.
// - The worker writes progress and the outcome itself; the runner only settles what a worker could not:
//   a worker that died without ending its job fails it (or cancels it, if a cancel was asked).
// - Cancel of a RUNNING job (CANCELLING in the database) kills its worker; the runner then ends it
//   CANCELLED. A poll also catches cancels made by other processes.
// - One worker pool for every project (maxWorkers, default 1), shared fairly: the next job is the oldest
//   PENDING one of the project that has waited longest since its last turn (round-robin by project), so
//   a project with many queued jobs delays another project's job by at most one job per project.
// - Leftovers are removed at start and hourly (src/platform/sweep.ts: staged datasets of crashed
//   creates, staged files of ended jobs, temporary files of uploads whose process is gone). A job's staging directory is also removed as soon as it ends: when its worker exits, or at once for
//   a cancel of a PENDING job.
// - stop() (server shutdown) kills the workers and puts their jobs back to PENDING for the next start.

import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { PlatformDb } from '../db.js';
import { TERMINAL_JOB_STATES, type TuningJobs } from '../jobs.js';
import type { ObjectStore } from '../storage.js';
import type { StorageConfig } from '../blob-store.js';
import type { JobStaging } from './spec.js';
import { sweepLeftovers, sweepSummary, SWEEP_MS } from '../sweep.js';

export interface RunnerOptions {
  /** Jobs trained at once (each worker uses every core); default 1. Quotas still bound each project. */
  maxWorkers?: number;
  /** How often to look for work and for cancels made elsewhere; default 500 ms. */
  pollMs?: number;
  /** Environment of the workers (default this process's). */
  env?: NodeJS.ProcessEnv;
  /** The blob store the workers use (default the data directory): passed to them in their environment. */
  storage?: StorageConfig;
  /** The base-model cache's bound (`--model-cache-size`): passed to the workers in their environment. */
  modelCacheBytes?: number;
  log?: (message: string) => void;
}

/**
 * Where created jobs go to be run: this file's JobRunner (forked workers of this server, SQLite), or
 * PostgreSQL's queue pulled by `tunekit worker` machines (src/platform/postgres/queue.ts).
 */
export interface JobQueue {
  /** Starts taking work; returns the ids of jobs recovered from an earlier run. */
  start(): Promise<string[]>;
  /** A job was created (its row and staging directory exist). */
  enqueue(jobId: string): Promise<void>;
  /** After TuningJobs.cancel. */
  cancel(jobId: string): Promise<void>;
  stop(): Promise<void>;
}

/** The environment variable that gives a forked worker its storage configuration (JSON; worker.ts). */
export const WORKER_STORAGE_ENV = 'TUNEKIT_WORKER_STORAGE';
/** The bound of the base-model cache (serve's --model-cache-size), passed to the forked workers. */
export const WORKER_MODEL_CACHE_ENV = 'TUNEKIT_WORKER_MODEL_CACHE_BYTES';
const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

export class JobRunner implements JobQueue {
  private readonly workers = new Map<string, ChildProcess>();
  private readonly exited = new Map<string, Promise<void>>();
  private readonly maxWorkers: number;
  private readonly pollMs: number;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private stopping = false;
  private scheduled = false;
  /** Project -> the claim number of its last turn (fair scheduling across projects). */
  private readonly turns = new Map<string, number>();
  private claims = 0;
  private lastSweep = 0;
  private ticking: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly db: PlatformDb, private readonly jobs: TuningJobs, private readonly opts: RunnerOptions,
    private readonly storage: ObjectStore, private readonly staging: JobStaging,
  ) {
    this.maxWorkers = opts.maxWorkers ?? 1;
    this.pollMs = opts.pollMs ?? 500;
  }

  /** Recovers the jobs a dead server left behind and starts taking work. Returns the recovered job ids. */
  async start(): Promise<string[]> {
    const recovered = await this.jobs.recoverInterrupted((pid) => pid !== process.pid && isServer(pid));
    await this.sweep();
    this.started = true;
    for (const id of recovered) this.log(`job ${id}: interrupted by a server stop; it resumes from its last checkpoint`);
    this.timer = setInterval(() => void this.tick(), this.pollMs);
    this.timer.unref();
    this.kick();
    return recovered;
  }

  async enqueue(): Promise<void> {
    this.kick();
  }

  /** Looks for work soon (after a create); nothing before start(). */
  kick(): void {
    if (this.scheduled || this.stopping || !this.started) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.tick();
    });
  }

  /** After TuningJobs.cancel: stops the job's worker, if this runner has one; else cleans up an ended job. */
  async cancel(jobId: string): Promise<void> {
    const worker = this.workers.get(jobId);
    if (worker) worker.kill('SIGKILL');
    else await this.cleanUpIfEnded(jobId);
  }

  /** Job ids with a live worker. */
  running(): string[] {
    return [...this.workers.keys()];
  }

  /** Kills the workers; their jobs go back to PENDING and resume at the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    for (const w of this.workers.values()) w.kill('SIGKILL');
    await Promise.all(this.exited.values());
    await this.ticking;
    await this.jobs.recoverInterrupted(() => false);
  }

  /** One look for work at a time: a tick asked for while one runs waits for it and runs again. */
  private tick(): Promise<void> {
    if (this.ticking) {
      this.again = true;
      return this.ticking;
    }
    this.ticking = this.tickOnce().finally(() => {
      this.ticking = undefined;
      if (this.again) {
        this.again = false;
        void this.tick();
      }
    });
    return this.ticking;
  }

  private async tickOnce(): Promise<void> {
    if (!this.started || this.stopping || !this.db.isOpen) return;
    try {
      for (const [id, w] of this.workers) {
        if ((await this.jobs.find(id))?.state === 'JOB_STATE_CANCELLING') w.kill('SIGKILL');
      }
      while (this.workers.size < this.maxWorkers && !this.stopping) {
        const job = await this.jobs.claimNext(process.pid, this.turns);
        if (!job) break;
        this.turns.set(job.project, ++this.claims);
        this.spawn(job.id);
      }
    } catch (err) {
      this.log(`runner: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    }
    if (Date.now() - this.lastSweep >= SWEEP_MS) await this.sweep();
  }

  /** Removes leftovers (src/platform/sweep.ts); errors are logged, never thrown. */
  private async sweep(): Promise<void> {
    this.lastSweep = Date.now();
    try {
      const removed = await sweepLeftovers(this.db, this.staging, this.storage, (id) => this.workers.has(id));
      if (removed.length) this.log(sweepSummary(removed));
    } catch (err) {
      this.log(`runner: cleaning up: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    }
  }

  /** Removes the staging directory of a job that has ended. */
  private async cleanUpIfEnded(jobId: string): Promise<void> {
    try {
      if (!this.db.isOpen) return;
      const job = await this.jobs.find(jobId);
      if (job && TERMINAL_JOB_STATES.includes(job.state)) await this.staging.remove(jobId);
    } catch (err) {
      this.log(`job ${jobId}: cleaning up: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private spawn(jobId: string): void {
    const env = { ...(this.opts.env ?? process.env), ...(this.opts.storage ? { [WORKER_STORAGE_ENV]: JSON.stringify(this.opts.storage) } : {}),
      ...(this.opts.modelCacheBytes !== undefined ? { [WORKER_MODEL_CACHE_ENV]: String(this.opts.modelCacheBytes) } : {}) };
    const child = fork(WORKER, [this.db.dataDir, jobId], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
    this.workers.set(jobId, child);
    this.exited.set(jobId, new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.workers.delete(jobId);
        this.exited.delete(jobId);
        void (async () => {
          if (!this.stopping) {
            await this.settle(jobId, code, signal).catch((err: unknown) => this.log(`job ${jobId}: settling: ${err instanceof Error ? err.message : String(err)}`));
            await this.cleanUpIfEnded(jobId);
          }
          resolve();
          this.kick();
        })();
      });
    }));
    child.once('error', (err) => this.log(`job ${jobId}: worker: ${err.message}`));
  }

  /** Ends a job its worker left RUNNING or CANCELLING. */
  private async settle(jobId: string, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (!this.db.isOpen) return;
    const job = await this.jobs.find(jobId);
    if (job?.state === 'JOB_STATE_CANCELLING') {
      await this.jobs.finish(jobId, { state: 'JOB_STATE_CANCELLED' });
    } else if (job?.state === 'JOB_STATE_RUNNING') {
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      await this.jobs.finish(jobId, { state: 'JOB_STATE_FAILED', error: { code: 13, message: `The tuning worker ${how} before the job ended.` } });
      this.log(`job ${jobId}: worker ${how}`);
    }
  }

  private log(message: string): void {
    (this.opts.log ?? ((m: string) => process.stderr.write(`tunekit: ${m}\n`)))(message);
  }
}

/** Whether `pid` is a live `tunekit serve` (Linux: its command line; elsewhere: any live process). */
function isServer(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('serve');
  } catch {
    return !fs.existsSync('/proc/self');
  }
}
