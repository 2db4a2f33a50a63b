// A model turn's loss starts where its inference prompt ends, on the published Gemma 3, Qwen3 and Llama
// 3.1 tokenizers: the context before each trained span is exactly the prompt renderPrompt gives for the
// turns before it, and the span is what the model writes after that prompt. Qwen3's template renders
// "<think>\n\n</think>\n\n" before the final reply, which the default prompt (thinking on) leaves to
// the model: it is trained (it once was not, and a tuned Qwen3 then could not answer with the API's
// defaults); with enable_thinking false the prompt ends with it and it is context. For Llama and Gemma
// nothing lies between the prompt and the reply's text.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { generationPrompt, renderForTraining, renderPromptText, renderSegments, type RenderOptions } from '../src/data/render.js';
import type { Conversation } from '../src/data/conversation.js';
import { realTokenizerDir, type RealTokenizerName } from './helpers/real-tokenizers.js';

const END: Record<RealTokenizerName, string> = { gemma3: '<end_of_turn>', qwen3: '<|im_end|>', llama3_1: '<|eot_id|>' };
const PROMPT: Record<RealTokenizerName, string> = {
  gemma3: '<start_of_turn>model\n', qwen3: '<|im_start|>assistant\n', llama3_1: '<|start_header_id|>assistant<|end_header_id|>\n\n',
};
const BLOCK = '<think>\n\n</think>\n\n';

const tokenizers = new Map<RealTokenizerName, Tokenizer>();
before(() => {
  for (const name of ['gemma3', 'qwen3', 'llama3_1'] as const) tokenizers.set(name, Tokenizer.loadSync(realTokenizerDir(name)));
});

const CONV: Conversation = {
  systemInstruction: 'Be brief.',
  turns: [
    { role: 'user', text: 'Name a red fruit.' }, { role: 'model', text: 'A tomato.' },
    { role: 'user', text: 'And a yellow one?' }, { role: 'model', text: 'A banana.' },
  ],
  source: { file: 'train.jsonl', line: 1 },
};

test('the generation prompt each template appends, per thinking option', () => {
  for (const [name, tok] of tokenizers) {
    assert.equal(generationPrompt(tok), PROMPT[name], name);
    assert.equal(generationPrompt(tok, { enableThinking: true }), PROMPT[name], name);
    assert.equal(generationPrompt(tok, { enableThinking: false }), name === 'qwen3' ? PROMPT.qwen3 + BLOCK : PROMPT[name], name);
  }
});

test('the context before each trained span is the inference prompt; the span is what the model writes', () => {
  for (const [name, tok] of tokenizers) {
    for (const opts of [{}, { enableThinking: true }, { enableThinking: false }] as RenderOptions[]) {
      const label = `${name} ${JSON.stringify(opts)}`;
      const segments = renderSegments(CONV, tok, opts);
      const spans = segments.flatMap((s, i) => (s.loss ? [{ text: s.text, context: segments.slice(0, i).map((x) => x.text).join('') }] : []));
      assert.equal(spans.length, 2, label);
      const thinking = name === 'qwen3' && opts.enableThinking !== false;
      // The final reply: after exactly its prompt. Qwen3 with thinking on writes the empty block first.
      assert.equal(spans[1]!.context, renderPromptText({ systemInstruction: 'Be brief.', turns: CONV.turns.slice(0, 3) }, tok, opts), label);
      assert.equal(spans[1]!.text, `${thinking ? BLOCK : ''}A banana.${END[name]}`, label);
      // The earlier reply: Qwen3's template leaves the block out of history, so it is not trained there,
      // and its prompt with thinking off (which ends with the block) is not the history it follows.
      assert.equal(spans[0]!.text, `A tomato.${END[name]}`, label);
      if (!(name === 'qwen3' && opts.enableThinking === false)) {
        assert.equal(spans[0]!.context, renderPromptText({ systemInstruction: 'Be brief.', turns: CONV.turns.slice(0, 1) }, tok, opts), label);
      }
    }
  }
});

test('published Qwen3: the final reply\'s mask trains the empty think block\'s tokens (thinking on), not with thinking off', () => {
  const tok = tokenizers.get('qwen3')!;
  const blockIds = tok.encode(BLOCK, { addSpecialTokens: false });
  assert.deepEqual(blockIds.map((id) => tok.idToToken(id)), ['<think>', 'ĊĊ', '</think>', 'ĊĊ']);
  const replyIds = tok.encode(`A banana.${END.qwen3}`, { addSpecialTokens: false });
  const on = renderForTraining(CONV, tok);
  const trainedOn = on.tokens.filter((_, t) => on.lossMask[t]);
  assert.deepEqual(trainedOn.slice(-(blockIds.length + replyIds.length)), [...blockIds, ...replyIds]);
  const off = renderForTraining(CONV, tok, { enableThinking: false });
  assert.deepEqual(off.tokens, on.tokens, 'the option changes the mask, not the tokens');
  assert.deepEqual(off.tokens.filter((_, t) => off.lossMask[t]).slice(-replyIds.length - 1), [tok.tokenToId(END.qwen3)!, ...replyIds]);
  assert.equal(trainedOn.length - off.lossMask.reduce((a, b) => a + b, 0), blockIds.length);
});
