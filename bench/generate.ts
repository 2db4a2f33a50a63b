// npm run bench:generate — prompt processing and decoding speed of tunekit against llama.cpp
// (node-llama-cpp, same GGUF, same thread count), measured in the same run.
// Model: the `small` Llama (SmolLM2-135M shapes, vocabulary 49152), float32, random weights.
// Prints tokens/s for both and the ratio tunekit / llama.cpp.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTinyModel } from '../src/models/tiny.js';
import { loadModel } from '../src/models/model.js';
import { exportGguf } from '../src/export/gguf.js';
import { describeGemm, gemm } from '../src/engine/blas.js';
import { argmax } from '../src/generate/sampler.js';
import { Random } from '../src/engine/random.js';
import { cpuLlama } from '../test/helpers/llamacpp.js';
import type { Token } from 'node-llama-cpp';

const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const PROMPT = Number(process.env.BENCH_PROMPT ?? 512);
const DECODE = Number(process.env.BENCH_DECODE ?? 128);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);

const dir = path.resolve('.cache/bench/llama-small');
const ggufFile = path.resolve('.cache/bench/llama-small-f32.gguf');
if (!fs.existsSync(path.join(dir, 'model.safetensors'))) {
  console.log('writing the small llama checkpoint (SmolLM2-135M shapes) ...');
  initTinyModel({ family: 'llama', size: 'small', seed: 0, out: dir });
}
if (!fs.existsSync(ggufFile)) {
  console.log('exporting it to GGUF f32 ...');
  await exportGguf({ modelDir: dir, out: ggufFile, dtype: 'f32' });
}

const rng = new Random(123);
const model = await loadModel(dir);
const prompt = Array.from({ length: PROMPT }, () => Math.floor(rng.next() * model.tokenizer.size));

gemm().setThreads(THREADS);
interface Speeds { pp: number; tg: number }

function tunekitRun(): Speeds {
  const tr = model.transformer;
  const cache = tr.createCache(PROMPT + DECODE + 1);
  let t = performance.now();
  let logits = tr.forward(prompt, cache);
  const pp = PROMPT / ((performance.now() - t) / 1000);
  t = performance.now();
  for (let i = 0; i < DECODE; i++) logits = tr.forward([argmax(logits)], cache);
  const tg = DECODE / ((performance.now() - t) / 1000);
  return { pp, tg };
}

const llama = await cpuLlama();
const llamaModel = await llama.loadModel({ modelPath: ggufFile, gpuLayers: 0 });
const context = await llamaModel.createContext({
  contextSize: PROMPT + DECODE + 16, batchSize: PROMPT, threads: THREADS, sequences: 1,
  experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
});
const sequence = context.getSequence();

async function llamaRun(): Promise<Speeds> {
  await sequence.clearHistory();
  let t = performance.now();
  await sequence.evaluateWithoutGeneratingNewTokens(prompt as Token[]);
  const pp = PROMPT / ((performance.now() - t) / 1000);
  let n = 0;
  t = performance.now();
  for await (const _ of sequence.evaluate([prompt[PROMPT - 1]!] as Token[], { temperature: 0, yieldEogToken: true })) {
    if (++n >= DECODE) break;
  }
  const tg = DECODE / ((performance.now() - t) / 1000);
  return { pp, tg };
}

const best = (xs: Speeds[]): Speeds => ({ pp: Math.max(...xs.map((x) => x.pp)), tg: Math.max(...xs.map((x) => x.tg)) });
const ours: Speeds[] = [];
const theirs: Speeds[] = [];
tunekitRun(); // warm-up: page in weights, JIT
await llamaRun();
for (let r = 0; r < REPEATS; r++) {
  ours.push(tunekitRun());
  theirs.push(await llamaRun());
}
const a = best(ours);
const b = best(theirs);
const rss = process.memoryUsage().rss / 2 ** 20;
console.log(`\nsmall llama (SmolLM2-135M shapes), f32, ${THREADS} threads, best of ${REPEATS}; tunekit ${describeGemm()}`);
console.log('                         tunekit    llama.cpp    ratio');
console.log(`prompt ${String(PROMPT).padEnd(4)} tokens/s  ${a.pp.toFixed(1).padStart(9)} ${b.pp.toFixed(1).padStart(12)} ${(a.pp / b.pp).toFixed(2).padStart(8)}x`);
console.log(`decode ${String(DECODE).padEnd(4)} tokens/s  ${a.tg.toFixed(1).padStart(9)} ${b.tg.toFixed(1).padStart(12)} ${(a.tg / b.tg).toFixed(2).padStart(8)}x`);
console.log(`process RSS ${rss.toFixed(0)} MiB (both runtimes in one process)`);
await context.dispose();
await llamaModel.dispose();
