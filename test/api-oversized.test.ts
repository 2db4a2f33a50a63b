// Oversized and malformed inputs of each kind on the generation methods (issue 8): prompts that cannot
// fit the context are refused from their length alone, before any tokenizing; large prompts that may
// fit are tokenized on a worker thread (same ids as inline) that a departing client stops; responses
// stay bounded; bodies that are not UTF-8, nested beyond protobuf's limit, or with empty contents are
// 400s naming the problem.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PromptTokenizer } from '../src/api/prompt-tokenizer.js';
import { loadModel } from '../src/models/model.js';
import { renderPrompt } from '../src/data/render.js';
import { PREFIX, tinyApi, userText } from './helpers/api-app.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const tokenizer = new PromptTokenizer({ inlineChars: 1000, idleMs: 200 });
const api = await tinyApi({ tokenizer });
const gemma = await loadModel(tinyModelDir('gemma3'));
const CONTEXT = gemma.config.maxPositionEmbeddings;

interface Status { error: { code: number; message: string; status: string } }

async function expectStatus(res: Response, code: number, message: RegExp): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, code, text);
  const body = JSON.parse(text) as Status;
  assert.equal(body.error.code, code);
  assert.match(body.error.message, message);
}

test('a prompt far beyond the context is refused before tokenizing (countTokens, computeTokens, generate, stream)', async () => {
  const huge = userText('x'.repeat(15_600_000));
  for (const verb of ['countTokens', 'computeTokens', 'generateContent', 'streamGenerateContent?alt=sse']) {
    await expectStatus(await api.post(`${PREFIX}/gemma3-tiny:${verb}`, huge), 400, /exceeds the maximum number of tokens allowed/);
  }
  assert.equal(tokenizer.workerCount, 0, 'no tokenizer worker was started');
});

test('the length bound is a true lower bound: a prompt just under it is counted, and counts past the context', async () => {
  const perToken = gemma.tokenizer.maxCharsPerToken!;
  // The longest piece (a special token's text encodes to its one id) repeated: as few tokens as text
  // of this length can be.
  let longest = '';
  for (let id = 0; id < gemma.tokenizer.size; id++) {
    const piece = gemma.tokenizer.idToToken(id) ?? '';
    if (piece.length === perToken) longest = gemma.tokenizer.decode([id]);
  }
  assert.ok(longest.trim().length > 0, 'a longest piece that is text');
  const text = longest.repeat(Math.floor((CONTEXT - 10) * perToken / longest.length));
  const expected = gemma.tokenizer.encode(text, { addSpecialTokens: false }).length;
  assert.ok(expected <= CONTEXT, `${expected} tokens`);
  const res = await api.post(`${PREFIX}/gemma3-tiny:countTokens`, userText(text));
  assert.equal(res.status, 200, await res.clone().text());
  const { totalTokens } = await res.json() as { totalTokens: number };
  assert.ok(totalTokens >= expected);
  // Ordinary text of the same length is many more tokens than the context: counted, not refused.
  const words = 'word '.repeat(text.length / 5);
  const many = await api.post(`${PREFIX}/gemma3-tiny:countTokens`, userText(words));
  assert.equal(many.status, 200);
  assert.ok(((await many.json()) as { totalTokens: number }).totalTokens > CONTEXT);
  // ... but generating from it is 400, and computeTokens would answer more than the context.
  await expectStatus(await api.post(`${PREFIX}/gemma3-tiny:generateContent`, userText(words)), 400, /the model's context is 4096 tokens/);
  await expectStatus(await api.post(`${PREFIX}/gemma3-tiny:computeTokens`, userText(words)), 400, /computeTokens answers at most 4096 tokens/);
});

test('large prompts are tokenized on a worker thread, with the ids inline tokenizing gives', async () => {
  const text = 'The quick brown fox jumps over the lazy dog. '.repeat(60);
  const inline = renderPrompt({ turns: [{ role: 'user', text }] }, gemma.tokenizer).tokens.length;
  const res = await api.post(`${PREFIX}/gemma3-tiny:countTokens`, userText(text));
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { totalTokens: number }).totalTokens, inline);
  assert.equal(tokenizer.workerCount, 1, 'one worker did it');
  const gen = await api.post(`${PREFIX}/gemma3-tiny:generateContent`, { ...userText(text), generationConfig: { maxOutputTokens: 2 } });
  assert.equal(gen.status, 200);
  assert.equal(((await gen.json()) as { usageMetadata: { promptTokenCount: number } }).usageMetadata.promptTokenCount, inline);
  // Idle workers exit, handing their memory back.
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(tokenizer.workerCount, 0);
});

test('a client that leaves while its prompt is tokenized on a worker stops it (the worker is terminated)', async () => {
  const gaveUp = new AbortController();
  const text = 'fox '.repeat(10_000);
  const pending = api.app.request(`${PREFIX}/gemma3-tiny:countTokens`, {
    method: 'POST', body: JSON.stringify(userText(text)), signal: gaveUp.signal,
  });
  await new Promise((r) => setTimeout(r, 5));
  gaveUp.abort();
  const res = await pending;
  assert.equal(res.status, 499);
  assert.equal(tokenizer.workerCount, 0);
  // The pool keeps working afterwards.
  const again = await api.post(`${PREFIX}/gemma3-tiny:countTokens`, userText(text));
  assert.equal(again.status, 200);
});

test('a body that is not UTF-8 is 400, not repaired to U+FFFD', async () => {
  const bytes = Buffer.concat([Buffer.from('{"contents":[{"role":"user","parts":[{"text":"caf'), Buffer.from([0xe9]), Buffer.from('"}]}]}')]);
  const res = await api.app.request(`${PREFIX}/gemma3-tiny:countTokens`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/json' } });
  await expectStatus(res, 400, /not valid UTF-8 \(first bad byte at offset 49\)/);
});

test('JSON nested beyond 100 levels is 400 (it was a 500 from printing the value)', async () => {
  let deep = '"x"';
  for (let i = 0; i < 100_000; i++) deep = `[${deep}]`;
  const body = `{"contents":[{"role":"user","parts":[{"text":${deep}}]}]}`;
  await expectStatus(await api.post(`${PREFIX}/gemma3-tiny:generateContent`, body), 400, /Nesting deeper than 100 levels/);
  // Within the limit, a wrong type is named with a short rendering of the value.
  let ok = '1';
  for (let i = 0; i < 90; i++) ok = `[${ok}]`;
  await expectStatus(
    await api.post(`${PREFIX}/gemma3-tiny:generateContent`, `{"contents":[{"role":"user","parts":[{"text":${ok}}]}]}`),
    400, /^Invalid value at 'contents\[0\]\.parts\[0\]\.text' \(TYPE_STRING\), \[an array of 1 items\]$/,
  );
  assert.deepEqual(api.errors, []);
});

test('contents without parts, or with empty text, are 400 naming the field', async () => {
  const url = `${PREFIX}/gemma3-tiny:generateContent`;
  await expectStatus(await api.post(url, { contents: [{ role: 'user' }] }), 400, /at least one parts field.*'contents\[0\]\.parts' is empty/);
  await expectStatus(await api.post(url, { contents: [{ role: 'user', parts: [] }] }), 400, /'contents\[0\]\.parts' is empty/);
  await expectStatus(await api.post(url, { contents: [{ role: 'user', parts: [{ text: '' }] }] }), 400, /empty text parameter: 'contents\[0\]\.parts\[0\]\.text'/);
  await expectStatus(await api.post(url, { contents: [{ role: 'user', parts: [{}] }] }), 400, /only text parts are supported/);
  await expectStatus(await api.post(`${PREFIX}/gemma3-tiny:countTokens`, { ...userText('hi'), systemInstruction: { parts: [] } }), 400, /'system_instruction\.parts' is empty/);
});
