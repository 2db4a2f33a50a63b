// tunekit's LoRA gradients against transformers + PEFT: `preparePeftCases` writes tiny models, random
// adapters (PEFT layout) and examples, deterministically; peft_grads.py computes the reference on a
// machine with transformers + peft; `comparePeftGradients` compares. The CLI is compare-peft.ts; the
// test test/peft-reference.test.ts runs the comparison against a stored reference.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTinyModel } from '../../src/models/tiny.js';
import { loadModel } from '../../src/models/model.js';
import { defaultLoraConfig, initLoraAdapter, loraParameterCount } from '../../src/lora/lora.js';
import { saveAdapter } from '../../src/lora/peft.js';
import { peftTensorName } from '../../src/lora/peft-keys.js';
import { TrainableModel, type TrainBatch } from '../../src/train/trainable-model.js';
import { readSafetensorsHeader, readTensorF32 } from '../../src/models/safetensors.js';
import { Random } from '../../src/engine/random.js';
import type { Family } from '../../src/models/config.js';

interface Example { tokens: number[]; targets: number[] }
interface Case { name: string; model: string; adapter: string; examples: Example[]; rank: number }

const FAMILIES: Family[] = ['llama', 'qwen3', 'gemma3'];

export async function preparePeftCases(dir: string): Promise<void> {
  const cases: Case[] = [];
  for (const family of FAMILIES) {
    const model = `${family}-tiny`;
    initTinyModel({ family, size: 'tiny', seed: 3, out: path.join(dir, model) });
    const m = await loadModel(path.join(dir, model));
    const lc = defaultLoraConfig(4);
    const lora = initLoraAdapter(m.config, lc, 5);
    const rng = new Random(6);
    for (const layer of lora.layers) for (const p of Object.values(layer)) rng.fillNormal(p!.B, 0, 0.05);
    saveAdapter(path.join(dir, `${family}-adapter`), lora, { inferenceMode: false });
    const examples: Example[] = [11, 23, 30].map((len, k) => {
      const tokens = Array.from({ length: len }, () => Math.floor(rng.next() * m.tokenizer.size));
      const targets = tokens.map((_, t) => (t + 1 < len && (t + k) % 3 !== 0 ? tokens[t + 1]! : -1));
      return { tokens, targets };
    });
    cases.push({ name: family, model, adapter: `${family}-adapter`, examples, rank: 4 });
  }
  fs.writeFileSync(path.join(dir, 'cases.json'), JSON.stringify(cases));
}

function packed(examples: Example[]): TrainBatch {
  const N = examples.reduce((a, e) => a + e.tokens.length, 0);
  const b: TrainBatch = { N, tokens: new Int32Array(N), targets: new Int32Array(N), positions: new Int32Array(N), segStart: new Int32Array(N) };
  let off = 0;
  for (const e of examples) {
    e.tokens.forEach((t, i) => {
      b.tokens[off + i] = t;
      b.targets[off + i] = e.targets[i]!;
      b.positions[off + i] = i;
      b.segStart[off + i] = off;
    });
    off += e.tokens.length;
  }
  return b;
}

export interface PeftComparison {
  name: string;
  lossOurs: number;
  lossPeft: number;
  tensors: number;
  worstRelative: number;
  worstTensor: string;
  versions: string;
}

export async function comparePeftGradients(dir: string, outDir: string): Promise<PeftComparison[]> {
  const cases = JSON.parse(fs.readFileSync(path.join(dir, 'cases.json'), 'utf8')) as Case[];
  const { loadAdapter } = await import('../../src/lora/peft.js');
  const results: PeftComparison[] = [];
  for (const c of cases) {
    const m = await loadModel(path.join(dir, c.model));
    const lora = loadAdapter(path.join(dir, c.adapter), m.config);
    const grads = initLoraAdapter(m.config, lora.config, 0, new Float32Array(loraParameterCount(m.config, lora.config)));
    for (const layer of grads.layers) for (const p of Object.values(layer)) { p!.A.fill(0); p!.B.fill(0); }
    const batch = packed(c.examples);
    const tm = new TrainableModel(m.config, m.weights, { maxTokens: batch.N, lora, loraGrads: grads });
    const targets = c.examples.reduce((a, e) => a + e.targets.filter((t) => t >= 0).length, 0);
    const r = tm.forwardBackward(batch, targets);
    const ref = JSON.parse(fs.readFileSync(path.join(outDir, `${c.name}.json`), 'utf8')) as { loss: number; transformers: string; peft: string; torch: string; device: string };
    const header = readSafetensorsHeader(path.join(outDir, `${c.name}.safetensors`));
    let worst = 0;
    let worstName = '';
    let tensors = 0;
    grads.layers.forEach((layer, l) => {
      for (const [t, p] of Object.entries(layer)) {
        for (const which of ['A', 'B'] as const) {
          const name = peftTensorName(l, t as never, which);
          const theirs = readTensorF32(header, name);
          const ours = p![which];
          let num = 0, den = 0;
          for (let i = 0; i < ours.length; i++) { num += (ours[i]! - theirs[i]!) ** 2; den += theirs[i]! ** 2; }
          const rel = Math.sqrt(num / Math.max(den, 1e-30));
          tensors++;
          if (rel > worst) { worst = rel; worstName = name; }
        }
      }
    });
    results.push({
      name: c.name, lossOurs: r.lossSum / r.count, lossPeft: ref.loss, tensors, worstRelative: worst, worstTensor: worstName,
      versions: `transformers ${ref.transformers}, peft ${ref.peft}, torch ${ref.torch}, ${ref.device}`,
    });
  }
  return results;
}
