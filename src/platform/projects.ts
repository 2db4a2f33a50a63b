// Projects: the unit that owns buckets, service accounts, role bindings, jobs and quotas. A self-hosted
// platform has no billing setup, so a project comes into being the first time an administrator names
// it (creating a bucket or a service account, binding a role); ensureProject does that.

import { AlreadyExistsError, InvalidRequestError, NotFoundError } from '../errors.js';
import { now, type PlatformDb } from './db.js';

export interface Project {
  id: string;
  createTime: string;
}

const PROJECT_ID = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Throws INVALID_ARGUMENT unless `id` is 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'. */
export function validateProjectId(id: string): void {
  if (!PROJECT_ID.test(id)) {
    throw new InvalidRequestError(
      `project id ${JSON.stringify(id)} is not valid: use 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit`,
    );
  }
}

export class Projects {
  constructor(private readonly db: PlatformDb) {}

  async create(id: string): Promise<Project> {
    validateProjectId(id);
    const createTime = now();
    const r = (await this.db.run('INSERT INTO projects (id, create_time) VALUES (?, ?) ON CONFLICT DO NOTHING', id, createTime));
    if (r.changes === 0) throw new AlreadyExistsError(`project ${JSON.stringify(id)} already exists`);
    return { id, createTime };
  }

  /** The project, created if it does not exist yet. */
  async ensure(id: string): Promise<Project> {
    validateProjectId(id);
    await this.db.run('INSERT INTO projects (id, create_time) VALUES (?, ?) ON CONFLICT DO NOTHING', id, now());
    return this.get(id);
  }

  async get(id: string): Promise<Project> {
    const row = await this.find(id);
    if (!row) throw new NotFoundError(`project ${JSON.stringify(id)} does not exist`);
    return row;
  }

  async find(id: string): Promise<Project | undefined> {
    return (await this.db.get('SELECT id, create_time AS "createTime" FROM projects WHERE id = ?', id)) as Project | undefined;
  }

  async list(): Promise<Project[]> {
    return (await this.db.all('SELECT id, create_time AS "createTime" FROM projects ORDER BY id')) as Project[];
  }
}
