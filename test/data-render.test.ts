// renderForTraining on the tiny llama, qwen3 and gemma3 tokenizers: exactly what the model writes in
// every model turn (the markup after the generation prompt, if any, the text, its end-of-turn token)
// carries loss; weight-0 turns and everything else do not; piecewise tokenization equals tokenizing the
// whole rendered text; the inference prompt is exactly the training context before a reply.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { renderForTraining, renderPrompt, toChatMessages, endOfTurnTokens } from '../src/data/render.js';
import { DatasetError } from '../src/data/errors.js';
import type { Conversation, Turn } from '../src/data/conversation.js';
import { InvalidRequestError, UnsupportedModelError } from '../src/errors.js';
import { generateTokenizer } from '../src/tokenizer/tiny-tokenizers.js';
import { FAMILIES, tinyModelDir } from './helpers/tiny-models.js';
import type { Family } from '../src/models/config.js';

const END: Record<Family, string> = { llama: '<|eot_id|>', qwen3: '<|im_end|>', gemma3: '<end_of_turn>' };
/**
 * What the model writes before the final reply's text (thinking on, the default): Qwen3's template
 * renders an empty think block there that its generation prompt leaves out; the others write nothing.
 */
const BLOCK: Record<Family, string> = { llama: '', qwen3: '<think>\n\n</think>\n\n', gemma3: '' };

const tokenizers = new Map<Family, Tokenizer>();
function tokenizer(family: Family): Tokenizer {
  let tok = tokenizers.get(family);
  if (!tok) {
    tok = Tokenizer.loadSync(tinyModelDir(family));
    tokenizers.set(family, tok);
  }
  return tok;
}

const conv = (turns: Turn[], systemInstruction?: string): Conversation => ({
  ...(systemInstruction !== undefined ? { systemInstruction } : {}), turns, source: { file: 'train.jsonl', line: 7 },
});

const TWO_REPLIES = conv([
  { role: 'user', text: 'Name a red fruit.' },
  { role: 'model', text: 'A tomato.' },
  { role: 'user', text: 'And a yellow one?' },
  { role: 'model', text: 'A banana.' },
], 'Be brief.');

// What is left when the two replies and their end-of-turn tokens are cut out of the rendered text.
const CONTEXT: Record<Family, string> = {
  llama:
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nName a red fruit.<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\n' +
    '<|start_header_id|>user<|end_header_id|>\n\nAnd a yellow one?<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\n',
  qwen3:
    '<|im_start|>system\nBe brief.<|im_end|>\n' +
    '<|im_start|>user\nName a red fruit.<|im_end|>\n' +
    '<|im_start|>assistant\n' + '\n' +
    '<|im_start|>user\nAnd a yellow one?<|im_end|>\n' +
    '<|im_start|>assistant\n' + '\n',
  gemma3:
    '<bos><start_of_turn>user\nBe brief.\n\nName a red fruit.<end_of_turn>\n' +
    '<start_of_turn>model\n' + '\n' +
    '<start_of_turn>user\nAnd a yellow one?<end_of_turn>\n' +
    '<start_of_turn>model\n' + '\n',
};

/** Maximal runs of loss-carrying tokens, decoded. */
function trainedRuns(tok: Tokenizer, tokens: number[], mask: Uint8Array): string[] {
  const runs: number[][] = [];
  tokens.forEach((id, t) => {
    if (!mask[t]) return;
    if (t > 0 && mask[t - 1]) runs[runs.length - 1].push(id);
    else runs.push([id]);
  });
  return runs.map((r) => tok.decode(r));
}

function wholeText(tok: Tokenizer, c: Conversation): string {
  return tok.applyChatTemplate(toChatMessages(c));
}

for (const family of FAMILIES) {
  test(`${family}: every reply and its end-of-turn token carry loss, nothing else does`, () => {
    const tok = tokenizer(family);
    const { tokens, lossMask } = renderForTraining(TWO_REPLIES, tok);
    assert.equal(tokens.length, lossMask.length);
    const end = END[family];
    const block = BLOCK[family];
    assert.deepEqual(trainedRuns(tok, tokens, lossMask), [`A tomato.${end}`, `${block}A banana.${end}`]);
    assert.equal(tok.decode(tokens.filter((_, t) => lossMask[t])), `A tomato.${end}${block}A banana.${end}`);
    assert.equal(tok.decode(tokens.filter((_, t) => !lossMask[t])), CONTEXT[family]);
    // The end-of-turn token is one special id, and a stop token for generation.
    const endId = tok.tokenToId(end)!;
    assert.ok(tok.isSpecial(endId) && tok.eosTokenIds.includes(endId));
    assert.deepEqual(tokens.filter((id, t) => lossMask[t] && tok.isSpecial(id)), [endId, endId]);
    assert.ok(endOfTurnTokens(tok).includes(end));
  });

  test(`${family}: piecewise tokenization equals tokenizing the whole rendered text`, () => {
    const tok = tokenizer(family);
    const cases = [
      TWO_REPLIES,
      conv([{ role: 'user', text: 'List 3 primes.' }, { role: 'model', text: '2, 3 and 5 (also 7, 11...).' }]),
      conv([{ role: 'user', text: 'Say it twice:\nhello' }, { role: 'model', text: 'hello\nhello' }], 'Repeat.\n'),
      conv([{ role: 'user', text: '¿Qué tal? 你好' }, { role: 'model', text: "It's fine -- thanks! 🙂" }]),
      conv([{ role: 'user', text: 'Code?' }, { role: 'model', text: 'def f(x):\n    return x  # done' }]),
    ];
    for (const c of cases) {
      assert.deepEqual(renderForTraining(c, tok).tokens, tok.encode(wholeText(tok, c), { addSpecialTokens: false }));
    }
  });

  test(`${family}: a model turn with weight 0 is context only`, () => {
    const tok = tokenizer(family);
    const weighted = conv(TWO_REPLIES.turns.map((t, i) => (i === 1 ? { ...t, weight: 0 as const } : t)), 'Be brief.');
    const r = renderForTraining(weighted, tok);
    assert.deepEqual(trainedRuns(tok, r.tokens, r.lossMask), [`${BLOCK[family]}A banana.${END[family]}`]);
    assert.deepEqual(r.tokens, renderForTraining(TWO_REPLIES, tok).tokens, 'weights change the mask, not the tokens');
  });

  test(`${family}: the inference prompt is exactly the training context before each reply`, () => {
    const tok = tokenizer(family);
    // The prompt's defaults (Qwen3: thinking on, so the model writes the empty think block itself),
    // and thinking off (Qwen3's prompt then ends with that block, and the final reply follows it; its
    // template leaves the block out of earlier turns, so their prompts with thinking off are not the
    // history the final reply is trained after).
    for (const opts of [{}, { enableThinking: false }]) {
      const { tokens, lossMask } = renderForTraining(TWO_REPLIES, tok, opts);
      const starts = tokens.map((_, t) => t).filter((t) => lossMask[t] && !lossMask[t - 1]);
      assert.equal(starts.length, 2);
      for (const [k, turns] of [1, 3].entries()) {
        if (k === 0 && opts.enableThinking === false && family === 'qwen3') continue;
        const prompt = renderPrompt({ systemInstruction: 'Be brief.', turns: TWO_REPLIES.turns.slice(0, turns) }, tok, opts);
        assert.deepEqual(prompt.tokens, tokens.slice(0, starts[k]), JSON.stringify(opts));
        const reply = tok.decode(tokens.slice(starts[k]).filter((_, t) => lossMask[starts[k]! + t]));
        assert.ok(reply.startsWith(k === 1 && opts.enableThinking === undefined ? `${BLOCK[family]}A banana.` : TWO_REPLIES.turns[turns]!.text), reply);
      }
    }
  });
}

test('texts with edge whitespace: what the template kept is trained, markup whitespace is not', () => {
  const c = conv([
    { role: 'user', text: 'Q' }, { role: 'model', text: '\nHi' }, { role: 'user', text: ' Q\n' }, { role: 'model', text: '\nYo  ' },
  ]);
  const expected: Record<Family, string[]> = {
    llama: ['Hi<|eot_id|>', 'Yo<|eot_id|>'],
    qwen3: ['\nHi<|im_end|>', '<think>\n\n</think>\n\nYo  <|im_end|>'], // the final reply loses its leading newline only
    gemma3: ['Hi<end_of_turn>', 'Yo<end_of_turn>'],
  };
  for (const family of FAMILIES) {
    const tok = tokenizer(family);
    const r = renderForTraining(c, tok);
    assert.deepEqual(trainedRuns(tok, r.tokens, r.lossMask), expected[family], family);
    assert.equal(tok.decode(r.tokens), wholeText(tok, c), family);
    const whole = tok.encode(wholeText(tok, c), { addSpecialTokens: false });
    if (family === 'qwen3') {
      // The one documented divergence: "assistant\n" + "\nHi" is encoded as the prompt and reply
      // inference would see ("\n", "\n", "Hi"), not as the whole string's "\n\n", "Hi".
      assert.notDeepEqual(r.tokens, whole);
      const start = r.lossMask.indexOf(1);
      assert.deepEqual(r.tokens.slice(0, start), renderPrompt({ turns: c.turns.slice(0, 1) }, tok).tokens);
    } else {
      assert.deepEqual(r.tokens, whole, family);
    }
  }
});

test('renderPrompt takes chat messages too, and refuses a dialogue that does not end with a user turn', () => {
  const tok = tokenizer('llama');
  const viaMessages = renderPrompt([{ role: 'user', content: 'Hi' }], tok);
  assert.deepEqual(viaMessages, renderPrompt({ turns: [{ role: 'user', text: 'Hi' }] }, tok));
  assert.ok(viaMessages.text.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n'));
  assert.throws(() => renderPrompt(TWO_REPLIES, tok), InvalidRequestError);
});

test('llama: a reply that also occurs in the markup is found in the right place; trimmed text is trained', () => {
  const tok = tokenizer('llama');
  const r = renderForTraining(conv([{ role: 'user', text: 'user' }, { role: 'model', text: '  assistant\n' }]), tok);
  assert.deepEqual(trainedRuns(tok, r.tokens, r.lossMask), ['assistant<|eot_id|>']);
});

test('qwen3: reasoning dropped by the template is not trained; the final reply keeps and trains it', () => {
  const tok = tokenizer('qwen3');
  const c = conv([
    { role: 'user', text: 'One?' },
    { role: 'model', text: '<think>\nfirst thought\n</think>\n\nAnswer one.' },
    { role: 'user', text: 'Two?' },
    { role: 'model', text: '<think>\nsecond thought\n</think>\n\nAnswer two.' },
  ]);
  const r = renderForTraining(c, tok);
  assert.deepEqual(trainedRuns(tok, r.tokens, r.lossMask), [
    'Answer one.<|im_end|>',
    '<think>\nsecond thought\n</think>\n\nAnswer two.<|im_end|>',
  ]);
  assert.equal(tok.decode(r.tokens).includes('first thought'), false);
  assert.deepEqual(r.tokens, tok.encode(wholeText(tok, c), { addSpecialTokens: false }));
});

test('gemma3: a conversation its template rejects is a DatasetError naming the example', () => {
  const tok = tokenizer('gemma3');
  const c = conv([{ role: 'user', text: 'a' }, { role: 'user', text: 'b' }, { role: 'model', text: 'c' }]);
  assert.throws(() => renderForTraining(c, tok), (e: unknown) =>
    e instanceof DatasetError && e.file === 'train.jsonl' && e.line === 7 && /alternate/.test(e.message));
});

test('the template\'s turn terminator is trained even when it is not a generation eos token', () => {
  // A Qwen3 tokenizer whose only eos is <|endoftext|>: <|im_end|> is found by probing the template.
  const g = generateTokenizer('qwen3', { merges: 200 });
  const config: Record<string, unknown> = { ...(g.files['tokenizer_config.json'] as Record<string, unknown>), eos_token: '<|endoftext|>' };
  const tok = Tokenizer.fromFiles({ tokenizer: g.files['tokenizer.json'] as Record<string, unknown>, config });
  assert.equal(tok.eosTokenIds.includes(tok.tokenToId('<|im_end|>')!), false);
  const r = renderForTraining(TWO_REPLIES, tok);
  assert.deepEqual(trainedRuns(tok, r.tokens, r.lossMask), ['A tomato.<|im_end|>', '<think>\n\n</think>\n\nA banana.<|im_end|>']);

  const { chat_template: _, ...plain } = config;
  const base = Tokenizer.fromFiles({ tokenizer: g.files['tokenizer.json'] as Record<string, unknown>, config: plain });
  assert.throws(() => renderForTraining(TWO_REPLIES, base), UnsupportedModelError);
});
