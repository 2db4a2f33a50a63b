// Qwen3 replies with reasoning: the loss follows the rendered text whatever layout the data wrote the
// reasoning in. On the final model turns the template keeps the reasoning (re-laid out as
// "<think>\n...\n</think>\n\n"), so it is trained with the answer; on turns before the last user
// message the template drops it, so only the answer is trained. Real (published) and tiny tokenizers.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { renderForTraining } from '../src/data/render.js';
import type { Conversation, Turn } from '../src/data/conversation.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import { realTokenizerDir } from './helpers/real-tokenizers.js';

let tokenizers: [string, Tokenizer][] = [];

before(() => {
  tokenizers = [['published Qwen3', Tokenizer.loadSync(realTokenizerDir('qwen3'))], ['tiny qwen3', Tokenizer.loadSync(tinyModelDir('qwen3'))]];
});

const conv = (turns: Turn[]): Conversation => ({ turns, source: { file: 'train.jsonl', line: 1 } });

function trainedRuns(tok: Tokenizer, c: Conversation): string[] {
  const r = renderForTraining(c, tok);
  const runs: number[][] = [];
  r.tokens.forEach((id, t) => {
    if (!r.lossMask[t]) return;
    if (t > 0 && r.lossMask[t - 1]) runs[runs.length - 1]!.push(id);
    else runs.push([id]);
  });
  return runs.map((x) => tok.decode(x));
}

const LAYOUTS = [
  '<think>\nI add 2 and 2.\n</think>\n\nThe answer is 4.',
  '<think>I add 2 and 2.</think>The answer is 4.',
  '<think>\n\nI add 2 and 2.\n\n</think>\nThe answer is 4.',
  '<think>I add 2 and 2.\n</think>\n\n\nThe answer is 4.',
];
const RENDERED = '<think>\nI add 2 and 2.\n</think>\n\nThe answer is 4.<|im_end|>';

test('final model turn: the reasoning carries loss in every layout, as rendered', () => {
  for (const [name, tok] of tokenizers) {
    for (const text of LAYOUTS) {
      const c = conv([{ role: 'user', text: 'What is 2+2?' }, { role: 'model', text }]);
      assert.deepEqual(trainedRuns(tok, c), [RENDERED], `${name}: ${JSON.stringify(text)}`);
    }
  }
});

test('earlier model turns: the template drops the reasoning, only the answer is trained; the last keeps it', () => {
  for (const [name, tok] of tokenizers) {
    for (const text of LAYOUTS) {
      const c = conv([
        { role: 'user', text: 'What is 2+2?' },
        { role: 'model', text },
        { role: 'user', text: 'Sure?' },
        { role: 'model', text: text.replace('The answer is 4.', 'Yes.') },
      ]);
      assert.deepEqual(trainedRuns(tok, c), ['The answer is 4.<|im_end|>', RENDERED.replace('The answer is 4.', 'Yes.')], `${name}: ${JSON.stringify(text)}`);
    }
  }
});

test('the pieces still spell the rendered text exactly', () => {
  for (const [name, tok] of tokenizers) {
    const c = conv([{ role: 'user', text: 'Hi' }, { role: 'model', text: LAYOUTS[1]! }]);
    const r = renderForTraining(c, tok);
    assert.equal(tok.decode(r.tokens), tok.applyChatTemplate([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: LAYOUTS[1]! }]), name);
  }
});
