// The tunekit API as a Hono app: a function from Request to Response that tests call in-process and
// `tunekit serve` puts behind a socket. Every route is served under /v1 and /v1beta1 (the SDK uses
// v1beta1 in Vertex mode). Errors of every kind leave through one handler as google.rpc.Status.

import type { SafetyConfig } from '../safety/config.js';
import { Hono } from 'hono';
import { acceptQueryKey, insecureNoAuth, type Authenticator } from './auth.js';
import type { ModelCatalog } from './catalog.js';
import { assertLocation } from '../platform/config.js';
import { errorResponse, trackRequest, type ApiContext } from './context.js';
import { notFound } from './errors.js';
import { PromptTokenizer } from './prompt-tokenizer.js';
import { DEFAULT_BODY_LIMIT } from './proto-json.js';
import { noEndpoints, registerEndpointRoutes, type EndpointResolver } from './routes/endpoints.js';
import { registerEvaluationRoutes } from './routes/evaluation.js';
import { registerPublisherModelRoutes } from './routes/publisher-models.js';
import { openaiRoutes } from './routes/openai.js';
import { registerRegistryRoutes, registryEndpoints } from './routes/registry.js';
import { storageApi } from './routes/storage-api.js';
import { registerTuningJobRoutes } from './routes/tuning-jobs.js';
import type { TuningService } from '../platform/jobs/service.js';
import { consoleRoutes } from '../console/routes.js';
import type { ObjectStore } from '../platform/storage.js';

export const API_VERSIONS = ['v1', 'v1beta1'] as const;

export interface ApiOptions {
  catalog: ModelCatalog;
  /** Defaults to no authentication at all (tests, --insecure-no-auth). */
  auth?: Authenticator;
  /** The location check (the platform's configured locations); default us-central1 and europe-west4. */
  assertLocation?: (location: string) => void | Promise<void>;
  /** What each endpoint serves (the registry); default: no endpoints. */
  endpoints?: EndpointResolver;
  /** Tuning jobs, the model registry and endpoints (src/platform/jobs); without it those routes are 404. */
  tuning?: TuningService;
  /** The object store the Cloud Storage JSON API serves (default the tuning service's; none: no such routes). */
  storage?: ObjectStore;
  /** Most bytes of one object uploaded through the storage API (default LIMITS.objectBytes). */
  maxObjectBytes?: number;
  /** Request body limit in bytes (default 16 MiB). */
  bodyLimit?: number;
  /** Tokenization of large prompts off the event loop (default: a pool of up to 2 worker threads). */
  tokenizer?: PromptTokenizer;
  /** Aborting it stops in-flight work (server shutdown); requests cut short answer 503. */
  shutdown?: AbortSignal;
  log?: (err: unknown) => void;
  /** The default autorater of judged evaluations (ApiContext.autorater). */
  autorater?: string;
  /** Safety configuration (ApiContext.safety). */
  safety?: SafetyConfig;
}

export function createApp(opts: ApiOptions): Hono {
  const api: ApiContext = {
    catalog: opts.catalog,
    auth: opts.auth ?? insecureNoAuth,
    assertLocation: opts.assertLocation ?? ((l) => assertLocation(l)),
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    tokenizer: opts.tokenizer ?? new PromptTokenizer(),
    shutdown: opts.shutdown ?? new AbortController().signal,
    ...(opts.autorater ? { autorater: opts.autorater } : {}),
    ...(opts.safety ? { safety: opts.safety } : {}),
    log: opts.log ?? ((err) => process.stderr.write(`tunekit api: internal error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)),
  };
  const routes = new Hono();
  registerPublisherModelRoutes(routes, api);
  if (opts.tuning) registerTuningJobRoutes(routes, api, opts.tuning);
  if (opts.tuning) registerRegistryRoutes(routes, api, opts.tuning);
  const endpoints = opts.endpoints ?? (opts.tuning ? registryEndpoints(opts.tuning) : noEndpoints);
  registerEndpointRoutes(routes, api, endpoints);
  registerEvaluationRoutes(routes, api, endpoints);
  routes.onError((err) => errorResponse(api, err));

  const app = new Hono();
  // Every request gets its abort signal (client gone or server shutting down, see requestSignal); it
  // is released when the response is complete: at once, or when a streamed body ends.
  app.use(async (c, next) => {
    const done = trackRequest(api, c.req.raw);
    acceptQueryKey(c.req.raw); // ?key=API_KEY, as Google's APIs take it (auth.ts)
    try {
      await next();
    } catch (err) {
      done();
      throw err;
    }
    const body = c.res.body;
    if (!body || !c.res.headers.get('content-type')?.startsWith('text/event-stream')) {
      done(); // the work is over once a whole response exists
      return;
    }
    c.res = new Response(body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({ flush: done })), c.res);
  });
  const storage = opts.storage ?? opts.tuning?.storage;
  if (storage) app.route('/', storageApi(api, storage, { ...(opts.maxObjectBytes !== undefined ? { maxObjectBytes: opts.maxObjectBytes } : {}) })); // /storage/v1, /upload/storage/v1, /download/storage/v1
  app.route('/v1', openaiRoutes(api, endpoints)); // /v1/chat/completions, /v1/completions, /v1/models (OpenAI's shape)
  for (const version of API_VERSIONS) app.route(`/${version}`, routes);
  app.route('/console', consoleRoutes()); // the web console's files (src/console)
  app.notFound((c) => errorResponse(api, notFound(`The requested URL ${new URL(c.req.url).pathname} was not found on this server.`)));
  app.onError((err) => errorResponse(api, err));
  return app;
}
