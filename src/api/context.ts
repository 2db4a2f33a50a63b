// What every route handler is given: the catalog, the authenticator, the location check, the body
// limit, the tokenizer pool, and the server's shutdown signal. Routes read resources only through these.

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
  assertLocation: (location: string) => void;
  bodyLimit: number;
  /** Prompt tokenization, off the event loop for large prompts. */
  tokenizer: PromptTokenizer;
  /** Fires when the server shuts down: in-flight work stops and answers 503 UNAVAILABLE. */
  shutdown: AbortSignal;
  /** Receives errors that are bugs (500s). */
  log: (err: unknown) => void;
}

export function checkLocation(api: ApiContext, location: string): void {
  api.assertLocation(location);
}

export function body(api: ApiContext, c: Context): Promise<Message> {
  return readJsonBody(c.req.raw, api.bodyLimit);
}

/**
 * Fires when the client goes away or the server shuts down: work done for the request checks it and
 * stops. (The app reads the request's own signal as soon as a request arrives; see app.ts.)
 */
export function requestSignal(api: ApiContext, c: Context): AbortSignal {
  return AbortSignal.any([c.req.raw.signal, api.shutdown]);
}

/** The google.rpc.Status response for any error; work cancelled by a shutdown is 503 UNAVAILABLE. */
export function errorResponse(api: ApiContext, err: unknown): Response {
  const e = err instanceof CancelledError && api.shutdown.aborted
    ? new UnavailableError('The server is shutting down; retry the request.')
    : err;
  const { httpStatus, body } = toStatus(e, api.log);
  return Response.json(body, { status: httpStatus });
}
