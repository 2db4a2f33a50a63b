// Properties of the transformer that must hold exactly or to float32 rounding: the KV cache and
// prefill chunking change nothing, the TypeScript GEMM gives what BLAS gives, 16-bit checkpoints load
// to exactly the rounded values. (Agreement with llama.cpp is tested in llamacpp-equivalence.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../src/models/model.js';
import { loadModelConfig, loadModelWeights } from '../src/models/loader.js';
import { gemm, typescriptGemm, useGemm } from '../src/engine/blas.js';
import { bf16BitsToF32, f32ToBf16Bits, f16BitsToF32, f32ToF16Bits } from '../src/engine/half.js';
import { Random } from '../src/engine/random.js';
import { FAMILIES, tinyModelDir } from './helpers/tiny-models.js';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function randomTokens(n: number, vocab: number, seed: number): number[] {
  const rng = new Random(seed);
  return Array.from({ length: n }, () => Math.floor(rng.next() * vocab));
}

for (const family of FAMILIES) {
  test(`${family}: one forward over the prompt equals token-by-token decoding with the KV cache`, async () => {
    const m = await loadModel(tinyModelDir(family));
    const V = m.config.vocabSize;
    const tokens = randomTokens(40, m.tokenizer.size, 3);
    const all = m.transformer.forward(tokens, m.transformer.createCache(64), { allLogits: true });
    const cache = m.transformer.createCache(64);
    let worst = 0;
    for (let t = 0; t < tokens.length; t++) {
      const step = m.transformer.forward([tokens[t]!], cache);
      worst = Math.max(worst, maxAbsDiff(step, all.subarray(t * V, (t + 1) * V)));
    }
    assert.ok(worst < 1e-4, `max |Δlogit| ${worst}`);
    // Split prefill: the first 17 tokens, then the rest in one call.
    const c2 = m.transformer.createCache(64);
    m.transformer.forward(tokens.slice(0, 17), c2);
    const tail = m.transformer.forward(tokens.slice(17), c2, { allLogits: true });
    assert.ok(maxAbsDiff(tail, all.subarray(17 * V)) < 1e-4);
  });

  test(`${family}: prompts longer than one prefill chunk and attention block give the same logits`, async () => {
    const m = await loadModel(tinyModelDir(family));
    const tokens = randomTokens(700, m.tokenizer.size, 4);
    const whole = m.transformer.forward(tokens, m.transformer.createCache(800));
    const cache = m.transformer.createCache(800);
    m.transformer.forward(tokens.slice(0, 333), cache);
    const parts = m.transformer.forward(tokens.slice(333), cache);
    assert.ok(maxAbsDiff(whole, parts) < 1e-4);
  });

  test(`${family}: the TypeScript GEMM fallback gives BLAS's logits`, async () => {
    const m = await loadModel(tinyModelDir(family));
    const tokens = randomTokens(30, m.tokenizer.size, 5);
    const native = gemm();
    const a = m.transformer.forward(tokens, m.transformer.createCache(32));
    useGemm(typescriptGemm);
    try {
      const b = m.transformer.forward(tokens, m.transformer.createCache(32));
      assert.ok(maxAbsDiff(a, b) < 1e-4, `max |Δlogit| ${maxAbsDiff(a, b)}`);
    } finally {
      useGemm(native);
    }
  });
}

test('bf16 and f16 checkpoints load to exactly the rounded float32 values', () => {
  const f32Dir = tinyModelDir('qwen3', { seed: 9 });
  const config = loadModelConfig(f32Dir);
  const ref = loadModelWeights(f32Dir, config);
  for (const [dtype, round] of [
    ['BF16', (x: number) => bf16BitsToF32(f32ToBf16Bits(x))],
    ['F16', (x: number) => f16BitsToF32(f32ToF16Bits(x))],
  ] as const) {
    const dir = tinyModelDir('qwen3', { seed: 9, dtype });
    const w = loadModelWeights(dir, loadModelConfig(dir));
    for (const [a, b] of [[ref.embed, w.embed], [ref.layers[1]!.down, w.layers[1]!.down], [ref.finalNorm, w.finalNorm]] as const) {
      for (let i = 0; i < a.length; i += 7) assert.equal(b[i], Math.fround(round(a[i]!)), `${dtype} value ${i}`);
    }
  }
});
