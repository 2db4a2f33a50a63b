// A Qwen3 tuned on ordinary (non-reasoning) data answers through the API with its default settings.
// Qwen3's template renders the final reply as "<|im_start|>assistant\n<think>\n\n</think>\n\n{answer}",
// while the default prompt (thinking on: no thinkingConfig) ends at "<|im_start|>assistant\n", so the
// model must write the empty think block itself. The block was once left out of the loss, and the tiny
// Qwen3 tuned on the tone task (eval loss 0.0005) then answered held-out prompts with garbage
// ("ququqv...") unless called with thinkingBudget 0. Here it answers every held-out prompt of the task
// in the trained format, nearly all right, with thinking on (the block it writes is a thought, not part
// of the answer) and off.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { notFound } from '../src/api/errors.js';
import { readDataset } from '../src/data/dataset.js';
import { DEFAULT_TUNE_OPTIONS, tune } from '../src/train/trainer.js';
import { tinyApi } from './helpers/api-app.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const data = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'data');
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-qwen3-tone-'));
process.on('exit', () => fs.rmSync(outDir, { recursive: true, force: true }));

type Part = { text: string; thought?: boolean };
type Gen = { candidates: { content: { parts?: Part[] }; finishReason: string }[]; usageMetadata: { thoughtsTokenCount?: number } };

test('a Qwen3 tuned on the tone task answers held-out prompts through the API with default settings', async () => {
  await tune({
    ...DEFAULT_TUNE_OPTIONS, baseDir: tinyModelDir('qwen3'), trainFile: path.join(data, 'tone-train.jsonl'), outDir,
    epochs: 15, learningRateMultiplier: 25,
  });
  const api = await tinyApi({
    endpoints: {
      resolve: (project, location, endpoint) => {
        if (endpoint !== '7') throw notFound(`Endpoint \`projects/${project}/locations/${location}/endpoints/${endpoint}\` not found.`);
        return { publisher: 'google', model: 'qwen3-tiny', adapterDir: outDir, modelVersion: 'projects/p/locations/us-central1/models/7@1' };
      },
    },
  });
  const held = (await readDataset(path.join(data, 'tone-test.jsonl'))).conversations;
  const ask = async (prompt: string, generationConfig: Record<string, unknown>): Promise<Gen> => {
    const res = await api.post('/v1/projects/p/locations/us-central1/endpoints/7:generateContent', {
      contents: [{ role: 'user', parts: [{ text: prompt }] }], generationConfig: { temperature: 0, maxOutputTokens: 32, ...generationConfig },
    });
    assert.equal(res.status, 200);
    return await res.json() as Gen;
  };
  const said: { plain: string; off: string; expected: string }[] = [];
  for (const c of held) {
    const [user, reply] = c.turns;
    // Defaults: no thinkingConfig. The model opens and closes the (empty) think block itself.
    const plain = await ask(user!.text, {});
    assert.equal(plain.candidates[0]!.finishReason, 'STOP');
    assert.ok((plain.usageMetadata.thoughtsTokenCount ?? 0) > 0, 'the model wrote the think block');
    const shown = await ask(user!.text, { thinkingConfig: { includeThoughts: true } });
    // The block is empty: no thought part (its newlines are the template's layout, not thought).
    assert.deepEqual(shown.candidates[0]!.content.parts!.filter((p) => p.thought), []);
    // Thinking off: the prompt holds the block, and the answer follows it.
    const off = await ask(user!.text, { thinkingConfig: { thinkingBudget: 0 } });
    assert.equal(off.usageMetadata.thoughtsTokenCount, undefined);
    const text = (g: Gen) => (g.candidates[0]!.content.parts ?? []).filter((p) => !p.thought).map((p) => p.text).join('');
    said.push({ plain: text(plain), off: text(off), expected: reply!.text });
  }
  // Every answer is in the trained format, and nearly all are right (the tiny model misses 2 of 40).
  for (const s of said) {
    assert.match(s.plain, /^\{"tone": "(warm|cold)"\}$/, JSON.stringify(s));
    assert.match(s.off, /^\{"tone": "(warm|cold)"\}$/, JSON.stringify(s));
  }
  const right = said.filter((s) => s.plain === s.expected).length;
  assert.ok(right >= 36, `${right} of ${held.length} held-out prompts answered right with the default settings`);
  assert.ok(said.filter((s) => s.off === s.expected).length >= 36);
});
