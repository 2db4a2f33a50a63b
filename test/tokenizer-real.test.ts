// The published Gemma 3, Qwen3 and Llama 3.1 tokenizers (npm fixtures, see test/helpers/real-tokenizers.ts):
// - tunekit's encode/decode equal Hugging Face's Rust tokenizers library (the implementation transformers'
//   fast tokenizers run; independent of the @huggingface/tokenizers port tunekit uses) on a corpus of
//   scripts, emoji, whitespace runs, code, control-token look-alikes and unnormalised text;
// - a Gemma 3 directory whose config.json says vocab_size 262144 while tokenizer.json defines 262,145 ids
//   (<image_soft_token> is 262144) loads, says so once, generates only ids the embedding has, and refuses
//   text that spells the extra token instead of looking up a row that does not exist.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tokenizer, setTokenizerNotices } from '../src/tokenizer/tokenizer.js';
import { InvalidModelError, InvalidRequestError } from '../src/errors.js';
import { initTinyModel } from '../src/models/tiny.js';
import { loadModel } from '../src/models/model.js';
import { generate } from '../src/generate/generate.js';
import { realTokenizerDir, rustTokenizers, REAL_TOKENIZER_NAMES, type RealTokenizerName, type RustTokenizer } from './helpers/real-tokenizers.js';

const dirs = {} as Record<RealTokenizerName, string>;
const ours = {} as Record<RealTokenizerName, Tokenizer>;
const reference = {} as Record<RealTokenizerName, RustTokenizer>;

before(() => {
  const rust = rustTokenizers();
  for (const name of REAL_TOKENIZER_NAMES) {
    dirs[name] = realTokenizerDir(name);
    ours[name] = Tokenizer.loadSync(dirs[name]);
    reference[name] = rust.Tokenizer.fromFile(path.join(dirs[name], 'tokenizer.json'));
  }
});

const CORPUS: string[] = [
  // scripts
  'The quick brown fox jumps over the lazy dog.',
  "I'm sure they'll say it's fine; we've done it, you're right, he'd agree. SHE'LL SAY IT'S OK. It'S mIxEd",
  'Привет, как дела? Съешь же ещё этих мягких французских булок.',
  'مرحبا بالعالم، كيف حالك؟',
  'שלום עולם! מה שלומך?',
  'नमस्ते दुनिया। आप कैसे हैं?',
  '你好，世界！今天天气很好。我们去公园散步吧。',
  'こんにちは、世界。カタカナとひらがなと漢字。',
  '안녕하세요 세계! 한국어 문장입니다.',
  'Γειά σου Κόσμε! Ελληνικά.',
  'สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ',
  'Xin chào thế giới, tiếng Việt có dấu.',
  'ትግርኛ አማርኛ ሰላም ዓለም',
  // emoji
  '👋🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️‍🔥 😀😃😄😁 🧑🏿‍💻 #️⃣ 1️⃣',
  // whitespace runs
  'a  b   c    d\t\te\n\nf\n\n\ng \n \n h\r\n\r\ni',
  '    leading spaces\n\ttabbed\n        deeply indented\n',
  '\u3000全角\u3000スペース\u00a0nbsp\u2009thin\u202fnarrow\u2028line\u2029para\u0085nel\ufeffbom',
  ' ',
  '\n',
  '                                                                ',
  // code
  'def add(a: int, b: int) -> int:\n    """Add."""\n    return a + b  # sum\n\nprint(add(1, 2))\n',
  'for (let i = 0; i < n; i++) {\n\tconsole.log(`${i}: ${arr[i] ?? "none"}`);\n}\n',
  '<html><body class="x-1">&amp; &lt;tag&gt;</body></html>',
  'SELECT id, name FROM users WHERE age >= 18 AND name LIKE \'%son\';',
  '{"key": [1, 2.5, -3e10, true, null], "nested": {"a": "b\\n"}}',
  '12345678901234567890 3.14159 1,000,000 0x1F 1e-7 2024-01-31',
  // control-token look-alikes
  '<|im_start|>user\nhi<|im_end|> <|endoftext|> <|begin_of_text|><|start_header_id|>user<|end_header_id|> <|eot_id|>',
  '<bos><start_of_turn>user\nhi<end_of_turn> <eos> <pad> <unk> <mask> <image_soft_token> <start_of_image>',
  '< |im_start| > <|im_start <im_start|> <<|im_end|>> <think></think> <tool_call> <|reserved_special_token_5|>',
  '<start_of_turn <end_of_turn> > <bos <unused0> <unused99999>',
  // unnormalised text
  'cafe\u0301 café e\u0301\u0301 \u212b \u00c5 A\u030a',
  '\ufb01le \ufb02ow Ａｂｃ１２３ ｶﾀｶﾅ ① ² ½ ™ ℌ 𝔘𝔫𝔦',
  'ḱṷṓn ǆ ǅ Ǆ İstanbul ß ẞ ς Σ',
  '\u200bzero\u200cwidth\u200djoiner\u2060word',
  'tab\u0000nul\u0001soh\u007fdel',
  'x'.repeat(300) + ' ' + 'ab'.repeat(150),
];

test('encode equals the Rust tokenizers library for each published tokenizer, with and without special tokens', async () => {
  const failures: string[] = [];
  for (const name of REAL_TOKENIZER_NAMES) {
    for (const text of CORPUS) {
      const want = (await reference[name].encode(text, null, { addSpecialTokens: false })).getIds();
      const got = ours[name].encode(text, { addSpecialTokens: false });
      if (JSON.stringify(got) !== JSON.stringify(want)) failures.push(`${name} ${JSON.stringify(text.slice(0, 50))}: ${JSON.stringify(got.slice(0, 12))} vs ${JSON.stringify(want.slice(0, 12))}`);
      const wantSpecial = (await reference[name].encode(text, null, { addSpecialTokens: true })).getIds();
      const gotSpecial = ours[name].encode(text);
      if (JSON.stringify(gotSpecial) !== JSON.stringify(wantSpecial)) failures.push(`${name} with special tokens ${JSON.stringify(text.slice(0, 50))}: ${JSON.stringify(gotSpecial.slice(0, 6))} vs ${JSON.stringify(wantSpecial.slice(0, 6))}`);
    }
  }
  assert.deepEqual(failures, [], failures.slice(0, 12).join('\n'));
});

test('decode equals the Rust tokenizers library (all ids, and with special tokens skipped)', async () => {
  const failures: string[] = [];
  for (const name of REAL_TOKENIZER_NAMES) {
    for (const text of CORPUS) {
      const ids = ours[name].encode(text);
      const want = await reference[name].decode(ids, false);
      const got = ours[name].decode(ids);
      if (got !== want) failures.push(`${name} ${JSON.stringify(text.slice(0, 40))}: ${JSON.stringify(got.slice(0, 60))} vs ${JSON.stringify(want.slice(0, 60))}`);
      const wantSkip = await reference[name].decode(ids, true);
      const gotSkip = ours[name].decode(ids, { skipSpecialTokens: true });
      if (gotSkip !== wantSkip) failures.push(`${name} skipping specials ${JSON.stringify(text.slice(0, 40))}: ${JSON.stringify(gotSkip.slice(0, 60))} vs ${JSON.stringify(wantSkip.slice(0, 60))}`);
    }
  }
  assert.deepEqual(failures, [], failures.slice(0, 12).join('\n'));
});

test('the published special-token ids', () => {
  assert.equal(ours.gemma3.size, 262145);
  assert.deepEqual([ours.gemma3.bosTokenId, ours.gemma3.eosTokenIds[0], ours.gemma3.padTokenId], [2, 106, 0]);
  assert.equal(ours.gemma3.tokenToId('<image_soft_token>'), 262144);
  assert.equal(ours.qwen3.size, 151669);
  assert.deepEqual([ours.qwen3.bosTokenId, ours.qwen3.eosTokenIds[0], ours.qwen3.padTokenId], [null, 151645, 151643]);
  assert.equal(ours.llama3_1.size, 128256);
  assert.deepEqual([ours.llama3_1.bosTokenId, ours.llama3_1.eosTokenIds[0]], [128000, 128009]);
});

test('a tokenizer with special tokens beyond vocab_size loads with one notice; text spelling them is refused', () => {
  const notices: string[] = [];
  setTokenizerNotices((m) => notices.push(m));
  try {
    const files = {
      tokenizer: JSON.parse(fs.readFileSync(path.join(dirs.gemma3, 'tokenizer.json'), 'utf8')) as Record<string, unknown>,
      config: JSON.parse(fs.readFileSync(path.join(dirs.gemma3, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>,
    };
    const tok = Tokenizer.fromFiles(files, { vocabSize: 262144 });
    Tokenizer.fromFiles(files, { vocabSize: 262144 });
    assert.equal(tok.size, 262145);
    assert.equal(tok.embeddingSize, 262144);
    assert.equal(notices.length, 1, notices.join('\n'));
    assert.match(notices[0]!, /262145 tokens but config\.json vocab_size is 262144.*"<image_soft_token>" \(262144\)/);
    assert.deepEqual(tok.encode('<start_of_turn>user\nhi'), ours.gemma3.encode('<start_of_turn>user\nhi'));
    assert.throws(() => tok.encode('look: <image_soft_token>'), (e: Error) => {
      assert.ok(e instanceof InvalidRequestError);
      assert.match(e.message, /"<image_soft_token>", a special token \(id 262144\) that this model has no embedding for/);
      return true;
    });
    assert.equal(tok.decode([262144]), '<image_soft_token>');
    // One row fewer: id 262143 (<unused6241>) is not special, so the embedding must have it.
    assert.throws(() => Tokenizer.fromFiles(files, { vocabSize: 262143 }), (e: Error) =>
      e instanceof InvalidModelError && /id 262143 \("<unused6241>"\) is an added token that is not special/.test(e.message));
  } finally {
    setTokenizerNotices((m) => process.stderr.write(`tunekit: warning: ${m}\n`));
  }
});

test('a Gemma 3 model directory with the published tokenizer (262,145 ids, vocab_size 262144) loads and generates', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-gemma3-real-'));
  const notices: string[] = [];
  setTokenizerNotices((m) => notices.push(m));
  try {
    initTinyModel({ family: 'gemma3', size: 'tiny', seed: 3, out, vocabSize: 262144 });
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(dirs.gemma3, f), path.join(out, f));
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    Object.assign(config, { bos_token_id: 2, eos_token_id: [1, 106], pad_token_id: 0 });
    fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(config));
    fs.writeFileSync(path.join(out, 'generation_config.json'), JSON.stringify({ bos_token_id: 2, eos_token_id: [1, 106], pad_token_id: 0 }));

    const model = await loadModel(out);
    assert.equal(model.config.vocabSize, 262144);
    assert.equal(model.tokenizer.size, 262145);
    assert.equal(notices.length <= 1, true);
    const prompt = model.tokenizer.encode(model.tokenizer.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true }), { addSpecialTokens: false });
    const r = await generate(model, prompt, { maxTokens: 4, temperature: 0, seed: 1 });
    assert.ok(r.tokenIds.every((id) => id < 262144), JSON.stringify(r.tokenIds));
    const text = model.tokenizer.applyChatTemplate([{ role: 'user', content: 'Describe <image_soft_token>' }], { addGenerationPrompt: true });
    assert.throws(() => model.tokenizer.encode(text, { addSpecialTokens: false }), InvalidRequestError);
  } finally {
    setTokenizerNotices((m) => process.stderr.write(`tunekit: warning: ${m}\n`));
    fs.rmSync(out, { recursive: true, force: true });
  }
});
