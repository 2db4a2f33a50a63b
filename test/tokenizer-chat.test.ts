// The tiny tokenizers' chat templates render each family's exact prompt format, and rendered prompts
// encode with every marker as its single special id.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer, type ChatMessage } from '../src/tokenizer/tokenizer.js';
import { generateTokenizer, type Family } from '../src/tokenizer/tiny-tokenizers.js';
import { InvalidRequestError } from '../src/errors.js';

function tiny(family: Family): Tokenizer {
  const g = generateTokenizer(family, { merges: 400 });
  return Tokenizer.fromFiles({
    tokenizer: g.files['tokenizer.json'] as Record<string, unknown>,
    config: g.files['tokenizer_config.json'] as Record<string, unknown>,
  });
}

const CHAT: ChatMessage[] = [
  { role: 'system', content: 'You are a terse assistant.' },
  { role: 'user', content: 'Name a red fruit.' },
  { role: 'assistant', content: 'A tomato.' },
  { role: 'user', content: 'And a yellow one?' },
];

const EXPECTED: Record<Family, string> = {
  llama:
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a terse assistant.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nName a red fruit.<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\nA tomato.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nAnd a yellow one?<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\n',
  qwen3:
    '<|im_start|>system\nYou are a terse assistant.<|im_end|>\n' +
    '<|im_start|>user\nName a red fruit.<|im_end|>\n' +
    '<|im_start|>assistant\nA tomato.<|im_end|>\n' +
    '<|im_start|>user\nAnd a yellow one?<|im_end|>\n' +
    '<|im_start|>assistant\n',
  gemma3:
    '<bos><start_of_turn>user\nYou are a terse assistant.\n\nName a red fruit.<end_of_turn>\n' +
    '<start_of_turn>model\nA tomato.<end_of_turn>\n' +
    '<start_of_turn>user\nAnd a yellow one?<end_of_turn>\n' +
    '<start_of_turn>model\n',
};

const GENERATION_PROMPT: Record<Family, string> = {
  llama: '<|start_header_id|>assistant<|end_header_id|>\n\n',
  qwen3: '<|im_start|>assistant\n',
  gemma3: '<start_of_turn>model\n',
};

for (const family of ['llama', 'qwen3', 'gemma3'] as const) {
  test(`${family}: 2-turn chat with a system prompt renders the family's format`, () => {
    const tok = tiny(family);
    assert.equal(tok.applyChatTemplate(CHAT, { addGenerationPrompt: true }), EXPECTED[family]);
    const noPrompt = tok.applyChatTemplate(CHAT);
    assert.equal(noPrompt + GENERATION_PROMPT[family], EXPECTED[family]);
  });

  test(`${family}: a rendered prompt encodes markers as single special ids and decodes back`, () => {
    const tok = tiny(family);
    const prompt = tok.applyChatTemplate(CHAT, { addGenerationPrompt: true });
    const ids = tok.encode(prompt, { addSpecialTokens: false });
    assert.equal(tok.decode(ids), prompt);
    const marker = { llama: '<|eot_id|>', qwen3: '<|im_end|>', gemma3: '<end_of_turn>' }[family];
    const markerId = tok.tokenToId(marker)!;
    assert.equal(ids.filter((id) => id === markerId).length, prompt.split(marker).length - 1);
    assert.ok(generateTokenizer(family, { merges: 400 }).eosTokenIds.includes(markerId), 'the end-of-turn marker stops generation');
    if (tok.bosTokenId !== null) {
      assert.equal(ids[0], tok.bosTokenId);
      assert.notEqual(ids[1], tok.bosTokenId, 'BOS is not doubled when encoding without special tokens');
    }
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }).includes('<|'), false);
  });
}

test('qwen3: enable_thinking=false pre-fills an empty think block; true and unset do not', () => {
  const tok = tiny('qwen3');
  const off = tok.applyChatTemplate(CHAT, { addGenerationPrompt: true, enableThinking: false });
  assert.equal(off, EXPECTED.qwen3 + '<think>\n\n</think>\n\n');
  assert.equal(tok.applyChatTemplate(CHAT, { addGenerationPrompt: true, enableThinking: true }), EXPECTED.qwen3);
  const ids = tok.encode(off, { addSpecialTokens: false });
  assert.deepEqual(ids.slice(-4).map((id) => tok.idToToken(id)), ['<think>', 'ĊĊ', '</think>', 'ĊĊ']);
});

test('qwen3: the final assistant turn carries its reasoning; earlier ones drop it', () => {
  const tok = tiny('qwen3');
  const rendered = tok.applyChatTemplate([
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: '<think>\ngreet back\n</think>\n\nHello.' },
    { role: 'user', content: 'Bye' },
    { role: 'assistant', content: '<think>\nsay bye\n</think>\n\nBye!' },
  ]);
  assert.equal(
    rendered,
    '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n' +
      '<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n<think>\nsay bye\n</think>\n\nBye!<|im_end|>\n',
  );
  const plain = tok.applyChatTemplate([{ role: 'user', content: 'Q' }, { role: 'assistant', content: 'A' }]);
  assert.equal(plain, '<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA<|im_end|>\n');
});

test('gemma3: no system prompt, "model" role accepted, alternation enforced', () => {
  const tok = tiny('gemma3');
  assert.equal(
    tok.applyChatTemplate([{ role: 'user', content: ' Hi ' }, { role: 'model', content: 'Hey' }], { addGenerationPrompt: false }),
    '<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHey<end_of_turn>\n',
  );
  assert.throws(
    () => tok.applyChatTemplate([{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }]),
    (e: Error) => e instanceof InvalidRequestError && /chat_template/.test(e.message) && /alternate/.test(e.message),
  );
});

test('llama: contents are trimmed, roles pass through as given', () => {
  const tok = tiny('llama');
  assert.equal(
    tok.applyChatTemplate([{ role: 'user', content: '  padded \n' }, { role: 'ipython', content: '42' }]),
    '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\npadded<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n42<|eot_id|>',
  );
});
