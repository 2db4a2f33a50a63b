// `serve --engine llama.cpp` (src/serve/llamacpp-engine.ts) driven by the official @google/genai SDK,
// against the same API app on tunekit's own engine: node-llama-cpp's prebuilt CPU build (no GPU here),
// the tiny models of all three architectures with untied random lm_heads (greedy paths that wander),
// random nonzero LoRA adapters behind endpoints. tunekit's engine is the independent side: the two
// share the request handling and SequenceState, not the forward pass (tunekit's decoder vs llama.cpp
// on tunekit's GGUF and GGUF-LoRA exports), so equal answers show the export and the engine's plumbing
// (prompt ids in, distributions out, adapters per context) are right.
// Then: streaming, stop sequences, maxOutputTokens, options that need the whole distribution, a
// client leaving mid-stream, two adapters of one base at once, and the real CLI (GGUF exported once,
// node-llama-cpp never loaded by --engine tunekit, bad flag values refused by name).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiError, GoogleGenAI, type GenerateContentResponse } from '@google/genai';
import OpenAI from 'openai';
import { createApp } from '../src/api/app.js';
import { ModelCatalog, registerPublisherModel, type ModelRegistration } from '../src/api/catalog.js';
import { notFound } from '../src/api/errors.js';
import type { EndpointTarget } from '../src/api/routes/endpoints.js';
import { listen } from '../src/api/server.js';
import { Random } from '../src/engine/random.js';
import { defaultLoraConfig, initLoraAdapter } from '../src/lora/lora.js';
import { saveAdapter } from '../src/lora/peft.js';
import { loadModelConfig } from '../src/models/loader.js';
import type { Family } from '../src/models/config.js';
import { LlamaCppRuntime, type GpuChoice } from '../src/serve/llamacpp-engine.js';
import { FAMILIES, untiedTinyModel } from './helpers/tiny-models.js';
import { startServe } from './helpers/serve.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-llamacpp-serve-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const LOC = 'projects/p/locations/us-central1';
/** The build under test: the CPU one; on a GPU machine, TUNEKIT_TEST_GPU=cuda (or vulkan) reruns all of it there. */
const GPU = (process.env.TUNEKIT_TEST_GPU ?? 'off') as GpuChoice;
/** The llama.cpp engine's --context-size here. */
const CONTEXT = 256;

const modelDirs = new Map<Family, string>();
/** Endpoint id -> its target: one adapter per family, and a second one on the llama base. */
const endpointTargets = new Map<string, EndpointTarget>();
const ENDPOINT: Record<Family | 'llama2', string> = { llama: '101', llama2: '102', qwen3: '201', gemma3: '301' };

for (const family of FAMILIES) {
  const dir = path.join(root, family);
  untiedTinyModel(family, 1, dir);
  modelDirs.set(family, dir);
  const adapters: Array<[string, number]> = family === 'llama' ? [[ENDPOINT.llama, 17], [ENDPOINT.llama2, 29]] : [[ENDPOINT[family], 17]];
  for (const [id, seed] of adapters) {
    const a = initLoraAdapter(loadModelConfig(dir), defaultLoraConfig(4, { alpha: 8 }), seed);
    const rng = new Random(seed + 1);
    for (const pairs of a.layers) for (const p of Object.values(pairs)) rng.fillNormal(p!.B, 0, 0.25);
    const adapterDir = path.join(root, `adapter-${id}`);
    saveAdapter(adapterDir, a);
    endpointTargets.set(id, { publisher: 'google', model: `${family}-tiny`, adapterDir, modelVersion: `${LOC}/models/${id}@1` });
  }
}

// A Qwen3 whose template opens the thinking block itself (as Qwen3 "Thinking" releases do), so the
// tiny random model thinks until the budget closes the block (as in api-generation's test).
const thinkingDir = path.join(root, 'qwen3-thinking');
fs.cpSync(modelDirs.get('qwen3')!, thinkingDir, { recursive: true });
{
  const file = path.join(thinkingDir, 'tokenizer_config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8')) as { chat_template: string };
  const from = "{{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- endif %}";
  assert.ok(config.chat_template.includes(from));
  config.chat_template = config.chat_template.replace(from, "{{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- else %}\n        {{- '<think>\\n' }}\n    {%- endif %}");
  fs.writeFileSync(file, JSON.stringify(config));
}

const registrations = new Map<string, ModelRegistration>();
const store = {
  get: async (publisher: string, name: string) => registrations.get(`${publisher}/${name}`),
  list: async () => [...registrations.values()],
  put: async (r: ModelRegistration) => void registrations.set(`${r.publisher}/${r.name}`, r),
};
const endpoints = {
  resolve: (project: string, location: string, endpoint: string) => {
    const t = endpointTargets.get(endpoint);
    if (!t) throw notFound(`Endpoint \`projects/${project}/locations/${location}/endpoints/${endpoint}\` not found.`);
    return t;
  },
};

let runtime: LlamaCppRuntime;
let llamaCatalog: ModelCatalog;
const servers: Array<{ url: string; close(): Promise<void> }> = [];
let tunekitAi: GoogleGenAI;
let llamaAi: GoogleGenAI;
let llamaUrl = '';

const client = (baseUrl: string) => new GoogleGenAI({ vertexai: true, project: 'p', location: 'us-central1', apiKey: 'unused', httpOptions: { baseUrl } });

before(async () => {
  for (const [family, dir] of modelDirs) await registerPublisherModel(store, dir, { name: `${family}-tiny` });
  await registerPublisherModel(store, thinkingDir, { name: 'qwen3-thinking' });
  runtime = await LlamaCppRuntime.open({ gpu: GPU, cacheDir: path.join(root, 'gguf'), threads: 1, contextSize: CONTEXT });
  llamaCatalog = new ModelCatalog(store, { backend: runtime.backend() }, { engine: { parallel: 4, maxQueue: 16 } });
  const tunekit = await listen(createApp({ catalog: new ModelCatalog(store), endpoints }), { port: 0, host: '127.0.0.1' });
  const llama = await listen(createApp({ catalog: llamaCatalog, endpoints }), { port: 0, host: '127.0.0.1' });
  servers.push(tunekit, llama);
  tunekitAi = client(tunekit.url);
  llamaAi = client(llama.url);
  llamaUrl = llama.url;
});

after(async () => {
  for (const s of servers) await s.close();
});

const base = (family: Family) => `publishers/google/models/${family}-tiny`;
const endpoint = (id: string) => `${LOC}/endpoints/${id}`;
const PROMPTS = ['Tell me about the river and the stone.', 'alpha beta gamma delta', 'What is 12 + 30?'];

interface Answer { text: string; finishReason: string | undefined; tokens: number | undefined; promptTokens: number | undefined }

function answer(r: GenerateContentResponse): Answer {
  const c = r.candidates?.[0];
  return {
    text: (c?.content?.parts ?? []).map((p) => p.text ?? '').join(''),
    finishReason: c?.finishReason,
    tokens: r.usageMetadata?.candidatesTokenCount,
    promptTokens: r.usageMetadata?.promptTokenCount,
  };
}

async function greedy(ai: GoogleGenAI, model: string, prompt: string, config: Record<string, unknown> = {}): Promise<Answer> {
  return answer(await ai.models.generateContent({ model, contents: prompt, config: { temperature: 0, maxOutputTokens: 24, ...config } }));
}

test('greedy answers equal tunekit\'s engine for all three architectures, base and tuned endpoint', async () => {
  for (const family of FAMILIES) {
    for (const model of [base(family), endpoint(ENDPOINT[family])]) {
      for (const prompt of PROMPTS) {
        const want = await greedy(tunekitAi, model, prompt);
        const got = await greedy(llamaAi, model, prompt);
        assert.deepEqual(got, want, `${model}: ${JSON.stringify(prompt)}`);
        assert.ok(want.text.length > 0);
      }
    }
    // The adapter changes the answers: the endpoint is not the base model.
    const b = await greedy(llamaAi, base(family), PROMPTS[0]!);
    const t = await greedy(llamaAi, endpoint(ENDPOINT[family]), PROMPTS[0]!);
    assert.notEqual(t.text, b.text, `${family}: the adapter changes the greedy answer`);
  }
});

test('streaming: the chunks join to the unstreamed answer, the last one with finishReason and usage; countTokens as billed', async () => {
  const model = endpoint(ENDPOINT.qwen3);
  const want = await greedy(tunekitAi, model, PROMPTS[0]!);
  const chunks: GenerateContentResponse[] = [];
  for await (const c of await llamaAi.models.generateContentStream({ model, contents: PROMPTS[0]!, config: { temperature: 0, maxOutputTokens: 24 } })) chunks.push(c);
  assert.ok(chunks.length > 2, `${chunks.length} chunks`);
  assert.equal(chunks.map((c) => c.text ?? '').join(''), want.text);
  const last = chunks[chunks.length - 1]!;
  assert.equal(last.candidates?.[0]?.finishReason, want.finishReason);
  assert.equal(last.usageMetadata?.candidatesTokenCount, want.tokens);
  const count = async (ai: GoogleGenAI) => (await ai.models.countTokens({ model, contents: PROMPTS[0]! })).totalTokens;
  assert.equal(await count(llamaAi), await count(tunekitAi));
  assert.equal(await count(llamaAi), want.promptTokens);
});

test('stop sequences end the text before the match; maxOutputTokens ends with MAX_TOKENS', async () => {
  const model = base('llama');
  const full = await greedy(llamaAi, model, PROMPTS[1]!, { maxOutputTokens: 32 });
  const stop = full.text.slice(6, 9);
  const cut = full.text.indexOf(stop);
  assert.ok(cut > 0 && stop.length === 3, `a stop sequence from ${JSON.stringify(full.text)}`);
  const stopped = await greedy(llamaAi, model, PROMPTS[1]!, { maxOutputTokens: 32, stopSequences: [stop] });
  assert.equal(stopped.text, full.text.slice(0, cut));
  assert.equal(stopped.finishReason, 'STOP');
  assert.deepEqual(stopped, await greedy(tunekitAi, model, PROMPTS[1]!, { maxOutputTokens: 32, stopSequences: [stop] }));
  const short = await greedy(llamaAi, model, PROMPTS[1]!, { maxOutputTokens: 5 });
  assert.equal(short.finishReason, 'MAX_TOKENS');
  assert.equal(short.tokens, 5);
  assert.ok(full.text.startsWith(short.text));
});

test('output beyond --context-size: asked for, 400 naming maxOutputTokens; left to the default, it ends MAX_TOKENS there', async () => {
  const model = base('qwen3');
  const err = await llamaAi.models.generateContent({ model, contents: PROMPTS[0]!, config: { maxOutputTokens: CONTEXT } }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof ApiError, String(err));
  assert.equal(err.status, 400);
  assert.match(err.message, /max_output_tokens.*exceed the context of the llama\.cpp engine, 256 tokens \(serve --context-size\)/);
  const raw = await fetch(`${llamaUrl}/v1/${model}:generateContent`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: PROMPTS[0] }] }], generationConfig: { maxOutputTokens: CONTEXT } }),
  });
  const body = await raw.json() as { error: { details: Array<{ fieldViolations?: Array<{ field: string }> }> } };
  assert.deepEqual(body.error.details.flatMap((d) => d.fieldViolations ?? []).map((v) => v.field), ['generation_config.max_output_tokens']);
  const r = await llamaAi.models.generateContent({ model, contents: PROMPTS[0]!, config: { temperature: 0, stopSequences: ['\u0000'] } });
  const a = answer(r);
  assert.equal(a.finishReason, 'MAX_TOKENS');
  // The context holds every token but the last, which is never fed back.
  assert.equal(a.promptTokens! + a.tokens!, CONTEXT + 1);
});

test('options that need the whole distribution are honoured as on tunekit\'s engine: sampling, penalties, JSON schema, logprobs, candidates', async () => {
  const model = endpoint(ENDPOINT.gemma3);
  const requests: Array<Record<string, unknown>> = [
    { temperature: 0.9, topK: 40, topP: 0.9, seed: 7, maxOutputTokens: 24 },
    { temperature: 0, presencePenalty: 1.5, frequencyPenalty: 0.5, maxOutputTokens: 24 },
    { temperature: 0, responseMimeType: 'application/json', responseJsonSchema: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'], additionalProperties: false }, maxOutputTokens: 24 },
    { temperature: 0, responseLogprobs: true, logprobs: 3, maxOutputTokens: 8 },
    { temperature: 1, seed: 3, candidateCount: 2, maxOutputTokens: 16 },
  ];
  for (const config of requests) {
    const [want, got] = await Promise.all([tunekitAi, llamaAi].map((ai) => ai.models.generateContent({ model, contents: PROMPTS[2]!, config })));
    const texts = (r: GenerateContentResponse) => (r.candidates ?? []).map((c) => (c.content?.parts ?? []).map((p) => p.text).join(''));
    assert.deepEqual(texts(got!), texts(want!), JSON.stringify(config));
    if (config.responseJsonSchema) assert.equal(typeof (JSON.parse(texts(got!)[0]!) as { n: unknown }).n, 'number');
    if (config.candidateCount) assert.notEqual(texts(got!)[0], texts(got!)[1], 'candidates use seed + i');
    if (config.logprobs) {
      const lp = (r: GenerateContentResponse) => r.candidates![0]!.logprobsResult!;
      const [w, g] = [lp(want!), lp(got!)];
      assert.deepEqual(g.topCandidates!.map((t) => t.candidates!.map((c) => c.tokenId)), w.topCandidates!.map((t) => t.candidates!.map((c) => c.tokenId)));
      g.chosenCandidates!.forEach((c, i) => assert.ok(Math.abs(c.logProbability! - w.chosenCandidates![i]!.logProbability!) < 2e-2, `token ${i}: ${c.logProbability} vs ${w.chosenCandidates![i]!.logProbability}`));
    }
  }
});

test('the thinking budget (a forced closing marker fed back, a banned opening) as on tunekit\'s engine', async () => {
  for (const thinkingConfig of [{ thinkingBudget: 5, includeThoughts: true }, { thinkingBudget: 0, includeThoughts: true }, { thinkingBudget: 5 }]) {
    const ask = async (ai: GoogleGenAI) => await ai.models.generateContent({ model: 'publishers/google/models/qwen3-thinking', contents: PROMPTS[0]!, config: { temperature: 0, maxOutputTokens: 24, thinkingConfig } });
    const [want, got] = [await ask(tunekitAi), await ask(llamaAi)];
    assert.deepEqual(got.candidates?.[0]?.content, want.candidates?.[0]?.content, JSON.stringify(thinkingConfig));
    assert.deepEqual(got.usageMetadata, want.usageMetadata);
    if (thinkingConfig.thinkingBudget === 5 && thinkingConfig.includeThoughts) assert.ok(want.candidates![0]!.content!.parts!.some((p) => p.thought), 'it thought');
  }
});

test('a client that leaves mid-stream frees its context; the next request is answered', { timeout: 120_000 }, async () => {
  const served = await llamaCatalog.served('google', 'llama-tiny');
  const model = endpoint(ENDPOINT.llama);
  const body = { contents: [{ role: 'user', parts: [{ text: PROMPTS[0] }] }], generationConfig: { temperature: 0, maxOutputTokens: 200 } };
  const leaving = new AbortController();
  const res = await fetch(`${llamaUrl}/v1/${model}:streamGenerateContent?alt=sse`, {
    method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, signal: leaving.signal,
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read();
  assert.equal(served.engine.stats().running, 1);
  assert.ok(served.engine.stats().kvBytes > 0, 'its context holds a KV cache');
  const passes = served.engine.stats().passes;
  leaving.abort();
  await reader.cancel().catch(() => undefined);
  while (served.engine.stats().running > 0) await new Promise((r) => setTimeout(r, 5));
  assert.ok(served.engine.stats().passes - passes < 200, 'generation stopped before its 200 tokens');
  assert.equal(served.engine.stats().kvBytes, 0, 'its context is disposed');
  await served.engine.idle();
  assert.deepEqual(await greedy(llamaAi, model, PROMPTS[1]!), await greedy(tunekitAi, model, PROMPTS[1]!));
});

test('two adapters of one base and the base at once: each answer is what it is alone', async () => {
  const models = [endpoint(ENDPOINT.llama), endpoint(ENDPOINT.llama2), base('llama')];
  const alone = await Promise.all(models.map(async (m) => await greedy(tunekitAi, m, PROMPTS[0]!)));
  assert.equal(new Set(alone.map((a) => a.text)).size, 3, 'three different answers');
  const together = await Promise.all([...models, ...models].map(async (m) => await greedy(llamaAi, m, PROMPTS[0]!)));
  together.forEach((a, k) => assert.deepEqual(a, alone[k % 3], models[k % 3]));
  // One llama.cpp model per base: both endpoints ran on the base's engine.
  const [a, b] = await Promise.all(['101', '102'].map(async (id) => llamaCatalog.servedWithAdapter('google', 'llama-tiny', endpointTargets.get(id)!.adapterDir!, id)));
  assert.equal(a!.engine, b!.engine);
});

test('submit without log probabilities (as tunekit eval\'s judges call the engine): tunekit\'s tokens', async () => {
  const tunekit = new ModelCatalog(store);
  for (const family of FAMILIES) {
    const adapterDir = endpointTargets.get(ENDPOINT[family])!.adapterDir!;
    const [want, got] = await Promise.all([tunekit, llamaCatalog].map(async (catalog) => {
      const served = await catalog.servedWithAdapter('google', `${family}-tiny`, adapterDir, 'x');
      const ids = served.model.tokenizer.encode(PROMPTS[0]!);
      const it = served.engine.submit(ids, { temperature: 0, maxTokens: 16, adapterDir });
      for (;;) {
        const r = await it.next();
        if (r.done) return r.value;
      }
    }));
    assert.deepEqual(got!.tokenIds, want!.tokenIds, family);
    assert.equal(got!.logprobs, undefined);
  }
});

test('OpenAI chat completions run on the same engine: the same answers as on tunekit\'s engine', async () => {
  const ask = async (url: string) => {
    const c = await new OpenAI({ apiKey: 'unused', baseURL: `${url}/v1`, maxRetries: 0 }).chat.completions.create({
      model: endpoint(ENDPOINT.qwen3), messages: [{ role: 'user', content: PROMPTS[1]! }], temperature: 0, max_tokens: 16,
    });
    return { text: c.choices[0]!.message.content, finish: c.choices[0]!.finish_reason, usage: c.usage };
  };
  const [want, got] = [await ask(servers[0]!.url), await ask(llamaUrl)];
  assert.deepEqual(got, want);
  assert.ok(want.text);
});

test('a model the catalog dropped (--max-models 1) is unloaded when idle and loaded again when asked', { timeout: 120_000 }, async () => {
  const catalog = new ModelCatalog(store, { backend: runtime.backend() }, { baseModels: 1 });
  const server = await listen(createApp({ catalog, endpoints }), { port: 0, host: '127.0.0.1' });
  try {
    const ai = client(server.url);
    const before = runtime.loadedModels;
    for (const family of ['llama', 'qwen3', 'llama', 'qwen3'] as Family[]) {
      assert.deepEqual(await greedy(ai, endpoint(ENDPOINT[family]), PROMPTS[2]!), await greedy(tunekitAi, endpoint(ENDPOINT[family]), PROMPTS[2]!), family);
      // The one this catalog keeps is loaded; the one it dropped goes once idle.
      while (runtime.loadedModels !== before + 1) await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    await server.close();
  }
});

test('the CLI: serve --engine llama.cpp exports the GGUF once; --engine tunekit never loads node-llama-cpp; bad values refused by name', async () => {
  const dataDir = path.join(root, 'data');
  const r = spawnSync(process.execPath, [CLI, 'publisher-models', 'register', modelDirs.get('llama')!, '--name', 'llama-tiny', '--data-dir', dataDir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const want = await greedy(tunekitAi, base('llama'), PROMPTS[0]!);
  const ggufDir = path.join(dataDir, 'gguf');
  let mtime = 0;
  for (const round of [1, 2]) {
    const s = await startServe(dataDir, { TUNEKIT_THREADS: '1' }, ['--insecure-no-auth', '--engine', 'llama.cpp', '--gpu', GPU]);
    try {
      assert.match(s.stdout, GPU === 'off' ? /generation on llama\.cpp \(node-llama-cpp [a-z]+, CPU/ : new RegExp(`generation on llama\\.cpp \\(node-llama-cpp [a-z]+, ${GPU}: `));
      assert.deepEqual(await greedy(client(s.url), base('llama'), PROMPTS[0]!), want);
      const files = fs.readdirSync(ggufDir);
      assert.equal(files.length, 1, files.join(', '));
      const m = fs.statSync(path.join(ggufDir, files[0]!)).mtimeMs;
      if (round === 2) assert.equal(m, mtime, 'the second start reuses the export');
      mtime = m;
      assert.match(fs.readFileSync(`/proc/${s.pid}/maps`, 'utf8'), /node-llama-cpp/);
    } finally {
      await s.kill();
    }
  }
  const t = await startServe(dataDir, {}, ['--insecure-no-auth']);
  try {
    assert.deepEqual(await greedy(client(t.url), base('llama'), PROMPTS[0]!), want);
    assert.doesNotMatch(fs.readFileSync(`/proc/${t.pid}/maps`, 'utf8'), /node-llama-cpp/);
  } finally {
    await t.kill();
  }
  const refused: Array<[string[], RegExp, number]> = [
    [['--engine', 'vllm'], /--engine must be one of tunekit, llama\.cpp, got "vllm"/, 2],
    [['--engine', 'llama.cpp', '--gpu', 'tpu'], /--gpu must be one of auto, cuda, vulkan, off, got "tpu"/, 2],
    [['--gpu', 'cuda'], /--gpu applies to --engine llama\.cpp/, 1],
    [['--context-size', '4096'], /--context-size applies to --engine llama\.cpp/, 1],
    [['--engine', 'llama.cpp', '--adapter-memory', '1G'], /--adapter-memory applies to --engine tunekit/, 1],
  ];
  for (const [args, message, code] of refused) {
    const x = spawnSync(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', dataDir, ...args], { encoding: 'utf8' });
    assert.equal(x.status, code, `${args.join(' ')}: ${x.stderr}`);
    assert.match(x.stderr, message);
    assert.doesNotMatch(x.stderr, /\n\s+at /, 'no stack trace');
  }
});
