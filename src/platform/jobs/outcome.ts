// What a tuning job leaves behind, shared by the worker that writes it and the API that reads it:
// Vertex's metric names, the google.rpc.Status of a failure, and the bucket tunekit keeps tuned
// adapters in (one per project and location, in that location: data stays where the job ran).

import { createHash } from 'node:crypto';
import { AlreadyExistsError, FailedPreconditionError, TunekitError } from '../../errors.js';
import type { JobError } from '../jobs.js';
import type { ObjectStore } from '../storage.js';

/** google.rpc.Code numbers of the canonical names a TunekitError carries. */
const RPC_CODES: Record<string, number> = {
  CANCELLED: 1, INVALID_ARGUMENT: 3, NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9, OUT_OF_RANGE: 11, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16,
};

/** Vertex's metric names for the trainer's step and eval metrics. */
export const METRIC_NAMES = {
  train: {
    train_total_loss: '/train_total_loss',
    train_fraction_of_correct_next_step_preds: '/train_fraction_of_correct_next_step_preds',
    train_num_predictions: '/train_num_predictions',
    learning_rate: '/learning_rate',
  },
  eval: {
    eval_total_loss: '/eval_total_loss',
    eval_fraction_of_correct_next_step_preds: '/eval_fraction_of_correct_next_step_preds',
    eval_num_predictions: '/eval_num_predictions',
  },
} as const;

/** The bucket tunekit keeps tuned adapters in for a project and location (created on first use). */
export function managedBucketName(project: string, location: string): string {
  return `tunekit-${location}-${createHash('sha256').update(project).digest('hex').slice(0, 12)}`;
}

export async function ensureManagedBucket(storage: ObjectStore, project: string, location: string): Promise<string> {
  const name = managedBucketName(project, location);
  let bucket = await storage.findBucket(name);
  if (!bucket) {
    try {
      bucket = await storage.createBucket(name, { project, location });
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      bucket = await storage.getBucket(name);
    }
  }
  if (bucket.project !== project || bucket.location !== location) {
    throw new FailedPreconditionError(`bucket gs://${name} belongs to project ${bucket.project} in ${bucket.location}, not ${project} in ${location}`);
  }
  return name;
}

export function jobError(err: unknown): JobError {
  if (err instanceof TunekitError) return { code: RPC_CODES[err.code] ?? 13, message: err.message };
  return { code: 13, message: `internal error: ${err instanceof Error ? err.message : String(err)}` };
}
