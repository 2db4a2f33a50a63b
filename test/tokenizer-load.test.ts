// Tokenizer.load on generated tiny tokenizer directories: round trips, special tokens, ids from the
// config files, and the errors for missing, malformed and inconsistent files.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { generateTokenizer, type Family } from '../src/tokenizer/tiny-tokenizers.js';
import { InvalidModelError, InvalidRequestError, NotFoundError } from '../src/errors.js';

function writeTiny(family: Family, merges = 400, extra: Record<string, unknown> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tunekit-tok-${family}-`));
  const g = generateTokenizer(family, { merges });
  for (const [name, value] of Object.entries({ ...g.files, ...extra })) {
    fs.writeFileSync(path.join(dir, name), typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  }
  return dir;
}

const TEXTS = [
  'Hello, world!',
  'The weather today is cloudy with a chance of rain.',
  "It's 12:45 -- isn't it? They'll say we've won 3-1.",
  '  leading spaces, trailing spaces   ',
  'tabs\tand\nnewlines\r\n\n\nblank lines',
  'café naïve façade crème brûlée smörgåsbord',
  'Emoji: 🙂👍🍅 ☀️ 👩‍👩‍👧‍👦 🇫🇷',
  '你好，世界。こんにちは привет עברית العربية 한국어',
  '{"name": "soup", "n": [1, 22, 333, 4444, 55555], "ok": true}',
  'function f(x) { return x ** 2; } // comment',
  '\u0000\u0001 control \u007f and \u00a0nbsp \u200b zero-width e\u0301',
  '',
];

for (const family of ['llama', 'qwen3', 'gemma3'] as const) {
  test(`${family}: decode(encode(text)) is the text, for varied text`, async () => {
    const tok = await Tokenizer.load(writeTiny(family));
    for (const text of TEXTS) {
      const ids = tok.encode(text, { addSpecialTokens: false });
      assert.equal(tok.decode(ids), text, JSON.stringify(text));
      for (const id of ids) assert.ok(id >= 0 && id < tok.size);
    }
  });

  test(`${family}: special tokens written in text encode to their single id`, async () => {
    const tok = await Tokenizer.load(writeTiny(family));
    const markers = {
      llama: ['<|begin_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>', '<|end_of_text|>'],
      qwen3: ['<|im_start|>', '<|im_end|>', '<|endoftext|>', '<think>', '</think>'],
      gemma3: ['<bos>', '<start_of_turn>', '<end_of_turn>', '<eos>', '<pad>'],
    }[family];
    for (const m of markers) {
      const id = tok.tokenToId(m);
      assert.ok(id !== undefined, m);
      assert.equal(tok.idToToken(id), m);
      assert.deepEqual(tok.encode(m, { addSpecialTokens: false }), [id], m);
      const ids = tok.encode(`say ${m}now`, { addSpecialTokens: false });
      assert.equal(ids.filter((x) => x === id).length, 1);
      assert.equal(tok.decode(ids), `say ${m}now`);
    }
  });
}

test('ids and flags come from tokenizer_config.json and generation_config.json', async () => {
  const llama = await Tokenizer.load(writeTiny('llama'));
  const g = generateTokenizer('llama', { merges: 400 });
  assert.equal(llama.size, g.size);
  assert.equal(llama.bosTokenId, llama.tokenToId('<|begin_of_text|>'));
  assert.deepEqual(llama.eosTokenIds, [llama.tokenToId('<|eot_id|>')]); // no generation_config.json
  assert.equal(llama.padTokenId, null);
  assert.ok(llama.isSpecial(llama.tokenToId('<|start_header_id|>')!));
  assert.ok(!llama.isSpecial(llama.tokenToId('Ġthe')!));

  const withGen = await Tokenizer.load(writeTiny('llama', 400, { 'generation_config.json': { eos_token_id: g.eosTokenIds } }));
  assert.deepEqual(withGen.eosTokenIds, [llama.tokenToId('<|eot_id|>'), llama.tokenToId('<|end_of_text|>')]);
  const single = await Tokenizer.load(writeTiny('llama', 400, { 'generation_config.json': { eos_token_id: 3 } }));
  assert.deepEqual(single.eosTokenIds, [llama.tokenToId('<|eot_id|>'), 3]);

  const qwen = await Tokenizer.load(writeTiny('qwen3'));
  assert.equal(qwen.bosTokenId, null);
  assert.equal(qwen.padTokenId, qwen.tokenToId('<|endoftext|>'));
  assert.deepEqual(qwen.eosTokenIds, [qwen.tokenToId('<|im_end|>')]);
  assert.ok(!qwen.isSpecial(qwen.tokenToId('<think>')!), '<think> is an added token but not special in Qwen3');
  assert.ok(qwen.isSpecial(qwen.tokenToId('<|im_start|>')!));

  const gemma = await Tokenizer.load(writeTiny('gemma3'));
  assert.deepEqual([gemma.padTokenId, gemma.eosTokenIds[0], gemma.bosTokenId], [0, 1, 2]);
  assert.equal(gemma.tokenToId('<unk>'), 3);
});

test('encode adds BOS only where the family does', async () => {
  const llama = await Tokenizer.load(writeTiny('llama'));
  const gemma = await Tokenizer.load(writeTiny('gemma3'));
  const qwen = await Tokenizer.load(writeTiny('qwen3'));
  for (const tok of [llama, gemma]) {
    const plain = tok.encode('Hello there', { addSpecialTokens: false });
    assert.deepEqual(tok.encode('Hello there'), [tok.bosTokenId!, ...plain]);
    assert.deepEqual(tok.encode(''), [tok.bosTokenId!]);
    assert.equal(tok.decode(tok.encode('Hello there'), { skipSpecialTokens: true }), 'Hello there');
  }
  assert.deepEqual(qwen.encode('Hello there'), qwen.encode('Hello there', { addSpecialTokens: false }));
});

test('decode with skipSpecialTokens drops special ids but keeps added non-special ones', async () => {
  const qwen = await Tokenizer.load(writeTiny('qwen3'));
  const ids = qwen.encode('<|im_start|>assistant\n<think>\nhmm\n</think>\n\nYes.<|im_end|>', { addSpecialTokens: false });
  assert.equal(qwen.decode(ids, { skipSpecialTokens: true }), 'assistant\n<think>\nhmm\n</think>\n\nYes.');
  assert.equal(qwen.decode([]), '');
  assert.throws(() => qwen.decode([qwen.size]), InvalidRequestError);
  assert.throws(() => qwen.decode([-1]), InvalidRequestError);
});

test('decode does not clean up tokenization spaces even when the config asks (llama)', async () => {
  const llama = await Tokenizer.load(writeTiny('llama'));
  const text = "a , b . c ? d ! I 'm he 's";
  assert.equal(llama.decode(llama.encode(text, { addSpecialTokens: false })), text);
});

test('vocabSize smaller than the tokenizer is an InvalidModelError with both numbers', async () => {
  const dir = writeTiny('qwen3');
  const size = generateTokenizer('qwen3', { merges: 400 }).size;
  assert.equal((await Tokenizer.load(dir, { vocabSize: size })).size, size);
  await assert.rejects(Tokenizer.load(dir, { vocabSize: size - 1 }), (e: Error) => {
    assert.ok(e instanceof InvalidModelError);
    // A non-special token beyond the embedding is refused (special ones are tolerated: tokenizer-real.test.ts).
    assert.ok(e.message.startsWith(`tokenizer.json defines ${size} tokens but config.json vocab_size is ${size - 1}, and id ${size - 1} `), e.message);
    return true;
  });
});

test('missing and malformed files are errors naming the file', async () => {
  const missingDir = path.join(os.tmpdir(), 'tunekit-tok-does-not-exist-' + process.pid);
  await assert.rejects(Tokenizer.load(missingDir), NotFoundError);

  const dir = writeTiny('llama');
  fs.rmSync(path.join(dir, 'tokenizer.json'));
  await assert.rejects(Tokenizer.load(dir), (e: Error) => e instanceof InvalidModelError && /tokenizer\.json is missing/.test(e.message));

  const bad = writeTiny('llama', 400, { 'tokenizer.json': '{"model": ' });
  await assert.rejects(Tokenizer.load(bad), (e: Error) => e instanceof InvalidModelError && /tokenizer\.json is not valid JSON/.test(e.message));

  const badCfg = writeTiny('llama', 400, { 'tokenizer_config.json': 'not json' });
  await assert.rejects(Tokenizer.load(badCfg), (e: Error) => e instanceof InvalidModelError && /tokenizer_config\.json is not valid JSON/.test(e.message));

  const badGen = writeTiny('llama', 400, { 'generation_config.json': '[1, 2' });
  await assert.rejects(Tokenizer.load(badGen), (e: Error) => e instanceof InvalidModelError && /generation_config\.json is not valid JSON/.test(e.message));

  const noModel = writeTiny('llama', 400, { 'tokenizer.json': { added_tokens: [] } });
  await assert.rejects(Tokenizer.load(noModel), (e: Error) => e instanceof InvalidModelError && /tokenizer\.json has no "model"/.test(e.message));

  const g = generateTokenizer('llama', { merges: 400 });
  const badEos = writeTiny('llama', 400, { 'tokenizer_config.json': { ...(g.files['tokenizer_config.json'] as object), eos_token: '<nope>' } });
  await assert.rejects(Tokenizer.load(badEos), (e: Error) => e instanceof InvalidModelError && /eos_token "<nope>"/.test(e.message));
});

test('tokenizer_config.json variants: token objects, template lists, chat_template.jinja', async () => {
  const g = generateTokenizer('llama', { merges: 400 });
  const cfg = g.files['tokenizer_config.json'] as Record<string, unknown>;
  const template = cfg.chat_template as string;
  const objects = await Tokenizer.load(writeTiny('llama', 400, {
    'tokenizer_config.json': {
      ...cfg,
      bos_token: { __type: 'AddedToken', content: '<|begin_of_text|>', lstrip: false },
      eos_token: { content: '<|end_of_text|>' },
      chat_template: [{ name: 'tool_use', template: 'TOOLS' }, { name: 'default', template }],
    },
  }));
  assert.equal(objects.bosTokenId, objects.tokenToId('<|begin_of_text|>'));
  assert.deepEqual(objects.eosTokenIds, [objects.tokenToId('<|end_of_text|>')]);
  assert.equal(objects.chatTemplate, template);

  const { chat_template: _unused, ...noTemplate } = cfg;
  const jinjaFile = await Tokenizer.load(writeTiny('llama', 400, { 'tokenizer_config.json': noTemplate, 'chat_template.jinja': 'X{{ messages[0].content }}' }));
  assert.equal(jinjaFile.applyChatTemplate([{ role: 'user', content: 'hi' }]), 'Xhi');

  const none = await Tokenizer.load(writeTiny('llama', 400, { 'tokenizer_config.json': noTemplate }));
  assert.equal(none.chatTemplate, null);
  assert.throws(() => none.applyChatTemplate([{ role: 'user', content: 'hi' }]), (e: Error) =>
    e instanceof InvalidRequestError && /tokenizer_config\.json chat_template/.test(e.message));

  const broken = await Tokenizer.load(writeTiny('llama', 400, { 'tokenizer_config.json': { ...cfg, chat_template: '{% for m in messages %}' } }));
  assert.throws(() => broken.applyChatTemplate([{ role: 'user', content: 'hi' }]), (e: Error) =>
    e instanceof InvalidModelError && /tokenizer_config\.json chat_template/.test(e.message));
});
