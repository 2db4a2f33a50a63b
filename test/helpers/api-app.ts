// An in-process API app over tiny registered models, and request helpers for the api-* tests.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createApp, type ApiOptions } from '../../src/api/app.js';
import { ModelCatalog, registerPublisherModel } from '../../src/api/catalog.js';
import { JsonRegistrationStore } from '../../src/api/json-store.js';
import { tinyModelDir } from './tiny-models.js';

export const PREFIX = '/v1/projects/p/locations/us-central1/publishers/google/models';

export function tinyApi(opts: Partial<ApiOptions> = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-api-'));
  process.on('exit', () => fs.rmSync(dataDir, { recursive: true, force: true }));
  const store = new JsonRegistrationStore(dataDir);
  registerPublisherModel(store, tinyModelDir('gemma3'), { name: 'gemma3-tiny' });
  registerPublisherModel(store, tinyModelDir('qwen3'), { name: 'qwen3-tiny' });
  const catalog = new ModelCatalog(store);
  const errors: unknown[] = [];
  const app = createApp({ catalog, log: (e) => errors.push(e), ...opts });
  const request = async (url: string, init: RequestInit = {}): Promise<Response> => app.request(url, init);
  const post = async (url: string, body: unknown, init: RequestInit = {}): Promise<Response> => app.request(url, {
    method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json' }, ...init,
  });
  return { app, catalog, store, dataDir, errors, request, post };
}

export const userText = (text: string) => ({ contents: [{ role: 'user', parts: [{ text }] }] });
