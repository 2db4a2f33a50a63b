// The byte-level BPE trainer and the generated tiny tokenizers: determinism, id layout per family, and
// encoding checked against a slow reference BPE written here from the merges alone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToUnicode, preTokenize, SPLIT_REGEX, toByteLevel, trainByteLevelBpe } from '../src/tokenizer/bpe-trainer.js';
import { generateTokenizer, type Family } from '../src/tokenizer/tiny-tokenizers.js';
import { TRAINING_CORPUS } from '../src/tokenizer/corpus.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';

type Json = Record<string, any>;

test('byte table: 256 distinct printable characters, printable ASCII mapped to itself', () => {
  const table = bytesToUnicode();
  assert.equal(new Set(table).size, 256);
  assert.equal(table[0x41], 'A');
  assert.equal(table[0x20], 'Ġ');
  assert.equal(table[0x0a], 'Ċ');
  assert.equal(table[0x00], 'Ā');
  assert.equal(table[0xad], 'Ń');
  assert.equal(toByteLevel(' é'), 'ĠÃ©');
});

test('pre-tokenizer regexes: llama-bpe groups up to 3 digits, qwen2 splits every digit', () => {
  assert.deepEqual(preTokenize("I'LL pay 12345 now!!\n\n", SPLIT_REGEX['llama-bpe']), ['I', "'LL", ' pay', ' ', '123', '45', ' now', '!!\n\n']);
  assert.deepEqual(preTokenize('pay 123', SPLIT_REGEX.qwen2), ['pay', ' ', '1', '2', '3']);
});

test('training is deterministic and fast, and the vocabulary starts with the byte alphabet', () => {
  const t0 = performance.now();
  const a = trainByteLevelBpe(TRAINING_CORPUS, { merges: 1000, splitRegex: SPLIT_REGEX['llama-bpe'] });
  const ms = performance.now() - t0;
  const b = trainByteLevelBpe(TRAINING_CORPUS, { merges: 1000, splitRegex: SPLIT_REGEX['llama-bpe'] });
  assert.deepEqual(a, b);
  assert.ok(ms < 1000, `1000 merges took ${ms.toFixed(0)} ms`);
  assert.equal(a.merges.length, 1000);
  assert.equal(a.tokens[0], '!');
  assert.deepEqual(a.tokens.slice(0, 256), [...bytesToUnicode()].sort((x, y) => x.charCodeAt(0) - y.charCodeAt(0)));
  assert.equal(new Set(a.tokens).size, a.tokens.length);
  assert.deepEqual(a.merges[0], ['Ġ', 't'], 'the most frequent pair of the corpus comes first');
  // Every merge joins two earlier tokens into a later one.
  const idOf = new Map(a.tokens.map((t, i) => [t, i]));
  for (const [l, r] of a.merges) assert.ok(idOf.has(l) && idOf.has(r) && idOf.has(l + r));
  // A prefix of the merges is the result of training for fewer merges.
  assert.deepEqual(trainByteLevelBpe(TRAINING_CORPUS, { merges: 300, splitRegex: SPLIT_REGEX['llama-bpe'] }).merges, a.merges.slice(0, 300));
});

for (const family of ['llama', 'qwen3', 'gemma3'] as const) {
  test(`${family}: generateTokenizer is byte-identical across calls and self-consistent`, () => {
    const a = generateTokenizer(family, { merges: 500 });
    const b = generateTokenizer(family, { merges: 500 });
    assert.equal(JSON.stringify(a), JSON.stringify(b));
    assert.deepEqual(Object.keys(a.files).sort(), ['special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    const tj = a.files['tokenizer.json'] as Json;
    assert.equal(tj.model.type, 'BPE');
    assert.equal(tj.model.merges.length, 500);
    const ids = new Set<number>([...Object.values(tj.model.vocab as Record<string, number>), ...tj.added_tokens.map((t: Json) => t.id)]);
    assert.equal(ids.size, a.size, 'ids are dense');
    assert.equal(Math.max(...ids), a.size - 1);
    const tok = Tokenizer.fromFiles({ tokenizer: tj, config: a.files['tokenizer_config.json'] as Json });
    assert.equal(tok.size, a.size);
    assert.equal(tok.bosTokenId, a.bosTokenId);
    assert.equal(tok.padTokenId, a.padTokenId);
    assert.ok(a.eosTokenIds.includes(tok.eosTokenIds[0]!), 'the config eos is one of the generation eos ids');
    assert.notEqual(JSON.stringify(generateTokenizer(family, { merges: 501 })), JSON.stringify(a));
  });
}

test('id layouts follow the published tokenizers', () => {
  const llama = generateTokenizer('llama', { merges: 400 });
  const base = 256 + 400;
  const lj = llama.files['tokenizer.json'] as Json;
  assert.deepEqual(lj.added_tokens.slice(0, 2).map((t: Json) => [t.id, t.content]), [[base, '<|begin_of_text|>'], [base + 1, '<|end_of_text|>']]);
  assert.equal(llama.bosTokenId, base);
  assert.deepEqual(llama.eosTokenIds, [base + 1, base + 9]); // <|end_of_text|>, <|eot_id|>
  assert.equal(llama.size, base + 11);
  assert.ok(lj.added_tokens.every((t: Json) => t.special === true));

  const qwen = generateTokenizer('qwen3', { merges: 400 });
  const qj = qwen.files['tokenizer.json'] as Json;
  const q = (c: string) => qj.added_tokens.find((t: Json) => t.content === c);
  assert.equal(q('<|endoftext|>').id, base);
  assert.equal(q('<|im_start|>').id, base + 1);
  assert.equal(q('<|im_end|>').id, base + 2);
  assert.deepEqual([q('<think>').special, q('</think>').special, q('<|im_end|>').special], [false, false, true]);
  assert.deepEqual([qwen.bosTokenId, qwen.padTokenId, qwen.eosTokenIds], [null, base, [base + 2, base]]);
  assert.equal((qwen.files['tokenizer_config.json'] as Json).bos_token, null);

  const gemma = generateTokenizer('gemma3', { merges: 400 });
  const gj = gemma.files['tokenizer.json'] as Json;
  assert.deepEqual(gj.added_tokens.slice(0, 4).map((t: Json) => t.content), ['<pad>', '<eos>', '<bos>', '<unk>']);
  assert.equal(gj.model.vocab['!'], 4);
  const endOfTurn = gj.added_tokens.find((t: Json) => t.content === '<end_of_turn>').id;
  assert.deepEqual([gemma.padTokenId, gemma.bosTokenId, gemma.eosTokenIds], [0, 2, [1, endOfTurn]]);
  assert.equal(gemma.size, 4 + base + 2);
});

test('asking for more merges than the corpus holds is an error', () => {
  assert.throws(() => generateTokenizer('llama', { merges: 100000 }), /at most \d+ merges/);
  assert.throws(() => generateTokenizer('llama', { merges: -1 }), RangeError);
});

// Slow reference: apply the lowest-ranked adjacent pair, leftmost first, until none applies.
function referenceEncode(tj: Json, text: string, regex: string): number[] {
  const ranks = new Map<string, number>();
  tj.model.merges.forEach((m: string | string[], i: number) => ranks.set(Array.isArray(m) ? m.join(' ') : m, i));
  const out: number[] = [];
  for (const piece of preTokenize(text, regex)) {
    const word = toByteLevel(piece);
    if (tj.model.ignore_merges && tj.model.vocab[word] !== undefined) {
      out.push(tj.model.vocab[word]);
      continue;
    }
    let syms = Array.from(word);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < syms.length; i++) {
        const r = ranks.get(`${syms[i]} ${syms[i + 1]}`);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      const [l, r] = [syms[best], syms[best + 1]];
      const next: string[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === l && syms[i + 1] === r) next.push(syms[i] + syms[++i]);
        else next.push(syms[i]);
      }
      syms = next;
    }
    for (const s of syms) out.push(tj.model.vocab[s]);
  }
  return out;
}

for (const [family, pre] of [['llama', 'llama-bpe'], ['qwen3', 'qwen2'], ['gemma3', 'llama-bpe']] as const) {
  test(`${family}: Tokenizer.encode agrees with a reference BPE over the corpus and odd text`, () => {
    const g = generateTokenizer(family, { merges: 2000 });
    const tj = g.files['tokenizer.json'] as Json;
    const tok = Tokenizer.fromFiles({ tokenizer: tj, config: g.files['tokenizer_config.json'] as Json });
    const texts = [
      TRAINING_CORPUS,
      "SHOUTING IT'S WE'RE THEY'VE I'D 'Ll   multiple   spaces\t\t\n \n",
      'αβγ 🙂🙂🙂 ١٢٣ 1234567 ½ ² x\u00a0y \u3000 z',
    ];
    for (const text of texts) assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), referenceEncode(tj, text, SPLIT_REGEX[pre]));
  });
}
