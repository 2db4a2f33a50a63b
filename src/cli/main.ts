#!/usr/bin/env node
// The tunekit command line. Each command lives in src/cli/commands; this file wires them up and is
// the one place where library errors become exit codes: a TunekitError (bad input) prints one line
// and exits 1, anything else is a bug and keeps its stack trace.

import { Command, CommanderError } from 'commander';
import { TunekitError } from '../errors.js';
import { setGemmAnnouncer } from '../engine/blas.js';
import { registerModelCommands } from './commands/model.js';
import { registerGenerateCommand } from './commands/generate.js';
import { registerExportCommands } from './commands/export.js';
import { registerTuneCommand } from './commands/tune.js';
import { registerMergeCommand } from './commands/merge.js';
import { registerStorageCommands } from './commands/storage.js';
import { registerIamCommands } from './commands/iam.js';
import { registerPublisherModelsCommands } from './commands/publisher-models.js';
import { registerModelsCommands } from './commands/models.js';
import { registerJobsCommands } from './commands/jobs.js';
import { registerEndpointsCommands } from './commands/endpoints.js';
import { registerConfigCommands } from './commands/config.js';
import { registerServeCommand } from './commands/serve.js';
import { registerWorkerCommand } from './commands/worker.js';
import { registerEvalCommand } from './commands/eval.js';

setGemmAnnouncer((m) => process.stderr.write(`tunekit: ${m}\n`));

const program = new Command();
program
  .name('tunekit')
  .description('Self-hosted supervised fine-tuning and serving of open-weight LLMs, Vertex AI compatible')
  .version('0.1.0')
  .option('--threads <n>', 'threads for matrix products (default: all cores)')
  .hook('preAction', (cmd) => {
    const threads = cmd.opts().threads as string | undefined;
    if (threads !== undefined) process.env.TUNEKIT_THREADS = threads;
  })
  .exitOverride();

registerModelCommands(program);
registerGenerateCommand(program);
registerExportCommands(program);
registerTuneCommand(program);
registerMergeCommand(program);
registerStorageCommands(program);
registerIamCommands(program);
(await import('./commands/data.js')).registerDataCommands(program);
registerPublisherModelsCommands(program);
registerJobsCommands(program);
registerModelsCommands(program);
registerEndpointsCommands(program);
registerConfigCommands(program);
registerServeCommand(program);
registerWorkerCommand(program);
registerEvalCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof TunekitError) {
    process.stderr.write(`tunekit: error: ${err.message}\n`);
    process.exitCode = 1;
  } else {
    throw err;
  }
}
