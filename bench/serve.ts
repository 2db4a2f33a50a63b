// npm run bench:serve — the serving engine on the `small` Llama (SmolLM2-135M shapes, f32, random
// weights) with 8 requests of 128 generated tokens (greedy, 32-token prompts), against llama.cpp
// (node-llama-cpp, same GGUF, GGUF LoRAs of the same adapters, same threads), measured in the same run:
//   (a) 8 concurrent requests on one adapter           (tunekit engine, one batch)
//   (b) 8 concurrent requests on 8 different adapters  (tunekit engine, one batch)
//   (c) the 8 requests of (b) one after another        (tunekit engine)
//   (d) llama.cpp serving the 8 requests of (b) with their LoRAs. node-llama-cpp applies LoRAs per
//       context, so sequences of one context cannot run different adapters: its best configuration
//       here is the better of 8 contexts (one adapter each) running concurrently and the same 8
//       contexts one after another. (d1) is shown too: one context with 8 parallel sequences on ONE
//       adapter — the configuration llama.cpp batches, comparable to (a).
//   (e) tunekit's llama.cpp engine (serve --engine llama.cpp) serving the 8 requests of (b): (d)'s
//       forward passes with tunekit's request handling on top (a context per request; TTFT here is
//       the first text chunk, which the stream decoder may hold back a token).
// Aggregate decode tokens/s = generated tokens / wall time from the first submit to the last token;
// time to first token (TTFT) per request from its submit. Each measurement runs in a fresh child
// process (weights paged in and adapters loaded by a warm-up first); best of BENCH_REPEATS.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_CACHE, prepareSmallLlama, SMALL_LLAMA_DIR, SMALL_LLAMA_GGUF } from './small-llama.js';
import { exportGgufLora } from '../src/export/gguf-lora.js';
import { Random } from '../src/engine/random.js';
import { loadModelConfig } from '../src/models/loader.js';
import { defaultLoraConfig, initLoraAdapter } from '../src/lora/lora.js';
import { saveAdapter } from '../src/lora/peft.js';

const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const TOKENS = Number(process.env.BENCH_TOKENS ?? 128);
const REQUESTS = 8;
const PROMPT = 32;
const RANK = Number(process.env.BENCH_RANK ?? 8);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 1);

const cacheDir = BENCH_CACHE;
const dir = SMALL_LLAMA_DIR;
const ggufFile = SMALL_LLAMA_GGUF;
const adapterDirs = Array.from({ length: REQUESTS }, (_, i) => path.join(cacheDir, `serve-adapter-r${RANK}-${i}`));
const adapterGguf = (i: number) => `${adapterDirs[i]}.gguf`;

interface Run {
  tokensPerSecond: number;
  ttftP50: number; // ms
  tokens: number;
  seconds: number;
  detail: string;
}

function prompts(vocab: number): number[][] {
  return Array.from({ length: REQUESTS }, (_, i) => {
    const rng = new Random(1000 + i);
    return Array.from({ length: PROMPT }, () => 3 + Math.floor(rng.next() * (vocab - 3)));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measureTunekit(mode: 'a' | 'b' | 'c'): Promise<Run> {
  const { loadModel } = await import('../src/models/model.js');
  const { Engine } = await import('../src/serve/engine.js');
  const { describeGemm } = await import('../src/engine/blas.js');
  const model = await loadModel(dir);
  const engine = new Engine(model, { parallel: REQUESTS, adapterMemory: 2 ** 32, maxQueue: 64 });
  const ps = prompts(model.tokenizer.size);
  const reqs = ps.map((prompt, i) => ({ prompt, adapterDir: adapterDirs[mode === 'a' ? 0 : i]! }));
  const run = async (r: (typeof reqs)[number], maxTokens: number) => {
    const t0 = performance.now();
    let first = 0;
    const it = engine.submit(r.prompt, { temperature: 0, maxTokens, stopTokenIds: [], adapterDir: r.adapterDir, onLogits: () => { first ||= performance.now(); } });
    for (;;) {
      const x = await it.next();
      if (x.done) return { ttft: first - t0, tokens: x.value.tokenIds.length };
    }
  };
  await Promise.all(reqs.map((r) => run(r, 4))); // warm-up: adapters loaded, weights paged in, JIT
  const t0 = performance.now();
  const results = [];
  if (mode === 'c') for (const r of reqs) results.push(await run(r, TOKENS));
  else results.push(...await Promise.all(reqs.map((r) => run(r, TOKENS))));
  const seconds = (performance.now() - t0) / 1000;
  const tokens = results.reduce((n, r) => n + r.tokens, 0);
  return { tokensPerSecond: tokens / seconds, ttftP50: median(results.map((r) => r.ttft)), tokens, seconds, detail: describeGemm() };
}

/**
 * llama.cpp's decode speed with a LoRA at `threads` threads: on a busy host its spinning thread
 * barriers can make the extra LoRA ops of each layer cost far more at 2 threads than at 1, so the
 * benchmark gives llama.cpp whichever thread count is faster for it.
 */
async function probeLlamaCpp(threads: number): Promise<number> {
  const { cpuLlama } = await import('../test/helpers/llamacpp.js');
  const llama = await cpuLlama();
  const model = await llama.loadModel({ modelPath: ggufFile, gpuLayers: 0 });
  const ctx = await model.createContext({
    contextSize: 128, batchSize: 128, threads, sequences: 1, flashAttention: false,
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', lora: { adapters: [{ filePath: adapterGguf(0) }] },
  });
  const s = ctx.getSequence();
  let best = 0;
  for (let k = 0; k < 2; k++) {
    await s.clearHistory();
    let first = 0;
    let n = 0;
    for await (const _ of s.evaluate([5, 6, 7, 8] as never, { temperature: 0, yieldEogToken: true })) {
      first ||= performance.now();
      if (++n >= 12) break;
    }
    best = Math.max(best, (n - 1) / ((performance.now() - first) / 1000));
  }
  await ctx.dispose();
  await model.dispose();
  return best;
}

async function measureLlamaCpp(mode: 'd-concurrent' | 'd-serial' | 'd1', threads: number): Promise<Run> {
  const { cpuLlama } = await import('../test/helpers/llamacpp.js');
  const { Tokenizer } = await import('../src/tokenizer/tokenizer.js');
  const llama = await cpuLlama();
  const model = await llama.loadModel({ modelPath: ggufFile, gpuLayers: 0 });
  const ps = prompts((await Tokenizer.load(dir)).size);
  const perSeq = PROMPT + TOKENS + 16;
  const common = {
    batchSize: 512, threads, flashAttention: false,
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
  } as const;
  // One sequence per request: its own context with its own LoRA, or one shared context (d1).
  let sequences: Array<{ evaluate: (tokens: never, opts: object) => AsyncIterable<unknown>; clearHistory: () => Promise<void> }>;
  const contexts: Array<{ dispose: () => Promise<void> }> = [];
  if (mode === 'd1') {
    const ctx = await model.createContext({ ...common, contextSize: perSeq * REQUESTS, sequences: REQUESTS, lora: { adapters: [{ filePath: adapterGguf(0) }] } });
    contexts.push(ctx);
    sequences = Array.from({ length: REQUESTS }, () => ctx.getSequence() as never);
  } else {
    sequences = [];
    for (let i = 0; i < REQUESTS; i++) {
      const ctx = await model.createContext({ ...common, contextSize: perSeq, sequences: 1, lora: { adapters: [{ filePath: adapterGguf(i) }] } });
      contexts.push(ctx);
      sequences.push(ctx.getSequence() as never);
    }
  }
  const run = async (i: number, maxTokens: number) => {
    const s = sequences[i]!;
    await s.clearHistory();
    const t0 = performance.now();
    let first = 0;
    let n = 0;
    for await (const _ of s.evaluate(ps[i] as never, { temperature: 0, yieldEogToken: true })) {
      first ||= performance.now();
      if (++n >= maxTokens) break;
    }
    return { ttft: first - t0, tokens: n };
  };
  const all = (maxTokens: number) => mode === 'd-serial'
    ? (async () => { const out = []; for (let i = 0; i < REQUESTS; i++) out.push(await run(i, maxTokens)); return out; })()
    : Promise.all(Array.from({ length: REQUESTS }, (_, i) => run(i, maxTokens)));
  await all(4); // warm-up
  const t0 = performance.now();
  const results = await all(TOKENS);
  const seconds = (performance.now() - t0) / 1000;
  const tokens = results.reduce((n, r) => n + r.tokens, 0);
  for (const c of contexts) await c.dispose();
  await model.dispose();
  return { tokensPerSecond: tokens / seconds, ttftP50: median(results.map((r) => r.ttft)), tokens, seconds, detail: `node-llama-cpp ${llama.buildType} cpu, ${threads} thread(s) per context` };
}

async function measureLlamaCppEngine(threads: number): Promise<Run> {
  const { LlamaCppRuntime } = await import('../src/serve/llamacpp-engine.js');
  const runtime = await LlamaCppRuntime.open({ gpu: 'off', cacheDir: path.join(cacheDir, 'serve-engine-gguf'), threads, contextSize: PROMPT + TOKENS + 1 });
  const servable = await runtime.backend()(dir);
  const engine = servable.engine({ parallel: REQUESTS, maxQueue: 64 });
  const ps = prompts(servable.model.tokenizer.size);
  const run = async (prompt: number[], adapterDir: string, maxTokens: number) => {
    const t0 = performance.now();
    let first = 0;
    const it = engine.submit(prompt, { temperature: 0, maxTokens, stopTokenIds: [], adapterDir });
    for (;;) {
      const x = await it.next();
      if (x.done) return { ttft: first - t0, tokens: x.value.tokenIds.length };
      first ||= performance.now();
    }
  };
  await Promise.all(ps.map((p, i) => run(p, adapterDirs[i]!, 4))); // warm-up: GGUFs exported and loaded
  const t0 = performance.now();
  const results = await Promise.all(ps.map((p, i) => run(p, adapterDirs[i]!, TOKENS)));
  const seconds = (performance.now() - t0) / 1000;
  const tokens = results.reduce((n, r) => n + r.tokens, 0);
  return { tokensPerSecond: tokens / seconds, ttftP50: median(results.map((r) => r.ttft)), tokens, seconds, detail: await runtime.describe() };
}

async function prepare(): Promise<void> {
  await prepareSmallLlama();
  const config = loadModelConfig(dir);
  for (let i = 0; i < REQUESTS; i++) {
    if (fs.existsSync(adapterGguf(i))) continue;
    const a = initLoraAdapter(config, defaultLoraConfig(RANK), 50 + i);
    const rng = new Random(60 + i);
    for (const pairs of a.layers) for (const p of Object.values(pairs)) rng.fillNormal(p!.B, 0, 0.02);
    saveAdapter(adapterDirs[i]!, a);
    await exportGgufLora({ modelDir: dir, adapterDir: adapterDirs[i]!, out: adapterGguf(i) });
  }
}

const role = process.argv[2];
if (role === '--child') {
  process.env.TUNEKIT_THREADS = String(THREADS);
  const which = process.argv[3]!;
  const threads = Number(process.argv[4] ?? THREADS);
  const r = which === 'probe' ? await probeLlamaCpp(threads)
    : which === 'e' ? await measureLlamaCppEngine(threads)
    : which.startsWith('d') ? await measureLlamaCpp(which as 'd-concurrent' | 'd-serial' | 'd1', threads)
    : await measureTunekit(which as 'a' | 'b' | 'c');
  process.stdout.write(JSON.stringify(r) + '\n');
} else {
  await prepare();
  const self = fileURLToPath(import.meta.url);
  const child = <T = Run>(which: string, threads = THREADS): T => {
    const r = spawnSync(process.execPath, [self, '--child', which, String(threads)], { encoding: 'utf8', env: process.env });
    if (r.status !== 0) throw new Error(`${which} run failed:\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
  };
  const probes = [...new Set([THREADS, 1])].map((t) => ({ t, speed: child<number>('probe', t) }));
  const llamaThreads = probes.reduce((a, b) => (b.speed > a.speed ? b : a)).t;
  console.log(`llama.cpp decode with a LoRA: ${probes.map((p) => `${p.speed.toFixed(1)} tokens/s at ${p.t} thread(s)`).join(', ')}; using ${llamaThreads}`);
  const modes = ['a', 'b', 'c', 'd-concurrent', 'd-serial', 'd1', 'e'] as const;
  const best = new Map<string, Run>();
  for (let k = 0; k < REPEATS; k++) {
    for (const m of modes) {
      const r = m.startsWith('d') || m === 'e' ? child(m, llamaThreads) : child(m);
      process.stdout.write(`${m.padEnd(13)} ${r.tokensPerSecond.toFixed(1).padStart(7)} tokens/s  TTFT p50 ${r.ttftP50.toFixed(0).padStart(6)} ms  (${r.tokens} tokens in ${r.seconds.toFixed(1)} s)\n`);
      const prev = best.get(m);
      if (!prev || r.tokensPerSecond > prev.tokensPerSecond) best.set(m, r);
    }
  }
  const g = (m: string) => best.get(m)!;
  const d = g('d-concurrent').tokensPerSecond >= g('d-serial').tokensPerSecond ? g('d-concurrent') : g('d-serial');
  const dName = d === g('d-concurrent') ? '8 contexts concurrently' : '8 contexts one after another';
  console.log(`\nsmall llama (SmolLM2-135M shapes), f32, ${REQUESTS} requests x ${TOKENS} tokens, ${PROMPT}-token prompts, LoRA rank ${RANK} on all 7 targets, ${THREADS} threads`);
  console.log(`tunekit: ${g('a').detail}; llama.cpp: ${g('d1').detail}; best of ${REPEATS}`);
  console.log('                                                   tokens/s   TTFT p50');
  const line = (name: string, r: Run) => console.log(`${name.padEnd(50)} ${r.tokensPerSecond.toFixed(1).padStart(8)} ${r.ttftP50.toFixed(0).padStart(8)} ms`);
  line('(a) tunekit, 8 concurrent, one adapter', g('a'));
  line('(b) tunekit, 8 concurrent, 8 adapters', g('b'));
  line('(c) tunekit, the 8 of (b) one after another', g('c'));
  line(`(d) llama.cpp, 8 adapters (${dName})`, d);
  line('(d1) llama.cpp, 8 sequences of one context, 1 adapter', g('d1'));
  line('(e) tunekit serve --engine llama.cpp, the 8 of (b)', g('e'));
  const ratio = (x: number, y: number) => (x / y).toFixed(2);
  console.log(`\n(b)/(a) = ${ratio(g('b').tokensPerSecond, g('a').tokensPerSecond)} (goal >= 0.8)`);
  console.log(`(a)/(c) = ${ratio(g('a').tokensPerSecond, g('c').tokensPerSecond)} (goal >= 3)`);
  console.log(`(b)/(d) = ${ratio(g('b').tokensPerSecond, d.tokensPerSecond)} (goal >= 2)`);
  console.log(`(a)/(d1) = ${ratio(g('a').tokensPerSecond, g('d1').tokensPerSecond)}`);
  console.log(`TTFT p50: (b) ${g('b').ttftP50.toFixed(0)} ms vs (d) ${d.ttftP50.toFixed(0)} ms`);
  console.log(`(e)/(d-concurrent) = ${ratio(g('e').tokensPerSecond, g('d-concurrent').tokensPerSecond)} (tunekit's request handling over the same llama.cpp passes)`);
}
