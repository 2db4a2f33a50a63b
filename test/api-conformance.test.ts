// Conformance with the real client: `tunekit serve` runs as a child process on a free port and is
// driven only through @google/genai 2.32.0 in Vertex mode, as a user's code would drive Vertex AI.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiError, GoogleGenAI } from '@google/genai';
import { tinyModelDir } from './helpers/tiny-models.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-conformance-'));
let server: ChildProcess;
let baseUrl = '';
let stderr = '';

before(async () => {
  execFileSync(process.execPath, [CLI, 'models', 'register', tinyModelDir('gemma3'), '--name', 'gemma3-tiny', '--data-dir', dataDir]);
  server = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', dataDir, '--insecure-no-auth'], { stdio: ['ignore', 'pipe', 'pipe'] });
  server.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  baseUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /at (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    server.once('exit', (code) => reject(new Error(`tunekit serve exited with ${code}: ${stderr}`)));
  });
});

after(async () => {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const client = (apiKey = 'test-key') => new GoogleGenAI({
  vertexai: true, project: 'p', location: 'us-central1', apiKey, httpOptions: { baseUrl },
});

test('serve warns loudly without auth and prints its URL', () => {
  assert.match(stderr, /WARNING: --insecure-no-auth/);
  assert.match(baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
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

  const two = await apiError(ai.models.generateContent({ model: 'gemma3-tiny', contents: 'hi', config: { candidateCount: 2 } }));
  assert.equal(two.status, 400);
  assert.match(two.message, /candidate_count/);

  const stops = await apiError(ai.models.generateContent({ model: 'gemma3-tiny', contents: 'hi', config: { stopSequences: ['1', '2', '3', '4', '5', '6'] } }));
  assert.equal(stops.status, 400);

  const streamMissing = await apiError((async () => {
    for await (const _ of await ai.models.generateContentStream({ model: 'no-such-model', contents: 'hi' })) { /* none */ }
  })());
  assert.equal(streamMissing.status, 404);

  // Still serving.
  assert.ok((await ai.models.countTokens({ model: 'gemma3-tiny', contents: 'hi' })).totalTokens! > 0);
});
