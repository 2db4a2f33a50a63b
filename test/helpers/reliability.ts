// Shared by the reliability suite (issue 8): tiny models with a short context (so that any request the
// fuzzer or the soak sends generates at most ~100 tokens however its generationConfig is mutated), and
// the oracle for error responses: a google.rpc.Status body whose code is the HTTP status and whose
// status is the canonical name of that code.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Family } from '../../src/models/config.js';
import { scratchCopy, tinyModelDir } from './tiny-models.js';

/** Canonical codes and their HTTP statuses (google/rpc/code.proto), written out here as the oracle. */
export const CANONICAL: Record<string, number> = {
  CANCELLED: 499,
  UNKNOWN: 500,
  INVALID_ARGUMENT: 400,
  DEADLINE_EXCEEDED: 504,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 429,
  FAILED_PRECONDITION: 400,
  ABORTED: 409,
  OUT_OF_RANGE: 400,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DATA_LOSS: 500,
  UNAUTHENTICATED: 401,
};

/** 5xx answers that are deliberate (not implemented, overloaded); every other 5xx is a fault. */
export const DELIBERATE_5XX = [501, 503];

/**
 * A copy of a tiny model whose config says `positions` positions: generation stops there, so the
 * cost of any request is bounded (a 4096-position tiny model takes seconds for a request without
 * maxOutputTokens).
 */
export function shortContextModelDir(family: Family, positions = 128): string {
  const dir = scratchCopy(tinyModelDir(family));
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  config.max_position_embeddings = positions;
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return dir;
}

/** What is wrong with an error response (status, content-type, body text), or null when it is a proper Status. */
export function statusProblem(status: number, contentType: string | null, text: string): string | null {
  if (!/^application\/json\b/.test(contentType ?? '')) return `content-type ${JSON.stringify(contentType)}, not application/json`;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `body is not JSON: ${JSON.stringify(text.slice(0, 200))}`;
  }
  return statusBodyProblem(status, body);
}

/** What is wrong with a parsed google.rpc.Status body for HTTP `status` (undefined: any status). */
export function statusBodyProblem(status: number | undefined, body: unknown): string | null {
  const show = () => JSON.stringify(body).slice(0, 300);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return `body is not an object: ${show()}`;
  const keys = Object.keys(body);
  if (keys.length !== 1 || keys[0] !== 'error') return `body has keys ${JSON.stringify(keys)}, not just "error": ${show()}`;
  const e = (body as { error: unknown }).error as Record<string, unknown>;
  if (e === null || typeof e !== 'object') return `error is not an object: ${show()}`;
  if (typeof e.code !== 'number' || (status !== undefined && e.code !== status)) return `error.code ${JSON.stringify(e.code)} is not the HTTP status ${status}: ${show()}`;
  if (typeof e.message !== 'string' || e.message === '') return `error.message is not a non-empty string: ${show()}`;
  if (typeof e.status !== 'string' || CANONICAL[e.status] !== e.code) return `error.status ${JSON.stringify(e.status)} is not the canonical name of ${e.code}: ${show()}`;
  return null;
}
