// Merging an adapter into its base: exact properties (a fresh adapter merges to the base bit for bit,
// the base is never modified, untouched tensors are shared), the merged projections against the
// unmerged LoRA formula computed here independently in float64, the unmerged inference path against
// the merged weights, the merged Hugging Face directory, and the CLI (merge, generate --adapter)
// agreeing with the library.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidRequestError } from '../src/errors.js';
import { Random } from '../src/engine/random.js';
import type { ModelConfig } from '../src/models/config.js';
import { loadModelConfig, loadModelWeights } from '../src/models/loader.js';
import { loadModel } from '../src/models/model.js';
import { readSafetensorsHeader } from '../src/models/safetensors.js';
import { Transformer } from '../src/models/transformer.js';
import { getTensor, tensorSpecs, type ModelWeights } from '../src/models/weights.js';
import { LORA_TARGETS, TARGET_SLOT, defaultLoraConfig, initLoraAdapter, type LoraAdapter } from '../src/lora/lora.js';
import { saveAdapter } from '../src/lora/peft.js';
import { loraScale, mergeAdapter, writeMergedModel } from '../src/lora/merge.js';
import { applyAdapterForInference } from '../src/lora/apply.js';
import { FAMILIES, tinyModelDir } from './helpers/tiny-models.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-merge-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

function randomAdapter(config: ModelConfig, rank: number, alpha: number, seed: number, bStd = 0.05): LoraAdapter {
  const a = initLoraAdapter(config, defaultLoraConfig(rank, { alpha }), seed);
  const rng = new Random(seed + 1);
  for (const pairs of a.layers) for (const p of Object.values(pairs)) rng.fillNormal(p!.B, 0, bStd);
  return a;
}

function bytes(x: Float32Array): Buffer {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

function snapshot(w: ModelWeights, config: ModelConfig): Map<string, Buffer> {
  return new Map(tensorSpecs(config).map((s) => [s.name, Buffer.from(bytes(getTensor(w, s)))]));
}

for (const family of FAMILIES) {
  test(`${family}: a fresh adapter (B = 0) merges to exactly the base weights, and the base is untouched`, () => {
    const dir = tinyModelDir(family);
    const config = loadModelConfig(dir);
    const base = loadModelWeights(dir, config);
    const before = snapshot(base, config);
    const merged = mergeAdapter(base, config, initLoraAdapter(config, defaultLoraConfig(8), 3));
    for (const spec of tensorSpecs(config)) {
      assert.ok(bytes(getTensor(merged, spec)).equals(before.get(spec.name)!), `${spec.name} is bit-identical`);
    }
    // Only the targeted linear layers are new arrays; everything else is shared with the base.
    assert.equal(merged.embed, base.embed);
    assert.equal(merged.layers[0]!.attnNorm, base.layers[0]!.attnNorm);
    assert.notEqual(merged.layers[0]!.q, base.layers[0]!.q);

    const nonzero = mergeAdapter(base, config, randomAdapter(config, 4, 8, 5));
    for (const spec of tensorSpecs(config)) assert.ok(bytes(getTensor(base, spec)).equals(before.get(spec.name)!), `base ${spec.name} unchanged`);
    assert.notDeepEqual(nonzero.layers[1]!.down, base.layers[1]!.down);
  });
}

test('merged projections equal x·Wᵀ + (alpha/r)·(x·Aᵀ)·Bᵀ computed unmerged in float64, for every target and layer', () => {
  for (const family of FAMILIES) {
    const dir = tinyModelDir(family);
    const config = loadModelConfig(dir);
    const base = loadModelWeights(dir, config);
    const adapter = randomAdapter(config, 4, 6, 11, 0.2);
    const s = loraScale(adapter);
    assert.equal(s, 1.5);
    const merged = mergeAdapter(base, config, adapter);
    const rng = new Random(13);
    const R = adapter.config.rank;
    let worst = 0;
    let deltaSize = 0;
    for (let l = 0; l < config.numLayers; l++) {
      for (const t of LORA_TARGETS) {
        const { A, B, inFeatures: IN, outFeatures: OUT } = adapter.layers[l]![t]!;
        const slot = TARGET_SLOT[t] as 'q';
        const W = base.layers[l]![slot];
        const Wm = merged.layers[l]![slot];
        const x = rng.fillNormal(new Float32Array(IN), 0, 1);
        const xa = new Float64Array(R); // x·Aᵀ
        for (let r = 0; r < R; r++) for (let i = 0; i < IN; i++) xa[r] += x[i]! * A[r * IN + i]!;
        for (let o = 0; o < OUT; o++) {
          let base64 = 0;
          let merged64 = 0;
          for (let i = 0; i < IN; i++) {
            base64 += x[i]! * W[o * IN + i]!;
            merged64 += x[i]! * Wm[o * IN + i]!;
          }
          let lora = 0;
          for (let r = 0; r < R; r++) lora += xa[r]! * B[o * R + r]!;
          const expected = base64 + s * lora;
          worst = Math.max(worst, Math.abs(merged64 - expected) / (1 + Math.abs(expected)));
          deltaSize = Math.max(deltaSize, Math.abs(s * lora));
        }
      }
    }
    // float32 rounding of W' only (|x| ~ 1, up to 176 inputs): ~1e-6 relative.
    assert.ok(worst < 1e-5, `${family}: max relative difference ${worst}`);
    assert.ok(deltaSize > 0.1, `${family}: the adapter's contribution (${deltaSize}) is large enough to test anything`);
  }
});

test('applyAdapterForInference runs the adapter unmerged on the shared base weights: the merged weights\' logits to float32 rounding, base unchanged', async () => {
  const dir = tinyModelDir('qwen3');
  const model = await loadModel(dir);
  const adapterDir = path.join(root, 'qwen3-adapter');
  const adapter = randomAdapter(model.config, 4, 8, 21);
  saveAdapter(adapterDir, adapter);
  const tokens = model.tokenizer.encode('Merging adapters, one weight at a time.');
  const baseLogits = model.transformer.forward(tokens, model.transformer.createCache(64));
  const adapted = applyAdapterForInference(model, adapterDir);
  assert.equal(adapted.tokenizer, model.tokenizer);
  assert.equal(adapted.weights, model.weights, 'no weights are copied');
  assert.equal(adapted.transformer.decoder, model.transformer.decoder, 'one decoder for the base and its adapters');
  const ours = adapted.transformer.forward(tokens, adapted.transformer.createCache(64));
  const reference = new Transformer(model.config, mergeAdapter(model.weights, model.config, adapter));
  const merged = reference.forward(tokens, reference.createCache(64));
  let worst = 0;
  let moved = 0;
  for (let i = 0; i < ours.length; i++) {
    worst = Math.max(worst, Math.abs(ours[i]! - merged[i]!));
    moved = Math.max(moved, Math.abs(ours[i]! - baseLogits[i]!));
  }
  assert.ok(worst < 1e-4, `max |Δlogit| unmerged vs merged ${worst}`);
  assert.ok(moved > 0.1, `the adapter moves the logits (${moved})`);
  assert.deepEqual(model.transformer.forward(tokens, model.transformer.createCache(64)), baseLogits, 'base model unchanged');
});

test('writeMergedModel writes a complete model directory (F32 exactly, BF16 on request) and refuses a non-empty --out', async () => {
  const dir = tinyModelDir('gemma3');
  const config = loadModelConfig(dir);
  const adapterDir = path.join(root, 'gemma-adapter');
  const adapter = randomAdapter(config, 2, 4, 31);
  saveAdapter(adapterDir, adapter);
  const out = path.join(root, 'gemma-merged');
  const summary = writeMergedModel({ baseDir: dir, adapterDir, out });
  assert.equal(summary.mergedTensors, config.numLayers * 7);
  assert.deepEqual(fs.readdirSync(out).sort(), fs.readdirSync(dir).sort(), 'same files as the base');
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
    assert.ok(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(dir, f))), f);
  }
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).torch_dtype, 'float32');
  const expected = mergeAdapter(loadModelWeights(dir, config), config, adapter);
  const written = loadModelWeights(out, loadModelConfig(out));
  for (const spec of tensorSpecs(config)) assert.ok(bytes(getTensor(written, spec)).equals(bytes(getTensor(expected, spec))), spec.name);
  const m = await loadModel(out);
  assert.equal(m.tokenizer.size, (await loadModel(dir)).tokenizer.size);

  const bf16 = path.join(root, 'gemma-merged-bf16');
  fs.mkdirSync(bf16); // an empty directory is fine
  writeMergedModel({ baseDir: dir, adapterDir, out: bf16, dtype: 'BF16' });
  assert.equal(JSON.parse(fs.readFileSync(path.join(bf16, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
  for (const info of readSafetensorsHeader(path.join(bf16, 'model.safetensors')).tensors.values()) assert.equal(info.dtype, 'BF16');

  assert.throws(() => writeMergedModel({ baseDir: dir, adapterDir, out }), (e: unknown) => e instanceof InvalidRequestError && /already exists/.test(e.message));
  assert.deepEqual(fs.readdirSync(root).filter((f) => f.endsWith('.tmp')), [], 'no staging directory left behind');
});

test('CLI: tunekit merge, then generate from the merged model, equals generate --adapter on the base', () => {
  const dir = tinyModelDir('llama');
  const config = loadModelConfig(dir);
  const adapterDir = path.join(root, 'llama-adapter');
  saveAdapter(adapterDir, randomAdapter(config, 4, 8, 41, 0.3));
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  const out = path.join(root, 'llama-merged');
  const merge = run('merge', '--base', dir, '--adapter', adapterDir, '--out', out);
  assert.equal(merge.status, 0, merge.stderr);
  assert.match(merge.stdout, /wrote .*llama-merged \(14 weights merged, f32\)/);
  const gen = (...extra: string[]) => run('generate', '--prompt', 'The adapter says', '--max-tokens', '16', ...extra);
  const viaAdapter = gen('--model', dir, '--adapter', adapterDir);
  const viaMerged = gen('--model', out);
  const plain = gen('--model', dir);
  assert.equal(viaAdapter.status, 0, viaAdapter.stderr);
  assert.equal(viaMerged.status, 0, viaMerged.stderr);
  assert.equal(viaAdapter.stdout, viaMerged.stdout);
  assert.notEqual(viaAdapter.stdout, plain.stdout, 'the adapter changes the greedy text');
  const bad = run('generate', '--model', dir, '--adapter', path.join(root, 'missing'), '--prompt', 'x');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^tunekit: error: .*missing does not exist\n$/);
  const again = run('merge', '--base', dir, '--adapter', adapterDir, '--out', out);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already exists and is not an empty directory/);
});
