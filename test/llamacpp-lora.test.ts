// The proof that our adapters are the real thing: llama.cpp (node-llama-cpp's prebuilt CPU backend,
// float32 KV cache), given the base model's GGUF and our GGUF LoRA export of a random nonzero adapter
// (applied with scale 1, unmerged: W·x + (alpha/r)·B·(A·x)), must agree with tunekit running base +
// adapter (applyAdapterForInference: unmerged, the base weights shared) on
// - the greedy continuation, token for token (32 tokens after a 40+ token prompt);
// - the next-token distribution over the whole vocabulary at every prompt position and every generated
//   step: max |Δ log p| over all tokens with p > 1e-20 below the tolerance stated below.
// The adapter is large enough to change the model: base and adapted greedy continuations must differ.
// Each tiny model gets an untied random lm_head (as in the equivalence test): with tied embeddings the
// tiny Gemma's greedy path is one repeated token that no adapter on the linear layers moves.
// Then `tunekit merge` + `tunekit export gguf` of the merged model, run by llama.cpp without an
// adapter, must give the same continuation and distributions as the adapter path.
//
// Tolerances: as test/llamacpp-equivalence.test.ts for the base models (llama, qwen3: 1e-4, float32
// rounding and summation order; gemma3: 1e-2, llama.cpp's f16 GELU table). Measured values are printed
// as diagnostics. A wrong Q/K permutation of lora_b, a transposed pair or a wrong scale gives
// differences of order 0.1 to 10.

import { test } from 'node:test';
import { argmax } from '../src/generate/sampler.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Token } from 'node-llama-cpp';
import { exportGguf } from '../src/export/gguf.js';
import { exportGgufLora } from '../src/export/gguf-lora.js';
import { readGgufHeader } from '../src/export/gguf-reader.js';
import { Random } from '../src/engine/random.js';
import type { Family, ModelConfig } from '../src/models/config.js';
import { loadModel, type LoadedModel } from '../src/models/model.js';
import { initTinyModel } from '../src/models/tiny.js';
import { defaultLoraConfig, initLoraAdapter, type LoraAdapter } from '../src/lora/lora.js';
import { saveAdapter } from '../src/lora/peft.js';
import { applyAdapterForInference } from '../src/lora/apply.js';
import { greedyDecode, logSoftmax, openGguf, type LlamaCppSession } from './helpers/llamacpp.js';
import { untiedTinyModel } from './helpers/tiny-models.js';

const FAMILIES: Family[] = ['llama', 'qwen3', 'gemma3'];
const STEPS = 32;
const PROMPT = 'The quick brown fox jumps over the lazy dog, then naps in the sun. In 2024, 1234 apples cost $5.67 at the market!';
const TOL_LOG_P: Record<Family, number> = { llama: 1e-4, qwen3: 1e-4, gemma3: 1e-2 };
const MIN_P = 1e-20;
const RANK = 4;
const ALPHA = 8;

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-llamacpp-lora-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

/** Every target module, A as PEFT initialises it, B random: a big, nonzero update. */
function randomAdapter(config: ModelConfig, seed: number): LoraAdapter {
  const a = initLoraAdapter(config, defaultLoraConfig(RANK, { alpha: ALPHA }), seed);
  const rng = new Random(seed + 1);
  for (const pairs of a.layers) for (const p of Object.values(pairs)) rng.fillNormal(p!.B, 0, 0.25);
  return a;
}


interface Diff {
  maxLogP: number;
  compared: number;
}

/** max |Δ log p| between two distributions, ours given as log-probabilities. */
function compare(d: Diff, ours: Float64Array, theirs: Float64Array): void {
  assert.equal(ours.length, theirs.length);
  for (let j = 0; j < ours.length; j++) {
    if (Math.exp(ours[j]!) > MIN_P) {
      d.compared++;
      d.maxLogP = Math.max(d.maxLogP, theirs[j]! > 0 ? Math.abs(ours[j]! - Math.log(theirs[j]!)) : Infinity);
    }
  }
}

function dense(probs: Map<Token, number> | undefined, V: number): Float64Array {
  assert.ok(probs, 'llama.cpp returned no probabilities');
  const out = new Float64Array(V);
  for (const [id, p] of probs) out[id] = p;
  return out;
}

/** Teacher-forced distributions at every prompt position: llama.cpp in one batch vs our allLogits. */
async function comparePrompt(m: LoadedModel, s: LlamaCppSession, prompt: number[], d: Diff): Promise<Float64Array[]> {
  const V = m.config.vocabSize;
  await s.sequence.clearHistory();
  const res = await s.sequence.controlledEvaluate(prompt.map((t) => [t as Token, { generateNext: { probabilities: true } }]));
  const all = m.transformer.forward(prompt, m.transformer.createCache(prompt.length), { allLogits: true });
  const theirs: Float64Array[] = [];
  for (let t = 0; t < prompt.length; t++) {
    theirs.push(dense(res[t]?.next.probabilities, V));
    compare(d, logSoftmax(all.subarray(t * V, (t + 1) * V)), theirs[t]!);
  }
  return theirs;
}

/** Our greedy path (feeding back our own argmax) and its log-distributions. */
function ourGreedy(m: LoadedModel, prompt: number[]): { tokens: number[]; logp: Float64Array[] } {
  const cache = m.transformer.createCache(prompt.length + STEPS);
  let logits = m.transformer.forward(prompt, cache);
  const tokens: number[] = [];
  const logp: Float64Array[] = [];
  for (let i = 0; i < STEPS; i++) {
    logp.push(logSoftmax(logits));
    tokens.push(argmax(logits));
    if (i + 1 < STEPS) logits = m.transformer.forward([tokens[i]!], cache);
  }
  return { tokens, logp };
}

for (const family of FAMILIES) {
  test(`${family}: llama.cpp applies our GGUF LoRA export exactly as tunekit runs base + adapter; merge + export agrees`, async (t) => {
    const dir = path.join(root, family);
    untiedTinyModel(family, 1, dir);
    const base = await loadModel(dir);
    const adapterDir = path.join(root, `${family}-adapter`);
    saveAdapter(adapterDir, randomAdapter(base.config, 17));
    const adapted = applyAdapterForInference(base, adapterDir);

    const baseGguf = path.join(root, `${family}.gguf`);
    const loraGguf = path.join(root, `${family}-lora.gguf`);
    await exportGguf({ modelDir: dir, out: baseGguf, dtype: 'f32' });
    const summary = await exportGgufLora({ modelDir: dir, adapterDir, out: loraGguf });
    assert.equal(summary.tensorCount, base.config.numLayers * 7 * 2);
    const header = readGgufHeader(loraGguf);
    assert.deepEqual(header.metadata.get('general.type'), { type: 'string', value: 'adapter' });
    assert.deepEqual(header.metadata.get('adapter.type'), { type: 'string', value: 'lora' });
    assert.deepEqual(header.metadata.get('adapter.lora.alpha'), { type: 'f32', value: ALPHA });
    assert.deepEqual(header.metadata.get('general.architecture'), { type: 'string', value: family });
    const q0a = header.tensors.find((x) => x.name === 'blk.0.attn_q.weight.lora_a');
    const q0b = header.tensors.find((x) => x.name === 'blk.0.attn_q.weight.lora_b');
    const { hiddenSize: C, numHeads: NH, headDim: HD } = base.config;
    assert.deepEqual(q0a?.shape, [RANK, C], 'lora_a: row-major (r, in), ggml ne = [in, r]');
    assert.deepEqual(q0b?.shape, [NH * HD, RANK], 'lora_b: row-major (out, r), ggml ne = [r, out]');
    assert.ok(header.tensors.every((x) => x.type === 'F32'));

    const prompt = base.tokenizer.encode(PROMPT);
    assert.ok(prompt.length >= 40, `prompt has ${prompt.length} tokens`);
    const baseGreedy = ourGreedy(base, prompt);
    const ours = ourGreedy(adapted, prompt);
    assert.notDeepEqual(ours.tokens, baseGreedy.tokens, `${family}: the adapter changes the greedy continuation`);

    const V = base.config.vocabSize;
    const s = await openGguf(baseGguf, { lora: loraGguf });
    const dPrompt: Diff = { maxLogP: 0, compared: 0 };
    const dGen: Diff = { maxLogP: 0, compared: 0 };
    let theirs: number[];
    try {
      await comparePrompt(adapted, s, prompt, dPrompt);
      const steps = await greedyDecode(s, prompt, STEPS, { probabilities: { vocabSize: V } });
      theirs = steps.map((x) => x.token);
      steps.forEach((x, i) => compare(dGen, ours.logp[i]!, x.probabilities!));
    } finally {
      await s.dispose();
    }

    // tunekit merge + tunekit export gguf, run by llama.cpp with no adapter.
    const merged = path.join(root, `${family}-merged`);
    const mergedGguf = path.join(root, `${family}-merged.gguf`);
    const r1 = spawnSync(process.execPath, [cli, 'merge', '--base', dir, '--adapter', adapterDir, '--out', merged], { encoding: 'utf8' });
    assert.equal(r1.status, 0, r1.stderr);
    const r2 = spawnSync(process.execPath, [cli, 'export', 'gguf', '--model', merged, '--out', mergedGguf], { encoding: 'utf8' });
    assert.equal(r2.status, 0, r2.stderr);
    const sm = await openGguf(mergedGguf);
    const dMerged: Diff = { maxLogP: 0, compared: 0 };
    let mergedTokens: number[];
    try {
      const steps = await greedyDecode(sm, prompt, STEPS, { probabilities: { vocabSize: V } });
      mergedTokens = steps.map((x) => x.token);
      steps.forEach((x, i) => compare(dMerged, ours.logp[i]!, x.probabilities!));
    } finally {
      await sm.dispose();
    }

    t.diagnostic(`${family}: LoRA GGUF vs tunekit: prompt ${prompt.length} positions max|Δlog p| ${dPrompt.maxLogP.toExponential(2)} ` +
      `over ${dPrompt.compared} pairs; greedy ${STEPS} steps max|Δlog p| ${dGen.maxLogP.toExponential(2)}; merged GGUF vs tunekit ` +
      `max|Δlog p| ${dMerged.maxLogP.toExponential(2)}; ${new Set(ours.tokens).size} distinct adapted tokens, ` +
      `${ours.tokens.filter((x, i) => x !== baseGreedy.tokens[i]).length}/${STEPS} differ from the base's`);
    assert.deepEqual(theirs, ours.tokens, `${family}: greedy continuation, llama.cpp with the LoRA GGUF`);
    assert.deepEqual(mergedTokens, ours.tokens, `${family}: greedy continuation, llama.cpp with the merged model's GGUF`);
    assert.ok(new Set(ours.tokens).size >= 10, `${family}: the adapted greedy path should not be degenerate`);
    assert.ok(dPrompt.compared >= prompt.length * V * 0.5, `compared ${dPrompt.compared} probabilities`);
    for (const [what, d] of [['prompt', dPrompt], ['greedy', dGen], ['merged', dMerged]] as const) {
      assert.ok(d.maxLogP < TOL_LOG_P[family], `${family} ${what}: max |Δ log p| ${d.maxLogP} ≥ ${TOL_LOG_P[family]}`);
    }
  });
}

test('export gguf --adapter: CLI writes the LoRA GGUF; --dtype f16 is refused; a mismatched base is a typed error', async () => {
  const dir = path.join(root, 'cli-qwen3');
  initTinyModel({ family: 'qwen3', size: 'tiny', seed: 2, out: dir });
  const m = await loadModel(dir);
  const adapterDir = path.join(root, 'cli-qwen3-adapter');
  saveAdapter(adapterDir, randomAdapter(m.config, 3));
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  const out = path.join(root, 'cli-lora.gguf');
  const ok = run('export', 'gguf', '--model', dir, '--adapter', adapterDir, '--out', out);
  assert.equal(ok.status, 0, ok.stderr);
  const h = readGgufHeader(out);
  assert.deepEqual(h.metadata.get('general.type'), { type: 'string', value: 'adapter' });
  assert.equal(h.tensors.length, m.config.numLayers * 14);
  assert.ok(h.tensors.some((x) => x.name === 'blk.1.ffn_down.weight.lora_b'));
  const f16 = run('export', 'gguf', '--model', dir, '--adapter', adapterDir, '--out', out, '--dtype', 'f16');
  assert.equal(f16.status, 1);
  assert.match(f16.stderr, /F32/);
  const gemma = path.join(root, 'cli-gemma3');
  initTinyModel({ family: 'gemma3', size: 'tiny', seed: 2, out: gemma });
  const bad = run('export', 'gguf', '--model', gemma, '--adapter', adapterDir, '--out', path.join(root, 'bad.gguf'));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^tunekit: error: .*adapter_model\.safetensors: tensor ".*q_proj\.lora_B\.weight" has shape \[128, 4\].*another base model/);
  assert.ok(!fs.existsSync(path.join(root, 'bad.gguf')));
});
