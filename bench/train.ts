// npm run bench:train [-- --shape smollm2-135m|gemma3-270m|qwen3-0.6b|llama3.2-1b] — LoRA training speed and
// memory, tunekit against PyTorch on the same CPU, in the same run.
// Model: the shape's config (the published config.json of test/fixtures/published-configs, or the `small`
// Llama with SmolLM2-135M shapes, the default), random weights drawn as Hugging Face draws them, float32,
// LoRA rank 8 on all seven projections; batch 4 x 512 tokens packed from examples of 32-256 tokens (the
// real vocabulary) whose last BENCH_LOSS_FRACTION (default 0.5) of predictions carry loss, as a reply
// after its prompt does in SFT, AdamW, 2 threads (BENCH_THREADS). Each round runs tunekit in a child process
// (this file with --worker) and then PyTorch (bench/train_torch.py, plain PyTorch LoRA on the same config
// and batch, Debian's python3-torch) in another, so each one's peak RSS is its own and neither holds
// memory while the other runs. Prints tokens/s of both and the ratio, tunekit's achieved GFLOP/s (matrix
// products actually issued) against the GEMM peak measured in this run at the model's own shapes, and
// peak RSS against the f32 weights. BENCH_STEPS timed steps (default 2) after BENCH_WARMUP (0 or 1, default 1),
// BENCH_ROUNDS alternating rounds (default 1; best of each reported), BENCH_RECOMPUTE=all|auto|none
// (default auto: recompute the activations of as many layers as the trainer's budget needs),
// BENCH_PEER=off skips PyTorch. PyTorch computes the logits of every row, as a user writes it; tunekit only
// those of rows with a target (src/engine/cross-entropy.ts).

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseModelConfig, type ModelConfig } from '../src/models/config.js';
import { tinyModelSpec, initialWeights, INITIALIZER_RANGE } from '../src/models/tiny.js';
import { assembleWeights } from '../src/models/weights.js';
import { defaultLoraConfig, initLoraAdapter, loraParameterCount } from '../src/lora/lora.js';
import { TrainableModel, type TrainBatch } from '../src/train/trainable-model.js';
import { recomputeLayers, type RecomputeMode } from '../src/train/memory.js';
import { ceChunkRows } from '../src/engine/cross-entropy.js';
import { adamwStep, createParamGroup, DEFAULT_ADAMW, gradNorm } from '../src/train/adamw.js';
import { describeGemm, gemm, gemmCounter } from '../src/engine/blas.js';
import { Random } from '../src/engine/random.js';
import { profileMark, profileReport, profileReset } from '../src/engine/profile.js';
import { runTorchPeer, type TorchPeerResult } from './torch-peer.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.join(here, '..', '..', 'test', 'fixtures', 'published-configs');
/** Shape name -> the published config.json it trains (null: the generated small Llama). */
const SHAPES: Record<string, string | null> = {
  'smollm2-135m': null,
  'gemma3-270m': 'gemma-3-270m.json',
  'qwen3-0.6b': 'Qwen3-0.6B.json',
  'llama3.2-1b': 'Llama-3.2-1B.json',
};

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const SHAPE = flag('--shape') ?? 'smollm2-135m';
if (!(SHAPE in SHAPES)) {
  console.error(`--shape ${SHAPE} is not one of ${Object.keys(SHAPES).join(', ')}`);
  process.exit(2);
}
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const BATCH = 4;
const SEQ = 512;
const RANK = 8;
const ALPHA = 16;
const STEPS = Number(process.env.BENCH_STEPS ?? 2);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1);
if (WARMUP !== 0 && WARMUP !== 1) {
  console.error(`BENCH_WARMUP=${WARMUP} is not 0 or 1`);
  process.exit(2);
}
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const LOSS_FRACTION = Number(process.env.BENCH_LOSS_FRACTION ?? 0.5);
if (!(LOSS_FRACTION > 0 && LOSS_FRACTION <= 1)) {
  console.error(`BENCH_LOSS_FRACTION=${process.env.BENCH_LOSS_FRACTION} is not in (0, 1]`);
  process.exit(2);
}
const RECOMPUTE = (process.env.BENCH_RECOMPUTE ?? 'auto') as RecomputeMode;
if (!['all', 'auto', 'none'].includes(RECOMPUTE)) {
  console.error(`BENCH_RECOMPUTE=${RECOMPUTE} is not one of all, auto, none`);
  process.exit(2);
}

/**
 * The config.json of the shape, as a file both runtimes read: the published one with the fields it
 * leaves to the Hugging Face class's defaults stated (the PyTorch reference wants them explicit).
 */
function configFile(): string {
  const published = SHAPES[SHAPE];
  const json = published
    ? JSON.parse(fs.readFileSync(path.join(FIXTURES, published), 'utf8')) as Record<string, unknown>
    : tinyModelSpec({ family: 'llama', size: 'small' }).config;
  json.tie_word_embeddings ??= parseModelConfig(json, SHAPE).tieWordEmbeddings;
  const file = path.resolve('.cache/bench', `${SHAPE}.config.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(json, null, 2));
  return file;
}

function readConfig(file: string): ModelConfig {
  return parseModelConfig(JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>, file);
}

/**
 * BATCH rows of SEQ tokens, each packed from examples of 32..256 tokens whose last LOSS_FRACTION of
 * predictions carry loss (as train_torch.py draws them).
 */
function packedBatch(vocab: number): TrainBatch {
  const rng = new Random(0);
  const N = BATCH * SEQ;
  const b: TrainBatch = { N, tokens: new Int32Array(N), targets: new Int32Array(N), positions: new Int32Array(N), segStart: new Int32Array(N) };
  for (let row = 0; row < BATCH; row++) {
    let t = 0;
    while (t < SEQ) {
      const len = Math.min(SEQ - t, 32 + Math.floor(rng.next() * 225));
      const start = row * SEQ + t;
      for (let i = 0; i < len; i++) {
        b.tokens[start + i] = Math.floor(rng.next() * vocab);
        b.positions[start + i] = i;
        b.segStart[start + i] = start;
      }
      const withLoss = Math.floor(LOSS_FRACTION * (len - 1) + 0.5);
      for (let i = 0; i < len - 1; i++) b.targets[start + i] = i >= len - 1 - withLoss ? b.tokens[start + i + 1]! : -1;
      b.targets[start + len - 1] = -1;
      t += len;
    }
  }
  return b;
}

/** VmRSS and VmHWM (peak) of this process, bytes. */
function rss(): { now: number; peak: number } {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { now: kb('VmRSS'), peak: kb('VmHWM') };
}

interface WorkerResult {
  stepSeconds: number;
  /** CPU seconds of all threads per timed step. */
  stepCpuSeconds: number;
  flopsPerStep: number;
  lossFirst: number;
  lossLast: number;
  weightBytes: number;
  peakRssBytes: number;
  baseRssBytes: number;
  recomputedLayers: number;
  layers: number;
  ceChunkRows: number;
  targets: number;
}

/** The tunekit side, in its own process: WARMUP untimed steps, then STEPS timed ones. */
function worker(): WorkerResult {
  const base = rss().now;
  const config = readConfig(configFile());
  const tensors = new Map(initialWeights(config, 0, 'hf', INITIALIZER_RANGE).map((t) => [t.name, t.data]));
  const weights = assembleWeights(config, (spec) => tensors.get(spec.name)!);
  tensors.clear();
  const weightBytes = [weights.embed, weights.finalNorm, ...(weights.lmHead !== weights.embed ? [weights.lmHead] : []),
    ...weights.layers.flatMap((l) => Object.values(l).filter((t): t is Float32Array => t instanceof Float32Array))].reduce((a, t) => a + t.byteLength, 0);
  const lc = defaultLoraConfig(RANK, { alpha: ALPHA });
  const n = loraParameterCount(config, lc);
  const params = new Float32Array(n);
  const grads = new Float32Array(n);
  const lora = initLoraAdapter(config, lc, 0, params);
  const loraGrads = initLoraAdapter(config, lc, 0, grads);
  const batch = packedBatch(config.vocabSize);
  const targets = batch.targets.reduce((a, t) => a + (t >= 0 ? 1 : 0), 0);
  const recompute = recomputeLayers(config, { maxTokens: batch.N, loraRank: RANK, mode: RECOMPUTE });
  const tm = new TrainableModel(config, weights, { maxTokens: batch.N, lora, loraGrads, recomputeLayers: recompute });
  const groups = [createParamGroup('lora', params, grads)];
  const times: number[] = [];
  let cpu = 0;
  let flops = 0;
  let lossFirst = 0, lossLast = 0;
  for (let s = 0; s < WARMUP + STEPS; s++) {
    grads.fill(0);
    const f0 = gemmCounter.flops;
    const t = performance.now();
    const c = process.cpuUsage();
    const r = tm.forwardBackward(batch, targets);
    const norm = gradNorm(groups);
    adamwStep(groups, s + 1, 1e-4, DEFAULT_ADAMW, norm > 1 ? 1 / norm : 1);
    profileMark('adamw');
    const dt = (performance.now() - t) / 1000;
    if (s === 0) lossFirst = r.lossSum / r.count;
    if (s < WARMUP) profileReset();
    else {
      times.push(dt);
      const used = process.cpuUsage(c);
      cpu += (used.user + used.system) / 1e6;
      flops += gemmCounter.flops - f0;
    }
    lossLast = r.lossSum / r.count;
    process.stderr.write(`  tunekit step ${s}${s < WARMUP ? ' (warm-up)' : ''}: ${dt.toFixed(2)} s, loss ${lossLast.toFixed(4)}\n`);
  }
  const total = times.reduce((a, b) => a + b, 0);
  if (process.env.TUNEKIT_PROFILE === '1') process.stderr.write(`tunekit time by op over the timed steps (TUNEKIT_PROFILE=1):\n${profileReport()}\n`);
  return {
    stepSeconds: total / times.length, stepCpuSeconds: cpu / times.length, flopsPerStep: flops / times.length, lossFirst, lossLast, weightBytes,
    peakRssBytes: rss().peak, baseRssBytes: base, recomputedLayers: recompute, layers: config.numLayers,
    ceChunkRows: ceChunkRows(config.vocabSize), targets,
  };
}

/**
 * Best GFLOP/s of the native GEMM at the model's own product shapes (each timed for about half a second),
 * per second of wall clock and per CPU second (all threads): on a shared host the second is what the
 * cores this process actually got could do.
 */
function gemmPeak(config: ModelConfig): { wall: number; cpu: number } {
  const g = gemm();
  const N = BATCH * SEQ;
  const { hiddenSize: C, intermediateSize: F } = config;
  let wall = 0, cpu = 0;
  for (const [M, Nn, K] of [[N, F, C], [N, C, F], [N, config.numHeads * config.headDim, C]] as const) {
    const A = new Float32Array(M * K).fill(0.5), B = new Float32Array(Nn * K).fill(0.25), Cm = new Float32Array(M * Nn);
    g.sgemm(false, true, M, Nn, K, 1, A, K, B, K, 0, Cm, Nn);
    let reps = 0;
    const t = performance.now();
    const c = process.cpuUsage();
    while (performance.now() - t < 500 || reps < 2) {
      g.sgemm(false, true, M, Nn, K, 1, A, K, B, K, 0, Cm, Nn);
      reps++;
    }
    const used = process.cpuUsage(c);
    const flops = reps * 2 * M * Nn * K;
    wall = Math.max(wall, flops / ((performance.now() - t) / 1000) / 1e9);
    cpu = Math.max(cpu, flops / ((used.user + used.system) / 1e6) / 1e9);
  }
  return { wall, cpu };
}

function runWorker(): Promise<WorkerResult | { error: string }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--worker', '--shape', SHAPE], {
    env: { ...process.env, TUNEKIT_THREADS: String(THREADS) }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      try {
        resolve(code === 0 ? (JSON.parse(out.trim().split('\n').pop()!) as WorkerResult) : { error: `worker exited with ${code}` });
      } catch {
        resolve({ error: `worker printed no result: ${out.slice(-500)}` });
      }
    });
  });
}

const GB = 1e9;
const MiB = 1024 * 1024;

async function main(): Promise<void> {
  if (args.includes('--worker')) {
    console.log(JSON.stringify(worker()));
    return;
  }
  process.env.TUNEKIT_THREADS ??= String(THREADS);
  const file = configFile();
  const config = readConfig(file);
  const peakBefore = gemmPeak(config);
  const ours: WorkerResult[] = [];
  const theirs: TorchPeerResult[] = [];
  let torchReason = '';
  // Runtimes alternate, round after round, so a change in how busy the host is hits both.
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`round ${round}: tunekit ...`);
    const r = await runWorker();
    if ('error' in r) throw new Error(r.error);
    ours.push(r);
    if (process.env.BENCH_PEER === 'off') {
      torchReason = 'skipped (BENCH_PEER=off)';
      continue;
    }
    console.log(`round ${round}: PyTorch ...`);
    const t = await runTorchPeer({ configFile: file, initStd: INITIALIZER_RANGE, threads: THREADS, batch: BATCH, seq: SEQ, steps: STEPS, warmup: WARMUP, rank: RANK, alpha: ALPHA, lossFraction: LOSS_FRACTION, timeoutMs: 30 * 60_000 });
    if (t.result) {
      theirs.push(t.result);
      console.log(`round ${round}: PyTorch ${t.result.tokensPerSecond.toFixed(1)} tokens/s`);
    } else torchReason = t.reason;
  }
  const peakAfter = gemmPeak(config);
  const peak = Math.max(peakBefore.wall, peakAfter.wall);
  const peakCpu = Math.max(peakBefore.cpu, peakAfter.cpu);
  const best = ours.reduce((a, b) => (b.stepSeconds < a.stepSeconds ? b : a));
  const N = BATCH * SEQ;
  const ourTps = N / best.stepSeconds;
  const gflops = best.flopsPerStep / best.stepSeconds / 1e9;
  const gflopsCpu = best.flopsPerStep / best.stepCpuSeconds / 1e9;
  const target = best.weightBytes + 2 * GB;

  console.log(`\n${SHAPE}: LoRA r${RANK} on all projections, ${config.vocabSize} vocabulary, f32, ${THREADS} threads, ${BATCH}x${SEQ} tokens per step (${best.targets} carry loss: BENCH_LOSS_FRACTION=${LOSS_FRACTION}), ${WARMUP} warm-up + ${STEPS} timed steps, best of ${ROUNDS} round(s)`);
  console.log(`GEMM: ${describeGemm()}; peak measured now at the model's shapes: ${peak.toFixed(0)} GFLOP/s (before ${peakBefore.wall.toFixed(0)}, after ${peakAfter.wall.toFixed(0)}), ${peakCpu.toFixed(0)} GFLOP per CPU second`);
  console.log(`tunekit   ${ourTps.toFixed(1).padStart(7)} tokens/s  (${best.stepSeconds.toFixed(2)} s/step, ${(best.stepCpuSeconds / best.stepSeconds).toFixed(2)} cores busy, ${gflops.toFixed(0)} GFLOP/s issued = ${(100 * gflops / peak).toFixed(0)}% of peak, ${gflopsCpu.toFixed(0)} GFLOP per CPU second = ${(100 * gflopsCpu / peakCpu).toFixed(0)}% of peak, ${(best.flopsPerStep / 1e12).toFixed(2)} TFLOP/step, loss ${best.lossFirst.toFixed(3)} -> ${best.lossLast.toFixed(3)}, activations of ${best.recomputedLayers}/${best.layers} layers recomputed, cross-entropy in chunks of ${best.ceChunkRows} rows)`);
  console.log(`          peak RSS ${(best.peakRssBytes / MiB).toFixed(0)} MiB = f32 weights ${(best.weightBytes / MiB).toFixed(0)} MiB + ${((best.peakRssBytes - best.weightBytes) / MiB).toFixed(0)} MiB (goal <= weights + 2 GB = ${(target / MiB).toFixed(0)} MiB: ${best.peakRssBytes <= target ? 'met' : 'NOT met'}; process baseline ${(best.baseRssBytes / MiB).toFixed(0)} MiB)`);
  if (theirs.length) {
    const t = theirs.reduce((a, b) => (b.tokensPerSecond > a.tokensPerSecond ? b : a));
    if (t.targetTokens !== best.targets) throw new Error(`the PyTorch peer's batch has ${t.targetTokens} targets, tunekit's ${best.targets}`);
    console.log(`PyTorch   ${t.tokensPerSecond.toFixed(1).padStart(7)} tokens/s  (${t.stepSeconds.toFixed(2)} s/step, ${(t.stepCpuSeconds / t.stepSeconds).toFixed(2)} cores busy, torch ${t.torchVersion}, ${t.attention}, loss ${t.lossFirst.toFixed(3)} -> ${t.lossLast.toFixed(3)}, peak RSS ${(t.peakRssBytes / MiB).toFixed(0)} MiB)`);
    // On a shared host the wall-clock ratio follows whoever got the cores; CPU seconds per step do less so.
    console.log(`ratio     ${(ourTps / t.tokensPerSecond).toFixed(2)}x in tokens/s; ${(t.stepCpuSeconds / best.stepCpuSeconds).toFixed(2)}x in CPU seconds per step (${best.stepCpuSeconds.toFixed(1)} vs ${t.stepCpuSeconds.toFixed(1)})`);
  } else {
    console.log(`PyTorch   not measured: ${torchReason}`);
  }
}

await main();
