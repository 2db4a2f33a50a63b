// Analytic gradients of the hand-written backward pass against central finite differences of the
// loss, for every architecture: LoRA pairs, and every kind of base weight in full fine-tuning
// (embedding / tied output layer, norms incl. Gemma's (1+w) and q/k norms, every projection).
// Float32 throughout, so entries are compared where the gradient is large enough for a float32
// difference quotient to resolve it (ε = 1e-2): relative error < 2e-2 on the largest entries of each
// tensor. Packed examples, sliding windows (Gemma's tiny window of 8) and GQA are all exercised.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../src/models/model.js';
import { defaultLoraConfig, initLoraAdapter, loraParameterCount, type LoraConfig } from '../src/lora/lora.js';
import type { ModelConfig } from '../src/models/config.js';
import { TrainableModel, type TrainBatch } from '../src/train/trainable-model.js';
import { tensorSpecs, getTensor, assembleWeights } from '../src/models/weights.js';
import { Random } from '../src/engine/random.js';
import { FAMILIES, tinyModelDir } from './helpers/tiny-models.js';
import { randomPackedBatch } from './helpers/train-batch.js';

const EPS = 1e-2;
const TOLERANCE = 2e-2;

let checked = 0;

function checkEntries(name: string, params: Float32Array, grads: Float32Array, count: number, loss: () => number, k: number): number {
  const idx = Array.from(grads.keys()).sort((a, b) => Math.abs(grads[b]!) - Math.abs(grads[a]!)).slice(0, k);
  let worst = 0;
  for (const i of idx) {
    const g = grads[i]! / count;
    if (Math.abs(g) < 1e-3) continue; // below what a float32 difference quotient resolves
    const old = params[i]!;
    params[i] = old + EPS;
    const lp = loss();
    params[i] = old - EPS;
    const lm = loss();
    params[i] = old;
    const fd = (lp - lm) / (2 * EPS);
    const rel = Math.abs(fd - g) / Math.abs(g);
    worst = Math.max(worst, rel);
    checked++;
    assert.ok(rel < TOLERANCE, `${name}[${i}]: analytic ${g}, finite difference ${fd}`);
  }
  return worst;
}

/** A LoRA adapter with B drawn at random (so A gets gradients too) and zeroed gradient buffers, each one flat vector. */
function randomLora(config: ModelConfig, lc: LoraConfig) {
  const n = loraParameterCount(config, lc);
  const params = new Float32Array(n);
  const grads = new Float32Array(n);
  const lora = initLoraAdapter(config, lc, 7, params);
  const rng = new Random(3);
  for (const layer of lora.layers) for (const p of Object.values(layer)) rng.fillNormal(p!.B, 0, 0.05);
  const loraGrads = initLoraAdapter(config, lc, 7, grads);
  grads.fill(0);
  return { lora, loraGrads, params, grads };
}

function batchFor(vocab: number): TrainBatch {
  return randomPackedBatch([9, 14, 20], vocab, 5);
}

for (const family of FAMILIES) {
  test(`${family}: LoRA gradients match finite differences; recompute gives identical gradients`, async () => {
    const m = await loadModel(tinyModelDir(family));
    const lc = defaultLoraConfig(4);
    const n = loraParameterCount(m.config, lc);
    const { lora, loraGrads, grads } = randomLora(m.config, lc);
    const batch = batchFor(m.tokenizer.size);
    const tm = new TrainableModel(m.config, m.weights, { maxTokens: batch.N, lora, loraGrads });
    const { count } = tm.forwardBackward(batch, 1);
    const loss = () => { const r = tm.evaluate(batch); return r.lossSum / r.count; };
    // Per layer and target, the largest entries of A and of B.
    for (const [l, layer] of lora.layers.entries()) {
      for (const [t, p] of Object.entries(layer)) {
        const gp = loraGrads.layers[l]![t as keyof typeof layer]!;
        checkEntries(`layer ${l} ${t}.A`, p!.A, gp.A, count, loss, 2);
        checkEntries(`layer ${l} ${t}.B`, p!.B, gp.B, count, loss, 2);
      }
    }
    assert.ok(checked >= 2 * 7 * m.config.numLayers, `only ${checked} LoRA entries had gradients large enough to check`);
    checked = 0;
    // Recomputing every layer's activations, or only the last ones', gives the same gradients bit for bit.
    for (const recomputeLayers of [m.config.numLayers, Math.ceil(m.config.numLayers / 2)]) {
      const grads2 = new Float32Array(n);
      const loraGrads2 = initLoraAdapter(m.config, lc, 7, grads2);
      grads2.fill(0);
      const tr = new TrainableModel(m.config, m.weights, { maxTokens: batch.N, lora, loraGrads: loraGrads2, recomputeLayers });
      tr.forwardBackward(batch, 1);
      assert.deepEqual(grads2, grads, `${recomputeLayers} layers recomputed`);
    }
  });

  test(`${family}: full fine-tuning gradients of every base tensor kind match finite differences`, async () => {
    const m = await loadModel(tinyModelDir(family));
    const weights = assembleWeights(m.config, (s) => getTensor(m.weights, s).slice());
    const wg = assembleWeights(m.config, (s) => new Float32Array(getTensor(m.weights, s).length));
    const batch = batchFor(m.tokenizer.size);
    const tm = new TrainableModel(m.config, weights, { maxTokens: batch.N, weightGrads: wg });
    const { count } = tm.forwardBackward(batch, 1);
    const loss = () => { const r = tm.evaluate(batch); return r.lossSum / r.count; };
    const layer = m.config.numLayers - 1;
    for (const spec of tensorSpecs(m.config)) {
      if (spec.layer !== null && spec.layer !== layer && spec.layer !== 0) continue;
      const before = checked;
      checkEntries(spec.name, getTensor(weights, spec), getTensor(wg, spec), count, loss, 2);
      assert.ok(checked > before, `${spec.name}: no entry with a gradient large enough to check`);
    }
    checked = 0;
  });
}

test('LoRA dropout: gradients match finite differences of the loss under the same masks', async () => {
  const m = await loadModel(tinyModelDir('llama'));
  const { lora, loraGrads, params, grads } = randomLora(m.config, defaultLoraConfig(4, { dropout: 0.3 }));
  const batch = batchFor(m.tokenizer.size);
  const tm = new TrainableModel(m.config, m.weights, { maxTokens: batch.N, lora, loraGrads });
  const seed = 1234;
  const { count } = tm.forwardBackward(batch, 1, seed);
  const masked = () => { const r = tm.evaluate(batch, seed); return r.lossSum / r.count; };
  const plain = () => { const r = tm.evaluate(batch); return r.lossSum / r.count; };
  assert.notEqual(masked(), plain(), 'dropout changes the loss');
  checked = 0;
  checkEntries('all LoRA parameters', params, grads, count, masked, 24);
  assert.ok(checked >= 20);
});
