// Typed errors thrown by the library. The CLI (and later the HTTP API) maps them to exit codes and
// statuses in one place each; anything that is not a TunekitError is a bug and keeps its stack trace.

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'FAILED_PRECONDITION'
  | 'UNIMPLEMENTED'
  | 'OUT_OF_RANGE'
  | 'UNAVAILABLE'
  | 'PERMISSION_DENIED'
  | 'UNAUTHENTICATED'
  | 'ALREADY_EXISTS'
  | 'RESOURCE_EXHAUSTED'
  | 'CANCELLED';

export class TunekitError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A model directory, file or field is malformed or inconsistent. */
export class InvalidModelError extends TunekitError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/** An architecture or config field this code does not implement. */
export class UnsupportedModelError extends TunekitError {
  constructor(message: string) {
    super('UNIMPLEMENTED', message);
  }
}

/** A user request that cannot be honoured (prompt too long, bad option value). */
export class InvalidRequestError extends TunekitError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

export class NotFoundError extends TunekitError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

export class UnavailableError extends TunekitError {
  constructor(message: string) {
    super('UNAVAILABLE', message);
  }
}

/** The caller lacks access: a gated or private Hub model, later a missing IAM permission. */
export class PermissionDeniedError extends TunekitError {
  constructor(message: string) {
    super('PERMISSION_DENIED', message);
  }
}

/** No credentials, or credentials that match no key (HTTP 401). */
export class UnauthenticatedError extends TunekitError {
  constructor(message: string) {
    super('UNAUTHENTICATED', message);
  }
}

/** The resource to create exists already: a bucket, a service account, a binding (HTTP 409). */
export class AlreadyExistsError extends TunekitError {
  constructor(message: string) {
    super('ALREADY_EXISTS', message);
  }
}

/** A quota is used up; the message names the quota and its limit (HTTP 429). No queueing behind it. */
export class ResourceExhaustedError extends TunekitError {
  constructor(message: string) {
    super('RESOURCE_EXHAUSTED', message);
  }
}

/** The request is well formed but the system is not in a state to run it (HTTP 400). */
export class FailedPreconditionError extends TunekitError {
  constructor(message: string) {
    super('FAILED_PRECONDITION', message);
  }
}

/**
 * Work stopped because whoever asked for it is gone (a client disconnected, the server is shutting
 * down): thrown at the next point where the work checks its AbortSignal.
 */
export class CancelledError extends TunekitError {
  constructor(message = 'The operation was cancelled.') {
    super('CANCELLED', message);
  }
}

/** Throws CancelledError when `signal` has fired; the message is the signal's reason when it is a string. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError(typeof signal.reason === 'string' ? signal.reason : undefined);
}
