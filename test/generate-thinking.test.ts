// The thinking budget is a hard cap: with N, at most N tokens are spent inside <think> before the
// closing marker is forced in; with 0 the opening marker is never sampled; thought text is reported
// apart from the answer, without markers or the layout newlines at its ends.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../src/models/model.js';
import { generate } from '../src/generate/generate.js';
import { ThinkingTracker } from '../src/generate/thinking.js';
import { InvalidRequestError } from '../src/errors.js';
import { tinyModelDir } from './helpers/tiny-models.js';

test('tracker: the budget forces the closing marker after N thought tokens', async () => {
  const m = await loadModel(tinyModelDir('qwen3'));
  const tk = m.tokenizer;
  const open = tk.tokenToId('<think>')!;
  const close = tk.tokenToId('</think>')!;
  const closing = tk.encode('</think>\n\n', { addSpecialTokens: false });
  const tr = new ThinkingTracker(tk, 3, []);
  assert.deepEqual(tr.accept(5), { kinds: ['answer'], feed: [5] });
  assert.deepEqual(tr.accept(open).kinds, ['thought']);
  assert.deepEqual(tr.accept(7).feed, [7]);
  const forced = tr.accept(8); // third token inside the block: the cap
  assert.deepEqual(forced.feed, [8, ...closing]);
  assert.ok(forced.kinds.every((k) => k === 'thought'));
  assert.deepEqual(tr.accept(9).kinds, ['answer']);
  assert.equal(tr.thoughtTokens, 3 + closing.length);
  const off = new ThinkingTracker(tk, 0, []);
  assert.equal(off.banned, open);
  const closed = new ThinkingTracker(tk, 2, []);
  closed.accept(open);
  assert.deepEqual(closed.accept(close), { kinds: ['thought'], feed: [close] });
  assert.deepEqual(closed.accept(11).kinds, ['answer']);
  // The "\n\n" the template writes after a closing marker the model wrote is the block's too (as it is
  // when the marker is forced), so the answer does not start with it; anything else is the answer.
  const written = new ThinkingTracker(tk, -1, []);
  written.accept(open);
  written.accept(close);
  assert.deepEqual(closing.slice(1).map((id) => written.accept(id).kinds), closing.slice(1).map(() => ['thought']));
  assert.deepEqual(written.accept(closing[1]!).kinds, ['answer']);
  assert.equal(written.thoughtTokens, closing.length + 1);
  const direct = new ThinkingTracker(tk, -1, []);
  direct.accept(open);
  direct.accept(close);
  assert.deepEqual(direct.accept(11).kinds, ['answer']);
  assert.throws(() => new ThinkingTracker(tk, -2, []), InvalidRequestError);
  // Models without think markers are unaffected.
  const llama = await loadModel(tinyModelDir('llama'));
  const none = new ThinkingTracker(llama.tokenizer, 0, []);
  assert.equal(none.supported, false);
  assert.equal(none.banned, -1);
});

test('generation: a prompt that opens a think block spends at most the budget, then answers', async () => {
  const m = await loadModel(tinyModelDir('qwen3'));
  const tk = m.tokenizer;
  const prompt = tk.encode(tk.applyChatTemplate([{ role: 'user', content: 'Hello there' }], { addGenerationPrompt: true }) + '<think>\n', { addSpecialTokens: false });
  const close = tk.tokenToId('</think>')!;
  for (const budget of [1, 4, 9]) {
    const r = await generate(m, prompt, { maxTokens: 30, temperature: 0, stopTokenIds: [], thinkingBudget: budget });
    const closeAt = r.tokenIds.indexOf(close);
    assert.ok(closeAt >= 0 && closeAt <= budget, `budget ${budget}: closing marker at ${closeAt}`);
    assert.ok(r.thoughtTokens <= budget + tk.encode('</think>\n\n', { addSpecialTokens: false }).length);
    assert.ok(!r.text.includes('<think>') && !r.text.includes('</think>'));
    assert.ok(!r.thoughtText.includes('</think>'));
    const answerTokens = r.tokenIds.length - r.thoughtTokens;
    assert.ok(answerTokens > 0, 'an answer follows the thinking');
  }
  // Unlimited thinking on the same prompt runs longer inside the block (the random model never closes it).
  const free = await generate(m, prompt, { maxTokens: 30, temperature: 0, stopTokenIds: [], thinkingBudget: -1 });
  assert.ok(free.thoughtTokens > 9);
});

test('thought text is the block without the layout newlines at its ends, as the template reads reasoning back', async () => {
  // Qwen3's template writes "<think>\n" + reasoning + "\n</think>\n\n" and recovers reasoning_content
  // with .lstrip('\n') / .rstrip('\n'): newlines at the block's ends are layout. The newline token is
  // made as likely as the top one so that thoughts start, end and go on with newlines.
  const m = await loadModel(tinyModelDir('qwen3'));
  const tk = m.tokenizer;
  const prompt = tk.encode(tk.applyChatTemplate([{ role: 'user', content: 'Hello there' }], { addGenerationPrompt: true }) + '<think>', { addSpecialTokens: false });
  const close = tk.tokenToId('</think>')!;
  const [newline] = tk.encode('\n', { addSpecialTokens: false });
  const likeTop = (l: Float32Array) => { l[newline!] = l.reduce((a, b) => Math.max(a, b), -Infinity); };
  const seen = { leading: 0, trailing: 0, inside: 0 };
  for (let seed = 1; seed <= 8; seed++) {
    const r = await generate(m, prompt, { maxTokens: 40, temperature: 1.5, seed, stopTokenIds: [], thinkingBudget: 12, onLogits: likeTop });
    const raw = tk.decode(r.tokenIds.slice(0, r.tokenIds.indexOf(close)));
    const stripped = raw.replace(/^\n+/, '').replace(/\n+$/, '');
    assert.equal(r.thoughtText, stripped, `seed ${seed}: ${JSON.stringify(raw)}`);
    if (raw.startsWith('\n')) seen.leading++;
    if (raw.endsWith('\n')) seen.trailing++;
    if (stripped.includes('\n')) seen.inside++;
  }
  assert.ok(seen.leading > 0 && seen.trailing > 0 && seen.inside > 0, JSON.stringify(seen));
});
