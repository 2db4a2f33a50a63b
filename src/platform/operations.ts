// Long-running operations (google.longrunning.Operation) for the registry's mutations: deployModel,
// undeployModel, endpoint create / delete, model delete (table `operations`, migration 4). An operation
// lives under the resource it acts on (`projects/P/locations/L/endpoints/E/operations/ID`) or, for a
// delete, under the location (`projects/P/locations/L/operations/ID`), as Vertex names them.
// tunekit's registry mutations are single database transactions (an adapter is loaded when the first
// request needs it, not at deploy time), so an operation is recorded when its work has run: `done` is
// true at once, with the response or the error, and metadata.genericMetadata's createTime/updateTime
// say when it started and finished. get / list / wait / cancel / delete follow google.longrunning:
// wait on a done operation returns it; cancel of a done operation changes nothing; delete forgets it.

import { NotFoundError, InvalidRequestError } from '../errors.js';
import { newNumericId, now, type PlatformDb } from './db.js';
import { fitPage, LIMITS, type PageOptions } from './limits.js';

export interface OperationRecord {
  /** projects/{p}/locations/{l}[/endpoints/{e}]/operations/{id} */
  name: string;
  metadata: Record<string, unknown>;
  done: boolean;
  response?: Record<string, unknown>;
  error?: { code: number; message: string; details?: unknown[] };
}

interface OperationRow {
  id: string; project: string; location: string; parent: string; metadata: string; done: number;
  response: string | null; error: string | null; create_time: string; update_time: string;
}

const TYPE = 'type.googleapis.com/google.cloud.aiplatform.v1.';

export class Operations {
  constructor(private readonly db: PlatformDb) {}

  /**
   * Runs `work` (one transaction of the registry) as operation `metadataType` under
   * `parent` (e.g. "endpoints/123", or "" for the location) and records it done with `work`'s result as
   * the response (`responseType`). When `work` throws, nothing is recorded and the error is the
   * request's (its checks run before anything changes, as Vertex validates before it starts an operation).
   */
  async run(
    project: string, location: string, parent: string, metadataType: string, responseType: string,
    work: () => Promise<Record<string, unknown>>,
  ): Promise<OperationRecord> {
    const id = newNumericId();
    const start = now();
    const response = await work();
    const end = now();
    const metadata = { '@type': TYPE + metadataType, genericMetadata: { createTime: start, updateTime: end } };
    const body = { '@type': responseType.startsWith('google.') ? `type.googleapis.com/${responseType}` : TYPE + responseType, ...response };
    await this.db.run('INSERT INTO operations (id, project, location, parent, metadata, done, response, error, create_time, update_time) VALUES (?, ?, ?, ?, ?, 1, ?, NULL, ?, ?)', id, project, location, parent, JSON.stringify(metadata), JSON.stringify(body), start, end);
    return this.get(project, location, parent, id);
  }

  async get(project: string, location: string, parent: string, id: string): Promise<OperationRecord> {
    const row = (await this.db.get('SELECT * FROM operations WHERE id = ? AND project = ? AND location = ? AND parent = ?', id, project, location, parent)) as OperationRow | undefined;
    if (!row) throw new NotFoundError(`Operation ${prefix(project, location, parent)}/operations/${id} does not exist.`);
    return toRecord(row);
  }

  /** Newest first, in pages (tokens are offsets); `filter` is refused unless empty (tunekit has no operation filters). */
  async list(project: string, location: string, parent: string, opts: PageOptions<OperationRecord> & { filter?: string } = {}): Promise<{ operations: OperationRecord[]; nextPageToken?: string }> {
    if (opts.filter !== undefined && opts.filter.trim() !== '') {
      throw new InvalidRequestError(`filter ${JSON.stringify(opts.filter)} is not supported for operations: list them without a filter.`);
    }
    const size = Math.min(opts.pageSize ?? LIMITS.pageSize.models, LIMITS.pageSize.models);
    let offset = 0;
    if (opts.pageToken !== undefined) {
      if (!/^\d{1,9}$/.test(opts.pageToken)) throw new InvalidRequestError(`Invalid page_token ${JSON.stringify(opts.pageToken)}.`);
      offset = Number(opts.pageToken);
    }
    const rows = (await this.db.all('SELECT * FROM operations WHERE project = ? AND location = ? AND parent = ? ORDER BY create_time DESC, id DESC LIMIT ? OFFSET ?', project, location, parent, size + 1, offset)) as OperationRow[];
    const all = rows.slice(0, size).map(toRecord);
    const operations = all.slice(0, fitPage(all, opts.sizeOf, opts.maxBytes));
    return rows.length > operations.length ? { operations, nextPageToken: String(offset + operations.length) } : { operations };
  }

  /** google.longrunning cancel: best effort; a done operation is left as it is. */
  async cancel(project: string, location: string, parent: string, id: string): Promise<void> {
    await this.get(project, location, parent, id);
  }

  async delete(project: string, location: string, parent: string, id: string): Promise<void> {
    const r = (await this.db.run('DELETE FROM operations WHERE id = ? AND project = ? AND location = ? AND parent = ?', id, project, location, parent));
    if (r.changes === 0) throw new NotFoundError(`Operation ${prefix(project, location, parent)}/operations/${id} does not exist.`);
  }
}

function prefix(project: string, location: string, parent: string): string {
  return `projects/${project}/locations/${location}${parent ? `/${parent}` : ''}`;
}

function toRecord(r: OperationRow): OperationRecord {
  const rec: OperationRecord = {
    name: `${prefix(r.project, r.location, r.parent)}/operations/${r.id}`,
    metadata: JSON.parse(r.metadata) as Record<string, unknown>,
    done: r.done === 1,
  };
  if (r.response !== null) rec.response = JSON.parse(r.response) as Record<string, unknown>;
  if (r.error !== null) rec.error = JSON.parse(r.error) as OperationRecord['error'];
  return rec;
}
