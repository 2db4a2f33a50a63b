// Heartbeat bounds of the PostgreSQL job queue (queue.ts), apart from it so that the CLI's options can
// name them without loading pg-boss.

/** Default: a job whose worker sent no heartbeat for this long is given to another worker. */
export const DEFAULT_HEARTBEAT_SECONDS = 60;
/** pg-boss refuses heartbeats under 10 s. */
export const MIN_HEARTBEAT_SECONDS = 10;
