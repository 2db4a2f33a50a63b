// tunekit data show (tokens and loss flags equal renderForTraining's), data convert (round trips
// through both layouts keep every Conversation; weight 0 cannot become Vertex), data split
// (deterministic, exact size, copies on one side, nothing in both).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { showExample, formatShownExample } from '../src/data/show.js';
import { convertDataset, splitDataset } from '../src/data/convert.js';
import { readDataset } from '../src/data/dataset.js';
import { DatasetError } from '../src/data/errors.js';
import { renderForTraining } from '../src/data/render.js';
import { exampleKey } from '../src/data/checks.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { FAMILIES, tinyModelDir } from './helpers/tiny-models.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-datatools-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const CLI = path.resolve('dist/src/cli/main.js');
let n = 0;
const write = (rows: object[]): string => {
  const file = path.join(dir, `f${n++}.jsonl`);
  fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
};
const strip = (c: { systemInstruction?: string; turns: unknown[] }) => ({ systemInstruction: c.systemInstruction, turns: c.turns });

const OPENAI = [
  { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] },
  { messages: [{ role: 'user', content: 'A' }, { role: 'assistant', content: 'B', weight: 0 }, { role: 'user', content: 'C' }, { role: 'assistant', content: 'D', weight: 1 }] },
];

test('data show: every token with its loss flag, as renderForTraining makes them, for each family', async () => {
  const file = path.join(dir, 'show.jsonl');
  fs.writeFileSync(file, Buffer.concat([Buffer.from('{}\n'), Buffer.from([0xff, 0x0a]), Buffer.from(JSON.stringify(OPENAI[0]) + '\n')]));
  for (const family of FAMILIES) {
    const model = tinyModelDir(family);
    const shown = await showExample(file, 3, model);
    const tokenizer = await Tokenizer.load(model);
    const { conversations } = await readDataset(write([OPENAI[0]]));
    const r = renderForTraining(conversations[0], tokenizer);
    assert.deepEqual(shown.tokens.map((t) => t.id), r.tokens, family);
    assert.deepEqual(shown.tokens.map((t) => (t.loss ? 1 : 0)), [...r.lossMask], family);
    assert.equal(shown.output + shown.input, shown.total);
    // The loss-carrying tokens spell the reply and its end-of-turn token (Qwen3: after the empty think
    // block its template leaves the model to write), nothing else.
    const trained = shown.tokens.filter((t) => t.loss).map((t) => t.text).join('');
    const reply = family === 'qwen3' ? '<think>\n\n</think>\n\nHello!' : 'Hello!';
    assert.ok(tokenizer.decode(shown.tokens.filter((t) => t.loss).map((t) => t.id)).startsWith(reply), `${family}: ${trained}`);
    assert.ok(tokenizer.isSpecial(shown.tokens.filter((t) => t.loss).at(-1)!.id), `${family}: ${trained}`);
    const text = formatShownExample(shown, { color: false });
    assert.ok(text.includes(`[[${shown.tokens.filter((t) => t.loss).map((t) => t.text).join('|')}]]`), text);
    assert.match(text, new RegExp(`^line 3: ${shown.total} tokens, ${shown.output} carry loss`));
  }
  await assert.rejects(showExample(file, 1, tinyModelDir('llama')), (e: unknown) => e instanceof DatasetError && e.line === 1);
  await assert.rejects(showExample(file, 2, tinyModelDir('llama')), (e: unknown) => e instanceof DatasetError && e.line === 2 && e.kind === 'invalid_utf8');
  await assert.rejects(showExample(file, 9, tinyModelDir('llama')), /has no example on line 9/);
});

test('data show CLI: weight-0 turns carry no loss', () => {
  const file = write([OPENAI[1]]);
  const r = spawnSync(process.execPath, [CLI, 'data', 'show', file, '--model', tinyModelDir('llama'), '--line', '1', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const shown = JSON.parse(r.stdout) as { tokens: { text: string; loss: boolean }[] };
  assert.equal(shown.tokens.filter((t) => t.loss).map((t) => t.text).join(''), 'D<|eot_id|>');
});

test('data convert: openai -> vertex -> openai keeps every conversation; weight 0 cannot become Vertex', async () => {
  const src = write([OPENAI[0], { messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: [{ type: 'text', text: 'y' }] }] }]);
  const vertex = path.join(dir, 'v.jsonl');
  const back = path.join(dir, 'o.jsonl');
  assert.deepEqual(await convertDataset(src, 'vertex', vertex), { examples: 2 });
  assert.deepEqual(JSON.parse(fs.readFileSync(vertex, 'utf8').split('\n')[0]), {
    systemInstruction: { parts: [{ text: 'Be brief.' }] },
    contents: [{ role: 'user', parts: [{ text: 'Hi' }] }, { role: 'model', parts: [{ text: 'Hello!' }] }],
  });
  await convertDataset(vertex, 'openai', back);
  const [a, b, c] = await Promise.all([src, vertex, back].map((f) => readDataset(f)));
  assert.equal(b.format, 'vertex');
  assert.equal(c.format, 'openai');
  assert.deepEqual(b.conversations.map(strip), a.conversations.map(strip));
  assert.deepEqual(c.conversations.map(strip), a.conversations.map(strip));

  const weighted = write([OPENAI[0], OPENAI[1]]);
  await assert.rejects(convertDataset(weighted, 'vertex', path.join(dir, 'w.jsonl')), (e: unknown) => {
    assert.ok(e instanceof DatasetError);
    assert.deepEqual([e.line, e.path], [2, 'messages[1].weight']);
    return true;
  });
  const kept = path.join(dir, 'w2.jsonl');
  const r = spawnSync(process.execPath, [CLI, 'data', 'convert', weighted, '--to', 'openai', '--out', kept], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `wrote 2 examples to ${kept}\n`);
  assert.deepEqual((await readDataset(kept)).conversations.map(strip), (await readDataset(weighted)).conversations.map(strip));
});

test('data split: deterministic, exact size, copies on one side, no example in both', async () => {
  const rows = Array.from({ length: 200 }, (_, i) => ({ contents: [{ role: 'user', parts: [{ text: `q${i % 190}` }] }, { role: 'model', parts: [{ text: `a${i % 190}` }] }] }));
  const file = write(rows); // examples 190..199 repeat 0..9
  const run = async (seed: number, tag: string) => {
    const outTrain = path.join(dir, `${tag}.train.jsonl`);
    const outValidation = path.join(dir, `${tag}.val.jsonl`);
    const counts = await splitDataset(file, { validationFraction: 0.1, seed, outTrain, outValidation });
    return { counts, train: fs.readFileSync(outTrain, 'utf8'), validation: fs.readFileSync(outValidation, 'utf8'), outTrain, outValidation };
  };
  const a = await run(7, 'a');
  const b = await run(7, 'b');
  const c = await run(8, 'c');
  assert.equal(a.train, b.train);
  assert.equal(a.validation, b.validation);
  assert.notEqual(a.validation, c.validation);
  for (const s of [a, c]) {
    assert.equal(s.counts.train + s.counts.validation, 200);
    assert.ok(s.counts.validation >= 20 && s.counts.validation <= 21, `${s.counts.validation}`); // 20 wanted; a duplicated pair may add one
    const keys = async (f: string) => new Set((await readDataset(f)).conversations.map((x) => exampleKey(x)));
    const [t, v] = await Promise.all([keys(s.outTrain), keys(s.outValidation)]);
    assert.equal([...v].filter((k) => t.has(k)).length, 0);
    assert.equal(t.size + v.size, 190);
  }
  const r = spawnSync(process.execPath, [CLI, 'data', 'split', file, '--validation-fraction', '0.1', '--seed', '7'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const stem = file.replace(/\.jsonl$/, '');
  assert.equal(r.stdout, `wrote ${a.counts.train} examples to ${stem}.train.jsonl and ${a.counts.validation} to ${stem}.validation.jsonl\n`);
  assert.equal(fs.readFileSync(`${stem}.validation.jsonl`, 'utf8'), a.validation);
});
