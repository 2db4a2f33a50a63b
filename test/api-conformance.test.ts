// Conformance with the real client: `tunekit serve` runs as a child process on a free port and is
// driven only through @google/genai 2.32.0 in Vertex mode, as a user's code would drive Vertex AI.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiError, GoogleGenAI } from '@google/genai';
import { tinyModelDir } from './helpers/tiny-models.js';
import { startServe, type ServeProcess } from './helpers/serve.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-conformance-'));

let server: ServeProcess;
let baseUrl = '';
let adminKey = '';

before(async () => {
  execFileSync(process.execPath, [CLI, 'publisher-models', 'register', tinyModelDir('gemma3'), '--name', 'gemma3-tiny', '--data-dir', dataDir]);
  server = await startServe(dataDir);
  baseUrl = server.url;
  adminKey = /^(tk1\.\S+)$/m.exec(server.stdout)?.[1] ?? '';
});

after(async () => {
  await server.kill();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const client = (apiKey = adminKey) => new GoogleGenAI({
  vertexai: true, project: 'p', location: 'us-central1', apiKey, httpOptions: { baseUrl },
});

test('first start prints the URL and the bootstrap admin key once; --insecure-no-auth warns loudly', async () => {
  assert.match(baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(adminKey, /^tk1\./);
  const again = await startServe(dataDir, {}, ['--insecure-no-auth']);
  try {
    assert.doesNotMatch(again.stdout, /tk1\./);
    assert.match(again.stderr, /WARNING: --insecure-no-auth/);
    const r = await client('anything').models.countTokens({ model: 'gemma3-tiny', contents: 'hi' }).catch((e: unknown) => e);
    assert.ok(r instanceof ApiError); // `client` points at the authenticated server
    const open = new GoogleGenAI({ vertexai: true, project: 'p', location: 'us-central1', apiKey: 'anything', httpOptions: { baseUrl: again.url } });
    assert.ok((await open.models.countTokens({ model: 'gemma3-tiny', contents: 'hi' })).totalTokens! > 0);
  } finally {
    await again.kill();
  }
});

test('generateContent, generateContentStream, countTokens, computeTokens through the SDK', async () => {
  const ai = client();
  const config = { temperature: 0.8, seed: 11, maxOutputTokens: 12, systemInstruction: 'Be brief.' };
  const r = await ai.models.generateContent({ model: 'gemma3-tiny', contents: 'Say something.', config });
  assert.equal(typeof r.text, 'string');
  assert.ok(r.text!.length > 0);
  assert.equal(r.candidates![0]!.finishReason, 'MAX_TOKENS');
  const usage = r.usageMetadata!;
  assert.equal(usage.candidatesTokenCount, 12);
  assert.equal(usage.totalTokenCount, usage.promptTokenCount! + 12);
  assert.equal(r.modelVersion, 'gemma3-tiny');

  let streamed = '';
  let chunks = 0;
  let lastUsage;
  for await (const chunk of await ai.models.generateContentStream({ model: 'gemma3-tiny', contents: 'Say something.', config })) {
    streamed += chunk.text ?? '';
    chunks++;
    lastUsage = chunk.usageMetadata;
  }
  assert.ok(chunks > 1);
  assert.equal(streamed, r.text);
  assert.deepEqual(lastUsage, usage);

  const counted = await ai.models.countTokens({ model: 'gemma3-tiny', contents: 'Say something.', config: { systemInstruction: 'Be brief.' } });
  assert.equal(counted.totalTokens, usage.promptTokenCount);

  // Express mode: an API key and no project; the SDK drops the projects/{p}/locations/{l} prefix.
  const express = new GoogleGenAI({ vertexai: true, apiKey: adminKey, httpOptions: { baseUrl } });
  const e = await express.models.generateContent({ model: 'gemma3-tiny', contents: 'Say something.', config });
  assert.equal(e.text, r.text);

  const got = await ai.models.get({ model: 'gemma3-tiny' });
  assert.equal(got.name, 'publishers/google/models/gemma3-tiny');

  const computed = await ai.models.computeTokens({ model: 'gemma3-tiny', contents: 'Say something.' });
  const info = computed.tokensInfo![0]!;
  assert.equal(info.role, 'user');
  assert.ok(info.tokenIds!.length > 0);
  assert.equal(info.tokenIds!.length, info.tokens!.length);
  assert.equal(Buffer.concat(info.tokens!.map((t) => Buffer.from(t, 'base64'))).toString(), 'Say something.');
});

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ApiError, `expected ApiError, got ${e}`);
    return e;
  }
  assert.fail('expected the call to fail');
}

test('failures arrive as ApiError with the status and the server\'s message', async () => {
  const ai = client();
  const missing = await apiError(ai.models.generateContent({ model: 'no-such-model', contents: 'hi' }));
  assert.equal(missing.status, 404);
  assert.match(missing.message, /Publisher Model `publishers\/google\/models\/no-such-model` not found/);

  // A tuned model is called by its full endpoint name; the SDK sends it as is under /v1beta1/.
  const endpoint = await apiError(ai.models.generateContent({ model: 'projects/p/locations/us-central1/endpoints/123', contents: 'hi' }));
  assert.equal(endpoint.status, 404);
  assert.match(endpoint.message, /Endpoint `?projects\/p\/locations\/us-central1\/endpoints\/123/);

  const two = await apiError(ai.models.generateContent({ model: 'gemma3-tiny', contents: 'hi', config: { candidateCount: 9 } }));
  assert.equal(two.status, 400);
  assert.match(two.message, /candidate_count/);

  const stops = await apiError(ai.models.generateContent({ model: 'gemma3-tiny', contents: 'hi', config: { stopSequences: ['1', '2', '3', '4', '5', '6'] } }));
  assert.equal(stops.status, 400);

  const streamMissing = await apiError((async () => {
    for await (const _ of await ai.models.generateContentStream({ model: 'no-such-model', contents: 'hi' })) { /* none */ }
  })());
  assert.equal(streamMissing.status, 404);

  const wrongKey = await apiError(client('tk1.000000000000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA').models.generateContent({ model: 'gemma3-tiny', contents: 'hi' }));
  assert.equal(wrongKey.status, 401);
  assert.match(wrongKey.message, /API key not valid/);

  const location = await apiError(new GoogleGenAI({ vertexai: true, project: 'p', location: 'mars-north1', apiKey: adminKey, httpOptions: { baseUrl } })
    .models.generateContent({ model: 'gemma3-tiny', contents: 'hi' }));
  assert.equal(location.status, 400);
  assert.match(location.message, /Supported locations: us-central1, europe-west4/);

  // Still serving.
  assert.ok((await ai.models.countTokens({ model: 'gemma3-tiny', contents: 'hi' })).totalTokens! > 0);
});

test('structured output, candidates and logprobs through the SDK (responseSchema with Type, responseJsonSchema)', async () => {
  const { Type } = await import('@google/genai');
  const ai = client();
  const r = await ai.models.generateContent({
    model: 'gemma3-tiny', contents: 'A city as JSON.',
    config: {
      seed: 3, temperature: 1.5, maxOutputTokens: 60, candidateCount: 2, responseLogprobs: true, logprobs: 2,
      responseMimeType: 'application/json',
      responseSchema: { type: Type.OBJECT, properties: { name: { type: Type.STRING }, population: { type: Type.INTEGER } }, required: ['name', 'population'] },
    },
  });
  assert.equal(r.candidates!.length, 2);
  for (const c of r.candidates!) {
    const v = JSON.parse(c.content!.parts!.map((p) => p.text).join('')) as { name: string; population: number };
    assert.equal(typeof v.name, 'string');
    assert.ok(Number.isInteger(v.population));
    assert.equal(typeof c.avgLogprobs, 'number');
    assert.equal(c.logprobsResult!.topCandidates![0]!.candidates!.length, 2);
  }
  assert.deepEqual(r.usageMetadata!.promptTokensDetails, [{ modality: 'TEXT', tokenCount: r.usageMetadata!.promptTokenCount }]);
  const j = await ai.models.generateContent({
    model: 'gemma3-tiny', contents: 'x',
    config: { seed: 1, maxOutputTokens: 40, responseMimeType: 'application/json', responseJsonSchema: { type: 'array', items: { type: 'boolean' }, minItems: 2, maxItems: 2 } },
  });
  const arr = JSON.parse(j.text!) as boolean[];
  assert.equal(arr.length, 2);
  const e = await ai.models.generateContent({ model: 'gemma3-tiny', contents: 'x', config: { responseMimeType: 'text/x.enum', responseSchema: { type: Type.STRING, enum: ['up', 'down'] } } });
  assert.ok(['up', 'down'].includes(e.text!));
});

test('the OpenAI-compatible API over the socket with the official openai client: Bearer API keys as on the Vertex routes', async () => {
  const { default: OpenAI } = await import('openai');
  const ok = new OpenAI({ apiKey: adminKey, baseURL: `${baseUrl}/v1`, maxRetries: 0 });
  const r = await ok.chat.completions.create({ model: 'gemma3-tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, seed: 1 });
  assert.equal(r.choices.length, 1);
  const s = await ok.chat.completions.create({ model: 'gemma3-tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, seed: 1, stream: true });
  let text = '';
  for await (const chunk of s) text += chunk.choices[0]?.delta.content ?? '';
  assert.equal(text, r.choices[0]!.message.content);
  const bad = new OpenAI({ apiKey: 'tk1.not-a-key', baseURL: `${baseUrl}/v1`, maxRetries: 0 });
  const e = await bad.models.list().catch((x: unknown) => x);
  assert.ok(e instanceof OpenAI.APIError);
  assert.equal(e.status, 401);
  assert.equal(e.type, 'authentication_error');
});
