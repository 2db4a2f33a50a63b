// The API's one error type and the one place where errors become google.rpc.Status responses.
// HttpError carries a canonical code name (INVALID_ARGUMENT, NOT_FOUND, ...); library TunekitErrors
// map to the same names by their `code`; anything else is a bug: logged with its stack, answered
// 500 INTERNAL without internals. Messages name the field and the value, as Google's do.

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

export class HttpError extends Error {
  readonly status: StatusName;
  constructor(status: StatusName, message: string) {
    super(message);
    this.status = status;
    this.name = 'HttpError';
  }
}

export const invalidArgument = (message: string): HttpError => new HttpError('INVALID_ARGUMENT', message);
export const notFound = (message: string): HttpError => new HttpError('NOT_FOUND', message);

/** The google.rpc.Status body: {"error": {code, message, status}}. */
export interface StatusBody {
  error: { code: number; message: string; status: StatusName };
}

/**
 * The status for any thrown value. `log` receives errors that are bugs (not HttpError or a typed
 * library error) so they are never silent.
 */
export function toStatus(err: unknown, log: (err: unknown) => void = defaultLog): { httpStatus: number; body: StatusBody } {
  let status: StatusName;
  let message: string;
  if (err instanceof HttpError) {
    status = err.status;
    message = err.message;
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
  return { httpStatus, body: { error: { code: httpStatus, message, status } } };
}

function isStatusLike(err: unknown): err is { status: StatusName; message: string } {
  if (!(err instanceof Error)) return false;
  const s = (err as { status?: unknown }).status;
  return typeof s === 'string' && s in HTTP_STATUS;
}

function defaultLog(err: unknown): void {
  process.stderr.write(`tunekit api: internal error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
}
