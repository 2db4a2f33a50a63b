// Where the API keeps its state: the data directory and the platform database in it.

import * as path from 'node:path';
import { defaultDataDir, PlatformDb } from '../platform/db.js';
import { DbRegistrationStore } from './db-store.js';

/** --data-dir, else $TUNEKIT_DATA_DIR, else ~/.tunekit. */
export function resolveDataDir(flag?: string): string {
  return path.resolve(flag ?? defaultDataDir());
}

/** The registration store of a data directory (and database, when given); close() closes its database. */
export async function openRegistrationStore(dataDir: string, database?: string): Promise<DbRegistrationStore & { close(): Promise<void> }> {
  const db = await PlatformDb.open({ dataDir, ...(database !== undefined ? { database } : {}) });
  return Object.assign(new DbRegistrationStore(db), { close: () => db.close() });
}
