// The learning-rate schedule equals Hugging Face's, step for step: transformers' schedule lambdas run
// by torch's LambdaLR (tools/torch-reference/lr_schedule.py, which also checks them against torch's
// own LinearLR / CosineAnnealingLR where there is no warmup), with the warmup steps
// TrainingArguments derives from a ratio. Needs Debian's python3-torch; skipped without it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { learningRateAt, warmupStepsFor, type DecayKind } from '../src/train/schedule.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'tools', 'torch-reference', 'lr_schedule.py');

function torchMissing(): string | false {
  if (!fs.existsSync(PYTHON)) return `${PYTHON} not found`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  return probe.status === 0 ? false : 'python3-torch is not installed (apt-get install -y python3-torch)';
}

test('linear, cosine and constant schedules with and without warmup equal transformers + torch LambdaLR', { skip: torchMissing() }, () => {
  const cases: { kind: DecayKind; total: number; ratio: number; peak: number }[] = [];
  for (const kind of ['linear', 'cosine', 'constant'] as const) {
    for (const [total, ratio] of [[1, 0], [1, 0.5], [2, 0], [7, 0], [10, 0.03], [10, 0.25], [33, 0.1], [100, 0.03], [5, 0.99]] as const) {
      cases.push({ kind, total, ratio, peak: 2e-4 });
    }
  }
  const run = spawnSync(PYTHON, [SCRIPT, JSON.stringify(cases)], { encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
  assert.equal(run.status, 0, run.stderr);
  const ref = JSON.parse(run.stdout) as { warmup: number; lrs: number[] }[];
  cases.forEach((c, i) => {
    const W = warmupStepsFor(c.total, c.ratio);
    assert.equal(W, ref[i]!.warmup, `${JSON.stringify(c)}: warmup steps`);
    for (let step = 1; step <= c.total; step++) {
      const ours = learningRateAt(step, c.total, c.peak, W, c.kind);
      const theirs = ref[i]!.lrs[step - 1]!;
      assert.ok(Math.abs(ours - theirs) <= 1e-15, `${JSON.stringify(c)} step ${step}: ${ours} vs ${theirs}`);
    }
  });
  // The last step of a decaying schedule still learns.
  assert.ok(learningRateAt(10, 10, 1, 0, 'linear') > 0 && learningRateAt(10, 10, 1, 0, 'cosine') > 0);
});
