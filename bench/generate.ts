// npm run bench:generate — prompt processing and decoding speed of tunekit against llama.cpp
// (node-llama-cpp, same GGUF, same thread count), measured in the same run. Each measurement runs in
// a fresh child process, alternating runtimes, so neither one's idle threads or caches disturb the
// other. Model: the `small` Llama (SmolLM2-135M shapes, vocabulary 49152), float32, random weights.
// Prints tokens/s for both (best of the repeats) and the ratio tunekit / llama.cpp.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { prepareSmallLlama, SMALL_LLAMA_DIR, SMALL_LLAMA_GGUF } from './small-llama.js';
import { Random } from '../src/engine/random.js';

const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const PROMPT = Number(process.env.BENCH_PROMPT ?? 512);
const DECODE = Number(process.env.BENCH_DECODE ?? 128);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);

const dir = SMALL_LLAMA_DIR;
const ggufFile = SMALL_LLAMA_GGUF;

interface Speeds { pp: number; tg: number; rssMiB: number; detail: string }

function promptTokens(vocab: number): number[] {
  const rng = new Random(123);
  return Array.from({ length: PROMPT }, () => Math.floor(rng.next() * vocab));
}

async function measureTunekit(): Promise<Speeds> {
  const { loadModel } = await import('../src/models/model.js');
  const { argmax } = await import('../src/generate/sampler.js');
  const { describeGemm } = await import('../src/engine/blas.js');
  const model = await loadModel(dir);
  const prompt = promptTokens(model.tokenizer.size);
  const tr = model.transformer;
  const run = () => {
    const cache = tr.createCache(PROMPT + DECODE + 1);
    let t = performance.now();
    let logits = tr.forward(prompt, cache);
    const pp = PROMPT / ((performance.now() - t) / 1000);
    t = performance.now();
    for (let i = 0; i < DECODE; i++) logits = tr.forward([argmax(logits)], cache);
    return { pp, tg: DECODE / ((performance.now() - t) / 1000) };
  };
  run(); // warm-up: page in weights, JIT
  const r = run();
  return { ...r, rssMiB: process.memoryUsage().rss / 2 ** 20, detail: describeGemm() };
}

async function measureLlamaCpp(): Promise<Speeds> {
  const { cpuLlama } = await import('../test/helpers/llamacpp.js');
  const llama = await cpuLlama();
  const model = await llama.loadModel({ modelPath: ggufFile, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: PROMPT + DECODE + 16, batchSize: PROMPT, threads: THREADS, sequences: 1,
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
  });
  const sequence = context.getSequence();
  const { Tokenizer } = await import('../src/tokenizer/tokenizer.js');
  const prompt = promptTokens((await Tokenizer.load(dir)).size);
  const run = async () => {
    await sequence.clearHistory();
    let t = performance.now();
    await sequence.evaluateWithoutGeneratingNewTokens(prompt as never);
    const pp = PROMPT / ((performance.now() - t) / 1000);
    let n = 0;
    t = performance.now();
    for await (const _ of sequence.evaluate([prompt[PROMPT - 1]!] as never, { temperature: 0, yieldEogToken: true })) {
      if (++n >= DECODE) break;
    }
    return { pp, tg: DECODE / ((performance.now() - t) / 1000) };
  };
  await run();
  const r = await run();
  const rssMiB = process.memoryUsage().rss / 2 ** 20;
  await context.dispose();
  await model.dispose();
  return { ...r, rssMiB, detail: `node-llama-cpp ${llama.buildType} ${llama.gpu || 'cpu'}` };
}

const role = process.argv[2];
if (role === '--child') {
  process.env.TUNEKIT_THREADS = String(THREADS);
  const which = process.argv[3];
  const r = which === 'tunekit' ? await measureTunekit() : await measureLlamaCpp();
  process.stdout.write(JSON.stringify(r) + '\n');
} else {
  await prepareSmallLlama();
  const self = fileURLToPath(import.meta.url);
  const child = (which: string): Speeds => {
    const r = spawnSync(process.execPath, [self, '--child', which], { encoding: 'utf8', env: process.env });
    if (r.status !== 0) throw new Error(`${which} run failed:\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Speeds;
  };
  const ours: Speeds[] = [];
  const theirs: Speeds[] = [];
  for (let i = 0; i < REPEATS; i++) {
    ours.push(child('tunekit'));
    theirs.push(child('llamacpp'));
    process.stdout.write(`run ${i + 1}/${REPEATS}: tunekit pp ${ours[i]!.pp.toFixed(1)} tg ${ours[i]!.tg.toFixed(1)}; ` +
      `llama.cpp pp ${theirs[i]!.pp.toFixed(1)} tg ${theirs[i]!.tg.toFixed(1)}\n`);
  }
  const best = (xs: Speeds[], k: 'pp' | 'tg') => Math.max(...xs.map((x) => x[k]));
  const a = { pp: best(ours, 'pp'), tg: best(ours, 'tg') };
  const b = { pp: best(theirs, 'pp'), tg: best(theirs, 'tg') };
  console.log(`\nsmall llama (SmolLM2-135M shapes), f32 weights and KV cache, ${THREADS} threads, best of ${REPEATS}`);
  console.log(`tunekit: ${ours[0]!.detail}; llama.cpp: ${theirs[0]!.detail}`);
  console.log('                         tunekit    llama.cpp    ratio');
  console.log(`prompt ${String(PROMPT).padEnd(4)} tokens/s  ${a.pp.toFixed(1).padStart(9)} ${b.pp.toFixed(1).padStart(12)} ${(a.pp / b.pp).toFixed(2).padStart(8)}x`);
  console.log(`decode ${String(DECODE).padEnd(4)} tokens/s  ${a.tg.toFixed(1).padStart(9)} ${b.tg.toFixed(1).padStart(12)} ${(a.tg / b.tg).toFixed(2).padStart(8)}x`);
  console.log(`peak-ish RSS: tunekit ${Math.max(...ours.map((x) => x.rssMiB)).toFixed(0)} MiB, llama.cpp ${Math.max(...theirs.map((x) => x.rssMiB)).toFixed(0)} MiB`);
}
