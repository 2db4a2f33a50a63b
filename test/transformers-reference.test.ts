// tunekit against Hugging Face transformers (float32, eager attention) on the same tiny checkpoints.
// The fixture was produced by tools/reference (transformers_check.py on a machine with PyTorch) and is
// regenerated the same way whenever the tiny checkpoints change; the checkpoints are deterministic.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initTinyModel } from '../src/models/tiny.js';
import { loadModel } from '../src/models/model.js';
import { argmax } from '../src/generate/sampler.js';
import type { Family } from '../src/models/config.js';

interface Entry {
  model: string;
  family: Family;
  seed: number;
  prompt_ids: number[];
  greedy_tokens: number;
  texts: string[];
  chats: Array<Array<{ role: string; content: string }>>;
  reference: {
    last_logits: number[]; argmax_all: number[]; greedy: number[]; encodings: number[][]; chat_renders: string[];
    transformers_version: string;
  };
}

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, '..', '..', 'test', 'fixtures', 'transformers-reference.json');
const entries = JSON.parse(fs.readFileSync(fixture, 'utf8')) as Entry[];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-hfref-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// float32 on both sides; differences come from summation order only.
const LOGIT_TOLERANCE = 1e-4;

for (const e of entries) {
  test(`${e.model}: logits, greedy text, tokenization and chat template match transformers ${e.reference.transformers_version}`, async () => {
    const dir = path.join(tmp, e.model);
    initTinyModel({ family: e.family, size: 'tiny', seed: e.seed, out: dir });
    const m = await loadModel(dir);
    const V = m.config.vocabSize;
    assert.equal(V, e.reference.last_logits.length, 'the tiny checkpoint changed: regenerate the fixture with tools/reference');
    const cache = m.transformer.createCache(e.prompt_ids.length + e.greedy_tokens + 1);
    const all = m.transformer.forward(e.prompt_ids, cache, { allLogits: true });
    const argmaxes = e.prompt_ids.map((_, t) => argmax(all.subarray(t * V, (t + 1) * V)));
    assert.deepEqual(argmaxes, e.reference.argmax_all);
    const last = all.subarray((e.prompt_ids.length - 1) * V);
    let worst = 0;
    for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs(last[i]! - e.reference.last_logits[i]!));
    assert.ok(worst < LOGIT_TOLERANCE, `max |Δlogit| = ${worst}`);
    const greedy: number[] = [];
    let logits: Float32Array = last.slice();
    for (let i = 0; i < e.greedy_tokens; i++) {
      greedy.push(argmax(logits));
      logits = m.transformer.forward([greedy[i]!], cache);
    }
    assert.deepEqual(greedy, e.reference.greedy);
    e.texts.forEach((t, i) => assert.deepEqual(m.tokenizer.encode(t), e.reference.encodings[i], `encoding of ${JSON.stringify(t)}`));
    e.chats.forEach((c, i) => assert.equal(m.tokenizer.applyChatTemplate(c, { addGenerationPrompt: true }), e.reference.chat_renders[i]));
  });
}
