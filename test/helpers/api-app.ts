// An in-process API app over tiny registered models (in a platform database in a temporary data
// directory), and request helpers for the api-* tests.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createApp, type ApiOptions } from '../../src/api/app.js';
import { ModelCatalog, registerPublisherModel } from '../../src/api/catalog.js';
import { DbRegistrationStore } from '../../src/api/db-store.js';
import { PlatformDb } from '../../src/platform/db.js';
import { tinyModelDir } from './tiny-models.js';
import { testDatabase } from './postgres.js';

export const PREFIX = '/v1/projects/p/locations/us-central1/publishers/google/models';

export async function tinyApi(opts: Partial<ApiOptions> & { withDb?: (db: PlatformDb) => Partial<ApiOptions> } = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-api-'));
  const db = await PlatformDb.open({ dataDir, ...await testDatabase() });
  process.on('exit', () => fs.rmSync(dataDir, { recursive: true, force: true }));
  const store = new DbRegistrationStore(db);
  await registerPublisherModel(store, tinyModelDir('gemma3'), { name: 'gemma3-tiny' });
  await registerPublisherModel(store, tinyModelDir('qwen3'), { name: 'qwen3-tiny' });
  const catalog = new ModelCatalog(store);
  const errors: unknown[] = [];
  const app = createApp({ catalog, log: (e) => errors.push(e), ...opts, ...opts.withDb?.(db) });
  const request = async (url: string, init: RequestInit = {}): Promise<Response> => app.request(url, init);
  const post = async (url: string, body: unknown, init: RequestInit = {}): Promise<Response> => app.request(url, {
    method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init, headers: { 'content-type': 'application/json', ...init.headers as Record<string, string> },
  });
  return { app, db, catalog, store, dataDir, errors, request, post };
}

export const userText = (text: string) => ({ contents: [{ role: 'user', parts: [{ text }] }] });
