// `tunekit worker --database postgres://... --storage DIR`: a tuning worker for many machines. It pulls
// tuning jobs that `tunekit serve --database` queued (src/platform/postgres/queue.ts), one at a time,
// runs them with the state in PostgreSQL and the data in the storage directory every machine shares
// (the directory serve was given as --data-dir), heartbeats while it runs, and leaves a job it loses
// to another worker, which resumes it from its last checkpoint. SIGINT/SIGTERM stop it at once: its
// job's heartbeat stops and another worker takes the job over.

import type { Command } from 'commander';
import * as path from 'node:path';
import { Platform } from '../../platform/platform.js';
import { keepRunningWhenOutputIsLost } from '../lost-output.js';

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run queued tuning jobs of a `tunekit serve --database` deployment (any number of machines)')
    .requiredOption('--database <url>', 'the PostgreSQL database of the deployment (postgres://USER:PASSWORD@HOST:PORT/DB)')
    .requiredOption('--storage <dir>', 'the directory every machine shares (serve\'s --data-dir): datasets, checkpoints, objects')
    .action(async (o: { database: string; storage: string }) => {
      keepRunningWhenOutputIsLost();
      const platform = await Platform.open({ dataDir: path.resolve(o.storage), database: o.database });
      const { PostgresWorker } = await import('../../platform/postgres/queue.js');
      const worker = await PostgresWorker.start(platform, o.database);
      process.stdout.write(`tunekit: worker ${process.pid} pulling tuning jobs (storage ${path.resolve(o.storage)})\n`);
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
