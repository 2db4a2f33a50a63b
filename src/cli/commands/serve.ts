// `tunekit serve`: the Vertex-compatible API server over a data directory. At first start it prints
// the bootstrap admin key, once. Requests authenticate with x-goog-api-key or Authorization: Bearer;
// `--insecure-no-auth` accepts everything and says so loudly. Prints the URL it listens on. On SIGINT
// or SIGTERM it stops cleanly: no new connections, work in flight cancelled (503 to its clients) and
// given --shutdown-seconds to finish, tokenizer workers and job workers stopped (their jobs resume at
// the next start), the database closed last, then the process exits. A second signal exits at once.
// Generation runs on one serving engine per base model (continuous batching, --parallel requests in
// the running batch, at most --max-queue waiting, tuned models' adapters unmerged in --adapter-memory).
// With --database postgres://... the platform state is in PostgreSQL and tuning jobs are queued for
// `tunekit worker`s (src/platform/postgres/queue.ts) instead of run here. --storage says where the bytes
// are (objects, staged jobs, checkpoints): the data directory by default (with --database, one every
// machine shares), another directory, or object storage (gs://BUCKET/PREFIX, platform/blob-store.ts).
// --engine llama.cpp runs generation on node-llama-cpp instead (src/serve/llamacpp-engine.ts; --gpu picks
// its build), imported only then.
// Any number of such replicas serve one deployment (docs/scaling.md, Replicas): nothing a request
// reads is cached here, and the periodic work runs on the one holding a lock.

import type { Command } from 'commander';
import { createApp } from '../../api/app.js';
import { loadSafetyConfig } from '../../safety/config.js';
import { DEFAULT_CATALOG_LIMITS, ModelCatalog, type ServingBackend } from '../../api/catalog.js';
import { DEFAULT_ENGINE_OPTIONS } from '../../serve/engine.js';
import { DbRegistrationStore } from '../../api/db-store.js';
import { PromptTokenizer } from '../../api/prompt-tokenizer.js';
import { listen } from '../../api/server.js';
import { resolveDataDir } from '../../api/stores.js';
import { Platform } from '../../platform/platform.js';
import { InvalidArgumentError } from 'commander';
import { addStorageOptions, choiceOption, intOption, sizeOption, type StorageCliOptions } from '../options.js';
import { storageConfig } from '../../platform/blob-store.js';
import * as path from 'node:path';
import { DEFAULT_LLAMACPP_CONTEXT, ENGINES, GPU_CHOICES, LlamaCppRuntime, type EngineName, type GpuChoice } from '../../serve/llamacpp-engine.js';
import { TuningService } from '../../platform/jobs/service.js';
import { InvalidRequestError } from '../../errors.js';
import { LIMITS } from '../../platform/limits.js';
import { DEFAULT_HEARTBEAT_SECONDS, MIN_HEARTBEAT_SECONDS } from '../../platform/postgres/heartbeat.js';
import { keepRunningWhenOutputIsLost } from '../lost-output.js';
import { EXECUTOR_LABEL, EXECUTORS, type Executor } from '../../platform/jobs/spec.js';

interface ServeCliOptions extends StorageCliOptions {
  port: number;
  host: string;
  dataDir?: string;
  insecureNoAuth?: boolean;
  maxModels: number;
  parallel: number;
  maxQueue: number;
  adapterMemory: number;
  shutdownSeconds: number;
  maxObjectSize: number;
  modelCacheSize: number;
  autorater?: string;
  safetyConfig?: string;
  database?: string;
  jobHeartbeatSeconds?: number;
  executor: Executor;
  engine: EngineName;
  gpu?: GpuChoice;
  contextSize?: number;
}

export function registerServeCommand(program: Command): void {
  const cmd = program
    .command('serve')
    .description('serve the Vertex AI compatible API: tuning jobs, models, endpoints, generation')
    .option('--port <n>', 'port (0 picks a free one)', intOption('--port'), 8080)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--data-dir <dir>', 'tunekit data directory (default $TUNEKIT_DATA_DIR or ~/.tunekit); with --database and no --storage, the directory every machine shares');
  addStorageOptions(cmd, 'where the bytes are (objects, staged jobs, checkpoints): a directory (default the data directory) or gs://BUCKET[/PREFIX]')
    .option('--database <url>', 'keep the platform state in PostgreSQL (postgres://...) and queue tuning jobs there for `tunekit worker`s')
    .option('--job-heartbeat-seconds <n>', `with --database: a job whose worker is silent this long goes to another worker (default ${DEFAULT_HEARTBEAT_SECONDS})`, intOption('--job-heartbeat-seconds', MIN_HEARTBEAT_SECONDS))
    .option('--insecure-no-auth', 'accept every request without credentials (local experiments only)')
    .option('--max-models <n>', 'base models kept in memory (least recently used dropped)', intOption('--max-models', 1), DEFAULT_CATALOG_LIMITS.baseModels)
    .option('--parallel <n>', 'requests per base model in the running batch', intOption('--parallel', 1), DEFAULT_ENGINE_OPTIONS.parallel)
    .option('--max-queue <n>', 'requests per base model waiting for a slot; beyond it 429 RESOURCE_EXHAUSTED', intOption('--max-queue', 0), DEFAULT_ENGINE_OPTIONS.maxQueue)
    .option('--adapter-memory <size>', 'memory for loaded LoRA adapters per base model (bytes, or with K/M/G, e.g. 512M)', sizeOption('--adapter-memory'), DEFAULT_ENGINE_OPTIONS.adapterMemory)
    .option('--model-cache-size <size>', 'bytes of base-model copies kept in <data-dir>/cache/models with --storage gs:// (bytes, or with K/M/G); least recently used copies not in use are evicted', sizeOption('--model-cache-size'), LIMITS.modelCacheBytes)
    .option('--max-object-size <size>', 'largest object the Cloud Storage API stores (bytes, or with K/M/G); larger uploads are 413', sizeOption('--max-object-size'), LIMITS.objectBytes)
    .option('--autorater <model>', 'judge of judged evaluations that name none: publishers/P/models/M or projects/P/locations/L/endpoints/E')
    .option('--shutdown-seconds <n>', 'on SIGTERM/SIGINT, how long requests in flight may take to finish', intOption('--shutdown-seconds', 0), 10)
    .option('--executor <name>', `what trains jobs without a "${EXECUTOR_LABEL}" label, without --database (there the worker's --executors decide): ${EXECUTORS.join(' or ')} (README: GPUs and the trl executor)`, executorOption, 'tunekit')
    .option('--engine <name>', `generation engine: ${ENGINES.join(' | ')} (llama.cpp: node-llama-cpp on the GGUF exports, for GPUs)`, choiceOption('--engine', ENGINES), 'tunekit')
    .option('--gpu <kind>', `with --engine llama.cpp: ${GPU_CHOICES.join(' | ')} (default auto: the best build that loads here; off: the CPU)`, choiceOption('--gpu', GPU_CHOICES))
    .option('--context-size <n>', `with --engine llama.cpp: tokens of one request's context at most, prompt and output (default ${DEFAULT_LLAMACPP_CONTEXT})`, intOption('--context-size', 2))
    .option('--safety-config <file>', 'safety classifiers, blocklists and default safetySettings per project / endpoint (JSON; README: Safety)')
    .action(async (o: ServeCliOptions, cmd: Command) => {
      keepRunningWhenOutputIsLost();
      if (o.engine !== 'llama.cpp') {
        if (o.gpu !== undefined) throw new InvalidRequestError('--gpu applies to --engine llama.cpp (tunekit\'s engine runs on the CPU)');
        if (o.contextSize !== undefined) throw new InvalidRequestError('--context-size applies to --engine llama.cpp (tunekit\'s engine grows each request\'s cache up to the model\'s context)');
      } else if (cmd.getOptionValueSource('adapterMemory') === 'cli') {
        throw new InvalidRequestError('--adapter-memory applies to --engine tunekit: llama.cpp keeps every LoRA adapter it loaded until its base model is unloaded (--max-models)');
      }
      const safety = o.safetyConfig ? loadSafetyConfig(o.safetyConfig) : undefined;
      const dataDir = resolveDataDir(o.dataDir);
      if (o.database !== undefined && cmd.getOptionValueSource('executor') === 'cli') {
        throw new InvalidRequestError(`--executor applies to serve's own workers (without --database); with --database a job's "${EXECUTOR_LABEL}" label sends it to the workers that declared that executor (tunekit worker --executors), and a job without one goes to any worker`);
      }
      if (o.jobHeartbeatSeconds !== undefined && o.database === undefined) {
        throw new InvalidRequestError('--job-heartbeat-seconds applies to jobs queued in PostgreSQL: give --database too');
      }
      const storage = storageConfig(o, dataDir);
      const platform = await Platform.open({
        dataDir, insecureNoAuth: o.insecureNoAuth ?? false, ...(o.database !== undefined ? { database: o.database } : {}),
        ...(storage.kind !== 'local' || storage.dir !== dataDir ? { storage } : {}), modelCacheBytes: o.modelCacheSize,
      });
      const admin = await platform.iam.bootstrap();
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
      // With PostgreSQL, jobs go to the queue that `tunekit worker` machines pull; else this server runs them.
      // (pg-boss is loaded only here: a SQLite deployment never needs it.)
      const queue = o.database === undefined ? undefined
        : await (await import('../../platform/postgres/queue.js')).PostgresJobQueue.open(o.database, platform, { heartbeatSeconds: o.jobHeartbeatSeconds });
      const tuning = new TuningService(platform, queue ? { queue } : { defaultExecutor: o.executor });
      // node-llama-cpp is loaded only here (LlamaCppRuntime.open imports it); a --gpu build that does not load here stops the start.
      let backend: { backend: ServingBackend } | undefined;
      if (o.engine === 'llama.cpp') {
        const runtime = await LlamaCppRuntime.open({ gpu: o.gpu ?? 'auto', cacheDir: path.join(dataDir, 'gguf'), ...(o.contextSize !== undefined ? { contextSize: o.contextSize } : {}) });
        process.stdout.write(`tunekit: generation on ${await runtime.describe()}\n`);
        backend = { backend: runtime.backend() };
      }
      const shutdown = new AbortController();
      const tokenizer = new PromptTokenizer();
      const app = createApp({
        tuning,
        catalog: new ModelCatalog(new DbRegistrationStore(platform.db), backend, {
          baseModels: o.maxModels,
          engine: { parallel: o.parallel, maxQueue: o.maxQueue, adapterMemory: o.adapterMemory },
        }, platform.models),
        auth: platform.iam,
        assertLocation: async (l) => await platform.config.assertLocation(l),
        tokenizer,
        shutdown: shutdown.signal,
        maxObjectBytes: o.maxObjectSize,
        ...(o.autorater ? { autorater: o.autorater } : {}),
        ...(safety ? { safety } : {}),
      });
      const server = await listen(app, { port: o.port, host: o.host });
      await tuning.runner.start();
      const where = storage.kind === 'local' ? storage.dir : platform.blobs.kind;
      process.stdout.write(`tunekit: serving ${o.database === undefined && where === dataDir ? dataDir : `${platform.db.describe()} (storage ${where})`} at ${server.url}\n`);
      process.stdout.write(`tunekit: web console: ${server.url}/console\n`);
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals) => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          // A second signal while stopping exits at once.
          process.once('SIGINT', () => process.exit(130));
          process.once('SIGTERM', () => process.exit(143));
          process.stderr.write(`tunekit: ${signal}: shutting down (in-flight requests get up to ${o.shutdownSeconds} s)\n`);
          void (async () => {
            // In-flight work (generation, tokenizing, dataset checks) stops at its next check and answers 503.
            shutdown.abort();
            await server.close(o.shutdownSeconds * 1000);
            await tokenizer.close();
            await tuning.runner.stop();
            await platform.close(); // last: nothing may use the database after this
            resolve();
          })();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      process.stderr.write('tunekit: stopped\n');
      // Whatever is still pending (a request past the deadline) must not run against the closed database.
      process.exit(0);
    });
}

function executorOption(value: string): Executor {
  if (!(EXECUTORS as readonly string[]).includes(value)) throw new InvalidArgumentError(`--executor must be one of ${EXECUTORS.join(', ')}, got "${value}"`);
  return value as Executor;
}

