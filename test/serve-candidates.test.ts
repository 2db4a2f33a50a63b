// candidateCount / n: the prompt is read once and the other candidates fork from it (KV rows and first
// logits copied). Each candidate gets exactly the tokens it gets alone with its seed, and a request of
// 4 candidates takes as many forward passes as one of 1 (the prompt is not read again).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../src/models/model.js';
import { generate } from '../src/generate/generate.js';
import { Engine } from '../src/serve/engine.js';
import { PREFIX, tinyApi, userText } from './helpers/api-app.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const m = await loadModel(tinyModelDir('llama'));

async function drain<T, R>(it: AsyncGenerator<T, R>): Promise<R> {
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

test('4 candidates: each equals its seed alone; forward passes as for one candidate', async () => {
  const prompt = Array.from({ length: 600 }, (_, i) => 5 + ((i * 7) % 200));
  const opts = (seed: number) => ({ maxTokens: 10, temperature: 1.3, seed, stopTokenIds: [] as number[] });
  const one = new Engine(m);
  await drain(one.submitCandidates(prompt, [opts(1)])[0]!);
  const four = new Engine(m);
  const results = await Promise.all(four.submitCandidates(prompt, [1, 2, 3, 4].map(opts)).map((it) => drain(it)));
  assert.equal(four.stats().passes, one.stats().passes, 'the prompt is read once');
  for (const [i, r] of results.entries()) {
    const alone = await generate(m, prompt, opts(i + 1));
    assert.deepEqual(r.tokenIds, alone.tokenIds, `candidate ${i}`);
  }
  assert.ok(new Set(results.map((r) => r.tokenIds.join())).size > 1);
  assert.equal(four.stats().kvBytes > 0, true);
  await four.idle();
});

test('Vertex candidateCount: candidates with index, the prompt billed once; 9 is 400; streaming refuses more than one', async () => {
  const api = await tinyApi();
  const res = await api.post(`${PREFIX}/gemma3-tiny:generateContent`, { ...userText('Say something.'), generationConfig: { candidateCount: 3, seed: 4, maxOutputTokens: 5, temperature: 1.5 } });
  assert.equal(res.status, 200, await res.clone().text());
  const body = await res.json() as any;
  assert.equal(body.candidates.length, 3);
  assert.deepEqual(body.candidates.map((c: any) => c.index), [undefined, 1, 2]);
  const single = await (await api.post(`${PREFIX}/gemma3-tiny:generateContent`, { ...userText('Say something.'), generationConfig: { seed: 5, maxOutputTokens: 5, temperature: 1.5 } })).json() as any;
  assert.deepEqual(body.candidates[1].content, single.candidates[0].content, 'candidate 1 is seed + 1');
  const u = body.usageMetadata;
  assert.equal(u.promptTokenCount, single.usageMetadata.promptTokenCount);
  assert.equal(u.totalTokenCount, u.promptTokenCount + u.candidatesTokenCount);
  const nine = await api.post(`${PREFIX}/gemma3-tiny:generateContent`, { ...userText('x'), generationConfig: { candidateCount: 9 } });
  assert.equal(nine.status, 400);
  assert.match(((await nine.json()) as any).error.message, /'generation_config\.candidate_count', 9: must be in \[1, 8\]/);
});
