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
import { tinyModelDir } from './helpers/tiny-models.js';
import { randomPackedBatch } from './helpers/train-batch.js';
import { assertGradsEqualTorch, PYTHON, torchMissing } from './helpers/torch-grads.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SELFTEST = path.join(here, '..', '..', 'tools', 'torch-reference', 'selftest.py');

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



for (const name of ['llama', 'llama-linear-rope', 'qwen3', 'qwen3-untied', 'gemma3', 'gemma3-linear-rope']) {
  test(`${name}: trainer LoRA and full gradients equal the PyTorch float64 reference`, { skip }, () => {
    const modelDir = path.join(dir, variants().find((c) => c.name === name)!.model);
    const config = loadModelConfig(modelDir);
    const weights = loadModelWeights(modelDir, config);
    // Five examples in one row, past Gemma's window of 8; loss on ~70% of positions.
    const batch = randomPackedBatch([13, 9, 18, 20, 20], config.vocabSize, 4, 0.7);
    assertGradsEqualTorch(path.join(dir, `case-${name}`), modelDir, config, weights, batch, 9);
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
