// Publisher-model registrations in the platform database (table base_models).

import type { PlatformDb } from '../platform/db.js';
import type { ModelRegistration, RegistrationStore } from './catalog.js';

const COLUMNS = 'publisher, name, dir, create_time AS createTime';

export class DbRegistrationStore implements RegistrationStore {
  constructor(private readonly db: PlatformDb) {}

  get(publisher: string, name: string): ModelRegistration | undefined {
    return this.db.sqlite.prepare(`SELECT ${COLUMNS} FROM base_models WHERE publisher = ? AND name = ?`).get(publisher, name) as ModelRegistration | undefined;
  }

  list(publisher?: string): ModelRegistration[] {
    if (publisher === undefined) return this.db.sqlite.prepare(`SELECT ${COLUMNS} FROM base_models ORDER BY publisher, name`).all() as ModelRegistration[];
    return this.db.sqlite.prepare(`SELECT ${COLUMNS} FROM base_models WHERE publisher = ? ORDER BY name`).all(publisher) as ModelRegistration[];
  }

  put(r: ModelRegistration): void {
    this.db.sqlite
      .prepare(`INSERT INTO base_models (publisher, name, dir, create_time) VALUES (?, ?, ?, ?)
        ON CONFLICT (publisher, name) DO UPDATE SET dir = excluded.dir, create_time = excluded.create_time`)
      .run(r.publisher, r.name, r.dir, r.createTime);
  }
}
