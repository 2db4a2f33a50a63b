// `tunekit worker --database postgres://... --storage DIR|gs://BUCKET/PREFIX`: a tuning worker for many
// machines. It pulls tuning jobs that `tunekit serve --database` queued (src/platform/postgres/queue.ts),
// one at a time, runs them with the state in PostgreSQL and the bytes in the deployment's blob store
// (the directory every machine shares, or object storage: serve's --storage, blob-store.ts), in its own
// work directory (--work-dir), heartbeats while it runs, and leaves a job it loses to another worker,
// which resumes it from its last checkpoint. SIGINT/SIGTERM stop it at once: its job's heartbeat stops
// and another worker takes the job over. --executors: what it trains (the jobs it pulls: queue.ts).

import type { Command } from 'commander';
import { Platform } from '../../platform/platform.js';
import { keepRunningWhenOutputIsLost } from '../lost-output.js';
import { resolveDataDir } from '../../api/stores.js';
import { storageConfig } from '../../platform/blob-store.js';
import { addStorageOptions, sizeOption, type StorageCliOptions } from '../options.js';
import { LIMITS } from '../../platform/limits.js';
import { InvalidRequestError } from '../../errors.js';
import { EXECUTOR_LABEL, EXECUTORS, type Executor } from '../../platform/jobs/spec.js';
import { trlMissing, trlRunOptionsFromEnv } from '../../train/trl-executor.js';

/** --executors: known names, no repeats; trl only where this machine's Python can run it. */
export function workerExecutors(value: string): Executor[] {
  const names = value.split(',').map((n) => n.trim());
  for (const n of names) {
    if (!(EXECUTORS as readonly string[]).includes(n)) throw new InvalidRequestError(`--executors: "${n}" is not an executor (known: ${EXECUTORS.join(', ')})`);
  }
  if (new Set(names).size !== names.length) throw new InvalidRequestError(`--executors names an executor twice: ${value}`);
  if (names.includes('trl')) {
    const missing = trlMissing(trlRunOptionsFromEnv());
    if (missing) throw new InvalidRequestError(`--executors trl: ${missing}`);
  }
  return names as Executor[];
}

export function registerWorkerCommand(program: Command): void {
  const cmd = program
    .command('worker')
    .description('run queued tuning jobs of a `tunekit serve --database` deployment (any number of machines)')
    .requiredOption('--database <url>', 'the PostgreSQL database of the deployment (postgres://USER:PASSWORD@HOST:PORT/DB)');
  addStorageOptions(cmd, 'the deployment\'s storage, as serve\'s: the directory every machine shares (serve\'s --data-dir or --storage), or gs://BUCKET[/PREFIX]', true)
    .option('--executors <list>', `what this worker trains, comma-separated, of ${EXECUTORS.join(', ')}: it pulls the jobs whose "${EXECUTOR_LABEL}" label names one of them, and jobs without the label, which it trains with the first (default tunekit)`, 'tunekit')
    .option('--model-cache-size <size>', `bytes of base-model copies kept in <work-dir>/cache/models with --storage gs:// (bytes, or with K/M/G; default ${LIMITS.modelCacheBytes / 1024 ** 3}G); least recently used copies not in use are evicted`, sizeOption('--model-cache-size'), LIMITS.modelCacheBytes)
    .option('--work-dir <dir>', 'where this machine trains (copies of the job\'s files): default the --storage directory, or with gs:// $TUNEKIT_DATA_DIR or ~/.tunekit')
    .action(async (o: StorageCliOptions & { database: string; storage: string; workDir?: string; executors: string; modelCacheSize: number }) => {
      keepRunningWhenOutputIsLost();
      const executors = workerExecutors(o.executors);
      const storage = storageConfig(o, resolveDataDir());
      const workDir = o.workDir !== undefined ? resolveDataDir(o.workDir) : storage.kind === 'local' ? storage.dir : resolveDataDir();
      const platform = await Platform.open({ dataDir: workDir, database: o.database, storage, workDir, modelCacheBytes: o.modelCacheSize });
      const { PostgresWorker } = await import('../../platform/postgres/queue.js');
      const worker = await PostgresWorker.start(platform, o.database, { executors });
      process.stdout.write(`tunekit: worker ${process.pid} pulling tuning jobs for ${executors.join(', ')} (storage ${storage.kind === 'local' ? storage.dir : platform.blobs.kind}, work directory ${workDir})\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void worker.stop().finally(() => resolve());
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await platform.close();
      process.exit(0);
    });
}
