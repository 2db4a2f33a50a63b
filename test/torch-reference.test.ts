// The PyTorch reference (tools/torch-reference), checked itself and then used: selftest.py compares it
// with our Transformer's logits on every model variant, with finite differences, with each packed
// example run alone, and runs grads.py end to end; then the trainer's LoRA and full fine-tuning
// gradients are compared with grads.py --float64 on the same variants and packed batch; then the
// bench:train peer runs two steps on a tiny model through bench/torch-peer.ts. All need Debian's
// /usr/bin/python3 with python3-torch; where it is missing the tests are skipped with the reason.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dumpLogits, type LogitCase } from '../tools/torch-reference/dump-logits.js';
import { runTorchPeer } from '../bench/torch-peer.js';
import { loadModelConfig, loadModelWeights } from '../src/models/loader.js';
import { TrainableModel, type TrainBatch } from '../src/train/trainable-model.js';
import { defaultLoraConfig, initLoraAdapter } from '../src/lora/lora.js';
import { saveAdapter } from '../src/lora/peft.js';
import { peftTensorName } from '../src/lora/peft-keys.js';
import { assembleWeights, getTensor, tensorSpecs } from '../src/models/weights.js';
import { readSafetensorsHeader, readTensorF32 } from '../src/models/safetensors.js';
import { Random } from '../src/engine/random.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import { randomPackedBatch } from './helpers/train-batch.js';

const PYTHON = '/usr/bin/python3';
const here = path.dirname(fileURLToPath(import.meta.url));
const SELFTEST = path.join(here, '..', '..', 'tools', 'torch-reference', 'selftest.py');
const GRADS = path.join(here, '..', '..', 'tools', 'torch-reference', 'grads.py');
// float32 trainer against a float64 reference: observed ~2e-6 of each tensor's largest gradient.
const GRAD_TOLERANCE = 1e-4;

function torchMissing(): string | false {
  if (!fs.existsSync(PYTHON)) return `${PYTHON} not found`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  return probe.status === 0 ? false : 'python3-torch is not installed (apt-get install -y python3-torch python3-numpy)';
}
const skip = torchMissing();

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-torchref-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
let cases: LogitCase[] | undefined;
function variants(): LogitCase[] {
  cases ??= dumpLogits(dir);
  return cases;
}

test('PyTorch reference: logits equal ours, gradients equal finite differences, packing equals solo, grads.py', { skip }, () => {
  variants();
  const run = spawnSync(PYTHON, [SELFTEST, dir], { encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
  const lines = run.stdout.trim().split('\n');
  const failed = lines.filter((l) => l.startsWith('FAIL'));
  assert.equal(run.status, 0, `selftest.py failed:\n${failed.join('\n') || run.stdout}\n${run.stderr}`);
  assert.equal(lines.at(-1), 'selftest: PASS');
  assert.ok(lines.filter((l) => l.startsWith('PASS')).length >= 40, `too few checks ran:\n${run.stdout}`);
});

/** The batch as grads.py's one packed row: segments numbered from segStart. */
function caseRow(b: TrainBatch) {
  const segments: number[] = [];
  for (let t = 0; t < b.N; t++) segments.push(t === 0 ? 0 : segments[t - 1]! + (b.segStart[t] === t ? 1 : 0));
  return { tokens: [...b.tokens], targets: [...b.targets], positions: [...b.positions], segments };
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

for (const name of ['llama', 'llama-linear-rope', 'qwen3', 'qwen3-untied', 'gemma3', 'gemma3-linear-rope']) {
  test(`${name}: trainer LoRA and full gradients equal the PyTorch float64 reference`, { skip }, () => {
    const modelDir = path.join(dir, variants().find((c) => c.name === name)!.model);
    const config = loadModelConfig(modelDir);
    const weights = loadModelWeights(modelDir, config);
    const lora = defaultLoraConfig(4, { alpha: 8 });
    const adapter = initLoraAdapter(config, lora, 1);
    const rng = new Random(9);
    for (const pairs of adapter.layers) for (const p of Object.values(pairs)) rng.fillNormal(p.B, 0, 0.1);
    const loraGrads = initLoraAdapter(config, lora, 2);
    for (const pairs of loraGrads.layers) for (const p of Object.values(pairs)) { p.A.fill(0); p.B.fill(0); }
    const weightGrads = assembleWeights(config, (s) => new Float32Array(s.shape.reduce((a, b) => a * b, 1)));
    // Five examples in one row, past Gemma's window of 8; loss on ~70% of positions.
    const batch = randomPackedBatch([13, 9, 18, 20, 20], config.vocabSize, 4, 0.7);
    const count = batch.targets.filter((t) => t !== -1).length;

    const caseDir = path.join(dir, `case-${name}`);
    saveAdapter(caseDir, adapter);
    fs.writeFileSync(path.join(caseDir, 'case.json'), JSON.stringify({ model: modelDir, lora, rows: [caseRow(batch)] }));
    for (const [out, flags] of [['lora64.safetensors', []], ['full64.safetensors', ['--full']]] as const) {
      const run = spawnSync(PYTHON, [GRADS, caseDir, '--float64', '--out', out, ...flags], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
    }

    const loraRes = new TrainableModel(config, weights, { maxTokens: batch.N, lora: adapter, loraGrads }).forwardBackward(batch, count);
    const ref = readSafetensorsHeader(path.join(caseDir, 'lora64.safetensors'));
    assert.ok(Math.abs(loraRes.lossSum / count - readTensorF32(ref, 'loss')[0]!) < 1e-5, 'LoRA loss');
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
  });
}

test('bench:train PyTorch peer runs LoRA steps and its loss falls on the fixed batch', { skip }, async () => {
  const run = await runTorchPeer({ modelDir: tinyModelDir('llama'), threads: 1, batch: 2, seq: 64, steps: 2, rank: 4, lr: 1e-2 });
  assert.equal(run.reason, null);
  const r = run.result!;
  assert.ok(r.tokensPerSecond > 0 && Number.isFinite(r.tokensPerSecond));
  assert.equal(r.stepTimes.length, 2);
  assert.equal(r.threads, 1);
  assert.ok(r.lossLast < r.lossFirst, `loss ${r.lossFirst} -> ${r.lossLast}`);
});

test('bench:train PyTorch peer reports why it cannot run', async () => {
  const run = await runTorchPeer({ modelDir: '.', threads: 1, batch: 1, seq: 8, steps: 1, python: '/nonexistent/python3' });
  assert.equal(run.result, null);
  assert.match(run.reason!, /not found.*python3-torch/);
});
