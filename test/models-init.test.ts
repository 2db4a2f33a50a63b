// Random models start where Hugging Face's do: `small` weights drawn as _init_weights draws them give a
// first loss within a few nats of ln(V) (a uniform guess) through the trainer's evaluation path, and
// the weights have the configured statistics (linear and embedding std = initializer_range, mean 0,
// the padding row zero, norms exactly at their neutral value: 1, or 0 for Gemma's 1 + w).
// The published widths and vocabularies are kept; depth is cut to 2 layers so the suite stays small
// (with std 0.02 every block adds a small update to the residual stream, so depth barely moves the
// first loss; the 30-layer SmolLM2 shape is checked in full as well).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialWeights, tinyModelSpec, INITIALIZER_RANGE } from '../src/models/tiny.js';
import { parseModelConfig, type Family } from '../src/models/config.js';
import { assembleWeights } from '../src/models/weights.js';
import { TrainableModel } from '../src/train/trainable-model.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';

const TEXT = 'The quick brown fox jumps over the lazy dog. Models start from random weights, then learn.';

function smallModel(family: Family, layers: number | null) {
  const spec = tinyModelSpec({ family, size: 'small' });
  const cfg = { ...spec.config };
  if (layers !== null) {
    cfg.num_hidden_layers = layers;
    if (Array.isArray(cfg.layer_types)) cfg.layer_types = (cfg.layer_types as string[]).slice(0, layers - 1).concat('full_attention');
  }
  const config = parseModelConfig(cfg, `${family} small`);
  const tensors = initialWeights(config, 7, 'hf');
  const byName = new Map(tensors.map((t) => [t.name, t.data]));
  const weights = assembleWeights(config, (s) => byName.get(s.name)!);
  const files = spec.tokenizer.files as Record<string, unknown>;
  const tokenizer = Tokenizer.fromFiles({ tokenizer: files['tokenizer.json'] as never, config: files['tokenizer_config.json'] as never });
  return { config, tensors, weights, tokenizer };
}

function initialLoss(m: ReturnType<typeof smallModel>): { loss: number; lnV: number } {
  const { config, weights, tokenizer } = m;
  const ids = tokenizer.encode(TEXT);
  const N = ids.length;
  const tm = new TrainableModel(config, weights, { maxTokens: N });
  const targets = new Int32Array(N).fill(-1);
  for (let i = 0; i + 1 < N; i++) targets[i] = ids[i + 1]!;
  const r = tm.evaluate({ N, tokens: Int32Array.from(ids), targets, positions: Int32Array.from({ length: N }, (_, i) => i), segStart: new Int32Array(N) });
  return { loss: r.lossSum / r.count, lnV: Math.log(config.vocabSize) };
}

for (const family of ['llama', 'qwen3', 'gemma3'] as Family[]) {
  test(`${family} small: the first loss of a fresh model is within 2 nats of ln(V); weights have Hugging Face's initial statistics`, (t) => {
    const m = smallModel(family, 2);
    const { loss, lnV } = initialLoss(m);
    t.diagnostic(`${family}: initial loss ${loss.toFixed(3)}, ln(V) ${lnV.toFixed(3)}`);
    assert.ok(Math.abs(loss - lnV) < 2, `initial loss ${loss} vs ln(V) ${lnV}`);
    const { config, tensors } = m;
    const neutral = family === 'gemma3' ? 0 : 1;
    for (const t of tensors) {
      if (t.name.endsWith('norm.weight')) {
        assert.ok(t.data.every((x) => x === neutral), `${t.name} is all ${neutral}`);
        continue;
      }
      let sum = 0, sq = 0;
      for (const x of t.data) { sum += x; sq += x * x; }
      let n = t.data.length;
      if (t.name === 'model.embed_tokens.weight' && config.padTokenId !== null) {
        const C = config.hiddenSize;
        assert.ok(t.data.subarray(config.padTokenId * C, (config.padTokenId + 1) * C).every((x) => x === 0), 'padding row is zero');
        n -= C;
      }
      const mean = sum / n;
      const std = Math.sqrt(sq / n - mean * mean);
      assert.ok(Math.abs(mean) < 5 * INITIALIZER_RANGE / Math.sqrt(n) + 1e-6, `${t.name}: mean ${mean}`);
      assert.ok(Math.abs(std / INITIALIZER_RANGE - 1) < 0.02, `${t.name}: std ${std}`);
    }
  });
}

test('llama small at full depth (SmolLM2-135M shapes, 30 layers): the first loss is within 2 nats of ln(V)', (t) => {
  const { loss, lnV } = initialLoss(smallModel('llama', null));
  t.diagnostic(`initial loss ${loss.toFixed(3)}, ln(V) ${lnV.toFixed(3)}`);
  assert.ok(Math.abs(loss - lnV) < 2, `initial loss ${loss} vs ln(V) ${lnV}`);
});

test('the wide scheme of tiny models is unchanged: norms scatter around neutral, linears 1/sqrt(fan_in)', () => {
  const spec = tinyModelSpec({ family: 'qwen3', size: 'tiny' });
  const tensors = initialWeights(spec.parsed, 1, 'wide');
  const q = tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')!;
  let sq = 0;
  for (const x of q.data) sq += x * x;
  assert.ok(Math.abs(Math.sqrt(sq / q.data.length) * Math.sqrt(q.shape[1]!) - 1) < 0.1);
});
