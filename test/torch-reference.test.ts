// The PyTorch reference (tools/torch-reference) that checks the trainer, checked itself: selftest.py
// compares it with our Transformer's logits on every model variant, with finite differences, with each
// packed example run alone, and runs grads.py end to end. Then the bench:train peer runs two steps on a
// tiny model through bench/torch-peer.ts. Both need Debian's /usr/bin/python3 with python3-torch; where
// it is missing the tests are skipped with the reason.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dumpLogits } from '../tools/torch-reference/dump-logits.js';
import { runTorchPeer } from '../bench/torch-peer.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const PYTHON = '/usr/bin/python3';
const here = path.dirname(fileURLToPath(import.meta.url));
const SELFTEST = path.join(here, '..', '..', 'tools', 'torch-reference', 'selftest.py');

function torchMissing(): string | false {
  if (!fs.existsSync(PYTHON)) return `${PYTHON} not found`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  return probe.status === 0 ? false : 'python3-torch is not installed (apt-get install -y python3-torch python3-numpy)';
}
const skip = torchMissing();

test('PyTorch reference: logits equal ours, gradients equal finite differences, packing equals solo, grads.py', { skip }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-torchref-'));
  try {
    dumpLogits(dir);
    const run = spawnSync(PYTHON, [SELFTEST, dir], { encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
    const lines = run.stdout.trim().split('\n');
    const failed = lines.filter((l) => l.startsWith('FAIL'));
    assert.equal(run.status, 0, `selftest.py failed:\n${failed.join('\n') || run.stdout}\n${run.stderr}`);
    assert.equal(lines.at(-1), 'selftest: PASS');
    assert.ok(lines.filter((l) => l.startsWith('PASS')).length >= 40, `too few checks ran:\n${run.stdout}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

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
