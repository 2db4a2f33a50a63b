// The published config.json of every supported checkpoint size (test/fixtures/published-configs, sources
// in its README) loads through the strict config-field table and describes the published model: its
// tensors add up to the published parameter count, with tie_word_embeddings either way, Llama 3.1/3.2's
// llama3 rope scaling, Gemma 3's linear rope scaling on global layers (4B) against rope_local_base_freq
// on sliding layers, sliding_window and the layer pattern (layer_types or sliding_window_pattern).
// Fields the engine does not honour are refused by name. Sharded bf16 checkpoints load bit for bit.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseModelConfig, type ModelConfig } from '../src/models/config.js';
import { tensorSpecs } from '../src/models/weights.js';
import { initTinyModel } from '../src/models/tiny.js';
import { loadModelConfig, loadModelWeights } from '../src/models/loader.js';
import { readSafetensorsHeader, readTensorF32, writeSafetensors } from '../src/models/safetensors.js';
import { InvalidModelError, UnsupportedModelError } from '../src/errors.js';

const DIR = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'test', 'fixtures', 'published-configs');

function readFixture(name: string): Record<string, unknown> {
  const raw = JSON.parse(fs.readFileSync(path.join(DIR, `${name}.json`), 'utf8')) as Record<string, unknown>;
  // gemma-3-4b-it is multimodal: its language model is the text_config, run as Gemma3ForCausalLM.
  if (raw.text_config) return { architectures: ['Gemma3ForCausalLM'], ...(raw.text_config as Record<string, unknown>) };
  return raw;
}

interface Expected {
  params: number;
  tied: boolean;
  layers: number;
  globalLayers?: number[];
  check?: (c: ModelConfig) => void;
}

const llama3Rope = (factor: number) => (c: ModelConfig) => {
  assert.deepEqual(c.ropeScaling, { type: 'llama3', factor, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  assert.equal(c.ropeTheta, 500000);
  assert.ok(c.layerTypes.every((t) => t === 'full_attention'));
};
const qwen3 = (c: ModelConfig) => {
  assert.equal(c.ropeScaling, null);
  assert.equal(c.ropeTheta, 1000000);
  assert.equal(c.headDim, 128);
  assert.ok(c.qkNorm);
  assert.ok(c.layerTypes.every((t) => t === 'full_attention'));
};
const everySixth = (n: number) => Array.from({ length: Math.floor(n / 6) }, (_, i) => 6 * i + 5);

/** Published totals: keras-hub presets and the checkpoints' safetensors metadata (see the fixtures' README). */
const EXPECTED: Record<string, Expected> = {
  'gemma-3-270m': {
    params: 268_098_176, tied: true, layers: 18, globalLayers: everySixth(18),
    check: (c) => {
      assert.equal(c.slidingWindow, 512);
      assert.equal(c.ropeScaling, null);
      assert.equal(c.ropeLocalTheta, 10000);
      assert.equal(c.ropeTheta, 1000000);
    },
  },
  'gemma-3-1b-it': {
    params: 999_885_952, tied: true, layers: 26, globalLayers: everySixth(26),
    check: (c) => {
      assert.equal(c.slidingWindow, 512);
      assert.deepEqual(c.eosTokenIds, [1, 106]);
      assert.equal(c.ropeScaling, null);
    },
  },
  // Gemma3TextConfig's vocab_size default (262,208 rows, as the checkpoint stores them); keras-hub's
  // 3,880,099,328 is the same model with the embedding cut to the tokenizer's 262,144 rows.
  'gemma-3-4b-it': {
    params: 3_880_099_328 + 64 * 2560, tied: true, layers: 34, globalLayers: everySixth(34),
    check: (c) => {
      assert.deepEqual(c.ropeScaling, { type: 'linear', factor: 8 });
      assert.equal(c.ropeTheta, 1000000);
      assert.equal(c.ropeLocalTheta, 10000);
      assert.equal(c.slidingWindow, 1024);
      assert.deepEqual([c.numHeads, c.numKvHeads, c.headDim, c.vocabSize, c.maxPositionEmbeddings], [8, 4, 256, 262208, 131072]);
      assert.equal(c.attnScale, 1 / 16);
    },
  },
  'Qwen3-0.6B': { params: 596_049_920, tied: true, layers: 28, check: qwen3 },
  'Qwen3-1.7B': { params: 1_720_574_976, tied: true, layers: 28, check: qwen3 },
  'Qwen3-4B': { params: 4_022_468_096, tied: true, layers: 36, check: qwen3 },
  'Qwen3-8B': { params: 8_190_735_360, tied: false, layers: 36, check: qwen3 },
  'Llama-3.2-1B': { params: 1_235_814_400, tied: true, layers: 16, check: llama3Rope(32) },
  'Llama-3.2-3B': { params: 3_212_749_824, tied: true, layers: 28, check: llama3Rope(32) },
  'Llama-3.1-8B': { params: 8_030_261_248, tied: false, layers: 32, check: llama3Rope(8) },
};

test('every fixture has an expectation and every expectation a fixture', () => {
  const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
  assert.deepEqual(files, Object.keys(EXPECTED).sort());
});

for (const [name, e] of Object.entries(EXPECTED)) {
  test(`${name}: the published config loads and describes the published model (${e.params.toLocaleString('en')} parameters)`, () => {
    const c = parseModelConfig(readFixture(name), `${name}.json`);
    const specs = tensorSpecs(c);
    const total = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
    assert.equal(total, e.params, 'parameter count');
    assert.equal(c.tieWordEmbeddings, e.tied);
    assert.equal(specs.some((s) => s.name === 'lm_head.weight'), !e.tied);
    assert.equal(c.numLayers, e.layers);
    assert.equal(c.layerTypes.length, e.layers);
    if (e.globalLayers) {
      assert.deepEqual(c.layerTypes.flatMap((t, i) => (t === 'full_attention' ? [i] : [])), e.globalLayers);
      assert.equal(c.normWeightOffset, 1);
      assert.ok(c.sandwichNorms && c.qkNorm);
      assert.equal(c.hiddenAct, 'gelu_tanh');
    }
    e.check?.(c);
  });
}

const gemma = () => readFixture('gemma-3-270m');

test('fields the engine does not honour are refused by name, never ignored', () => {
  const refused: [string, Record<string, unknown>, RegExp][] = [
    ['final_logit_softcapping', { ...gemma(), final_logit_softcapping: 30 }, /final_logit_softcapping/],
    ['attn_logit_softcapping', { ...gemma(), attn_logit_softcapping: 50 }, /attn_logit_softcapping/],
    ['attention_dropout', { ...readFixture('Qwen3-0.6B'), attention_dropout: 0.1 }, /attention_dropout/],
    ['use_sliding_window', { ...readFixture('Qwen3-0.6B'), use_sliding_window: true, sliding_window: 4096 }, /use_sliding_window/],
    ['an unknown field', { ...readFixture('Llama-3.2-1B'), rope_parameters: { rope_type: 'llama3' } }, /rope_parameters/],
    ['a rope type', { ...readFixture('Llama-3.2-1B'), rope_scaling: { rope_type: 'yarn', factor: 4 } }, /rope_scaling/],
    ['bias terms', { ...readFixture('Llama-3.1-8B'), attention_bias: true }, /attention_bias/],
    ['a bidirectional Gemma', { ...gemma(), use_bidirectional_attention: true }, /use_bidirectional_attention/],
  ];
  for (const [what, cfg, re] of refused) {
    assert.throws(() => parseModelConfig(cfg, 'config.json'), (e: Error) => e instanceof UnsupportedModelError && re.test(e.message), what);
  }
  const contradiction = { ...gemma(), _sliding_window_pattern: 3 };
  assert.throws(() => parseModelConfig(contradiction, 'config.json'), (e: Error) => e instanceof InvalidModelError && /_sliding_window_pattern = 3 contradicts layer_types/.test(e.message));
  // The multimodal wrapper itself is not a text model tunekit runs.
  const wrapper = JSON.parse(fs.readFileSync(path.join(DIR, 'gemma-3-4b-it.json'), 'utf8')) as Record<string, unknown>;
  assert.throws(() => parseModelConfig(wrapper, 'config.json'), /Gemma3ForConditionalGeneration/);
});

test('tie_word_embeddings defaults as Hugging Face defaults it (Llama and Qwen3 untied, Gemma 3 tied)', () => {
  for (const name of ['Llama-3.2-1B', 'Qwen3-0.6B', 'gemma-3-270m']) {
    const cfg = readFixture(name);
    delete cfg.tie_word_embeddings;
    assert.equal(parseModelConfig(cfg).tieWordEmbeddings, name.startsWith('gemma'), name);
  }
});

test('a sharded bf16 checkpoint (model.safetensors.index.json, three shards) loads bit for bit as the single file does', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-sharded-'));
  try {
    const single = path.join(root, 'single');
    initTinyModel({ family: 'gemma3', size: 'tiny', seed: 3, out: single, dtype: 'BF16' });
    const sharded = path.join(root, 'sharded');
    fs.mkdirSync(sharded);
    for (const f of fs.readdirSync(single)) if (f !== 'model.safetensors') fs.copyFileSync(path.join(single, f), path.join(sharded, f));
    const config = loadModelConfig(single);
    const header = readSafetensorsHeader(path.join(single, 'model.safetensors'));
    const specs = tensorSpecs(config);
    const weightMap: Record<string, string> = {};
    const shards = 3;
    for (let k = 0; k < shards; k++) {
      const file = `model-0000${k + 1}-of-0000${shards}.safetensors`;
      const part = specs.filter((_, i) => i % shards === k);
      for (const s of part) weightMap[s.name] = file;
      writeSafetensors(path.join(sharded, file), part.map((s) => ({ name: s.name, shape: s.shape, data: readTensorF32(header, s.name) })), 'BF16');
    }
    fs.writeFileSync(path.join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    for (let k = 0; k < shards; k++) {
      const h = readSafetensorsHeader(path.join(sharded, `model-0000${k + 1}-of-0000${shards}.safetensors`));
      for (const info of h.tensors.values()) assert.equal(info.dtype, 'BF16');
    }
    const a = loadModelWeights(single, config);
    const b = loadModelWeights(sharded, config);
    for (const s of specs) {
      const get = (w: typeof a) => (s.layer === null ? w[s.slot as 'embed'] : w.layers[s.layer]![s.slot as 'q']!);
      assert.deepEqual(get(b), get(a), s.name);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
