// `tunekit serve`: the Vertex-compatible API server. Prints the URL it listens on; stops on SIGINT or
// SIGTERM. Without IAM (`--insecure-no-auth`) anyone who can reach the port can do anything.

import type { Command } from 'commander';
import { createApp } from '../../api/app.js';
import { insecureNoAuth } from '../../api/auth.js';
import { ModelCatalog } from '../../api/catalog.js';
import { listen } from '../../api/server.js';
import { openRegistrationStore, resolveDataDir } from '../../api/stores.js';
import { FailedPreconditionError } from '../../errors.js';
import { intOption } from '../options.js';

interface ServeCliOptions {
  port: number;
  host: string;
  dataDir?: string;
  insecureNoAuth?: boolean;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('serve the Vertex AI compatible API (tuning jobs, models, endpoints, generation)')
    .option('--port <n>', 'port (0 picks a free one)', intOption('--port'), 8080)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--data-dir <dir>', 'tunekit data directory (default $TUNEKIT_DATA_DIR or ~/.tunekit)')
    .option('--insecure-no-auth', 'accept every request without credentials (local experiments only)')
    .action(async (o: ServeCliOptions) => {
      const dataDir = resolveDataDir(o.dataDir);
      if (!o.insecureNoAuth) {
        throw new FailedPreconditionError('authentication is not available in this build yet; run with --insecure-no-auth on a trusted machine');
      }
      process.stderr.write(
        '\n*** WARNING: --insecure-no-auth: every request is accepted without credentials. ***\n' +
        '*** Anyone who can reach this port can run and read everything. Local use only.  ***\n\n',
      );
      const store = openRegistrationStore(dataDir);
      const app = createApp({ catalog: new ModelCatalog(store), auth: insecureNoAuth });
      const server = await listen(app, { port: o.port, host: o.host });
      process.stdout.write(`tunekit: serving ${dataDir} at ${server.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void server.close().then(() => { store.close?.(); resolve(); });
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
