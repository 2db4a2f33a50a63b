// Generation: greedy is deterministic, the same seed gives the same text, stop sequences cut exactly,
// streaming yields what the non-streaming call returns, and the sampler's options do what they say.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../src/models/model.js';
import { generate, generateStream } from '../src/generate/generate.js';
import { argmax, sampleToken } from '../src/generate/sampler.js';
import { StopSequenceMatcher } from '../src/generate/stop-sequences.js';
import { Random } from '../src/engine/random.js';
import { InvalidRequestError } from '../src/errors.js';
import { tinyModelDir } from './helpers/tiny-models.js';

test('greedy generation is deterministic and stops at maxTokens', async () => {
  const m = await loadModel(tinyModelDir('llama'));
  const prompt = m.tokenizer.encode('The weather today is');
  const a = await generate(m, prompt, { maxTokens: 20, temperature: 0, stopTokenIds: [] });
  const b = await generate(m, prompt, { maxTokens: 20, temperature: 0, stopTokenIds: [] });
  assert.deepEqual(a.tokenIds, b.tokenIds);
  assert.equal(a.tokenIds.length, 20);
  assert.equal(a.finishReason, 'length');
  assert.equal(a.text, m.tokenizer.decode(a.tokenIds, { skipSpecialTokens: true }));
});

test('the same seed gives the same sample; other seeds give other samples', async () => {
  const m = await loadModel(tinyModelDir('qwen3'));
  const prompt = m.tokenizer.encode('Once upon a time');
  const opts = { maxTokens: 24, temperature: 1.0, topP: 0.95, stopTokenIds: [] };
  const a = await generate(m, prompt, { ...opts, seed: 42 });
  const b = await generate(m, prompt, { ...opts, seed: 42 });
  assert.deepEqual(a.tokenIds, b.tokenIds);
  const others = await Promise.all([1, 2, 3].map((seed) => generate(m, prompt, { ...opts, seed })));
  assert.ok(others.some((o) => o.tokenIds.join() !== a.tokenIds.join()), 'different seeds should not all agree');
});

test('streaming yields exactly the text of the whole generation', async () => {
  const m = await loadModel(tinyModelDir('gemma3'));
  const prompt = m.tokenizer.encode('emoji 🎉 and ünïcödé');
  const it = generateStream(m, prompt, { maxTokens: 30, temperature: 0.9, seed: 7, stopTokenIds: [] });
  let streamed = '';
  let pieces = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) {
      assert.equal(streamed, r.value.text);
      break;
    }
    streamed += r.value.text;
    pieces++;
  }
  assert.ok(pieces > 1);
  const whole = await generate(m, prompt, { maxTokens: 30, temperature: 0.9, seed: 7, stopTokenIds: [] });
  assert.equal(whole.text, streamed);
});

test('a stop sequence ends the text just before it', async () => {
  const m = await loadModel(tinyModelDir('llama'));
  const prompt = m.tokenizer.encode('Numbers:');
  const free = await generate(m, prompt, { maxTokens: 40, temperature: 0, stopTokenIds: [] });
  const stop = free.text.slice(10, 13);
  assert.equal(stop.length, 3);
  const cut = await generate(m, prompt, { maxTokens: 40, temperature: 0, stopTokenIds: [], stopSequences: [stop] });
  assert.equal(cut.finishReason, 'stop_sequence');
  assert.equal(cut.text, free.text.slice(0, free.text.indexOf(stop)));
});

test('an end-of-sequence token ends generation with finishReason stop', async () => {
  const m = await loadModel(tinyModelDir('llama'));
  const prompt = m.tokenizer.encode('Hello');
  const free = await generate(m, prompt, { maxTokens: 10, temperature: 0, stopTokenIds: [] });
  const stopId = free.tokenIds[4]!;
  const r = await generate(m, prompt, { maxTokens: 10, temperature: 0, stopTokenIds: [stopId] });
  assert.equal(r.finishReason, 'stop');
  assert.deepEqual(r.tokenIds, free.tokenIds.slice(0, free.tokenIds.indexOf(stopId)));
});

test('invalid sampling options are rejected with the option named', async () => {
  const m = await loadModel(tinyModelDir('llama'));
  const p = m.tokenizer.encode('x');
  await assert.rejects(generate(m, p, { maxTokens: 5, temperature: -1 }), (e: Error) => e instanceof InvalidRequestError && /temperature/.test(e.message));
  await assert.rejects(generate(m, p, { maxTokens: 5, temperature: 1, topP: 1.5 }), (e: Error) => e instanceof InvalidRequestError && /topP/.test(e.message));
  await assert.rejects(generate(m, p, { maxTokens: 0, temperature: 1 }), (e: Error) => e instanceof InvalidRequestError && /maxTokens/.test(e.message));
});

test('sampler: top-k 1 and tiny top-p are greedy; temperature sampling follows softmax', () => {
  const rng = new Random(1);
  const logits = new Float32Array([0.5, 2.0, 1.0, -1.0, 1.9]);
  for (let i = 0; i < 50; i++) {
    assert.equal(sampleToken(logits, { temperature: 1, topK: 1 }, rng), 1);
    assert.equal(sampleToken(logits, { temperature: 1, topP: 0.01 }, rng), 1);
  }
  // top-k 2 only ever returns the two best.
  for (let i = 0; i < 200; i++) assert.ok([1, 4].includes(sampleToken(logits, { temperature: 1, topK: 2 }, rng)));
  // Frequencies match softmax(logits / T) within 4 standard errors.
  const T = 0.7;
  const n = 20000;
  const counts = new Array(5).fill(0) as number[];
  for (let i = 0; i < n; i++) counts[sampleToken(logits, { temperature: T }, rng)]!++;
  const e = Array.from(logits, (x) => Math.exp(x / T));
  const z = e.reduce((a, b) => a + b, 0);
  e.forEach((v, i) => {
    const p = v / z;
    const se = Math.sqrt((p * (1 - p)) / n);
    assert.ok(Math.abs(counts[i]! / n - p) < 4 * se + 1e-9, `token ${i}: ${counts[i]! / n} vs ${p}`);
  });
  assert.equal(argmax(logits), 1);
  // The padded tail of a vocabulary is never chosen.
  const padded = new Float32Array([0, 1, 9]);
  assert.equal(sampleToken(padded, { temperature: 0 }, rng, 2), 1);
});

test('stop-sequence matcher holds back a possible prefix and cuts at the earliest stop', () => {
  const m = new StopSequenceMatcher(['END', 'xyz']);
  assert.deepEqual(m.push('hello E'), { emit: 'hello ', stopped: false });
  assert.deepEqual(m.push('N'), { emit: '', stopped: false });
  assert.deepEqual(m.push('x and'), { emit: 'ENx and', stopped: false });
  assert.deepEqual(m.push(' more xyEND tail'), { emit: ' more xy', stopped: true });
  const n = new StopSequenceMatcher(['ab']);
  assert.deepEqual(n.push('a'), { emit: '', stopped: false });
  assert.equal(n.flush(), 'a');
});
