// The trainer's loss and gradients against tools/torch-reference/grads.py in float64, on one packed
// batch: LoRA (an adapter with random B, so A's gradients are not zero) and full fine-tuning. Used by
// torch-reference.test.ts (every model variant) and train-chunked-ce.test.ts (the real vocabulary).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelConfig } from '../../src/models/config.js';
import { assembleWeights, getTensor, tensorSpecs, type ModelWeights } from '../../src/models/weights.js';
import { readSafetensorsHeader, readTensorF32 } from '../../src/models/safetensors.js';
import { defaultLoraConfig, initLoraAdapter } from '../../src/lora/lora.js';
import { saveAdapter } from '../../src/lora/peft.js';
import { peftTensorName } from '../../src/lora/peft-keys.js';
import { TrainableModel, type TrainBatch } from '../../src/train/trainable-model.js';
import { Random } from '../../src/engine/random.js';

export const PYTHON = '/usr/bin/python3';
const GRADS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'tools', 'torch-reference', 'grads.py');
// float32 trainer against a float64 reference: observed ~2e-6 of each tensor's largest gradient.
const GRAD_TOLERANCE = 1e-4;

/** Why the PyTorch reference cannot run here, or false when it can. */
export function torchMissing(): string | false {
  if (!fs.existsSync(PYTHON)) return `${PYTHON} not found`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  return probe.status === 0 ? false : 'python3-torch is not installed (apt-get install -y python3-torch python3-numpy)';
}

/** max |ours − reference| / max |reference|. */
function relErr(ours: Float32Array, ref: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(ours[i]! - ref[i]!));
    m = Math.max(m, Math.abs(ref[i]!));
  }
  return d / m;
}

/** The batch as grads.py's one packed row: segments numbered from segStart. */
function caseRow(b: TrainBatch) {
  const segments: number[] = [];
  for (let t = 0; t < b.N; t++) segments.push(t === 0 ? 0 : segments[t - 1]! + (b.segStart[t] === t ? 1 : 0));
  return { tokens: [...b.tokens], targets: [...b.targets], positions: [...b.positions], segments };
}

/**
 * Writes the case (model, a rank-4 adapter whose B is drawn from `seed`, the batch) into `caseDir`, runs
 * grads.py for LoRA and for full fine-tuning, and requires the trainer's loss and every gradient to
 * equal the reference.
 */
export function assertGradsEqualTorch(caseDir: string, modelDir: string, config: ModelConfig, weights: ModelWeights, batch: TrainBatch, seed: number): void {
  const count = batch.targets.filter((t) => t !== -1).length;
  const lora = defaultLoraConfig(4, { alpha: 8 });
  const adapter = initLoraAdapter(config, lora, 1);
  const rng = new Random(seed);
  for (const pairs of adapter.layers) for (const p of Object.values(pairs)) rng.fillNormal(p.B, 0, 0.1);
  const loraGrads = initLoraAdapter(config, lora, 2);
  for (const pairs of loraGrads.layers) for (const p of Object.values(pairs)) { p.A.fill(0); p.B.fill(0); }
  const weightGrads = assembleWeights(config, (s) => new Float32Array(s.shape.reduce((a, b) => a * b, 1)));

  saveAdapter(caseDir, adapter);
  fs.writeFileSync(path.join(caseDir, 'case.json'), JSON.stringify({ model: modelDir, lora, rows: [caseRow(batch)] }));
  for (const [out, flags] of [['lora64.safetensors', []], ['full64.safetensors', ['--full']]] as const) {
    const run = spawnSync(PYTHON, [GRADS, caseDir, '--float64', '--out', out, ...flags], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
  }

  const loraRes = new TrainableModel(config, weights, { maxTokens: batch.N, lora: adapter, loraGrads }).forwardBackward(batch, count);
  const ref = readSafetensorsHeader(path.join(caseDir, 'lora64.safetensors'));
  assert.equal(loraRes.count, count);
  assert.ok(Math.abs(loraRes.lossSum / count - readTensorF32(ref, 'loss')[0]!) < 1e-5, `LoRA loss ${loraRes.lossSum / count}`);
  loraGrads.layers.forEach((pairs, l) => {
    for (const t of lora.targets) {
      for (const which of ['A', 'B'] as const) {
        const n = peftTensorName(l, t, which);
        const err = relErr(pairs[t]![which], readTensorF32(ref, n));
        assert.ok(err < GRAD_TOLERANCE, `${n}: relative error ${err}`);
      }
    }
  });

  const fullRes = new TrainableModel(config, weights, { maxTokens: batch.N, weightGrads }).forwardBackward(batch, count);
  const full = readSafetensorsHeader(path.join(caseDir, 'full64.safetensors'));
  assert.ok(Math.abs(fullRes.lossSum / count - readTensorF32(full, 'loss')[0]!) < 1e-5, 'full fine-tuning loss');
  for (const spec of tensorSpecs(config)) {
    const err = relErr(getTensor(weightGrads, spec), readTensorF32(full, spec.name));
    assert.ok(err < GRAD_TOLERANCE, `${spec.name}: relative error ${err}`);
  }
}
