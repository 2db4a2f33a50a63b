// packExamples: rows never exceed maxSeqLen, every kept token appears once, positions restart and
// targets stay inside their example, greedy first-fit is deterministic, truncation and drops are
// reported; shuffleInPlace is a seeded permutation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countTargets, packExamples, shuffleInPlace, type PackedRow, type TrainingExample } from '../src/data/packing.js';
import { renderForTraining } from '../src/data/render.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { Random } from '../src/engine/random.js';
import { InvalidRequestError } from '../src/errors.js';
import { tinyModelDir } from './helpers/tiny-models.js';

/** Example `index` of `length` tokens (ids index * 1000 + j), loss on positions in [lossFrom, lossTo). */
function example(index: number, length: number, lossFrom = 1, lossTo = length): TrainingExample {
  const tokens = Array.from({ length }, (_, j) => index * 1000 + j);
  const lossMask = Uint8Array.from({ length }, (_, j) => (j >= lossFrom && j < lossTo ? 1 : 0));
  return { tokens, lossMask, index };
}

/** Checks a row against the examples it holds, token by token. */
function checkRow(row: PackedRow, byIndex: Map<number, TrainingExample>, maxSeqLen: number): void {
  assert.ok(row.length <= maxSeqLen && row.length > 0);
  for (const a of [row.tokens, row.targets, row.positions, row.segments]) assert.equal(a.length, row.length);
  let t = 0;
  row.examples.forEach((index, segment) => {
    const ex = byIndex.get(index)!;
    const n = Math.min(ex.tokens.length, maxSeqLen);
    for (let j = 0; j < n; j++, t++) {
      assert.equal(row.tokens[t], ex.tokens[j]);
      assert.equal(row.positions[t], j, 'positions restart at 0 per example');
      assert.equal(row.segments[t], segment);
      const expected = j + 1 < n && ex.lossMask[j + 1] ? ex.tokens[j + 1] : -1;
      assert.equal(row.targets[t], expected);
      if (row.targets[t] !== -1) assert.equal(row.segments[t + 1], segment, 'no target crosses a segment');
    }
  });
  assert.equal(t, row.length);
}

test('packing invariants on a mixed set of lengths', () => {
  const rng = new Random(7);
  const examples = Array.from({ length: 300 }, (_, i) => {
    const length = 2 + Math.floor(rng.next() * 90);
    return example(i, length, Math.floor(rng.next() * length * 0.5) + 1);
  });
  const maxSeqLen = 64;
  const { rows, truncated, dropped } = packExamples(examples, { maxSeqLen });
  const byIndex = new Map(examples.map((e) => [e.index, e]));
  for (const row of rows) checkRow(row, byIndex, maxSeqLen);

  const keptIndices = rows.flatMap((r) => r.examples).sort((a, b) => a - b);
  const droppedIndices = dropped.map((d) => d.index);
  assert.deepEqual([...keptIndices, ...droppedIndices].sort((a, b) => a - b), examples.map((e) => e.index), 'each example once');
  const kept = examples.filter((e) => !droppedIndices.includes(e.index));
  const totalTokens = rows.reduce((n, r) => n + r.length, 0);
  assert.equal(totalTokens, kept.reduce((n, e) => n + Math.min(e.tokens.length, maxSeqLen), 0), 'total tokens preserved');
  const totalTargets = rows.reduce((n, r) => n + r.targets.filter((x) => x !== -1).length, 0);
  assert.equal(totalTargets, kept.reduce((n, e) => n + countTargets(e.lossMask, Math.min(e.tokens.length, maxSeqLen)), 0));
  assert.deepEqual(truncated, kept.filter((e) => e.tokens.length > maxSeqLen).map((e) => e.index));
  // Lengths of 2..91 tokens into 64-token rows: first-fit leaves under 10% of the rows empty.
  assert.ok(totalTokens / (rows.length * maxSeqLen) > 0.9, `fill ${totalTokens / (rows.length * maxSeqLen)}`);
  assert.deepEqual(packExamples(examples, { maxSeqLen }), { rows, truncated, dropped }, 'deterministic');
});

test('greedy first-fit in the given order', () => {
  const examples = [example(0, 5), example(1, 8), example(2, 3), example(3, 6), example(4, 2)];
  const { rows } = packExamples(examples, { maxSeqLen: 10 });
  assert.deepEqual(rows.map((r) => r.examples), [[0, 2, 4], [1], [3]]);
  assert.deepEqual(rows.map((r) => r.length), [10, 8, 6]);
  assert.deepEqual([...rows[0].segments], [0, 0, 0, 0, 0, 1, 1, 1, 2, 2]);
  assert.deepEqual([...rows[0].positions], [0, 1, 2, 3, 4, 0, 1, 2, 0, 1]);
  assert.deepEqual([...rows[0].targets], [1, 2, 3, 4, -1, 2001, 2002, -1, 4001, -1]);
});

test('long examples keep their beginning and are reported; examples with nothing to learn are dropped', () => {
  const examples = [
    example(10, 20, 2, 6), // loss inside the first 8 tokens: truncated, kept
    example(11, 20, 12), // loss only after token 8: dropped
    example(12, 6, 6), // no loss at all
    example(13, 4, 0, 1), // loss only on token 0, which nothing predicts
    example(14, 8), // exactly maxSeqLen: neither truncated nor dropped
  ];
  const { rows, truncated, dropped } = packExamples(examples, { maxSeqLen: 8 });
  assert.deepEqual(truncated, [10]);
  assert.deepEqual(dropped.map((d) => d.index), [11, 12, 13]);
  assert.match(dropped[0].reason, /first 8 tokens \(the example has 20\)/);
  assert.match(dropped[1].reason, /no loss-carrying token/);
  assert.deepEqual(rows.map((r) => r.examples), [[10], [14]]);
  assert.deepEqual([...rows[0].tokens], examples[0].tokens.slice(0, 8));
  assert.equal(rows[0].targets[7], -1, 'the last kept token predicts nothing');
  assert.deepEqual(packExamples([], { maxSeqLen: 8 }), { rows: [], truncated: [], dropped: [] });
});

test('bad arguments are refused', () => {
  assert.throws(() => packExamples([example(0, 4)], { maxSeqLen: 1 }), InvalidRequestError);
  assert.throws(() => packExamples([example(0, 4)], { maxSeqLen: 2.5 }), InvalidRequestError);
  assert.throws(() => packExamples([{ ...example(0, 4), lossMask: new Uint8Array(3) }], { maxSeqLen: 8 }), InvalidRequestError);
});

test('shuffleInPlace is a seeded permutation', () => {
  const base = Array.from({ length: 50 }, (_, i) => i);
  const a = shuffleInPlace([...base], 42);
  assert.deepEqual(a, shuffleInPlace([...base], 42), 'same seed, same order');
  assert.notDeepEqual(a, base);
  assert.notDeepEqual(a, shuffleInPlace([...base], 43));
  assert.deepEqual([...a].sort((x, y) => x - y), base);
  const same = [...base];
  assert.equal(shuffleInPlace(same, 1), same, 'shuffles in place');
  assert.deepEqual(shuffleInPlace([], 1), []);
});

test('rendered conversations pack with exactly their loss tokens as targets', () => {
  const tok = Tokenizer.loadSync(tinyModelDir('llama'));
  const texts = ['A tomato.', 'A banana, ripe and yellow.', 'Plums.'];
  const examples = texts.map((reply, index) => ({
    index,
    ...renderForTraining({ turns: [{ role: 'user', text: 'Name a fruit.' }, { role: 'model', text: reply }], source: { file: 'f', line: index + 1 } }, tok),
  }));
  const { rows } = packExamples(examples, { maxSeqLen: 256 });
  assert.equal(rows.length, 1);
  const targets = [...rows[0].targets].filter((x) => x !== -1);
  assert.equal(tok.decode(targets), texts.map((t) => `${t}<|eot_id|>`).join(''));
});
