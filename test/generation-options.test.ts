// The rest of generationConfig: presence/frequency penalties change exactly the logits they should,
// logprobs are the log-softmax of what was sampled from (with the k best alternatives), and the Vertex
// response carries avgLogprobs, logprobsResult and complete usage metadata.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../src/models/model.js';
import { generate } from '../src/generate/generate.js';
import { argmax } from '../src/generate/sampler.js';
import { PREFIX, tinyApi, userText } from './helpers/api-app.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const m = await loadModel(tinyModelDir('llama'));
const V = Math.min(m.tokenizer.size, m.config.vocabSize);

test('presence and frequency penalties: each greedy step is the argmax of logits minus the penalties of earlier tokens', async () => {
  const seen: Float32Array[] = [];
  const prompt = m.tokenizer.encode('one two one two');
  const r = await generate(m, prompt, { maxTokens: 24, temperature: 0, stopTokenIds: [], presencePenalty: 0.7, frequencyPenalty: 1.3, onLogits: (l) => seen.push(l.slice(0, V)) });
  const counts = new Map<number, number>();
  for (let i = 0; i < r.tokenIds.length; i++) {
    const l = seen[i]!;
    for (const [t, n] of counts) l[t] -= 0.7 + 1.3 * n;
    assert.equal(r.tokenIds[i], argmax(l), `step ${i}`);
    counts.set(r.tokenIds[i]!, (counts.get(r.tokenIds[i]!) ?? 0) + 1);
  }
  const plain = await generate(m, prompt, { maxTokens: 24, temperature: 0, stopTokenIds: [] });
  assert.notDeepEqual(plain.tokenIds, r.tokenIds, 'the penalties changed the greedy text');
});

test('logprobs: the chosen token\'s log-softmax and the k best alternatives, most likely first', async () => {
  const seen: Float32Array[] = [];
  const r = await generate(m, m.tokenizer.encode('hello'), { maxTokens: 8, temperature: 0.8, seed: 3, stopTokenIds: [], logprobs: 4, onLogits: (l) => seen.push(l.slice(0, V)) });
  assert.equal(r.logprobs!.length, r.tokenIds.length);
  for (const [i, t] of r.logprobs!.entries()) {
    const l = seen[i]!;
    const max = Math.max(...l);
    const lse = max + Math.log(l.reduce((a, x) => a + Math.exp(x - max), 0));
    assert.equal(t.tokenId, r.tokenIds[i]);
    assert.ok(Math.abs(t.logprob - (l[t.tokenId]! - lse)) < 1e-4);
    assert.equal(t.top.length, 4);
    const order = [...l.keys()].sort((a, b) => l[b]! - l[a]!).slice(0, 4);
    assert.deepEqual(t.top.map((c) => c.tokenId), order);
    for (let k = 1; k < 4; k++) assert.ok(t.top[k - 1]!.logprob >= t.top[k]!.logprob);
  }
});

test('Vertex: responseLogprobs/logprobs give logprobsResult and avgLogprobs; penalties accepted in range; usage details', async () => {
  const api = await tinyApi();
  const res = await api.post(`${PREFIX}/gemma3-tiny:generateContent`, {
    ...userText('Say something.'),
    generationConfig: { maxOutputTokens: 6, seed: 2, temperature: 1, responseLogprobs: true, logprobs: 3, presencePenalty: 0.5, frequencyPenalty: -0.5 },
  });
  assert.equal(res.status, 200, await res.clone().text());
  const body = await res.json() as any;
  const c = body.candidates[0];
  const n = body.usageMetadata.candidatesTokenCount as number;
  assert.equal(c.logprobsResult.chosenCandidates.length, n);
  assert.equal(c.logprobsResult.topCandidates.length, n);
  for (const t of c.logprobsResult.topCandidates) assert.equal(t.candidates.length, 3);
  const chosen = c.logprobsResult.chosenCandidates as { token: string; tokenId: number; logProbability: number }[];
  assert.ok(Math.abs(c.avgLogprobs - chosen.reduce((a, x) => a + x.logProbability, 0) / n) < 1e-9);
  assert.equal(typeof chosen[0]!.token, 'string');
  assert.deepEqual(body.usageMetadata.promptTokensDetails, [{ modality: 'TEXT', tokenCount: body.usageMetadata.promptTokenCount }]);
  assert.deepEqual(body.usageMetadata.candidatesTokensDetails, [{ modality: 'TEXT', tokenCount: n }]);

  const plain = await (await api.post(`${PREFIX}/gemma3-tiny:generateContent`, { ...userText('x'), generationConfig: { maxOutputTokens: 3 } })).json() as any;
  assert.equal(typeof plain.candidates[0].avgLogprobs, 'number');
  assert.equal(plain.candidates[0].logprobsResult, undefined);

  const bad = async (generationConfig: unknown, message: RegExp) => {
    const r = await api.post(`${PREFIX}/gemma3-tiny:generateContent`, { ...userText('x'), generationConfig });
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as any).error.message, message);
  };
  await bad({ logprobs: 2 }, /'generation_config\.logprobs' requires 'generation_config\.response_logprobs' to be true/);
  await bad({ responseLogprobs: true, logprobs: 21 }, /'generation_config\.logprobs', 21: must be in \[0, 20\]/);
  await bad({ presencePenalty: 2.5 }, /'generation_config\.presence_penalty', 2\.5: must be in \[-2, 2\]/);
});

test('countTokens is what generateContent bills as promptTokenCount, generationConfig included (v1beta1)', async () => {
  const api = await tinyApi();
  const url = (verb: string) => `${PREFIX.replace('/v1/', '/v1beta1/')}/qwen3-tiny:${verb}`;
  for (const generationConfig of [{ maxOutputTokens: 2 }, { maxOutputTokens: 2, responseMimeType: 'application/json' }, { maxOutputTokens: 2, thinkingConfig: { thinkingBudget: 0 } }]) {
    const body = { systemInstruction: { parts: [{ text: 'Be brief.' }] }, ...userText('Count me.'), generationConfig };
    const counted = await (await api.post(url('countTokens'), body)).json() as any;
    const generated = await (await api.post(url('generateContent'), body)).json() as any;
    assert.equal(counted.totalTokens, generated.usageMetadata.promptTokenCount, JSON.stringify(generationConfig));
  }
  const thinking = await (await api.post(url('countTokens'), { ...userText('Count me.') })).json() as any;
  const off = await (await api.post(url('countTokens'), { ...userText('Count me.'), generationConfig: { thinkingConfig: { thinkingBudget: 0 } } })).json() as any;
  assert.notEqual(thinking.totalTokens, off.totalTokens, 'Qwen3 renders thinking off differently');
});
