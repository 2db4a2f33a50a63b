// What exportGguf writes, read back with our GGUF reader and checked against the Hugging Face
// checkpoint: keys and their types, the vocabulary layout, tensor names per architecture, and the
// three weight rewrites (Llama Q/K row permutation, Gemma 1+w norms, llama3 rope_freqs). Configs
// llama.cpp cannot represent are refused with an UnsupportedModelError and leave no file.
// (That llama.cpp then runs these files as our transformer does is llamacpp-equivalence.test.ts.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { exportGguf, permuteForInterleavedRope } from '../src/export/gguf.js';
import { readGgufHeader, readGgufTensorF32, type GgufFile } from '../src/export/gguf-reader.js';
import { GGUF_TOKEN_TYPE, GGUF_TENSOR_NAMES } from '../src/export/gguf-keys.js';
import { initTinyModel } from '../src/models/tiny.js';
import { loadModelConfig } from '../src/models/loader.js';
import { openWeightFiles } from '../src/models/loader.js';
import { readTensorF32 } from '../src/models/safetensors.js';
import { ropeInverseFrequencies } from '../src/engine/rope.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { UnsupportedModelError } from '../src/errors.js';
import type { Family } from '../src/models/config.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-gguf-export-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));

const models = new Map<Family, { dir: string; file: string; g: GgufFile }>();
async function exported(family: Family) {
  let e = models.get(family);
  if (!e) {
    const dir = path.join(root, family);
    initTinyModel({ family, size: 'tiny', seed: 5, out: dir });
    const file = path.join(root, `${family}.gguf`);
    await exportGguf({ modelDir: dir, out: file, dtype: 'f32' });
    e = { dir, file, g: readGgufHeader(file) };
    models.set(family, e);
  }
  return e;
}

function hfTensor(dir: string, name: string): Float32Array {
  const header = openWeightFiles(dir).byTensor.get(name);
  assert.ok(header, name);
  return readTensorF32(header, name);
}

function value(g: GgufFile, key: string): unknown {
  const v = g.metadata.get(key);
  assert.ok(v, `missing key ${key}`);
  return v;
}

const EXPECTED: Record<Family, { arch: string; pre: string; extra: Record<string, unknown> }> = {
  llama: { arch: 'llama', pre: 'llama-bpe', extra: {} },
  qwen3: { arch: 'qwen3', pre: 'qwen2', extra: {} },
  gemma3: {
    arch: 'gemma3',
    pre: 'llama-bpe',
    extra: {
      'gemma3.attention.sliding_window': { type: 'u32', value: 8 },
      'gemma3.attention.sliding_window_pattern': { type: 'u32', value: 6 },
      'gemma3.rope.freq_base_swa': { type: 'f32', value: 10000 },
    },
  },
};

for (const family of ['llama', 'qwen3', 'gemma3'] as Family[]) {
  test(`${family}: hyper-parameters are written under the architecture with llama.cpp's value types`, async () => {
    const { dir, g } = await exported(family);
    const c = loadModelConfig(dir);
    const a = EXPECTED[family].arch;
    assert.deepEqual(value(g, 'general.architecture'), { type: 'string', value: a });
    assert.deepEqual(value(g, 'general.alignment'), { type: 'u32', value: 32 });
    assert.deepEqual(value(g, 'general.file_type'), { type: 'u32', value: 0 });
    const u32 = (value: number) => ({ type: 'u32', value });
    const f32 = (value: number) => ({ type: 'f32', value: Math.fround(value) });
    const expected: Record<string, unknown> = {
      [`${a}.context_length`]: u32(c.maxPositionEmbeddings),
      [`${a}.embedding_length`]: u32(c.hiddenSize),
      [`${a}.block_count`]: u32(c.numLayers),
      [`${a}.feed_forward_length`]: u32(c.intermediateSize),
      [`${a}.attention.head_count`]: u32(c.numHeads),
      [`${a}.attention.head_count_kv`]: u32(c.numKvHeads),
      [`${a}.attention.key_length`]: u32(c.headDim),
      [`${a}.attention.value_length`]: u32(c.headDim),
      [`${a}.attention.layer_norm_rms_epsilon`]: f32(c.rmsNormEps),
      [`${a}.rope.dimension_count`]: u32(c.headDim),
      [`${a}.rope.freq_base`]: f32(c.ropeTheta),
      [`${a}.vocab_size`]: u32(c.vocabSize),
      ...EXPECTED[family].extra,
    };
    for (const [k, v] of Object.entries(expected)) assert.deepEqual(value(g, k), v, k);
    for (const key of g.metadata.keys()) {
      assert.ok(/^(general|tokenizer)\./.test(key) || key.startsWith(`${a}.`), `stray key ${key}`);
    }
  });

  test(`${family}: the vocabulary is padded to vocab_size with unused [PAD] tokens, specials typed as control`, async () => {
    const { dir, g } = await exported(family);
    const c = loadModelConfig(dir);
    const tok = Tokenizer.loadSync(dir);
    const tj = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as {
      model: { merges: (string | string[])[] }; added_tokens: { id: number; special: boolean }[];
    };
    const added = new Map(tj.added_tokens.map((t) => [t.id, t.special]));
    const tokens = (value(g, 'tokenizer.ggml.tokens') as { value: string[] }).value;
    const types = (value(g, 'tokenizer.ggml.token_type') as { itemType: string; value: number[] });
    assert.equal(types.itemType, 'i32');
    assert.equal(tokens.length, c.vocabSize);
    assert.equal(types.value.length, c.vocabSize);
    assert.ok(tok.size < c.vocabSize, 'the tiny models pad their vocabulary');
    for (let id = 0; id < c.vocabSize; id++) {
      if (id >= tok.size) {
        assert.equal(tokens[id], `[PAD${id}]`);
        assert.equal(types.value[id], GGUF_TOKEN_TYPE.unused);
      } else {
        assert.equal(tokens[id], tok.idToToken(id), `token ${id}`);
        const a = added.get(id);
        const expectedType = a === undefined ? GGUF_TOKEN_TYPE.normal : a ? GGUF_TOKEN_TYPE.control : GGUF_TOKEN_TYPE.userDefined;
        assert.equal(types.value[id], expectedType, `type of ${tokens[id]}`);
      }
    }
    if (family === 'qwen3') assert.equal(types.value[tok.tokenToId('<think>')!], GGUF_TOKEN_TYPE.userDefined);
    assert.deepEqual(value(g, 'tokenizer.ggml.model'), { type: 'string', value: 'gpt2' });
    assert.deepEqual(value(g, 'tokenizer.ggml.pre'), { type: 'string', value: EXPECTED[family].pre });
    const merges = (value(g, 'tokenizer.ggml.merges') as { value: string[] }).value;
    assert.deepEqual(merges, tj.model.merges.map((m) => (typeof m === 'string' ? m : m.join(' '))));
    if (tok.bosTokenId !== null) assert.deepEqual(value(g, 'tokenizer.ggml.bos_token_id'), { type: 'u32', value: tok.bosTokenId });
    else assert.equal(g.metadata.get('tokenizer.ggml.bos_token_id'), undefined);
    assert.deepEqual(value(g, 'tokenizer.ggml.eos_token_id'), { type: 'u32', value: tok.eosTokenIds[0] });
    // The token that closes an assistant turn in the template.
    const eot = (value(g, 'tokenizer.ggml.eot_token_id') as { value: number }).value;
    assert.equal(tok.idToToken(eot), { llama: '<|eot_id|>', qwen3: '<|im_end|>', gemma3: '<end_of_turn>' }[family]);
    assert.deepEqual(value(g, 'tokenizer.ggml.add_bos_token'), { type: 'bool', value: family !== 'qwen3' });
    assert.deepEqual(value(g, 'tokenizer.ggml.add_eos_token'), { type: 'bool', value: false });
    if (tok.padTokenId !== null) assert.deepEqual(value(g, 'tokenizer.ggml.padding_token_id'), { type: 'u32', value: tok.padTokenId });
  });

  test(`${family}: tensor names come from the architecture's table; tied embeddings write no output tensor`, async () => {
    const { dir, g } = await exported(family);
    const c = loadModelConfig(dir);
    const names = g.tensors.map((t) => t.name);
    const perLayer = Object.values(GGUF_TENSOR_NAMES[EXPECTED[family].arch as Family]).filter((n) => n!.includes('{bid}'));
    const expected = ['token_embd.weight', 'output_norm.weight'];
    if (c.ropeScaling?.type === 'llama3') expected.push('rope_freqs.weight');
    for (let l = 0; l < c.numLayers; l++) for (const n of perLayer) expected.push(n!.replace('{bid}', String(l)));
    assert.deepEqual([...names].sort(), expected.sort());
    assert.ok(!names.includes('output.weight'));
    assert.deepEqual(g.tensors.find((t) => t.name === 'blk.0.ffn_down.weight')!.shape, [c.hiddenSize, c.intermediateSize]);
  });
}

test('llama: Q and K rows are permuted per head for the interleaved rope; V, O and the rest are copied', async () => {
  const { dir, g } = await exported('llama');
  const c = loadModelConfig(dir);
  const HD = c.headDim;
  for (const [hf, name, heads] of [
    ['model.layers.1.self_attn.q_proj.weight', 'blk.1.attn_q.weight', c.numHeads],
    ['model.layers.1.self_attn.k_proj.weight', 'blk.1.attn_k.weight', c.numKvHeads],
  ] as const) {
    const src = hfTensor(dir, hf);
    const out = readGgufTensorF32(g, name);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < HD / 2; i++) {
        for (const [row, from] of [[h * HD + 2 * i, h * HD + i], [h * HD + 2 * i + 1, h * HD + HD / 2 + i]]) {
          assert.deepEqual(out.subarray(row * c.hiddenSize, (row + 1) * c.hiddenSize), src.subarray(from! * c.hiddenSize, (from! + 1) * c.hiddenSize), `${name} row ${row}`);
        }
      }
    }
    assert.deepEqual(out, permuteForInterleavedRope(src, heads, HD, c.hiddenSize));
  }
  assert.deepEqual(readGgufTensorF32(g, 'blk.1.attn_v.weight'), hfTensor(dir, 'model.layers.1.self_attn.v_proj.weight'));
  assert.deepEqual(readGgufTensorF32(g, 'blk.0.attn_output.weight'), hfTensor(dir, 'model.layers.0.self_attn.o_proj.weight'));
  assert.deepEqual(readGgufTensorF32(g, 'blk.0.attn_norm.weight'), hfTensor(dir, 'model.layers.0.input_layernorm.weight'));
  assert.deepEqual(readGgufTensorF32(g, 'token_embd.weight'), hfTensor(dir, 'model.embed_tokens.weight'));
});

test('llama: llama3 rope scaling becomes rope_freqs, the divisors that turn plain frequencies into scaled ones', async () => {
  const { dir, g } = await exported('llama');
  const c = loadModelConfig(dir);
  assert.equal(c.ropeScaling?.type, 'llama3');
  const factors = readGgufTensorF32(g, 'rope_freqs.weight');
  const plain = ropeInverseFrequencies(c.headDim, c.ropeTheta, null);
  const scaled = ropeInverseFrequencies(c.headDim, c.ropeTheta, c.ropeScaling);
  assert.equal(factors.length, c.headDim / 2);
  for (let i = 0; i < factors.length; i++) {
    assert.ok(Math.abs(plain[i]! / factors[i]! / scaled[i]! - 1) < 1e-6, `frequency ${i}: ${plain[i]! / factors[i]!} vs ${scaled[i]}`);
  }
  assert.ok(factors.some((f) => f > 1) && factors.some((f) => f === 1), 'the tiny llama has scaled and unscaled frequencies');
  assert.equal(g.metadata.get('llama.rope.scaling.type'), undefined);
});

test('gemma3: every norm weight w is stored as 1 + w; qwen3 norms are copied', async () => {
  const { dir, g } = await exported('gemma3');
  const pairs: [string, string][] = [
    ['model.layers.2.input_layernorm.weight', 'blk.2.attn_norm.weight'],
    ['model.layers.2.self_attn.q_norm.weight', 'blk.2.attn_q_norm.weight'],
    ['model.layers.2.self_attn.k_norm.weight', 'blk.2.attn_k_norm.weight'],
    ['model.layers.2.post_attention_layernorm.weight', 'blk.2.post_attention_norm.weight'],
    ['model.layers.2.pre_feedforward_layernorm.weight', 'blk.2.ffn_norm.weight'],
    ['model.layers.2.post_feedforward_layernorm.weight', 'blk.2.post_ffw_norm.weight'],
    ['model.norm.weight', 'output_norm.weight'],
  ];
  for (const [hf, name] of pairs) {
    assert.deepEqual(readGgufTensorF32(g, name), hfTensor(dir, hf).map((w) => Math.fround(1 + w)), name);
  }
  assert.deepEqual(readGgufTensorF32(g, 'blk.2.attn_q.weight'), hfTensor(dir, 'model.layers.2.self_attn.q_proj.weight'), 'no permutation for NEOX rope');
  const q = await exported('qwen3');
  assert.deepEqual(readGgufTensorF32(q.g, 'blk.1.attn_q_norm.weight'), hfTensor(q.dir, 'model.layers.1.self_attn.q_norm.weight'));
  assert.deepEqual(readGgufTensorF32(q.g, 'blk.1.ffn_norm.weight'), hfTensor(q.dir, 'model.layers.1.post_attention_layernorm.weight'));
});

/** A tiny checkpoint with its config.json edited (shapes unchanged). */
function editedModel(family: Family, name: string, edit: (cfg: Record<string, unknown>) => void): string {
  const dir = path.join(root, name);
  initTinyModel({ family, size: 'tiny', seed: 5, out: dir });
  const file = path.join(dir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(cfg);
  fs.writeFileSync(file, JSON.stringify(cfg));
  return dir;
}

test('configs llama.cpp cannot represent are UnsupportedModelErrors naming the field, and write nothing', async () => {
  const cases: [string, Family, (cfg: Record<string, unknown>) => void, RegExp][] = [
    ['irregular-layers', 'gemma3', (c) => {
      c.layer_types = ['sliding_attention', 'full_attention', 'sliding_attention', 'sliding_attention', 'sliding_attention', 'full_attention'];
    }, /layer_types.*every 2-th layer global.*layer 3/],
    ['global-first', 'gemma3', (c) => {
      c.layer_types = ['full_attention', 'sliding_attention', 'sliding_attention', 'sliding_attention', 'sliding_attention', 'sliding_attention'];
    }, /layer_types/],
    ['query-scalar', 'gemma3', (c) => (c.query_pre_attn_scalar = 64), /query_pre_attn_scalar = 64.*1\/sqrt\(head_dim\)/],
  ];
  for (const [name, family, edit, message] of cases) {
    const dir = editedModel(family, name, edit);
    const out = path.join(root, 'refused', `${name}.gguf`);
    await assert.rejects(exportGguf({ modelDir: dir, out, dtype: 'f32' }), (err: unknown) => {
      assert.ok(err instanceof UnsupportedModelError, `${name}: ${String(err)}`);
      assert.match((err as Error).message, message, name);
      return true;
    });
    assert.ok(!fs.existsSync(out), `${name}: no file`);
  }
});

test('a tokenizer whose pre-tokenizer regex llama.cpp does not implement is refused', async () => {
  const dir = editedModel('qwen3', 'odd-regex', () => undefined);
  const file = path.join(dir, 'tokenizer.json');
  const tj = JSON.parse(fs.readFileSync(file, 'utf8')) as { pre_tokenizer: { pretokenizers: { pattern?: { Regex: string } }[] } };
  tj.pre_tokenizer.pretokenizers[0]!.pattern!.Regex = "'s|'t|\\p{L}+|\\p{N}+|\\s+";
  fs.writeFileSync(file, JSON.stringify(tj));
  await assert.rejects(exportGguf({ modelDir: dir, out: path.join(root, 'odd.gguf'), dtype: 'f32' }), (err: unknown) => {
    assert.ok(err instanceof UnsupportedModelError);
    assert.match((err as Error).message, /pre-tokenizer regex .* is not one llama\.cpp implements/);
    return true;
  });
});

test('gemma3 layer patterns llama.cpp can express are written as the pattern key', async () => {
  const every3 = editedModel('gemma3', 'every3', (c) => {
    c.layer_types = Array.from({ length: 6 }, (_, i) => ((i + 1) % 3 === 0 ? 'full_attention' : 'sliding_attention'));
  });
  const out = path.join(root, 'every3.gguf');
  await exportGguf({ modelDir: every3, out, dtype: 'f32' });
  assert.deepEqual(readGgufHeader(out).metadata.get('gemma3.attention.sliding_window_pattern'), { type: 'u32', value: 3 });
  const none = editedModel('gemma3', 'none-sliding', (c) => (c.layer_types = Array.from({ length: 6 }, () => 'full_attention')));
  const out2 = path.join(root, 'none.gguf');
  await exportGguf({ modelDir: none, out: out2, dtype: 'f32' });
  const meta = readGgufHeader(out2).metadata;
  assert.equal(meta.get('gemma3.attention.sliding_window'), undefined, 'no window key: llama.cpp then treats every layer as global');
  assert.equal(meta.get('gemma3.attention.sliding_window_pattern'), undefined);
});

test('linear rope scaling is written as rope.scaling.type and factor', async () => {
  const dir = editedModel('qwen3', 'linear', (c) => (c.rope_scaling = { rope_type: 'linear', factor: 4 }));
  const out = path.join(root, 'linear.gguf');
  await exportGguf({ modelDir: dir, out, dtype: 'f16' });
  const g = readGgufHeader(out);
  assert.deepEqual(g.metadata.get('qwen3.rope.scaling.type'), { type: 'string', value: 'linear' });
  assert.deepEqual(g.metadata.get('qwen3.rope.scaling.factor'), { type: 'f32', value: 4 });
  assert.deepEqual(g.metadata.get('general.file_type'), { type: 'u32', value: 1 });
  const embd = g.tensors.find((t) => t.name === 'token_embd.weight')!;
  assert.equal(embd.type, 'F16');
  assert.equal(g.tensors.find((t) => t.name === 'blk.0.attn_q_norm.weight')!.type, 'F32');
});

test('an NFC normalizer (Qwen2/Qwen3 tokenizers) exports as llama.cpp\'s converter does; other normalizers are refused', async () => {
  const setNormalizer = (name: string, normalizer: unknown) => {
    const dir = editedModel('qwen3', name, () => undefined);
    const file = path.join(dir, 'tokenizer.json');
    const tj = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    tj.normalizer = normalizer;
    fs.writeFileSync(file, JSON.stringify(tj));
    return dir;
  };
  const nfc = setNormalizer('nfc', { type: 'NFC' });
  const out = path.join(root, 'nfc.gguf');
  await exportGguf({ modelDir: nfc, out, dtype: 'f32' });
  assert.equal((readGgufHeader(out).metadata.get('tokenizer.ggml.pre') as { value: string }).value, 'qwen2');
  const lower = setNormalizer('lowercase', { type: 'Lowercase' });
  await assert.rejects(exportGguf({ modelDir: lower, out: path.join(root, 'lower.gguf'), dtype: 'f32' }), (err: unknown) =>
    err instanceof UnsupportedModelError && /normalizer "Lowercase"/.test((err as Error).message));
});
