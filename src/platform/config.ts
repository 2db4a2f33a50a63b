// Platform settings kept in the database: which locations exist, and quota limits. Defaults need no
// setup: us-central1 and europe-west4 (the regions where Vertex tunes), one concurrent tuning job per
// project and location. Quota rows are looked up from most to least specific: (project, location),
// (project, '*'), ('*', location), ('*', '*'), then the built-in default.

import { InvalidRequestError } from '../errors.js';
import type { PlatformDb } from './db.js';

export const DEFAULT_LOCATIONS: readonly string[] = ['us-central1', 'europe-west4'];

/** Quota names, as stored and as named in RESOURCE_EXHAUSTED messages. */
export const QUOTAS = {
  concurrentTuningJobs: { id: 'concurrent_tuning_jobs', title: 'concurrent tuning jobs', default: 1 },
} as const;
export type QuotaId = (typeof QUOTAS)[keyof typeof QUOTAS]['id'];

const LOCATION = /^[a-z]+(-[a-z]+)*[0-9]+$/;
const SCOPE = /^(\*|[a-z0-9][a-z0-9-]{0,62})$/;

/** Throws INVALID_ARGUMENT naming the supported locations unless `location` is one of them. */
export function assertLocation(location: string, supported: readonly string[] = DEFAULT_LOCATIONS): void {
  if (supported.includes(location)) return;
  throw new InvalidRequestError(
    `Location ${JSON.stringify(location)} is not supported: the resource is unavailable there. Supported locations: ${supported.join(', ')}.`,
  );
}

export class PlatformConfig {
  private readonly locationsOverride?: string[];

  /** `locations`, when given, overrides the stored list for this process (a server flag). */
  constructor(private readonly db: PlatformDb, opts: { locations?: readonly string[] } = {}) {
    if (opts.locations) {
      checkLocations(opts.locations);
      this.locationsOverride = [...new Set(opts.locations)];
    }
  }

  async getSetting<T>(key: string): Promise<T | undefined> {
    const row = (await this.db.get('SELECT value FROM config WHERE key = ?', key)) as { value: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.value) as T);
  }

  async setSetting(key: string, value: unknown): Promise<void> {
    await this.db.run('INSERT INTO config (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, JSON.stringify(value));
  }

  /** The supported locations: the constructor's override, else those stored by setLocations, else DEFAULT_LOCATIONS. */
  async locations(): Promise<string[]> {
    return [...(this.locationsOverride ?? (await this.getSetting<string[]>('locations')) ?? DEFAULT_LOCATIONS)];
  }

  /** Stores the supported locations for every later process. */
  async setLocations(locations: readonly string[]): Promise<void> {
    checkLocations(locations);
    await this.setSetting('locations', [...new Set(locations)]);
  }

  async assertLocation(location: string): Promise<void> {
    assertLocation(location, await this.locations());
  }

  /** The limit of quota `id` for (project, location). */
  async quotaLimit(id: QuotaId, project: string, location: string): Promise<number> {
    const row = (await this.db.get(`SELECT limit_value AS v FROM quotas WHERE name = ? AND project IN (?, '*') AND location IN (?, '*')
         ORDER BY project = '*', location = '*' LIMIT 1`, id, project, location)) as { v: number } | undefined;
    return row?.v ?? quotaById(id).default;
  }

  /** Sets the limit of quota `id`; project and location default to '*' (every one). */
  async setQuotaLimit(id: QuotaId, limit: number, scope: { project?: string; location?: string } = {}): Promise<void> {
    quotaById(id);
    if (!Number.isInteger(limit) || limit < 0) throw new InvalidRequestError(`quota limit must be an integer >= 0, got ${limit}`);
    const project = scope.project ?? '*';
    const location = scope.location ?? '*';
    if (!SCOPE.test(project)) throw new InvalidRequestError(`project ${JSON.stringify(project)} is not a valid project id`);
    if (location !== '*' && !LOCATION.test(location)) throw new InvalidRequestError(`location ${JSON.stringify(location)} is not a valid location name`);
    await this.db.run(
      `INSERT INTO quotas (project, location, name, limit_value) VALUES (?, ?, ?, ?)
       ON CONFLICT (project, location, name) DO UPDATE SET limit_value = excluded.limit_value`,
      project, location, id, limit,
    );
  }
}

function checkLocations(locations: readonly string[]): void {
  if (locations.length === 0) throw new InvalidRequestError('locations must name at least one location, e.g. us-central1');
  for (const l of locations) {
    if (!LOCATION.test(l)) throw new InvalidRequestError(`location ${JSON.stringify(l)} is not a valid location name (e.g. us-central1, europe-west4)`);
  }
}

export function quotaById(id: string): (typeof QUOTAS)[keyof typeof QUOTAS] {
  const q = Object.values(QUOTAS).find((x) => x.id === id);
  if (!q) throw new InvalidRequestError(`unknown quota ${JSON.stringify(id)}: known quotas are ${Object.values(QUOTAS).map((x) => x.id).join(', ')}`);
  return q;
}
