// The streaming detokenizer: pushes plus flush concatenate to decode(all ids), characters split across
// byte-level tokens are held back until complete, and skipped special tokens emit nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { generateTokenizer, type Family } from '../src/tokenizer/tiny-tokenizers.js';
import { Random } from '../src/engine/random.js';

function tiny(family: Family): Tokenizer {
  const g = generateTokenizer(family, { merges: 400 });
  return Tokenizer.fromFiles({
    tokenizer: g.files['tokenizer.json'] as Record<string, unknown>,
    config: g.files['tokenizer_config.json'] as Record<string, unknown>,
  });
}

function stream(tok: Tokenizer, ids: number[], skipSpecialTokens = false): string[] {
  const d = tok.createStreamDecoder({ skipSpecialTokens });
  const out = ids.map((id) => d.push(id));
  out.push(d.flush());
  return out;
}

test('an emoji split over several byte tokens is emitted whole, once complete', () => {
  const tok = tiny('llama');
  const ids = tok.encode('ok 🙂 fine', { addSpecialTokens: false });
  const pieces = ids.map((id) => tok.idToToken(id));
  assert.ok(ids.length >= 5, `the emoji spans several tokens: ${pieces.join(' | ')}`);
  const out = stream(tok, ids);
  assert.equal(out.join(''), tok.decode(ids));
  assert.equal(out.join(''), 'ok 🙂 fine');
  for (const piece of out) assert.ok(!piece.includes('\uFFFD'), `no replacement character in ${JSON.stringify(out)}`);
  assert.ok(out.includes(' 🙂'), `the emoji arrives in one piece: ${JSON.stringify(out)}`);
  assert.deepEqual(out.slice(0, 1), ['ok']);
});

for (const family of ['llama', 'qwen3', 'gemma3'] as const) {
  test(`${family}: streaming varied text equals decode()`, () => {
    const tok = tiny(family);
    const text = '<|im_start|>Olá! 你好 👩‍👩‍👧‍👦 🇫🇷 naïve 12345\n\n<think>x</think> <end_of_turn>done ✓';
    const ids = tok.encode(text);
    for (const skip of [false, true]) {
      assert.equal(stream(tok, ids, skip).join(''), tok.decode(ids, { skipSpecialTokens: skip }));
    }
    assert.equal(stream(tok, tok.encode(text, { addSpecialTokens: false })).join(''), text);
  });

  test(`${family}: random id sequences stream to exactly decode() (invalid UTF-8 included)`, () => {
    const tok = tiny(family);
    const rng = new Random(1234);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(rng.next() * 40);
      const ids = Array.from({ length: n }, () => Math.floor(rng.next() * tok.size));
      for (const skip of [false, true]) {
        const out = stream(tok, ids, skip);
        assert.equal(out.join(''), tok.decode(ids, { skipSpecialTokens: skip }), `ids ${JSON.stringify(ids)}`);
        // Only flush may end in a replacement character: mid-stream text is never revised later.
        for (const piece of out.slice(0, -1)) assert.ok(!piece.endsWith('\uFFFD'));
      }
    }
  });
}

test('skipped special tokens emit nothing; an out-of-range id is an error', () => {
  const tok = tiny('qwen3');
  const d = tok.createStreamDecoder({ skipSpecialTokens: true });
  assert.equal(d.push(tok.tokenToId('<|im_end|>')!), '');
  assert.equal(d.push(tok.tokenToId('<think>')!), '<think>');
  assert.equal(d.flush(), '');
  assert.throws(() => d.push(tok.size));
});
