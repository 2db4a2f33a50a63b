// The trainer learns, and learns the right thing: on a held-out format task the base model scores ~0
// exact matches and the LoRA-tuned one >= 90% with greedy decoding; and the end-of-turn token is
// trained, so the tuned model stops by itself (finishReason 'stop', not the token limit).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel, type LoadedModel } from '../src/models/model.js';
import { tune, DEFAULT_TUNE_OPTIONS } from '../src/train/trainer.js';
import { applyAdapterForInference } from '../src/lora/apply.js';
import { generate } from '../src/generate/generate.js';
import { FAMILIES, tinyModelDir } from './helpers/tiny-models.js';
import { formatTask, writeVertexJsonl, type FormatExample } from './helpers/format-task.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-learn-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

async function score(m: LoadedModel, examples: FormatExample[]) {
  let exact = 0;
  let stopped = 0;
  for (const e of examples) {
    // Thinking off: tuned models answer directly (Qwen3's template then closes an empty think block).
    const prompt = m.tokenizer.encode(m.tokenizer.applyChatTemplate([{ role: 'user', content: e.input }], { addGenerationPrompt: true, enableThinking: false }), { addSpecialTokens: false });
    const r = await generate(m, prompt, { maxTokens: 24, temperature: 0 });
    if (r.text === e.output) exact++;
    if (r.finishReason === 'stop') stopped++;
  }
  return { exact: exact / examples.length, stopped: stopped / examples.length };
}

for (const family of FAMILIES) {
  test(`${family}: LoRA tuning turns ~0% into >= 90% exact match on held-out examples, and the model stops by itself`, async () => {
    const dir = tinyModelDir(family);
    const trainFile = path.join(tmp, `${family}-train.jsonl`);
    writeVertexJsonl(trainFile, formatTask(120, 11));
    const heldOut = formatTask(40, 99);
    const base = await loadModel(dir);
    const before = await score(base, heldOut);
    assert.ok(before.exact <= 0.05, `base model already scores ${before.exact}`);
    const out = path.join(tmp, `${family}-adapter`);
    await tune({
      ...DEFAULT_TUNE_OPTIONS, baseDir: dir, trainFile, outDir: out, adapterSize: 8, epochs: 10, learningRate: 1e-2,
      warmupRatio: 0.05, batchTokens: 512, maxSeqLen: 256,
    });
    const after = await score(applyAdapterForInference(base, out), heldOut);
    assert.ok(after.exact >= 0.9, `tuned model scores ${after.exact} exact`);
    assert.ok(after.stopped >= 0.9, `tuned model stopped by itself on ${after.stopped} of the prompts`);
  });
}
