// PieceCounter (fast exact token counts for validation and statistics) against the tokenizer itself:
// the same count as encode() on varied text for every family, and countExample's tokens and output
// tokens equal renderForTraining's token count and loss mask.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../src/engine/random.js';
import { PieceCounter } from '../src/data/piece-counter.js';
import { countExample, textCounter } from '../src/data/tokens.js';
import { renderForTraining } from '../src/data/render.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import type { Conversation } from '../src/data/conversation.js';
import { FAMILIES, tinyModelDir } from './helpers/tiny-models.js';

const ATOMS = ['the', 'The', ' ', '  ', '   ', '\n', '\n\n', '\r\n', '\t', "'s", "'LL", "don't", '123', '4567890', '3.14', 'café', 'naïve',
  '東京', 'データ', '🙂', '🙂🙂', 'ответ', '...', '!?', 'x+y=z', '<|eot_id|>', '<|im_end|>', '<end_of_turn>', '<think>', '</think>', '--', '$', '\u00a0', 'A1b2'];

function randomText(rng: Random, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ATOMS[Math.floor(rng.next() * ATOMS.length)];
  return s;
}

for (const family of FAMILIES) {
  test(`${family}: PieceCounter counts exactly what encode() produces`, async () => {
    const dir = tinyModelDir(family);
    const tokenizer = await Tokenizer.load(dir);
    const counter = PieceCounter.forTokenizer(dir, tokenizer);
    assert.ok(counter, 'the tiny tokenizers are byte-level BPE with a Split regex');
    const rng = new Random(7);
    for (let i = 0; i < 400; i++) {
      const text = randomText(rng, 1 + Math.floor(rng.next() * 40));
      assert.equal(counter.count(text), tokenizer.encode(text, { addSpecialTokens: false }).length, JSON.stringify(text));
    }
    assert.equal(counter.count(''), 0);
  });

  test(`${family}: countExample agrees with renderForTraining`, async () => {
    const dir = tinyModelDir(family);
    const tokenizer = await Tokenizer.load(dir);
    const counter = textCounter(tokenizer, dir);
    const rng = new Random(11);
    for (let i = 0; i < 60; i++) {
      const turns: Conversation['turns'] = [];
      const exchanges = 1 + (i % 3);
      for (let e = 0; e < exchanges; e++) {
        turns.push({ role: 'user', text: `q${i} ${randomText(rng, 8)}`.trim() || 'q' });
        turns.push({ role: 'model', text: `a${i} ${randomText(rng, 12)}`.trim() || 'a', ...(e === 0 && exchanges > 1 ? { weight: 0 as const } : {}) });
      }
      const conv: Conversation = { ...(i % 2 ? { systemInstruction: 'Be brief.' } : {}), turns, source: { file: 'x', line: i + 1 } };
      let r;
      try {
        r = renderForTraining(conv, tokenizer);
      } catch {
        continue; // a template that refuses the texts is reported as render_failed, tested elsewhere
      }
      const c = countExample(conv, i + 1, tokenizer, 1 << 20, counter);
      assert.equal(c.tokens, r.tokens.length);
      assert.equal(c.output, r.lossMask.reduce((a, b) => a + b, 0));
      // Truncation at every limit keeps exactly the loss tokens the mask has before it.
      for (const limit of [2, 10, Math.floor(r.tokens.length / 2), r.tokens.length - 1]) {
        if (limit < 2 || limit >= r.tokens.length) continue;
        const t = countExample(conv, i + 1, tokenizer, limit, counter);
        const kept: number = r.lossMask.subarray(0, limit).reduce((a, b) => a + b, 0);
        const targets: number = r.lossMask.subarray(1, limit).reduce((a, b) => a + b, 0);
        assert.equal(t.fate, targets > 0 ? 'truncated' : 'dropped', `limit ${limit}`);
        assert.equal(t.keptOutput, targets > 0 ? kept : 0);
        assert.equal(t.keptTokens, targets > 0 ? limit : 0);
      }
    }
  });
}
