// A hand-made SentencePiece-style tokenizer.json (the Llama 2 / Gemma shape: "▁" for spaces, byte
// fallback, a decoder that strips the leading space) exercises the paths the byte-level tiny
// tokenizers do not: BOS from add_bos_token for LlamaTokenizerFast, and streaming through a
// context-dependent decoder.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { Random } from '../src/engine/random.js';

const MERGES: [string, string][] = [
  ['▁', 'h'], ['▁h', 'e'], ['l', 'l'], ['▁he', 'll'], ['▁hell', 'o'],
  ['▁', 'w'], ['o', 'r'], ['▁w', 'or'], ['▁wor', 'l'], ['▁worl', 'd'],
];

function sentencePieceLike(addBos: boolean): Tokenizer {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  for (const ch of ['▁', 'h', 'e', 'l', 'o', 'w', 'r', 'd']) vocab[ch] = Object.keys(vocab).length;
  for (const [a, b] of MERGES) vocab[a + b] = Object.keys(vocab).length;
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return Tokenizer.fromFiles({
    tokenizer: {
      version: '1.0',
      added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
      pre_tokenizer: null,
      post_processor: null,
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
          { type: 'ByteFallback' },
          { type: 'Fuse' },
          { type: 'Strip', content: ' ', start: 1, stop: 0 },
        ],
      },
      model: {
        type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: MERGES.map(([a, b]) => `${a} ${b}`),
      },
    },
    config: { tokenizer_class: 'LlamaTokenizerFast', add_bos_token: addBos, add_eos_token: false, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' },
  });
}

test('LlamaTokenizerFast: BOS follows add_bos_token even without a post-processor', () => {
  const tok = sentencePieceLike(true);
  const hello = tok.tokenToId('▁hello')!;
  const world = tok.tokenToId('▁world')!;
  assert.deepEqual(tok.encode('hello world'), [1, hello, world]);
  assert.deepEqual(tok.encode('hello world', { addSpecialTokens: false }), [hello, world]);
  assert.deepEqual(sentencePieceLike(false).encode('hello world'), [hello, world]);
  assert.equal(tok.decode([1, hello, world], { skipSpecialTokens: true }), 'hello world');
});

test('byte fallback round-trips characters outside the vocabulary', () => {
  const tok = sentencePieceLike(true);
  for (const text of ['hello 🙂 world!', 'héllo wörld', 'x']) {
    const ids = tok.encode(text, { addSpecialTokens: false });
    assert.equal(tok.decode(ids), text);
  }
  const emoji = tok.encode('🙂', { addSpecialTokens: false }).map((id) => tok.idToToken(id));
  assert.deepEqual(emoji, ['▁', '<0xF0>', '<0x9F>', '<0x99>', '<0x82>']);
});

test('streaming through a space-stripping, byte-fallback decoder equals decode()', () => {
  const tok = sentencePieceLike(true);
  const ids = tok.encode('hello 🙂 world hello');
  const d = tok.createStreamDecoder({ skipSpecialTokens: true });
  const out = ids.map((id) => d.push(id));
  out.push(d.flush());
  assert.equal(out.join(''), 'hello 🙂 world hello');
  assert.ok(out.includes('🙂'), JSON.stringify(out));
  for (const piece of out) assert.ok(!piece.includes('\uFFFD'));

  const rng = new Random(7);
  for (let trial = 0; trial < 300; trial++) {
    const seq = Array.from({ length: 1 + Math.floor(rng.next() * 30) }, () => Math.floor(rng.next() * tok.size));
    for (const skip of [false, true]) {
      const s = tok.createStreamDecoder({ skipSpecialTokens: skip });
      const parts = seq.map((id) => s.push(id));
      parts.push(s.flush());
      assert.equal(parts.join(''), tok.decode(seq, { skipSpecialTokens: skip }), JSON.stringify(seq));
    }
  }
});
