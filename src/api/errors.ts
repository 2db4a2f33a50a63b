// The API's one error type and the one place where errors become google.rpc.Status responses.
// HttpError carries a canonical code name (INVALID_ARGUMENT, NOT_FOUND, ...); library TunekitErrors
// map to the same names by their `code`; anything else is a bug: logged with its stack, answered
// 500 INTERNAL without internals. Messages name the field and the value, as Google's do.
//
// Every error carries google.rpc.Status.details with the standard detail types (google/rpc/
// error_details.proto), each with its "@type":
// - ErrorInfo always: `reason` (UPPER_SNAKE_CASE: the error's own, or the canonical code name),
//   `domain` "aiplatform.googleapis.com", `metadata` (the error's, string to string).
// - BadRequest.fieldViolations on INVALID_ARGUMENT / OUT_OF_RANGE / FAILED_PRECONDITION with a field:
//   the violations the error carries (proto-json.ts names them) or the snake_case field path the message
//   starts with or quotes ('generation_config.temperature').
// - QuotaFailure on RESOURCE_EXHAUSTED, naming the quota metric (quotaMetric, quotaId, subject).
// - RetryInfo where a retry helps: 503 UNAVAILABLE (shutdown) and 429 (a full generation queue or
//   quota), with a retryDelay.

import { TunekitError } from '../errors.js';

export type StatusName =
  | 'CANCELLED'
  | 'INVALID_ARGUMENT'
  | 'DEADLINE_EXCEEDED'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED'
  | 'FAILED_PRECONDITION'
  | 'ABORTED'
  | 'OUT_OF_RANGE'
  | 'UNIMPLEMENTED'
  | 'INTERNAL'
  | 'UNAVAILABLE'
  | 'UNAUTHENTICATED';

/** HTTP status of each canonical code (google/rpc/code.proto). */
export const HTTP_STATUS: Record<StatusName, number> = {
  CANCELLED: 499,
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
  UNAUTHENTICATED: 401,
};

export interface FieldViolation { field: string; description: string; reason?: string }

/** What an error may say beyond its code and message (all optional; see the file comment). */
export interface ErrorDetails {
  /** ErrorInfo.reason, UPPER_SNAKE_CASE. */
  reason?: string;
  metadata?: Record<string, string>;
  fieldViolations?: FieldViolation[];
  /** QuotaFailure: the quota metric (e.g. aiplatform.googleapis.com/concurrent_tuning_jobs) and its subject. */
  quota?: { metric: string; id?: string; subject?: string };
  /** RetryInfo.retryDelay in seconds. */
  retryDelaySeconds?: number;
}

export class HttpError extends Error {
  readonly status: StatusName;
  readonly details: ErrorDetails;
  constructor(status: StatusName, message: string, details: ErrorDetails = {}) {
    super(message);
    this.status = status;
    this.name = 'HttpError';
    this.details = details;
  }
  /** Kept for callers that add violations after construction (proto-json.ts). */
  set fieldViolations(v: FieldViolation[] | undefined) {
    this.details.fieldViolations = v;
  }
  get fieldViolations(): FieldViolation[] | undefined {
    return this.details.fieldViolations;
  }
}

export const invalidArgument = (message: string, details?: ErrorDetails): HttpError => new HttpError('INVALID_ARGUMENT', message, details);

/** 400 naming `field` (snake_case path) in BadRequest.fieldViolations. */
export const fieldError = (field: string, message: string, reason?: string): HttpError =>
  new HttpError('INVALID_ARGUMENT', message, { fieldViolations: [{ field, description: message }], ...(reason ? { reason } : {}) });
export const notFound = (message: string): HttpError => new HttpError('NOT_FOUND', message);

/** The google.rpc.Status body: {"error": {code, message, status, details}}. */
export interface StatusBody {
  error: { code: number; message: string; status: StatusName; details: Record<string, unknown>[] };
}

export const ERROR_DOMAIN = 'aiplatform.googleapis.com';
const TYPE = 'type.googleapis.com/google.rpc.';

/**
 * The status for any thrown value. `log` receives errors that are bugs (not HttpError or a typed
 * library error) so they are never silent.
 */
export function toStatus(err: unknown, log: (err: unknown) => void = defaultLog): { httpStatus: number; body: StatusBody } {
  let status: StatusName;
  let message: string;
  let extra: ErrorDetails = {};
  if (err instanceof HttpError) {
    status = err.status;
    message = err.message;
    extra = err.details;
  } else if (err instanceof TunekitError) {
    // Library codes are canonical names already.
    status = (err.code as string) in HTTP_STATUS ? err.code as StatusName : 'INTERNAL';
    message = err.message;
  } else if (isStatusLike(err)) {
    // Errors from other modules (the platform) that carry a canonical status name.
    status = err.status;
    message = err.message;
  } else {
    log(err);
    status = 'INTERNAL';
    message = 'Internal error encountered.';
  }
  const httpStatus = HTTP_STATUS[status];
  const details = statusDetails(status, message, { ...detailsOf(err), ...extra });
  return { httpStatus, body: { error: { code: httpStatus, message, status, details } } };
}

/** Details carried by errors of other modules (a `details` object of the ErrorDetails shape). */
function detailsOf(err: unknown): ErrorDetails {
  const d = err instanceof Error ? (err as { details?: unknown }).details : undefined;
  return d !== null && typeof d === 'object' && !Array.isArray(d) ? d as ErrorDetails : {};
}

/** A field path a message names: quoted ('a.b_c[0]') or leading (`a_b.c must be ...`). */
export function fieldOfMessage(message: string): string | undefined {
  const quoted = /'([a-z][a-z0-9_]*(?:\[[^\]]*\])?(?:\.[a-z][a-z0-9_]*(?:\[[^\]]*\])?)*)'/.exec(message);
  if (quoted) return quoted[1];
  const leading = /^([a-z][a-z0-9]*_[a-z0-9_]*|[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*)\b/.exec(message);
  return leading?.[1];
}

/** The quota metric a RESOURCE_EXHAUSTED message names. */
function quotaOfMessage(message: string): ErrorDetails['quota'] {
  const named = /quota "([a-z0-9_]+)"(?: in project ([^ ,]+))?/.exec(message);
  if (named) return { metric: `${ERROR_DOMAIN}/${named[1]}`, id: named[1], ...(named[2] ? { subject: `projects/${named[2]}` } : {}) };
  if (/generation queue/.test(message)) return { metric: `${ERROR_DOMAIN}/generation_queue_requests`, id: 'generation_queue_requests' };
  if (/adapter-memory/.test(message)) return { metric: `${ERROR_DOMAIN}/adapter_memory_bytes`, id: 'adapter_memory_bytes' };
  return { metric: `${ERROR_DOMAIN}/requests`, id: 'requests' };
}

/** google.rpc.Status.details for an error (see the file comment). */
export function statusDetails(status: StatusName, message: string, d: ErrorDetails): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const reason = d.reason ?? (status === 'RESOURCE_EXHAUSTED' ? 'RATE_LIMIT_EXCEEDED' : status);
  out.push({ '@type': `${TYPE}ErrorInfo`, reason, domain: ERROR_DOMAIN, ...(d.metadata && Object.keys(d.metadata).length ? { metadata: d.metadata } : {}) });
  if (status === 'INVALID_ARGUMENT' || status === 'OUT_OF_RANGE' || status === 'FAILED_PRECONDITION') {
    const field = d.fieldViolations?.length ? undefined : fieldOfMessage(message);
    const violations = d.fieldViolations?.length ? d.fieldViolations : field ? [{ field, description: message }] : [];
    if (violations.length) out.push({ '@type': `${TYPE}BadRequest`, fieldViolations: violations.map((v) => ({ field: v.field, description: v.description, ...(v.reason ? { reason: v.reason } : {}) })) });
  }
  if (status === 'RESOURCE_EXHAUSTED') {
    const q = d.quota ?? quotaOfMessage(message)!;
    out.push({
      '@type': `${TYPE}QuotaFailure`,
      violations: [{ subject: q.subject ?? q.metric, description: message, apiService: ERROR_DOMAIN, quotaMetric: q.metric, ...(q.id ? { quotaId: q.id } : {}) }],
    });
  }
  const retry = d.retryDelaySeconds ?? (status === 'UNAVAILABLE' ? 5 : status === 'RESOURCE_EXHAUSTED' ? (/queue/.test(message) ? 1 : 30) : undefined);
  if (retry !== undefined) out.push({ '@type': `${TYPE}RetryInfo`, retryDelay: `${retry}s` });
  return out;
}

function isStatusLike(err: unknown): err is { status: StatusName; message: string } {
  if (!(err instanceof Error)) return false;
  const s = (err as { status?: unknown }).status;
  return typeof s === 'string' && s in HTTP_STATUS;
}

function defaultLog(err: unknown): void {
  process.stderr.write(`tunekit api: internal error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
}
