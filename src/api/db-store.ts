// Publisher-model registrations in the platform database (table base_models).

import type { PlatformDb } from '../platform/db.js';
import type { ModelRegistration, RegistrationStore } from './catalog.js';

const COLUMNS = 'publisher, name, dir, create_time AS "createTime"';

export class DbRegistrationStore implements RegistrationStore {
  constructor(private readonly db: PlatformDb) {}

  async get(publisher: string, name: string): Promise<ModelRegistration | undefined> {
    return (await this.db.get(`SELECT ${COLUMNS} FROM base_models WHERE publisher = ? AND name = ?`, publisher, name)) as ModelRegistration | undefined;
  }

  async list(publisher?: string): Promise<ModelRegistration[]> {
    if (publisher === undefined) return (await this.db.all(`SELECT ${COLUMNS} FROM base_models ORDER BY publisher, name`)) as ModelRegistration[];
    return (await this.db.all(`SELECT ${COLUMNS} FROM base_models WHERE publisher = ? ORDER BY name`, publisher)) as ModelRegistration[];
  }

  async put(r: ModelRegistration): Promise<void> {
    await this.db.run(
      `INSERT INTO base_models (publisher, name, dir, create_time) VALUES (?, ?, ?, ?)
       ON CONFLICT (publisher, name) DO UPDATE SET dir = excluded.dir, create_time = excluded.create_time`,
      r.publisher, r.name, r.dir, r.createTime,
    );
  }
}
