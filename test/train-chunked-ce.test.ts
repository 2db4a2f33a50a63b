// Cross-entropy over a real vocabulary (Gemma 3's 262,144 tokens) runs in chunks of rows, so the
// (tokens, vocabulary) logits never exist whole: the loss and the gradients the chunked path gives
// equal the independent PyTorch reference's (tools/torch-reference/grads.py, float64, which
// materialises every logit), for LoRA and full fine-tuning (where the tied embedding also takes the
// output layer's gradient); and no buffer a training workspace allocates at 2048 tokens per step is
// anywhere near tokens × vocabulary. The PyTorch part needs Debian's python3-torch and is skipped
// without it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initTinyModel } from '../src/models/tiny.js';
import { loadModelConfig, loadModelWeights } from '../src/models/loader.js';
import { parseModelConfig } from '../src/models/config.js';
import { assembleWeights, getTensor, tensorSpecs } from '../src/models/weights.js';
import { readSafetensorsHeader, readTensorF32 } from '../src/models/safetensors.js';
import { defaultLoraConfig, initLoraAdapter } from '../src/lora/lora.js';
import { saveAdapter } from '../src/lora/peft.js';
import { peftTensorName } from '../src/lora/peft-keys.js';
import { TrainableModel } from '../src/train/trainable-model.js';
import { recomputeLayers, trainingWorkspaceBytes, WORKSPACE_BUDGET_BYTES } from '../src/train/memory.js';
import { workspaceAllocations } from '../src/core/workspace.js';
import { CE_CHUNK_BYTES, ceChunkRows } from '../src/engine/cross-entropy.js';
import { Random } from '../src/engine/random.js';
import { randomPackedBatch } from './helpers/train-batch.js';

const PYTHON = '/usr/bin/python3';
const here = path.dirname(fileURLToPath(import.meta.url));
const GRADS = path.join(here, '..', '..', 'tools', 'torch-reference', 'grads.py');
const PUBLISHED = path.join(here, '..', '..', 'test', 'fixtures', 'published-configs');
const GEMMA_VOCAB = 262144;
const GRAD_TOLERANCE = 1e-4; // float32 against float64, as in torch-reference.test.ts

function torchMissing(): string | false {
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

test('chunked cross-entropy over 262,144 tokens equals the unchunked PyTorch reference (loss, LoRA and full gradients)', { skip: torchMissing() }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-chunked-ce-'));
  try {
    const modelDir = path.join(dir, 'model');
    initTinyModel({ family: 'gemma3', size: 'tiny', seed: 3, out: modelDir, vocabSize: GEMMA_VOCAB });
    const config = loadModelConfig(modelDir);
    const weights = loadModelWeights(modelDir, config);
    // More rows with a target than one chunk holds, so the loss and gradients span chunks.
    const rows = ceChunkRows(GEMMA_VOCAB);
    const batch = randomPackedBatch([70, 45, 60], GEMMA_VOCAB, 11, 0.9);
    const count = batch.targets.filter((t) => t !== -1).length;
    assert.ok(count > rows && count < batch.N, `${count} targets for chunks of ${rows} rows`);

    const lora = defaultLoraConfig(4, { alpha: 8 });
    const adapter = initLoraAdapter(config, lora, 1);
    const rng = new Random(5);
    for (const pairs of adapter.layers) for (const p of Object.values(pairs)) rng.fillNormal(p.B, 0, 0.1);
    const loraGrads = initLoraAdapter(config, lora, 2);
    for (const pairs of loraGrads.layers) for (const p of Object.values(pairs)) { p.A.fill(0); p.B.fill(0); }
    const weightGrads = assembleWeights(config, (s) => new Float32Array(s.shape.reduce((a, b) => a * b, 1)));

    const segments: number[] = [];
    for (let t = 0; t < batch.N; t++) segments.push(t === 0 ? 0 : segments[t - 1]! + (batch.segStart[t] === t ? 1 : 0));
    saveAdapter(dir, adapter);
    const row = { tokens: [...batch.tokens], targets: [...batch.targets], positions: [...batch.positions], segments };
    fs.writeFileSync(path.join(dir, 'case.json'), JSON.stringify({ model: modelDir, lora, rows: [row] }));
    for (const [out, flags] of [['lora64.safetensors', []], ['full64.safetensors', ['--full']]] as const) {
      const run = spawnSync(PYTHON, [GRADS, dir, '--float64', '--out', out, ...flags], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
    }

    const loraRes = new TrainableModel(config, weights, { maxTokens: batch.N, lora: adapter, loraGrads }).forwardBackward(batch, count);
    const ref = readSafetensorsHeader(path.join(dir, 'lora64.safetensors'));
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
    const full = readSafetensorsHeader(path.join(dir, 'full64.safetensors'));
    assert.ok(Math.abs(fullRes.lossSum / count - readTensorF32(full, 'loss')[0]!) < 1e-5, 'full fine-tuning loss');
    for (const spec of tensorSpecs(config)) {
      const err = relErr(getTensor(weightGrads, spec), readTensorF32(full, spec.name));
      assert.ok(err < GRAD_TOLERANCE, `${spec.name}: relative error ${err}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a training workspace at the published shapes and 2048 tokens holds no (tokens, vocabulary) buffer and fits its budget', () => {
  const N = 2048;
  for (const file of ['gemma-3-270m.json', 'Qwen3-0.6B.json', 'Llama-3.2-1B.json']) {
    const config = parseModelConfig(JSON.parse(fs.readFileSync(path.join(PUBLISHED, file), 'utf8')) as Record<string, unknown>, file);
    const V = config.vocabSize;
    const R = ceChunkRows(V);
    assert.ok(R * V * 4 <= CE_CHUNK_BYTES && R >= 16, `${file}: chunk of ${R} rows`);
    const recomputed = recomputeLayers(config, { maxTokens: N, loraRank: 8, mode: 'auto' });
    const sizes = workspaceAllocations(config, { maxTokens: N, loraRank: 8, backward: true, recomputeLayers: recomputed });
    // The logits are one (R, V) chunk of at most 64 MiB, and no buffer comes within 8x of (N, V).
    assert.ok(sizes.includes(R * V), `${file}: chunk of ${R} rows`);
    assert.ok(Math.max(...sizes) * 8 <= N * V, `${file}: a buffer of ${Math.max(...sizes)} floats`);
    const bytes = trainingWorkspaceBytes(config, { maxTokens: N, loraRank: 8 }, recomputed);
    assert.ok(bytes <= WORKSPACE_BUDGET_BYTES, `${file}: workspace ${bytes} bytes with ${recomputed} layers recomputed`);
    // `auto` recomputes no more layers than the budget needs.
    if (recomputed > 0) assert.ok(trainingWorkspaceBytes(config, { maxTokens: N, loraRank: 8 }, recomputed - 1) > WORKSPACE_BUDGET_BYTES);
  }
});
