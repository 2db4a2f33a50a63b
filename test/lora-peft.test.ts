// PEFT adapter directories: what saveAdapter writes is exactly PEFT's layout (file names, every
// adapter_config.json field, tensor names and shapes), loadAdapter reads it back bit for bit, and every
// adapter tunekit cannot run as plain LoRA, or that does not fit the base model, is a typed error
// naming the file and the field or tensor.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InvalidModelError, UnsupportedModelError, type TunekitError } from '../src/errors.js';
import { loadModelConfig } from '../src/models/loader.js';
import { readSafetensorsHeader, readTensorF32, writeSafetensors } from '../src/models/safetensors.js';
import type { ModelConfig } from '../src/models/config.js';
import { Random } from '../src/engine/random.js';
import { LORA_TARGETS, defaultLoraConfig, initLoraAdapter, type LoraAdapter } from '../src/lora/lora.js';
import { loadAdapter, readAdapterConfig, saveAdapter } from '../src/lora/peft.js';
import { FAMILIES, tinyModelDir } from './helpers/tiny-models.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-peft-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = () => path.join(root, `a${counter++}`);

/** A nonzero adapter (B random too) so a round trip that dropped or swapped tensors would show. */
function randomAdapter(config: ModelConfig, rank: number, targets = [...LORA_TARGETS], seed = 7): LoraAdapter {
  const a = initLoraAdapter(config, defaultLoraConfig(rank, { alpha: 3 * rank, dropout: 0.05, targets }), seed);
  const rng = new Random(seed + 1);
  for (const pairs of a.layers) for (const p of Object.values(pairs)) rng.fillNormal(p!.B, 0, 0.02);
  return a;
}

const llama = () => loadModelConfig(tinyModelDir('llama'));

function rewriteConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const f = path.join(dir, 'adapter_config.json');
  const c = JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, unknown>;
  edit(c);
  fs.writeFileSync(f, JSON.stringify(c));
}

/** Rewrites adapter_model.safetensors through `edit` on its (name, shape, data) list. */
function rewriteTensors(dir: string, edit: (ts: { name: string; shape: number[]; data: Float32Array }[]) => void): void {
  const f = path.join(dir, 'adapter_model.safetensors');
  const h = readSafetensorsHeader(f);
  const ts = [...h.tensors.values()].map((i) => ({ name: i.name, shape: i.shape, data: readTensorF32(h, i.name) }));
  edit(ts);
  writeSafetensors(f, ts);
}

function expectError(fn: () => unknown, type: new (...a: never[]) => TunekitError, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof type, `expected ${type.name}, got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    for (const p of patterns) assert.match((err as Error).message, p);
    return true;
  });
}

test('saveAdapter writes PEFT\'s files, config fields and tensor names; loadAdapter reads back the same bits', () => {
  const config = llama();
  const adapter = randomAdapter(config, 4);
  const dir = freshDir();
  saveAdapter(dir, adapter, { baseModel: 'HuggingFaceTB/SmolLM2-135M' });
  assert.deepEqual(fs.readdirSync(dir).sort(), ['adapter_config.json', 'adapter_model.safetensors']);

  const json = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(json), Object.keys(json).sort(), 'fields in alphabetical order, as PEFT writes them');
  assert.deepEqual({
    peft_type: json.peft_type, task_type: json.task_type, r: json.r, lora_alpha: json.lora_alpha, lora_dropout: json.lora_dropout,
    target_modules: json.target_modules, bias: json.bias, fan_in_fan_out: json.fan_in_fan_out, use_rslora: json.use_rslora,
    use_dora: json.use_dora, base_model_name_or_path: json.base_model_name_or_path, inference_mode: json.inference_mode,
    layers_to_transform: json.layers_to_transform, layers_pattern: json.layers_pattern, rank_pattern: json.rank_pattern,
    alpha_pattern: json.alpha_pattern, modules_to_save: json.modules_to_save, init_lora_weights: json.init_lora_weights,
    lora_bias: json.lora_bias, peft_version: json.peft_version,
  }, {
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 12, lora_dropout: 0.05,
    target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], bias: 'none',
    fan_in_fan_out: false, use_rslora: false, use_dora: false, base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M',
    inference_mode: true, layers_to_transform: null, layers_pattern: null, rank_pattern: {}, alpha_pattern: {},
    modules_to_save: null, init_lora_weights: true, lora_bias: false, peft_version: '0.19.1',
  });

  const header = readSafetensorsHeader(path.join(dir, 'adapter_model.safetensors'));
  assert.deepEqual(header.metadata, { format: 'pt' });
  const { hiddenSize: C, intermediateSize: F, numHeads: NH, numKvHeads: NKV, headDim: HD } = config;
  const expected = new Map<string, number[]>();
  for (let l = 0; l < config.numLayers; l++) {
    const p = `base_model.model.model.layers.${l}.`;
    const add = (mod: string, inF: number, outF: number) => {
      expected.set(`${p}${mod}.lora_A.weight`, [4, inF]);
      expected.set(`${p}${mod}.lora_B.weight`, [outF, 4]);
    };
    add('self_attn.q_proj', C, NH * HD);
    add('self_attn.k_proj', C, NKV * HD);
    add('self_attn.v_proj', C, NKV * HD);
    add('self_attn.o_proj', NH * HD, C);
    add('mlp.gate_proj', C, F);
    add('mlp.up_proj', C, F);
    add('mlp.down_proj', F, C);
  }
  assert.deepEqual(new Map([...header.tensors].map(([n, i]) => [n, i.shape])), expected);
  for (const info of header.tensors.values()) assert.equal(info.dtype, 'F32');

  const back = loadAdapter(dir, config);
  assert.deepEqual(back.config, adapter.config);
  assert.equal(back.baseModel, 'HuggingFaceTB/SmolLM2-135M');
  assert.equal(back.layers.length, config.numLayers);
  for (let l = 0; l < config.numLayers; l++) {
    for (const t of LORA_TARGETS) {
      const a = adapter.layers[l]![t]!;
      const b = back.layers[l]![t]!;
      assert.deepEqual([b.inFeatures, b.outFeatures], [a.inFeatures, a.outFeatures]);
      assert.ok(Buffer.from(b.A.buffer, b.A.byteOffset, b.A.byteLength).equals(Buffer.from(a.A.buffer, a.A.byteOffset, a.A.byteLength)), `layer ${l} ${t} A`);
      assert.ok(Buffer.from(b.B.buffer, b.B.byteOffset, b.B.byteLength).equals(Buffer.from(a.B.buffer, a.B.byteOffset, a.B.byteLength)), `layer ${l} ${t} B`);
    }
  }
});

test('round trip of a subset of targets for every family; saving again overwrites atomically', () => {
  for (const family of FAMILIES) {
    const config = loadModelConfig(tinyModelDir(family));
    const adapter = randomAdapter(config, 2, ['v_proj', 'q_proj', 'down_proj']);
    const dir = freshDir();
    saveAdapter(dir, adapter);
    saveAdapter(dir, adapter, { inferenceMode: false });
    assert.deepEqual(fs.readdirSync(dir).sort(), ['adapter_config.json', 'adapter_model.safetensors'], 'no temporary files left');
    const { lora, baseModel } = readAdapterConfig(dir);
    assert.deepEqual(lora.targets, ['q_proj', 'v_proj', 'down_proj']);
    assert.equal(baseModel, undefined);
    const back = loadAdapter(dir, config);
    assert.deepEqual(Object.keys(back.layers[0]!), ['q_proj', 'v_proj', 'down_proj']);
    assert.deepEqual(back.layers[1]!.down_proj!.B, adapter.layers[1]!.down_proj!.B);
    assert.equal(readSafetensorsHeader(path.join(dir, 'adapter_model.safetensors')).tensors.size, config.numLayers * 3 * 2);
  }
});

test('reads what PEFT writes: BF16 tensors, full module paths and "all-linear" in target_modules, unknown unset fields', () => {
  const config = llama();
  const adapter = randomAdapter(config, 2);
  const dir = freshDir();
  saveAdapter(dir, adapter, { dtype: 'BF16' });
  rewriteConfig(dir, (c) => {
    c.target_modules = 'all-linear';
    c.some_future_option = null;
    c.runtime_config = { ephemeral_gpu_offload: false };
    c.exclude_modules = [];
  });
  const back = loadAdapter(dir, config);
  assert.deepEqual(back.config.targets, [...LORA_TARGETS]);
  const b = back.layers[0]!.q_proj!.B;
  const a = adapter.layers[0]!.q_proj!.B;
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(b[i]! - a[i]!) <= Math.abs(a[i]!) / 128, 'bf16 rounding only');
  rewriteConfig(dir, (c) => (c.target_modules = ['self_attn.q_proj', 'k_proj', 'v_proj', 'o_proj', 'mlp.gate_proj', 'up_proj', 'down_proj']));
  assert.deepEqual(loadAdapter(dir, config).config.targets, [...LORA_TARGETS]);
});

test('config fields that plain LoRA cannot honour are refused, naming file and field', () => {
  const config = llama();
  const base = freshDir();
  saveAdapter(base, randomAdapter(config, 2));
  const cases: [string, (c: Record<string, unknown>) => void, RegExp][] = [
    ['use_dora', (c) => (c.use_dora = true), /"use_dora" = true.*DoRA/],
    ['use_rslora', (c) => (c.use_rslora = true), /"use_rslora" = true.*sqrt\(r\)/],
    ['layers_to_transform', (c) => (c.layers_to_transform = [0]), /"layers_to_transform" = \[0\]/],
    ['rank_pattern', (c) => (c.rank_pattern = { q_proj: 8 }), /"rank_pattern"/],
    ['alpha_pattern', (c) => (c.alpha_pattern = { 'model.layers.0.self_attn.q_proj': 4 }), /"alpha_pattern"/],
    ['bias', (c) => (c.bias = 'all'), /"bias" = "all"/],
    ['modules_to_save', (c) => (c.modules_to_save = ['lm_head']), /"modules_to_save"/],
    ['fan_in_fan_out', (c) => (c.fan_in_fan_out = true), /"fan_in_fan_out"/],
    ['peft_type', (c) => (c.peft_type = 'IA3'), /"peft_type" = "IA3"/],
    ['task_type', (c) => (c.task_type = 'SEQ_CLS'), /"task_type" = "SEQ_CLS"/],
    ['target_modules', (c) => (c.target_modules = ['q_proj', 'lm_head']), /"target_modules" lists "lm_head"/],
    ['target_modules', (c) => (c.target_modules = 'embed_tokens'), /"target_modules".*regular expression/],
    ['unknown field', (c) => (c.use_magic = true), /"use_magic" = true/],
  ];
  for (const [what, edit, pattern] of cases) {
    const dir = freshDir();
    fs.cpSync(base, dir, { recursive: true });
    rewriteConfig(dir, edit);
    expectError(() => loadAdapter(dir, config), UnsupportedModelError, pattern, /adapter_config\.json/);
  }
  const invalid: [(c: Record<string, unknown>) => void, RegExp][] = [
    [(c) => (c.r = 0), /"r" = 0/],
    [(c) => (c.r = '4'), /"r" = "4"/],
    [(c) => (c.lora_alpha = -1), /"lora_alpha" = -1/],
    [(c) => (c.lora_dropout = 1.5), /"lora_dropout" = 1.5/],
    [(c) => (c.target_modules = []), /"target_modules"/],
  ];
  for (const [edit, pattern] of invalid) {
    const dir = freshDir();
    fs.cpSync(base, dir, { recursive: true });
    rewriteConfig(dir, edit);
    expectError(() => loadAdapter(dir, config), InvalidModelError, pattern, /adapter_config\.json/);
  }
});

test('tensors that do not fit the base model are refused, naming file and tensor', () => {
  const config = llama();
  const base = freshDir();
  saveAdapter(base, randomAdapter(config, 2, ['q_proj', 'v_proj']));
  const q0A = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';
  const withTensors = (edit: Parameters<typeof rewriteTensors>[1]) => {
    const dir = freshDir();
    fs.cpSync(base, dir, { recursive: true });
    rewriteTensors(dir, edit);
    return dir;
  };
  // a module the config does not list
  let dir = withTensors((ts) => ts.push({ name: 'base_model.model.model.layers.0.mlp.up_proj.lora_A.weight', shape: [2, 64], data: new Float32Array(128) }));
  expectError(() => loadAdapter(dir, config), InvalidModelError, /adapter_model\.safetensors/, /unexpected tensor ".*mlp\.up_proj\.lora_A\.weight"/, /target_modules/);
  // a DoRA magnitude vector
  dir = withTensors((ts) => ts.push({ name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector', shape: [64], data: new Float32Array(64) }));
  expectError(() => loadAdapter(dir, config), InvalidModelError, /lora_magnitude_vector/, /DoRA/);
  // a layer the model does not have
  dir = withTensors((ts) => ts.push({ name: 'base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight', shape: [2, 64], data: new Float32Array(128) }));
  expectError(() => loadAdapter(dir, config), InvalidModelError, /layers\.7\./, /2 layers/);
  // a missing tensor
  dir = withTensors((ts) => ts.splice(ts.findIndex((t) => t.name === q0A), 1));
  expectError(() => loadAdapter(dir, config), InvalidModelError, new RegExp(`"${q0A.replace(/\./g, '\\.')}" is missing`), /\[2, 64\]/);
  // a shape mismatch (an adapter for a wider model)
  dir = withTensors((ts) => {
    const t = ts.find((x) => x.name === q0A)!;
    t.shape = [2, 128];
    t.data = new Float32Array(256);
  });
  expectError(() => loadAdapter(dir, config), InvalidModelError, /q_proj\.lora_A\.weight" has shape \[2, 128\]/, /\[2, 64\]/);
  // rank in the config disagrees with the tensors
  dir = freshDir();
  fs.cpSync(base, dir, { recursive: true });
  rewriteConfig(dir, (c) => (c.r = 3));
  expectError(() => loadAdapter(dir, config), InvalidModelError, /r = 3/);
});

test('missing files: no directory, no adapter_config.json, only the legacy .bin weights', () => {
  const config = llama();
  expectError(() => loadAdapter(path.join(root, 'nope'), config), InvalidModelError, /nope does not exist/);
  const dir = freshDir();
  fs.mkdirSync(dir);
  expectError(() => loadAdapter(dir, config), InvalidModelError, /no adapter_config\.json/);
  saveAdapter(dir, randomAdapter(config, 2));
  fs.renameSync(path.join(dir, 'adapter_model.safetensors'), path.join(dir, 'adapter_model.bin'));
  expectError(() => loadAdapter(dir, config), UnsupportedModelError, /adapter_model\.bin/, /safe_serialization/);
});
