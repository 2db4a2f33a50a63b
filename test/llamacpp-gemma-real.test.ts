// Gemma 3 on its published tokenizer, end to end through llama.cpp (node-llama-cpp's prebuilt CPU
// backend): a model with tiny dimensions, random weights and the real 262,144-entry vocabulary
// (tokenizer.json defines 262,145 ids: <image_soft_token> is past vocab_size) is exported to GGUF as a
// SentencePiece-style "llama" vocabulary, and
// - llama.cpp tokenizes a corpus (scripts, emoji, whitespace runs, code, Gemma's added HTML/whitespace
//   tokens, control-token look-alikes, unnormalised text) exactly as tunekit does (tunekit's Gemma 3
//   tokenizer equals Hugging Face's Rust tokenizers, see tokenizer-real.test.ts);
// - llama.cpp and tunekit give the same greedy continuation of a chat prompt and next-token
//   distributions within the Gemma tolerance of llamacpp-equivalence.test.ts (1e-2, llama.cpp's f16 GELU
//   table), over the whole vocabulary at sampled prompt positions and at every generated step.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Token } from 'node-llama-cpp';
import { exportGguf, type GgufExportSummary } from '../src/export/gguf.js';
import { readGgufHeader } from '../src/export/gguf-reader.js';
import { initTinyModel, initialWeights } from '../src/models/tiny.js';
import { loadModel, type LoadedModel } from '../src/models/model.js';
import { parseModelConfig } from '../src/models/config.js';
import { writeSafetensors } from '../src/models/safetensors.js';
import { setTokenizerNotices } from '../src/tokenizer/tokenizer.js';
import { argmax } from '../src/generate/sampler.js';
import { InvalidRequestError } from '../src/errors.js';
import { greedyDecode, logSoftmax, openGguf, type LlamaCppSession } from './helpers/llamacpp.js';
import { realTokenizerDir } from './helpers/real-tokenizers.js';

const V = 262144;
const TOL_LOG_P = 1e-2;
const MIN_P = 1e-20;
const STEPS = 16;

const CORPUS: string[] = [
  'The quick brown fox jumps over the lazy dog.',
  "I'm sure they'll say it's fine; we've done it. SHE'LL SAY IT'S OK. It'S mIxEd",
  'Привет, как дела? Съешь же ещё этих мягких французских булок.',
  'مرحبا بالعالم، كيف حالك؟ שלום עולם! नमस्ते दुनिया। आप कैसे हैं?',
  '你好，世界！今天天气很好。こんにちは、世界。カタカナとひらがな。안녕하세요 세계!',
  'Γειά σου Κόσμε! สวัสดีชาวโลก Xin chào thế giới ትግርኛ አማርኛ',
  '👋🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️‍🔥 😀😃😄😁 🧑🏿‍💻 #️⃣ 1️⃣ 𓀀 🫠',
  'a  b   c    d\t\te\n\nf\n\n\ng \n \n h\r\n\r\ni',
  '    leading spaces\n\ttabbed\n        deeply indented\n\t\t\t\tfour tabs\n',
  ' ', '\n', '  ', '\t', 'x ', ' x', ' '.repeat(64), '\n'.repeat(40), '\t'.repeat(33), ' \n \t ',
  ...Array.from({ length: 36 }, (_, n) => `a${' '.repeat(n + 1)}b`),
  '\u3000全角\u3000スペース\u00a0nbsp\u2009thin\u202fnarrow\u2028line\u2029para\u0085nel\ufeffbom',
  'def add(a: int, b: int) -> int:\n    """Add."""\n    return a + b  # sum\n\nprint(add(1, 2))\n',
  'for (let i = 0; i < n; i++) {\n\tconsole.log(`${i}: ${arr[i] ?? "none"}`);\n}\n',
  '<table><tr><td>1</td><th>h</th></tr></table> <b>bold</b><i>x</i><code>y</code> <div class="a"><span>s</span></div>',
  '<h1>Title</h1>\n<blockquote>q</blockquote><ul><li>a</li></ul><a href="#">l</a> <strong>s</strong><em>e</em>',
  'SELECT id, name FROM users WHERE age >= 18 AND name LIKE \'%son\';',
  '{"key": [1, 2.5, -3e10, true, null], "nested": {"a": "b\\n"}}',
  '12345678901234567890 3.14159 1,000,000 0x1F 1e-7 2024-01-31',
  '<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\nok<end_of_turn> <eos> <pad> <unk> <mask> <start_of_image><end_of_image>',
  '<start_of_turn <end_of_turn> > <bos <unused0> <unused99999> [multimodal] <|im_start|> <think></think>',
  '▁ ▁▁ a▁b ▁▁▁x literal U+2581',
  'cafe\u0301 café e\u0301\u0301 \u212b \u00c5 A\u030a',
  '\ufb01le \ufb02ow Ａｂｃ１２３ ｶﾀｶﾅ ① ² ½ ™ ℌ 𝔘𝔫𝔦',
  'ḱṷṓn ǆ ǅ Ǆ İstanbul ß ẞ ς Σ',
  '\u200bzero\u200cwidth\u200djoiner\u2060word',
  'tab\u0000nul\u0001soh\u007fdel \u{10FFFD} \u{E000}',
  'x'.repeat(300) + ' ' + 'ab'.repeat(150),
];

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-gemma-real-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
let dir: string;
let file: string;
let summary: GgufExportSummary;
let m: LoadedModel;
let s: LlamaCppSession;

before(async () => {
  setTokenizerNotices(() => {});
  dir = path.join(root, 'gemma3-real');
  initTinyModel({ family: 'gemma3', size: 'tiny', seed: 1, out: dir, tokenizerDir: realTokenizerDir('gemma3'), vocabSize: V });
  // An untied random lm_head, so that the greedy path wanders over the vocabulary.
  const cfgFile = path.join(dir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  cfg.tie_word_embeddings = false;
  fs.writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));
  writeSafetensors(path.join(dir, 'model.safetensors'), initialWeights(parseModelConfig(cfg, cfgFile), 101, 'wide'), 'F32');
  file = path.join(root, 'gemma3-real.gguf');
  summary = await exportGguf({ modelDir: dir, out: file, dtype: 'f32' });
  m = await loadModel(dir);
  s = await openGguf(file, { contextSize: 128 });
});

test('the export writes a "llama" vocabulary of vocab_size tokens with byte, control and user-defined types', () => {
  assert.deepEqual(summary.droppedTokens, ['<image_soft_token> (262144)']);
  const meta = readGgufHeader(file).metadata;
  const get = (k: string) => meta.get(k) as { value: unknown } | undefined;
  assert.equal(get('tokenizer.ggml.model')?.value, 'llama');
  assert.equal(get('tokenizer.ggml.add_space_prefix')?.value, false);
  assert.equal(get('tokenizer.ggml.add_bos_token')?.value, true);
  const tokens = get('tokenizer.ggml.tokens')?.value as string[];
  const types = get('tokenizer.ggml.token_type')?.value as number[];
  const scores = get('tokenizer.ggml.scores')?.value as number[];
  assert.equal(tokens.length, V);
  assert.equal(types.length, V);
  assert.equal(scores.length, V);
  const typeOf = (t: string) => types[tokens.indexOf(t)];
  assert.equal(typeOf('<0x0A>'), 6);
  assert.equal(typeOf('<start_of_turn>'), 3);
  assert.equal(typeOf('<unused0>'), 4);
  assert.equal(typeOf('<table>'), 4);
  assert.equal(get('tokenizer.ggml.unknown_token_id')?.value, tokens.indexOf('<unk>'));
  assert.equal(s.model.tokens.bos, m.tokenizer.bosTokenId);
  assert.ok(s.model.isEogToken(tokens.indexOf('<end_of_turn>') as Token), '<end_of_turn> ends generation');
});

test('llama.cpp tokenizes the corpus exactly as tunekit does with the published Gemma 3 tokenizer', () => {
  const failures: string[] = [];
  const chat = m.tokenizer.applyChatTemplate([
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: "What's 12345 + 678?\n\nThanks!" },
    { role: 'assistant', content: 'It is 13023.' },
    { role: 'user', content: 'ok   then' },
  ], { addGenerationPrompt: true });
  for (const text of [...CORPUS, chat]) {
    const ours = m.tokenizer.encode(text, { addSpecialTokens: false });
    const theirs = Array.from(s.model.tokenize(text, true) as number[]);
    if (JSON.stringify(ours) !== JSON.stringify(theirs)) failures.push(`${JSON.stringify(text.slice(0, 50))}: ours ${JSON.stringify(ours.slice(0, 20))} llama.cpp ${JSON.stringify(theirs.slice(0, 20))}`);
  }
  assert.deepEqual(failures, []);
  assert.equal(s.model.tokens.shouldPrependBosToken, true);
  assert.deepEqual(Array.from(s.model.tokenize('hi', false) as number[]), m.tokenizer.encode('hi', { addSpecialTokens: false }));
  // The token left out of the GGUF: tunekit refuses text that spells it rather than tokenizing it otherwise.
  assert.throws(() => m.tokenizer.encode('<image_soft_token>', { addSpecialTokens: false }), InvalidRequestError);
});

test('llama.cpp gives the greedy continuation and distributions tunekit gives (real vocabulary, untied, f32)', async (t) => {
  const prompt = m.tokenizer.encode(m.tokenizer.applyChatTemplate(
    [{ role: 'user', content: 'Write one sentence about the sea, then stop. Σ 你好 🙂' }], { addGenerationPrompt: true },
  ));
  assert.ok(prompt.length > 12, `prompt has ${prompt.length} tokens`);
  let maxLogP = 0;
  let compared = 0;
  const fold = (ours: Float64Array, theirs: Map<Token, number> | Float64Array) => {
    const dense = theirs instanceof Float64Array ? theirs : Float64Array.from({ length: V }, (_, j) => theirs.get(j as Token) ?? 0);
    for (let j = 0; j < V; j++) {
      if (Math.exp(ours[j]!) <= MIN_P) continue;
      compared++;
      maxLogP = Math.max(maxLogP, dense[j]! > 0 ? Math.abs(ours[j]! - Math.log(dense[j]!)) : Infinity);
    }
  };
  // Teacher-forced distributions at every fourth prompt position and the last.
  const at = new Set(prompt.map((_, i) => i).filter((i) => i % 4 === 3 || i === prompt.length - 1));
  await s.sequence.clearHistory();
  const res = await s.sequence.controlledEvaluate(prompt.map((tok, i) => (at.has(i) ? [tok as Token, { generateNext: { probabilities: true } }] : (tok as Token))));
  const all = m.transformer.forward(prompt, m.transformer.createCache(prompt.length), { allLogits: true });
  for (const i of at) fold(logSoftmax(all.subarray(i * V, (i + 1) * V)), res[i]!.next!.probabilities!);

  const steps = await greedyDecode(s, prompt, STEPS, { probabilities: { vocabSize: V } });
  const cache = m.transformer.createCache(prompt.length + STEPS);
  let logits = m.transformer.forward(prompt, cache);
  const ours: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    fold(logSoftmax(logits), steps[i]!.probabilities!);
    ours.push(argmax(logits));
    if (i + 1 < STEPS) logits = m.transformer.forward([ours[i]!], cache);
  }
  t.diagnostic(`prompt ${prompt.length} tokens; max|Δlog p| ${maxLogP.toExponential(2)} over ${compared} probabilities; ${new Set(ours).size} distinct greedy tokens`);
  assert.deepEqual(steps.map((x) => x.token), ours, 'greedy continuation');
  assert.ok(new Set(ours).size >= 5, 'the greedy path should not be degenerate');
  assert.ok(compared >= (at.size + STEPS) * V * 0.5, `compared ${compared} probabilities`);
  assert.ok(maxLogP < TOL_LOG_P, `max |Δ log p| ${maxLogP} ≥ ${TOL_LOG_P}`);
});

test('a byte-fallback tokenizer whose normalizer llama.cpp cannot reproduce is refused, naming it', async () => {
  const copy = path.join(root, 'gemma3-prepend');
  fs.mkdirSync(copy);
  for (const f of fs.readdirSync(dir)) if (f !== 'model.safetensors') fs.copyFileSync(path.join(dir, f), path.join(copy, f));
  fs.symlinkSync(path.join(dir, 'model.safetensors'), path.join(copy, 'model.safetensors'));
  const tjFile = path.join(copy, 'tokenizer.json');
  const tj = JSON.parse(fs.readFileSync(tjFile, 'utf8')) as Record<string, unknown>;
  tj.normalizer = { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, tj.normalizer] };
  fs.writeFileSync(tjFile, JSON.stringify(tj));
  await assert.rejects(exportGguf({ modelDir: copy, out: path.join(root, 'refused.gguf'), dtype: 'f32' }), (e: Error) => {
    assert.equal(e.name, 'UnsupportedModelError');
    assert.match(e.message, /normalizer .*Prepend/);
    return true;
  });
});

// The byte-level BPE exports ("gpt2" vocabularies) on the other two published tokenizers, same corpus.
// Qwen3's tokenizer NFC-normalises and llama.cpp does not (as llama.cpp's own converter accepts), so for
// Qwen3 the corpus is the texts NFC leaves unchanged (all but the unnormalised line).
for (const [name, family, vocabSize] of [['qwen3', 'qwen3', 151936], ['llama3_1', 'llama', 128256]] as const) {
  test(`${name}: llama.cpp tokenizes the corpus exactly as tunekit does with the published tokenizer`, async () => {
    const d = path.join(root, name);
    initTinyModel({ family, size: 'tiny', seed: 1, out: d, tokenizerDir: realTokenizerDir(name), vocabSize });
    const f = path.join(root, `${name}.gguf`);
    await exportGguf({ modelDir: d, out: f, dtype: 'f32' });
    const model = await loadModel(d);
    const session = await openGguf(f, { contextSize: 64 });
    try {
      const failures: string[] = [];
      const texts = CORPUS.filter((text) => name !== 'qwen3' || text.normalize('NFC') === text);
      assert.ok(texts.length >= CORPUS.length - 1);
      for (const text of texts) {
        const ours = model.tokenizer.encode(text, { addSpecialTokens: false });
        const theirs = Array.from(session.model.tokenize(text, true) as number[]);
        if (JSON.stringify(ours) !== JSON.stringify(theirs)) failures.push(`${JSON.stringify(text.slice(0, 50))}: ours ${JSON.stringify(ours.slice(0, 20))} llama.cpp ${JSON.stringify(theirs.slice(0, 20))}`);
      }
      assert.deepEqual(failures, []);
    } finally {
      await session.dispose();
    }
  });
}

test('teardown', async () => {
  await s.dispose();
});
