// Publisher-model registrations in the platform database (table base_models).

import type { PlatformDb } from '../platform/db.js';
import type { ModelRegistration, RegistrationStore } from './catalog.js';

const COLUMNS = 'publisher, name, dir, blobs, create_time AS "createTime"';

/** A row as the API sees it: no `blobs` key for a registration by path. */
function registration(row: unknown): ModelRegistration {
  const r = row as ModelRegistration & { blobs: string | null };
  const { blobs, ...rest } = r;
  return blobs === null || blobs === undefined ? rest : { ...rest, blobs };
}

export class DbRegistrationStore implements RegistrationStore {
  constructor(private readonly db: PlatformDb) {}

  async get(publisher: string, name: string): Promise<ModelRegistration | undefined> {
    const row = await this.db.get(`SELECT ${COLUMNS} FROM base_models WHERE publisher = ? AND name = ?`, publisher, name);
    return row === undefined ? undefined : registration(row);
  }

  async list(publisher?: string): Promise<ModelRegistration[]> {
    if (publisher === undefined) return (await this.db.all(`SELECT ${COLUMNS} FROM base_models ORDER BY publisher, name`)).map(registration);
    return (await this.db.all(`SELECT ${COLUMNS} FROM base_models WHERE publisher = ? ORDER BY name`, publisher)).map(registration);
  }

  async put(r: ModelRegistration, check?: () => Promise<void>): Promise<void> {
    await this.db.transaction(async () => {
      await this.db.run(
        `INSERT INTO base_models (publisher, name, dir, blobs, create_time) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (publisher, name) DO UPDATE SET dir = excluded.dir, blobs = excluded.blobs, create_time = excluded.create_time`,
        r.publisher, r.name, r.dir, r.blobs ?? null, r.createTime,
      );
      await check?.();
    });
  }
}
