// Generation on endpoints: a tuned model (base + PEFT adapter) answers exactly as the library does with
// the adapter applied; a base deployment as the base; unknown endpoints are 404.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { notFound } from '../src/api/errors.js';
import type { EndpointTarget } from '../src/api/routes/endpoints.js';
import { renderPrompt } from '../src/data/render.js';
import { Random } from '../src/engine/random.js';
import { generate } from '../src/generate/generate.js';
import { applyAdapterForInference } from '../src/lora/apply.js';
import { defaultLoraConfig, initLoraAdapter } from '../src/lora/lora.js';
import { saveAdapter } from '../src/lora/peft.js';
import { loadModel } from '../src/models/model.js';
import { tinyApi, userText } from './helpers/api-app.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const base = await loadModel(tinyModelDir('qwen3'));
const adapterDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-endpoint-adapter-'));
process.on('exit', () => fs.rmSync(adapterDir, { recursive: true, force: true }));
const adapter = initLoraAdapter(base.config, defaultLoraConfig(4), 5);
const rng = new Random(6);
for (const pairs of adapter.layers) for (const p of Object.values(pairs)) rng.fillNormal(p!.B, 0, 0.5);
saveAdapter(adapterDir, adapter);

const targets: Record<string, EndpointTarget> = {
  '111': { publisher: 'google', model: 'qwen3-tiny', adapterDir, modelVersion: 'projects/p/locations/us-central1/models/900@1' },
  '222': { publisher: 'google', model: 'qwen3-tiny', modelVersion: 'qwen3-tiny' },
};
const api = await tinyApi({
  endpoints: {
    resolve: (project, location, endpoint) => {
      const t = project === 'p' ? targets[endpoint] : undefined;
      if (!t) throw notFound(`Endpoint \`projects/${project}/locations/${location}/endpoints/${endpoint}\` not found.`);
      return t;
    },
  },
});
const EP = '/v1beta1/projects/p/locations/us-central1/endpoints';
const body = { ...userText('Tell me more'), generationConfig: { temperature: 1, seed: 3, maxOutputTokens: 10 } };

type Gen = { candidates: { content: { parts?: { text: string }[] } }[]; modelVersion: string };
const text = (r: Gen): string => (r.candidates[0]!.content.parts ?? []).map((p) => p.text).join('');

test('a tuned endpoint answers as base + adapter; a base endpoint as the base', async () => {
  const ids = renderPrompt({ turns: [{ role: 'user', text: 'Tell me more' }] }, base.tokenizer).tokens;
  const tunedDirect = await generate(applyAdapterForInference(base, adapterDir), ids, { temperature: 1, seed: 3, maxTokens: 10 });
  const baseDirect = await generate(base, ids, { temperature: 1, seed: 3, maxTokens: 10 });
  assert.notEqual(tunedDirect.text, baseDirect.text, 'the adapter changes the output');

  const tuned = await (await api.post(`${EP}/111:generateContent`, body)).json() as Gen;
  assert.equal(text(tuned), tunedDirect.text);
  assert.equal(tuned.modelVersion, 'projects/p/locations/us-central1/models/900@1');
  const plain = await (await api.post(`${EP}/222:generateContent`, body)).json() as Gen;
  assert.equal(text(plain), baseDirect.text);
  // The publisher model is unaffected by the adapter loaded beside it.
  const pub = await (await api.post('/v1/projects/p/locations/us-central1/publishers/google/models/qwen3-tiny:generateContent', body)).json() as Gen;
  assert.equal(text(pub), baseDirect.text);

  const count = await (await api.post(`${EP}/111:countTokens`, body)).json() as { totalTokens: number };
  assert.equal(count.totalTokens, ids.length);
});

test('unknown endpoints and other projects are 404', async () => {
  for (const url of [`${EP}/333:generateContent`, '/v1/projects/q/locations/us-central1/endpoints/111:generateContent']) {
    const res = await api.post(url, body);
    assert.equal(res.status, 404);
    const e = await res.json() as { error: { status: string; message: string } };
    assert.equal(e.error.status, 'NOT_FOUND');
    assert.match(e.error.message, /^Endpoint `projects\/[pq]\/locations\/us-central1\/endpoints\/(333|111)` not found\.$/);
  }
});
