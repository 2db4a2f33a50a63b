// LoRA gradients against Hugging Face transformers + PEFT on the same tiny models, adapters and
// examples (test/fixtures/peft-reference, made by tools/reference/peft_grads.py on a machine with
// PyTorch; the cases are regenerated here deterministically). PEFT ran each example as its own
// sequence; tunekit packs them into one batch — the packed attention must give the same gradients.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { comparePeftGradients, preparePeftCases } from '../tools/reference/peft-check.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'peft-reference');

test('LoRA loss and gradients match transformers + PEFT for llama, qwen3 and gemma3', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-peft-'));
  try {
    await preparePeftCases(dir);
    const results = await comparePeftGradients(dir, fixture);
    assert.equal(results.length, 3);
    for (const r of results) {
      assert.ok(Math.abs(r.lossOurs - r.lossPeft) < 1e-4, `${r.name}: loss ${r.lossOurs} vs PEFT ${r.lossPeft}`);
      // float32 on both sides: relative gradient differences measured at ~1.5e-6.
      assert.ok(r.worstRelative < 1e-4, `${r.name}: ${r.worstTensor} differs by ${r.worstRelative} (relative norm)`);
      assert.ok(r.tensors >= 28);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
