// `tunekit serve`: the Vertex-compatible API server over a data directory. At first start it prints
// the bootstrap admin key, once. Requests authenticate with x-goog-api-key or Authorization: Bearer;
// `--insecure-no-auth` accepts everything and says so loudly. Prints the URL it listens on; stops on
// SIGINT or SIGTERM.

import type { Command } from 'commander';
import { createApp } from '../../api/app.js';
import { DEFAULT_CATALOG_LIMITS, ModelCatalog } from '../../api/catalog.js';
import { DbRegistrationStore } from '../../api/db-store.js';
import { listen } from '../../api/server.js';
import { resolveDataDir } from '../../api/stores.js';
import { Platform } from '../../platform/platform.js';
import { intOption } from '../options.js';
import { TuningService } from '../../platform/jobs/service.js';

interface ServeCliOptions {
  port: number;
  host: string;
  dataDir?: string;
  insecureNoAuth?: boolean;
  maxModels: number;
  maxTunedModels: number;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('serve the Vertex AI compatible API: tuning jobs, models, endpoints, generation')
    .option('--port <n>', 'port (0 picks a free one)', intOption('--port'), 8080)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--data-dir <dir>', 'tunekit data directory (default $TUNEKIT_DATA_DIR or ~/.tunekit)')
    .option('--insecure-no-auth', 'accept every request without credentials (local experiments only)')
    .option('--max-models <n>', 'base models kept in memory (least recently used dropped)', intOption('--max-models', 1), DEFAULT_CATALOG_LIMITS.baseModels)
    .option('--max-tuned-models <n>', 'tuned models (base + merged adapter) kept in memory', intOption('--max-tuned-models', 1), DEFAULT_CATALOG_LIMITS.tunedModels)
    .action(async (o: ServeCliOptions) => {
      const dataDir = resolveDataDir(o.dataDir);
      const platform = Platform.open({ dataDir, insecureNoAuth: o.insecureNoAuth ?? false });
      const admin = platform.iam.bootstrap();
      if (admin) {
        process.stdout.write(
          `tunekit: first start: bootstrap admin key for ${admin.serviceAccount} (roles/owner everywhere).\n` +
          `tunekit: it is shown once and stored only hashed; keep it now:\n${admin.key}\n`,
        );
      }
      if (o.insecureNoAuth) {
        process.stderr.write(
          '\n*** WARNING: --insecure-no-auth: every request is accepted without credentials. ***\n' +
          '*** Anyone who can reach this port can run and read everything. Local use only.  ***\n\n',
        );
      }
      const tuning = new TuningService(platform);
      const app = createApp({
        tuning,
        catalog: new ModelCatalog(new DbRegistrationStore(platform.db), undefined, { baseModels: o.maxModels, tunedModels: o.maxTunedModels }),
        auth: platform.iam,
        assertLocation: (l) => platform.config.assertLocation(l),
      });
      const server = await listen(app, { port: o.port, host: o.host });
      tuning.runner.start();
      process.stdout.write(`tunekit: serving ${dataDir} at ${server.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void server.close().then(() => tuning.runner.stop()).then(() => {
            platform.close();
            resolve();
          });
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
