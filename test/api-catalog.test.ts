// The model catalog keeps a bounded number of models in memory: the least recently used base model is
// dropped beyond the limit and loaded again when asked for.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelCatalog, type ModelRegistration, type RegistrationStore } from '../src/api/catalog.js';
import type { LoadedModel } from '../src/models/model.js';

class MemoryStore implements RegistrationStore {
  private readonly m = new Map<string, ModelRegistration>();
  async get(publisher: string, name: string) { return this.m.get(`${publisher}/${name}`); }
  async list() { return [...this.m.values()]; }
  async put(r: ModelRegistration) { this.m.set(`${r.publisher}/${r.name}`, r); }
}

test('base models beyond the limit are evicted least-recently-used first and reloaded on demand', async () => {
  const store = new MemoryStore();
  for (const name of ['a', 'b', 'c']) await store.put({ publisher: 'google', name, dir: `/models/${name}`, createTime: '2026-01-01T00:00:00Z' });
  const loads: string[] = [];
  const fake = async (dir: string) => {
    loads.push(dir);
    return { dir } as unknown as LoadedModel;
  };
  const catalog = new ModelCatalog(store, fake, { baseModels: 2 });
  await catalog.served('google', 'a');
  await catalog.served('google', 'b');
  await catalog.served('google', 'a'); // a is now the most recent
  await catalog.served('google', 'c'); // evicts b
  await catalog.served('google', 'a'); // still cached
  assert.deepEqual(loads, ['/models/a', '/models/b', '/models/c']);
  await catalog.served('google', 'b'); // reloaded, evicts c
  assert.deepEqual(loads, ['/models/a', '/models/b', '/models/c', '/models/b']);
  const again = await catalog.served('google', 'a');
  assert.equal((again.model as unknown as { dir: string }).dir, '/models/a');
  assert.equal(loads.length, 4);
});
