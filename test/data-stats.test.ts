// Vertex's supervisedTuningDataStats on a five-line dataset whose numbers are worked out by hand from the
// tiny Llama tokenizer's rendering (shown by `tunekit data show`), the distribution arithmetic on plain
// numbers, worker-thread counting equal to inline counting, and the CLI's proto3 JSON (int64 as strings).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { distribution, percentile, tuningDataStats } from '../src/data/stats.js';
import { scanDataset } from '../src/data/scan.js';
import { readDataset } from '../src/data/dataset.js';
import { renderForTraining } from '../src/data/render.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-stats-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const CLI = path.resolve('dist/src/cli/main.js');
const turn = (role: string, text: string) => ({ role, parts: [{ text }] });
const LONG = Array.from({ length: 12 }, (_, i) => `w${i}`).join(' '); // 37 characters

function writeSmall(): string {
  const file = path.join(dir, 'small.jsonl');
  fs.writeFileSync(file, [
    { contents: [turn('user', 'Hi'), turn('model', 'Hello!')] },
    { systemInstruction: { parts: [{ text: 'Be brief.' }] }, contents: [turn('user', 'Hi'), turn('model', 'Hello!'), turn('user', 'Thanks'), turn('model', 'Bye')] },
    { contents: [turn('user', 'Hi'), turn('model', LONG)] },
    { contents: [turn('user', LONG), turn('model', 'Hello!')] },
  ].map((v) => JSON.stringify(v)).join('\n') + '\n{"contents": 1}\n');
  return file;
}

test('distribution: sum, mean, linear-interpolated median/p5/p95, equal-width integer buckets', () => {
  const d = distribution([10, 1, 4, 3, 2], 7);
  assert.equal(d.sum, '20');
  assert.equal(d.billableSum, '7');
  assert.equal(d.min, 1);
  assert.equal(d.max, 10);
  assert.equal(d.mean, 4);
  assert.equal(d.median, 3);
  assert.ok(Math.abs(d.p5 - 1.2) < 1e-12); // rank 0.2 between 1 and 2
  assert.ok(Math.abs(d.p95 - 8.8) < 1e-12); // rank 3.8 between 4 and 10
  // width ceil((10 - 1 + 1) / 10) = 1: ten buckets [1,2) ... [10,11)
  assert.deepEqual(d.buckets.map((b) => [b.left, b.right, b.count]), [[1, 2, 1], [2, 3, 1], [3, 4, 1], [4, 5, 1], [5, 6, 0], [6, 7, 0], [7, 8, 0], [8, 9, 0], [9, 10, 0], [10, 11, 1]]);
  const wide = distribution([0, 25, 25, 100], 0); // width ceil(101 / 10) = 11
  assert.deepEqual(wide.buckets.map((b) => b.count), [1, 0, 2, 0, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual([wide.buckets[0].left, wide.buckets[9].right], [0, 110]);
  assert.equal(percentile([5], 0.95), 5);
  assert.deepEqual(distribution([], 0), { sum: '0', billableSum: '0', min: 0, max: 0, mean: 0, median: 0, p5: 0, p95: 0, buckets: [] });
});

test('supervisedTuningDataStats of a hand-computed dataset, with a truncated and a dropped example', async () => {
  const model = tinyModelDir('llama');
  const file = writeSmall();
  // Tokens per example, from the Llama 3 template and the tiny tokenizer (see `data show`):
  //   1  <|begin_of_text|> <|start_header_id|> us er <|end_header_id|> \n\n H i <|eot_id|>
  //      <|start_header_id|> ass istant <|end_header_id|> \n\n = 14 input;  H el lo ! <|eot_id|> = 5 output
  //   2  53 tokens, 9 output; with limit 30 the first 30 keep 2 output tokens (truncated)
  //   3  40 tokens: 14 input + "w0 ... w11" (25 tokens) + <|eot_id|> = 26 output; first 30 keep 16 (truncated)
  //   4  42 tokens: 37 input, 5 output, all past token 30 (dropped)
  //   5  invalid ("contents" is a number): not an example, dropped
  const tokenizer = await Tokenizer.load(model);
  const { conversations } = await readDataset(file, { onProblem: () => {} });
  const rendered = conversations.map((c) => renderForTraining(c, tokenizer));
  assert.deepEqual(rendered.map((r) => [r.tokens.length, r.lossMask.reduce((a, b) => a + b, 0)]), [[19, 5], [53, 9], [40, 26], [42, 5]]);

  const { supervisedTuningDataStats: s } = await tuningDataStats(file, { model: { dir: model, limit: 30, threads: 0 }, epochs: 2, batchSize: 2 });
  assert.equal(s.tuningDatasetExampleCount, '4');
  assert.equal(s.totalTuningCharacterCount, String((2 + 6) + (9 + 2 + 6 + 6 + 3) + (2 + 37) + (37 + 6)));
  // Trained: example 1 (19 tokens), 2 and 3 (30 each); 4 is dropped.
  assert.equal(s.totalBillableTokenCount, String(19 + 30 + 30));
  assert.equal(s.tuningStepCount, String(2 * Math.ceil(3 / 2)));
  const input = s.userInputTokenDistribution; // 14, 44, 14, 37
  assert.deepEqual([input.sum, input.billableSum, input.min, input.max, input.mean, input.median, input.p5], ['109', String(14 + 28 + 14), 14, 44, 27.25, 25.5, 14]);
  assert.ok(Math.abs(input.p95 - (37 + 0.85 * 7)) < 1e-9);
  assert.deepEqual(input.buckets.map((b) => [b.left, b.right, b.count]), [[14, 18, 2], [18, 22, 0], [22, 26, 0], [26, 30, 0], [30, 34, 0], [34, 38, 1], [38, 42, 0], [42, 46, 1]]);
  const output = s.userOutputTokenDistribution; // 5, 9, 26, 5
  assert.deepEqual([output.sum, output.billableSum, output.min, output.max, output.mean, output.median, output.p5], ['45', String(5 + 2 + 16), 5, 26, 11.25, 7, 5]);
  const messages = s.userMessagePerExampleDistribution; // 2, 4, 2, 2
  assert.deepEqual([messages.sum, messages.billableSum, messages.min, messages.max, messages.mean, messages.median], ['10', '8', 2, 4, 2.5, 2]);
  assert.deepEqual(messages.buckets.map((b) => [b.left, b.right, b.count]), [[2, 3, 3], [3, 4, 0], [4, 5, 1]]);
  assert.equal(s.totalTruncatedExampleCount, '2');
  assert.deepEqual(s.truncatedExampleIndices, ['2', '3']);
  assert.deepEqual(s.droppedExampleReasons, [
    'example 4 (line 4): 42 tokens, over the limit of 30, and no model token falls within the first 30: the example is dropped',
    'example 5 (line 5): must be an array of {"role", "parts"}, got number',
  ]);
  assert.deepEqual(s.userDatasetExamples.slice(0, 2), [{ role: 'user', parts: [{ text: 'Hi' }] }, { role: 'model', parts: [{ text: 'Hello!' }] }]);
});

test('token counts from worker threads equal inline counts', async () => {
  const model = tinyModelDir('qwen3');
  const file = path.join(dir, 'many.jsonl');
  const lines: string[] = [];
  for (let i = 0; i < 300; i++) {
    const words = Array.from({ length: 1 + (i * 7) % 40 }, (_, j) => `t${(i * j) % 97}`).join(' ');
    lines.push(JSON.stringify({ messages: [{ role: 'system', content: 'S' }, { role: 'user', content: `q${i} ${words}` }, { role: 'assistant', content: `${words} a${i}` }] }));
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const inline = await scanDataset(file, { model: { dir: model, limit: 60, threads: 0 } });
  const pooled = await scanDataset(file, { model: { dir: model, limit: 60, threads: 2 } });
  for (const col of ['status', 'tokens', 'output', 'keptTokens', 'keptOutput'] as const) {
    assert.deepEqual(pooled.columns[col].data.subarray(0, 301), inline.columns[col].data.subarray(0, 301), col);
  }
  assert.ok(inline.truncatedCount > 0);
  assert.deepEqual(pooled.truncatedRows, inline.truncatedRows);
  assert.deepEqual(pooled.dropped, inline.dropped);
});

test('CLI data stats --json: proto3 JSON with int64 fields as strings; the human summary', () => {
  const model = tinyModelDir('llama');
  const file = writeSmall();
  const r = spawnSync(process.execPath, [CLI, 'data', 'stats', file, '--model', model, '--max-tokens', '30', '--epochs', '2', '--batch-size', '2', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout).supervisedTuningDataStats;
  for (const k of ['tuningDatasetExampleCount', 'totalTuningCharacterCount', 'totalBillableTokenCount', 'tuningStepCount', 'totalTruncatedExampleCount']) assert.equal(typeof s[k], 'string', k);
  assert.equal(typeof s.userInputTokenDistribution.sum, 'string');
  assert.equal(typeof s.userInputTokenDistribution.mean, 'number');
  assert.equal(s.tuningStepCount, '4');
  const h = spawnSync(process.execPath, [CLI, 'data', 'stats', file, '--model', model, '--max-tokens', '30'], { encoding: 'utf8' });
  assert.equal(h.status, 0, h.stderr);
  assert.match(h.stdout, /examples: 4, characters: 116, billable tokens: 79, tuning steps: 3\n/); // 3 epochs x ceil(3 / 8)
  assert.match(h.stdout, /input tokens per example: sum 109 \(billable 56\), min 14, max 44, mean 27\.25, median 25\.5/);
  assert.match(h.stdout, /truncated: 2 \(examples 2, 3\)\ndropped: 2\n/);
});
