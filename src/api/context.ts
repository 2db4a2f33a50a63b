// What every route handler is given: the catalog, the authenticator, the location check and the
// body limit. Routes read resources only through these.

import type { Context } from 'hono';
import type { Authenticator } from './auth.js';
import type { ModelCatalog } from './catalog.js';
import { toStatus } from './errors.js';
import { readJsonBody, type Message } from './proto-json.js';

export interface ApiContext {
  catalog: ModelCatalog;
  auth: Authenticator;
  /** Throws 400 INVALID_ARGUMENT naming the supported locations for any other. */
  assertLocation: (location: string) => void;
  bodyLimit: number;
  /** Receives errors that are bugs (500s). */
  log: (err: unknown) => void;
}

export function checkLocation(api: ApiContext, location: string): void {
  api.assertLocation(location);
}

export function body(api: ApiContext, c: Context): Promise<Message> {
  return readJsonBody(c.req.raw, api.bodyLimit);
}

/** The google.rpc.Status response for any error. */
export function errorResponse(api: ApiContext, err: unknown): Response {
  const { httpStatus, body } = toStatus(err, api.log);
  return Response.json(body, { status: httpStatus });
}
