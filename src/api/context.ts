// What every route handler is given: the catalog, the authenticator, the supported locations and the
// body limit. Routes read resources only through these.

import type { Context } from 'hono';
import type { Authenticator } from './auth.js';
import type { ModelCatalog } from './catalog.js';
import { invalidArgument, toStatus } from './errors.js';
import { readJsonBody, type Message } from './proto-json.js';

export const DEFAULT_LOCATIONS = ['us-central1', 'europe-west4'];

export interface ApiContext {
  catalog: ModelCatalog;
  auth: Authenticator;
  locations: string[];
  bodyLimit: number;
  /** Receives errors that are bugs (500s). */
  log: (err: unknown) => void;
}

export function checkLocation(api: ApiContext, location: string): void {
  if (!api.locations.includes(location)) {
    throw invalidArgument(`Location \`${location}\` is not supported. Supported locations: ${api.locations.join(', ')}.`);
  }
}

export function body(api: ApiContext, c: Context): Promise<Message> {
  return readJsonBody(c.req.raw, api.bodyLimit);
}

/** The google.rpc.Status response for any error. */
export function errorResponse(api: ApiContext, err: unknown): Response {
  const { httpStatus, body } = toStatus(err, api.log);
  return Response.json(body, { status: httpStatus });
}
