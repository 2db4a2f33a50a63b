// The serving engine against the same requests run alone: with greedy decoding, every request of a
// mixed batch (different adapters, no adapter, prompt lengths from 5 to 200 tokens spread over many
// passes, requests joining while others decode, one seeded sampled request) gets exactly the text and
// tokens it gets from generate() on its own, and its logits at every step agree to float32 rounding.
// Then: the queue's bound (429 naming --max-queue), cancellation freeing a slot at the next pass,
// adapters loaded while other requests keep decoding, and the adapter LRU bounded by bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel, type LoadedModel } from '../src/models/model.js';
import { generate, type GenerateOptions, type GenerationResult } from '../src/generate/generate.js';
import { applyAdapterForInference } from '../src/lora/apply.js';
import { defaultLoraConfig, initLoraAdapter, loraParameterCount } from '../src/lora/lora.js';
import { saveAdapter } from '../src/lora/peft.js';
import { Engine } from '../src/serve/engine.js';
import { CancelledError, ResourceExhaustedError } from '../src/errors.js';
import { Random } from '../src/engine/random.js';
import { FAMILIES, tinyModelDir } from './helpers/tiny-models.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-engine-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));

function adapterDir(m: LoadedModel, name: string, rank: number, seed: number): string {
  const dir = path.join(root, `${path.basename(m.dir)}-${name}`);
  if (fs.existsSync(dir)) return dir;
  const a = initLoraAdapter(m.config, defaultLoraConfig(rank), seed);
  const rng = new Random(seed + 1);
  for (const pairs of a.layers) for (const p of Object.values(pairs)) rng.fillNormal(p!.B, 0, 0.3);
  saveAdapter(dir, a);
  return dir;
}

function tokens(n: number, vocab: number, seed: number): number[] {
  const rng = new Random(seed);
  return Array.from({ length: n }, () => 3 + Math.floor(rng.next() * (vocab - 3)));
}

interface Case { prompt: number[]; adapter?: string; opts: GenerateOptions }

/** Runs a request to the end on the engine, recording its logits; onStep(n) after its n-th sampled position. */
async function onEngine(engine: Engine, c: Case, onStep?: (n: number) => void) {
  const logits: Float32Array[] = [];
  const it = engine.submit(c.prompt, { ...c.opts, adapterDir: c.adapter, onLogits: (l) => { logits.push(l.slice()); onStep?.(logits.length); } });
  for (;;) {
    const r = await it.next();
    if (r.done) return { result: r.value, logits };
  }
}

async function solo(m: LoadedModel, c: Case): Promise<{ result: GenerationResult; logits: Float32Array[] }> {
  const logits: Float32Array[] = [];
  const model = c.adapter ? applyAdapterForInference(m, c.adapter) : m;
  const result = await generate(model, c.prompt, { ...c.opts, onLogits: (l) => logits.push(l.slice()) });
  return { result, logits };
}

for (const family of FAMILIES) {
  test(`${family}: every request of a mixed continuous batch equals its solo generation (text, tokens, logits)`, async (t) => {
    const m = await loadModel(tinyModelDir(family));
    const V = m.tokenizer.size;
    const adapters = [adapterDir(m, 'a', 4, 11), adapterDir(m, 'b', 8, 12), adapterDir(m, 'c', 2, 13)];
    const greedy = (maxTokens: number): GenerateOptions => ({ temperature: 0, maxTokens, stopTokenIds: [] });
    const cases: Case[] = [
      { prompt: tokens(5, V, 1), adapter: adapters[0], opts: greedy(24) },
      { prompt: tokens(17, V, 2), opts: greedy(30) },
      { prompt: tokens(200, V, 3), adapter: adapters[1], opts: greedy(12) },
      { prompt: tokens(33, V, 4), adapter: adapters[2], opts: greedy(20) },
      // joining later, while the others decode
      { prompt: tokens(90, V, 5), adapter: adapters[0], opts: greedy(16) },
      { prompt: tokens(8, V, 6), opts: { temperature: 0.9, topK: 20, seed: 77, maxTokens: 18, stopTokenIds: [] } },
      { prompt: tokens(150, V, 7), adapter: adapters[1], opts: greedy(10) },
      { prompt: tokens(60, V, 8), adapter: adapters[2], opts: greedy(22) },
    ];
    const engine = new Engine(m, { parallel: 8, batchTokens: 48 });
    const late: Array<Promise<Awaited<ReturnType<typeof onEngine>>>> = [];
    const first = onEngine(engine, cases[0]!, (n) => {
      if (n === 3) late.push(onEngine(engine, cases[4]!), onEngine(engine, cases[5]!));
      if (n === 8) late.push(onEngine(engine, cases[6]!), onEngine(engine, cases[7]!));
    });
    const early = await Promise.all([first, ...cases.slice(1, 4).map((c) => onEngine(engine, c))]);
    const batched = [...early, ...(await Promise.all(late))];
    assert.ok(engine.stats().passes < cases.reduce((n, c) => n + c.opts.maxTokens + Math.ceil(c.prompt.length / 48), 0), 'requests shared passes');
    let worst = 0;
    for (const [i, c] of cases.entries()) {
      const alone = await solo(m, c);
      const b = batched[i]!;
      assert.deepEqual(b.result.tokenIds, alone.result.tokenIds, `request ${i}: tokens`);
      assert.equal(b.result.text, alone.result.text, `request ${i}: text`);
      assert.equal(b.result.finishReason, alone.result.finishReason);
      assert.equal(b.logits.length, alone.logits.length);
      for (const [k, l] of b.logits.entries()) {
        for (let j = 0; j < l.length; j++) worst = Math.max(worst, Math.abs(l[j]! - alone.logits[k]![j]!));
      }
    }
    t.diagnostic(`${family}: ${engine.stats().passes} passes for ${cases.length} requests; max |Δlogit| batched vs solo ${worst.toExponential(2)}`);
    assert.ok(worst < 1e-4, `max |Δlogit| batched vs solo ${worst}`);
    await engine.idle();
    assert.equal(engine.stats().running, 0);
  });
}

test('queue bound: beyond --max-queue waiting requests, submit fails with RESOURCE_EXHAUSTED naming the limit', async () => {
  const m = await loadModel(tinyModelDir('llama'));
  const engine = new Engine(m, { parallel: 1, maxQueue: 2 });
  const opts = { temperature: 0, maxTokens: 40, stopTokenIds: [] };
  const runs = [0, 1, 2].map((i) => onEngine(engine, { prompt: tokens(6, m.tokenizer.size, i), opts }));
  assert.throws(() => engine.submit(tokens(6, m.tokenizer.size, 9), opts), (e: unknown) => e instanceof ResourceExhaustedError && /--max-queue/.test(e.message) && /2 requests wait/.test(e.message));
  for (const r of await Promise.all(runs)) assert.equal(r.result.tokenIds.length, 40);
  const after = await onEngine(engine, { prompt: tokens(6, m.tokenizer.size, 9), opts });
  assert.equal(after.result.tokenIds.length, 40, 'room again once the queue drained');
});

test('a cancelled request leaves the queue at once and the batch at the next pass; the others are unaffected', async () => {
  const m = await loadModel(tinyModelDir('qwen3'));
  const engine = new Engine(m, { parallel: 2 });
  const opts = { temperature: 0, maxTokens: 60, stopTokenIds: [] };
  const keep = { prompt: tokens(10, m.tokenizer.size, 1), opts };
  const gone = new AbortController();
  const queuedGone = new AbortController();
  const kept = onEngine(engine, keep);
  const leaving = engine.submit(tokens(12, m.tokenizer.size, 2), { ...opts, signal: gone.signal });
  const waiting = engine.submit(tokens(12, m.tokenizer.size, 3), { ...opts, signal: queuedGone.signal });
  await leaving.next();
  assert.deepEqual([engine.stats().running, engine.stats().queued], [2, 1]);
  queuedGone.abort('client went away');
  assert.equal(engine.stats().queued, 0, 'out of the queue at once');
  await assert.rejects(waiting.next(), (e: unknown) => e instanceof CancelledError && e.message === 'client went away');
  const passes = engine.stats().passes;
  gone.abort();
  await assert.rejects(async () => { for (;;) if ((await leaving.next()).done) break; }, CancelledError);
  const { result } = await kept;
  assert.ok(engine.stats().passes - passes <= 60, 'no pass ran for the cancelled request');
  assert.deepEqual(result.tokenIds, (await solo(m, keep)).result.tokenIds);
  await engine.idle();
});

test('adapters: loaded while other requests keep decoding, kept in an LRU bounded by bytes, pinned while in use', async () => {
  const m = await loadModel(tinyModelDir('llama'));
  const bytes = 4 * loraParameterCount(m.config, defaultLoraConfig(4));
  const [a, b, c] = [adapterDir(m, 'lru-a', 4, 21), adapterDir(m, 'lru-b', 4, 22), adapterDir(m, 'lru-c', 4, 23)];
  const engine = new Engine(m, { parallel: 4, adapterMemory: 2 * bytes });
  const opts = { temperature: 0, maxTokens: 30, stopTokenIds: [] };
  // A request on the bare base decodes while adapter a loads: passes run before a's first token.
  let passesAtFirstToken = -1;
  const base = onEngine(engine, { prompt: tokens(4, m.tokenizer.size, 1), opts: { ...opts, maxTokens: 200 } });
  await new Promise((r) => setImmediate(r));
  const before = engine.stats().passes;
  const onA = onEngine(engine, { prompt: tokens(4, m.tokenizer.size, 2), adapter: a, opts }, (n) => {
    if (n === 1) passesAtFirstToken = engine.stats().passes;
  });
  await onA;
  assert.ok(passesAtFirstToken - before >= 2, `the base request kept decoding while the adapter loaded (${passesAtFirstToken - before} passes)`);
  await onEngine(engine, { prompt: tokens(4, m.tokenizer.size, 3), adapter: b, opts });
  assert.deepEqual(engine.adapters.loaded, [a, b]);
  assert.equal(engine.adapters.bytes, 2 * bytes);
  await onEngine(engine, { prompt: tokens(4, m.tokenizer.size, 4), adapter: c, opts });
  assert.deepEqual(engine.adapters.loaded, [b, c], 'the least recently used adapter was evicted');
  assert.equal(engine.adapters.bytes, 2 * bytes);
  // b and c pinned by running requests: a waits for one of them to finish, then evicts it.
  const runs = [b, c, a].map((d, i) => onEngine(engine, { prompt: tokens(4, m.tokenizer.size, 10 + i), adapter: d, opts }));
  const results = await Promise.all(runs);
  for (const r of results) assert.equal(r.result.tokenIds.length, 30);
  assert.ok(engine.adapters.bytes <= 2 * bytes);
  await base;
  const tiny = new Engine(m, { adapterMemory: bytes - 1 });
  await assert.rejects(onEngine(tiny, { prompt: [5, 6], adapter: a, opts }), (e: unknown) => e instanceof ResourceExhaustedError && /--adapter-memory/.test(e.message));
  await assert.rejects(onEngine(tiny, { prompt: [5, 6], adapter: path.join(root, 'missing'), opts }), /does not exist/);
});
