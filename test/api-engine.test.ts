// The generation routes on the serving engine: concurrent requests on a publisher model and on tuned
// endpoints over the same base run in one engine, batched (fewer forward passes than tokens), on one
// copy of the base weights, each answering what it answers alone; beyond --max-queue waiting requests
// a request is refused with 429 RESOURCE_EXHAUSTED naming the limit.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createApp } from '../src/api/app.js';
import { ModelCatalog } from '../src/api/catalog.js';
import { notFound } from '../src/api/errors.js';
import type { EndpointTarget } from '../src/api/routes/endpoints.js';
import { Random } from '../src/engine/random.js';
import { defaultLoraConfig, initLoraAdapter } from '../src/lora/lora.js';
import { saveAdapter } from '../src/lora/peft.js';
import { loadModel, type LoadedModel } from '../src/models/model.js';
import type { Engine } from '../src/serve/engine.js';
import { PREFIX, tinyApi, userText } from './helpers/api-app.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-api-engine-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
const base = await loadModel(tinyModelDir('qwen3'));
const adapters = [1, 2, 3].map((seed) => {
  const dir = path.join(root, `adapter-${seed}`);
  const a = initLoraAdapter(base.config, defaultLoraConfig(4), seed);
  const rng = new Random(seed + 10);
  for (const pairs of a.layers) for (const p of Object.values(pairs)) rng.fillNormal(p!.B, 0, 0.5);
  saveAdapter(dir, a);
  return dir;
});
const targets: Record<string, EndpointTarget> = Object.fromEntries(adapters.map((adapterDir, i) => [
  String(100 + i), { publisher: 'google', model: 'qwen3-tiny', adapterDir, modelVersion: `projects/p/locations/us-central1/models/${i}@1` },
]));
const endpoints = {
  resolve: (project: string, location: string, endpoint: string) => {
    const t = targets[endpoint];
    if (!t) throw notFound(`Endpoint \`projects/${project}/locations/${location}/endpoints/${endpoint}\` not found.`);
    return t;
  },
};
const EP = '/v1beta1/projects/p/locations/us-central1/endpoints';
type Gen = { candidates: { content: { parts?: { text: string }[] } }[]; usageMetadata: { candidatesTokenCount: number } };
const text = (r: Gen): string => (r.candidates[0]!.content.parts ?? []).map((p) => p.text).join('');
const body = (i: number) => ({ ...userText(`Request number ${i}`), generationConfig: { temperature: 0, maxOutputTokens: 24 } });

test('concurrent requests on a base and three tuned endpoints share one engine and one base copy, each answering as alone', async () => {
  const api = await tinyApi({ endpoints });
  const urls = [`${PREFIX}/qwen3-tiny:generateContent`, ...adapters.map((_, i) => `${EP}/${100 + i}:generateContent`)];
  // Alone, one after another.
  const alone: string[] = [];
  for (const [i, url] of urls.entries()) alone.push(text(await (await api.post(url, body(i))).json() as Gen));
  const served = await api.catalog.served('google', 'qwen3-tiny');
  const passesBefore = served.engine.stats().passes;
  // Together: eight requests, two per model.
  const together = await Promise.all([...urls, ...urls].map(async (url, k) => {
    const res = await api.post(url, body(k % urls.length));
    assert.equal(res.status, 200);
    return await res.json() as Gen;
  }));
  together.forEach((r, k) => assert.equal(text(r), alone[k % urls.length], `request ${k}`));
  const tokens = together.reduce((n, r) => n + r.usageMetadata.candidatesTokenCount, 0);
  const passes = served.engine.stats().passes - passesBefore;
  assert.ok(passes < tokens / 2, `${passes} passes for ${tokens} tokens: requests were batched`);
  const tuned = await api.catalog.servedWithAdapter('google', 'qwen3-tiny', adapters[0]!, 'x');
  assert.equal(tuned.engine, served.engine, 'tuned models run in the base model\'s engine');
  assert.equal((tuned.model as LoadedModel).weights, (served.model as LoadedModel).weights, 'one copy of the base weights');
  assert.equal((served.engine as Engine).adapters.loaded.length, 3);
});

test('beyond --max-queue waiting requests: 429 RESOURCE_EXHAUSTED naming the limit', async () => {
  const api = await tinyApi();
  const catalog = new ModelCatalog(api.store, undefined, { engine: { parallel: 1, maxQueue: 1 } });
  const app = createApp({ catalog });
  const { engine } = await catalog.served('google', 'qwen3-tiny');
  const post = (b: unknown) => app.request(`${PREFIX}/qwen3-tiny:generateContent`, { method: 'POST', body: JSON.stringify(b) });
  const long = { ...userText('Go on'), generationConfig: { temperature: 0, maxOutputTokens: 300 } };
  const running = post(long);
  while (engine.stats().running === 0) await new Promise((r) => setTimeout(r, 2));
  const queued = post(long);
  while (engine.stats().queued === 0) await new Promise((r) => setTimeout(r, 2));
  const refused = await post(long);
  assert.equal(refused.status, 429);
  const e = await refused.json() as { error: { status: string; message: string } };
  assert.equal(e.error.status, 'RESOURCE_EXHAUSTED');
  assert.match(e.error.message, /--max-queue/);
  assert.equal((await running).status, 200);
  assert.equal((await queued).status, 200);
});

test('the catalog never drops a base model whose engine is busy (no second copy while it runs)', async () => {
  const api = await tinyApi();
  const catalog = new ModelCatalog(api.store, undefined, { baseModels: 1 });
  const gemma = await catalog.served('google', 'gemma3-tiny');
  const it = gemma.generate([5, 6, 7], { temperature: 0, maxTokens: 200, stopTokenIds: [] }, new AbortController().signal);
  await it.next();
  assert.ok(gemma.busy);
  await catalog.served('google', 'qwen3-tiny'); // over the limit of 1, but gemma is busy
  assert.equal(await catalog.served('google', 'gemma3-tiny'), gemma, 'the busy model stayed loaded');
  for (;;) if ((await it.next()).done) break;
  await gemma.engine.idle();
  await catalog.served('google', 'qwen3-tiny'); // now gemma may go
  assert.notEqual(await catalog.served('google', 'gemma3-tiny'), gemma, 'an idle model is dropped beyond the limit');
});
