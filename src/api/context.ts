// What every route handler is given: the catalog, the authenticator, the location check, the body
// limit, the tokenizer pool, and the server's shutdown signal. Routes read resources only through these.

import type { SafetyConfig } from '../safety/config.js';
import type { Context } from 'hono';
import type { Authenticator } from './auth.js';
import type { ModelCatalog } from './catalog.js';
import { CancelledError, UnavailableError } from '../errors.js';
import { toStatus } from './errors.js';
import type { PromptTokenizer } from './prompt-tokenizer.js';
import { readJsonBody, type Message } from './proto-json.js';

export interface ApiContext {
  catalog: ModelCatalog;
  auth: Authenticator;
  /** Throws 400 INVALID_ARGUMENT naming the supported locations for any other. */
  assertLocation: (location: string) => void | Promise<void>;
  bodyLimit: number;
  /** Prompt tokenization, off the event loop for large prompts. */
  tokenizer: PromptTokenizer;
  /** Fires when the server shuts down: in-flight work stops and answers 503 UNAVAILABLE. */
  shutdown: AbortSignal;
  /** Receives errors that are bugs (500s). */
  log: (err: unknown) => void;
  /** The judge of judged evaluations that name none (`tunekit serve --autorater`): a publisher model or an endpoint. */
  autorater?: string;
  /** Safety classifiers, blocklists and default settings per project / endpoint (`tunekit serve --safety-config`). */
  safety?: SafetyConfig;
}

export async function checkLocation(api: ApiContext, location: string): Promise<void> {
  await api.assertLocation(location);
}

export function body(api: ApiContext, c: Context): Promise<Message> {
  return readJsonBody(c.req.raw, api.bodyLimit);
}

const signals = new WeakMap<Request, AbortSignal>();

/**
 * Fires when the client goes away or the server shuts down: work done for the request checks it and
 * stops. The app gives every request its signal on arrival (trackRequest, in app.ts).
 */
export function requestSignal(api: ApiContext, c: Context): AbortSignal {
  return signals.get(c.req.raw) ?? api.shutdown;
}

/**
 * Gives a request its own AbortController, aborted when the client disconnects or the server shuts
 * down. Returns `done`, to call when the response is complete: the request then leaves the set the
 * shutdown walks, and no listener of it stays on a long-lived signal. (A signal made with
 * AbortSignal.any over the server's shutdown signal would be kept alive, with whatever its listeners
 * hold, for as long as the server runs.)
 */
export function trackRequest(api: ApiContext, req: Request): () => void {
  const controller = new AbortController();
  signals.set(req, controller.signal);
  if (api.shutdown.aborted) {
    controller.abort(api.shutdown.reason);
    return () => undefined;
  }
  // Read `signal` now: @hono/node-server creates it on first access and aborts it on a disconnect
  // only if it exists by then.
  const client = req.signal;
  const onClientGone = (): void => {
    controller.abort(typeof client.reason === 'string' ? client.reason : 'The client closed the connection.');
    done();
  };
  let finished = false;
  const done = (): void => {
    if (finished) return;
    finished = true;
    client.removeEventListener('abort', onClientGone);
    inFlight.get(api)?.delete(controller);
  };
  live(api).add(controller);
  if (client.aborted) onClientGone();
  else client.addEventListener('abort', onClientGone, { once: true });
  return done;
}

const inFlight = new WeakMap<ApiContext, Set<AbortController>>();

/** The controllers of the requests in flight; the first call wires them to the shutdown signal. */
function live(api: ApiContext): Set<AbortController> {
  let set = inFlight.get(api);
  if (!set) {
    const controllers = new Set<AbortController>();
    set = controllers;
    inFlight.set(api, controllers);
    api.shutdown.addEventListener('abort', () => {
      for (const c of controllers) c.abort('The server is shutting down.');
      controllers.clear();
    }, { once: true });
  }
  return set;
}

/** Requests in flight (tests). */
export function requestsInFlight(api: ApiContext): number {
  return inFlight.get(api)?.size ?? 0;
}

/** The google.rpc.Status response for any error; work cancelled by a shutdown is 503 UNAVAILABLE. */
export function errorResponse(api: ApiContext, err: unknown): Response {
  const e = err instanceof CancelledError && api.shutdown.aborted
    ? new UnavailableError('The server is shutting down; retry the request.')
    : err;
  const { httpStatus, body } = toStatus(e, api.log);
  return Response.json(body, { status: httpStatus });
}
