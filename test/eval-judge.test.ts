// Judged metrics against a scripted judge served by a real local HTTP server that speaks the OpenAI
// chat-completions protocol: parsed scores and explanations, retries after unparseable answers and
// transport failures, per-instance failures (never a default score), several samples, pairwise in both
// orders with the disagreement rate, custom templates.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { openAiJudge } from '../src/eval/judge.js';
import { judgePairwise, judgePointwise, mapPool, summarizePairwise, summarizePointwise, type JudgeSettings } from '../src/eval/judged.js';
import { customPairwise, customPointwise, judgedMetric, pairwiseMetric, POINTWISE_METRICS, type PointwiseMetric } from '../src/eval/rubrics.js';
import { InvalidRequestError } from '../src/errors.js';

interface Seen { prompt: string; temperature: number; seed?: number; maxTokens?: number; model: string; auth?: string }
type Reply = string | { status: number; body: string };

/** The judge's script: given the prompt, what to answer (a string is the message content). */
let script: (prompt: string, n: number) => Reply = () => '{}';
const seen: Seen[] = [];

const server = http.createServer((req, res) => {
  let data = '';
  req.on('data', (c) => (data += c));
  req.on('end', () => {
    assert.equal(req.url, '/v1/chat/completions');
    const body = JSON.parse(data) as { model: string; temperature: number; seed?: number; max_tokens?: number; messages: { role: string; content: string }[] };
    const prompt = body.messages[0].content;
    seen.push({ prompt, temperature: body.temperature, seed: body.seed, maxTokens: body.max_tokens, model: body.model, auth: req.headers.authorization });
    const reply = script(prompt, seen.length);
    if (typeof reply !== 'string') {
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(reply.body);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
      id: `chatcmpl-${seen.length}`, object: 'chat.completion', model: body.model,
      choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: reply } }],
    }));
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
after(() => server.close());
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
const judge = openAiJudge({ url, apiKey: 'sk-test', model: 'judge-1' });
const settings = (extra: Partial<JudgeSettings> = {}): JudgeSettings => ({ judge, ...extra });

function reset(fn: (prompt: string, n: number) => Reply): void {
  script = fn;
  seen.length = 0;
}

const coherence = POINTWISE_METRICS.get('coherence')!;
const instance = { prompt: 'Explain tides.', response: 'The moon pulls the oceans.' };

test('pointwise: the rubric prompt goes to the judge; score and explanation come back', async () => {
  reset(() => 'Here you go:\n```json\n{"explanation": "Clear and logical.", "score": 4}\n```');
  const r = await judgePointwise(coherence, instance, settings());
  assert.deepEqual(r, { score: 4, std: 0, judgments: [{ value: 4, explanation: 'Clear and logical.', attempts: 1 }] });
  assert.equal(seen.length, 1);
  assert.equal(seen[0].model, 'judge-1');
  assert.equal(seen[0].auth, 'Bearer sk-test');
  assert.equal(seen[0].temperature, 0);
  assert.match(seen[0].prompt, /## Rating Rubric\n5: \(Completely coherent\)/);
  assert.match(seen[0].prompt, /## User Prompt\nExplain tides\./);
  assert.match(seen[0].prompt, /## AI-generated Response\nThe moon pulls the oceans\./);
  assert.match(seen[0].prompt, /"score": <one of 5, 4, 3, 2, 1>/);
});

test('pointwise: unparseable and off-scale answers are retried, with the reason, at a higher temperature', async () => {
  const answers = ['I would say about a four.', '{"explanation": "x", "score": 7}', '{"explanation": "Mostly coherent.", "score": "3"}'];
  reset((_p, n) => answers[n - 1]);
  const r = await judgePointwise(coherence, instance, settings());
  assert.deepEqual(r, { score: 3, std: 0, judgments: [{ value: 3, explanation: 'Mostly coherent.', attempts: 3 }] });
  assert.equal(seen.length, 3);
  assert.match(seen[1].prompt, /could not be read \(the answer holds no JSON object; the answer began "I would say about a four\."\)/);
  assert.match(seen[2].prompt, /"score" is 7, not one of 5, 4, 3, 2, 1/);
  assert.deepEqual(seen.map((s) => s.temperature), [0, 0.7, 0.7]);
});

test('pointwise: a judge that never answers usably fails that instance only, with no score', async () => {
  reset((p) => (p.includes('BROKEN') ? 'Sorry, I cannot rate this.' : '{"explanation": "ok", "score": 5}'));
  const items = [instance, { prompt: 'BROKEN', response: 'x' }, instance];
  const results = await mapPool(items, 2, (it) => judgePointwise(coherence, it, settings({ retries: 1 })));
  assert.equal(results[1].score, undefined);
  assert.equal(results[1].judgments.length, 0);
  assert.match(results[1].error!, /^no usable judgment after 2 attempts: the answer holds no JSON object; the answer began "Sorry/);
  assert.deepEqual(results.map((r) => r.score), [5, undefined, 5]);
  assert.deepEqual(summarizePointwise('coherence', results), { metric: 'coherence', count: 2, failures: 1, mean: 5 });
  assert.equal(seen.filter((s) => s.prompt.includes('BROKEN')).length, 2);
});

test('transport failures (5xx, 429) are retried; a 4xx refusal stops the run', async () => {
  reset((_p, n) => (n === 1 ? { status: 503, body: '{"error": "overloaded"}' } : n === 2 ? { status: 429, body: 'slow down' } : '{"score": 1, "explanation": "bad"}'));
  const r = await judgePointwise(coherence, instance, settings());
  assert.equal(r.score, 1);
  assert.equal(r.judgments[0].attempts, 3);
  reset(() => ({ status: 503, body: 'down' }));
  const down = await judgePointwise(coherence, instance, settings({ retries: 0 }));
  assert.match(down.error!, /answered 503: down/);
  reset(() => ({ status: 404, body: '{"error": {"message": "model judge-1 not found"}}' }));
  await assert.rejects(judgePointwise(coherence, instance, settings()), (e: unknown) => e instanceof InvalidRequestError && /refused the request \(404\)/.test(e.message));
  const dead = openAiJudge({ url: 'http://127.0.0.1:1/v1', model: 'm' });
  const unreachable = await judgePointwise(coherence, instance, { judge: dead, retries: 0 });
  assert.match(unreachable.error!, /unreachable/);
});

test('maxTokens (--judge-max-tokens) goes to an HTTP judge as max_tokens; unset, none is sent', async () => {
  reset(() => '{"explanation": "fine", "score": 4}');
  await judgePointwise(coherence, instance, settings({ maxTokens: 7 }));
  await judgePointwise(coherence, instance, settings());
  assert.deepEqual(seen.map((s) => s.maxTokens), [7, undefined]);
});

test('--judge-samples: N judgments with distinct seeds; mean and sample standard deviation', async () => {
  const scores = [3, 4, 5];
  reset((_p, n) => JSON.stringify({ explanation: `sample ${n}`, score: scores[n - 1] }));
  const r = await judgePointwise(coherence, instance, settings({ samples: 3, seed: 10 }));
  assert.equal(r.score, 4);
  assert.equal(r.std, 1);
  assert.deepEqual(r.judgments.map((j) => j.explanation), ['sample 1', 'sample 2', 'sample 3']);
  assert.deepEqual(seen.map((s) => [s.seed, s.temperature]), [[10, 1], [11, 1], [12, 1]]);
  await assert.rejects(judgePointwise(coherence, instance, settings({ samples: 0 })), /whole number >= 1/);
});

test('the named rubric scales are Vertex\'s: 1-5, 0/1 for safety and groundedness, -2..2 for verbosity', () => {
  const scale = (name: string) => (judgedMetric(name) as PointwiseMetric).rubric.map((l) => l.score);
  for (const n of ['coherence', 'fluency', 'instruction_following', 'text_quality', 'summarization_quality', 'question_answering_quality']) assert.deepEqual(scale(n), [5, 4, 3, 2, 1], n);
  assert.deepEqual(scale('safety'), [1, 0]);
  assert.deepEqual(scale('groundedness'), [1, 0]);
  assert.deepEqual(scale('verbosity'), [2, 1, 0, -1, -2]);
  assert.equal(pairwiseMetric('pairwise_fluency')?.kind, 'pairwise');
  assert.equal(judgedMetric('pairwise_nope'), undefined);
});

test('pairwise: both orders; a position-biased judge ties and disagrees, a consistent one picks the better side', async () => {
  const metric = pairwiseMetric('pairwise_instruction_following')!;
  const pair = { prompt: 'List three fruits.', baseline: 'apple', candidate: 'GOOD: apple, pear, plum' };
  reset(() => '{"explanation": "A is first, so A.", "choice": "A"}');
  const biased = await judgePairwise(metric, pair, settings());
  assert.equal(biased.choice, 'TIE');
  assert.equal(biased.disagreements, 1);
  assert.deepEqual([biased.baselineFirst[0].value, biased.candidateFirst[0].value], ['BASELINE', 'CANDIDATE']);
  assert.match(seen[0].prompt, /## Response A\napple\n\n## Response B\nGOOD: apple, pear, plum/);
  assert.match(seen[1].prompt, /## Response A\nGOOD: apple, pear, plum\n\n## Response B\napple/);

  reset((p) => {
    const a = /## Response A\n(.*)/.exec(p)![1];
    return JSON.stringify({ explanation: 'the complete list wins', choice: a.startsWith('GOOD') ? 'A' : 'B' });
  });
  const consistent = await judgePairwise(metric, pair, settings());
  assert.equal(consistent.choice, 'CANDIDATE');
  assert.equal(consistent.candidateScore, 1);
  assert.equal(consistent.disagreements, 0);
  const same = await judgePairwise(metric, { ...pair, baseline: 'GOOD: apple, pear, plum' }, settings());

  reset(() => 'no idea');
  const failed = await judgePairwise(metric, pair, settings({ retries: 0 }));
  assert.equal(failed.choice, undefined);
  assert.match(failed.error!, /no usable judgment after 1 attempts/);

  assert.deepEqual(summarizePairwise('pairwise_instruction_following', [biased, consistent, same, failed]), {
    metric: 'pairwise_instruction_following', count: 3, failures: 1,
    candidateWinRate: 1 / 3, baselineWinRate: 0, tieRate: 2 / 3, disagreementRate: 2 / 3,
  });
});

test('custom metrics: templates with {prompt}, {response}, {reference}; a custom rubric bounds the score', async () => {
  const metric = customPointwise('politeness', 'Rate politeness.\nQ: {prompt}\nA: {response}\nExpected: {reference}', [
    { score: 0, meaning: 'rude' }, { score: 1, meaning: 'polite' },
  ]);
  reset(() => '{"explanation": "says please", "score": 1}');
  const r = await judgePointwise(metric, { prompt: 'Ask for salt. {response}', response: 'Salt, please.', reference: 'Please pass the salt.' }, settings());
  assert.equal(r.score, 1);
  assert.match(seen[0].prompt, /^Rate politeness\.\nQ: Ask for salt\. \{response\}\nA: Salt, please\.\nExpected: Please pass the salt\.\n\n## Rating Rubric\n1: polite\n0: rude/);
  assert.throws(() => customPointwise('x', 'no slot', [{ score: 0, meaning: 'a' }, { score: 1, meaning: 'b' }]), /must contain \{response\}/);
  await assert.rejects(judgePointwise(metric, { prompt: 'p', response: 'r' }, settings()), /needs a reference/);

  const pw = customPairwise('brevity', 'Which is shorter?\n{baseline_response}\n---\n{candidate_response}');
  reset(() => '{"explanation": "second", "choice": "b"}');
  const p = await judgePairwise(pw, { prompt: 'p', baseline: 'long long', candidate: 'short' }, settings());
  assert.match(seen[0].prompt, /^Which is shorter\?\nlong long\n---\nshort/);
  assert.match(seen[1].prompt, /^Which is shorter\?\nshort\n---\nlong long/);
  assert.equal(p.choice, 'TIE'); // "B" in both orders: position bias, not a preference
  assert.equal(p.disagreements, 1);
});

test('a local judge (tiny random model on the engine) decodes under the answer schema: every answer parses', async () => {
  const { loadModel } = await import('../src/models/model.js');
  const { Engine } = await import('../src/serve/engine.js');
  const { engineJudge, generateLocal } = await import('../src/eval/local-model.js');
  const { tinyModelDir } = await import('./helpers/tiny-models.js');
  const model = await loadModel(tinyModelDir('qwen3'));
  const engine = new Engine(model, { parallel: 4 });
  const local = engineJudge(engine, model, { description: 'qwen3-tiny' });
  const verbosity = POINTWISE_METRICS.get('verbosity')!;
  const results = await mapPool([instance, instance, { prompt: 'Hi', response: 'Hello!' }], 3, (it, i) =>
    judgePointwise(verbosity, it, { judge: local, retries: 0, seed: i, samples: 2, maxTokens: 48 }));
  for (const r of results) {
    assert.equal(r.error, undefined);
    for (const j of r.judgments) {
      assert.ok([2, 1, 0, -1, -2].includes(j.value), String(j.value));
      assert.equal(j.attempts, 1);
    }
  }
  const pair = await judgePairwise(pairwiseMetric('pairwise_fluency')!, { prompt: 'Hi', baseline: 'a', candidate: 'b' }, { judge: local, retries: 0, maxTokens: 48 });
  assert.ok(pair.choice !== undefined, pair.error);
  // Unconstrained generation of the same engine gives free text.
  assert.equal(typeof await generateLocal(engine, model, 'Hi', { maxTokens: 4, temperature: 0 }), 'string');
});

test('template metrics (the :evaluateInstances form): any numeric scale; pairwise flip swaps the responses under their labels', async () => {
  const { judgeTemplatePointwise, judgeTemplatePairwise, instanceValues } = await import('../src/eval/template-judged.js');
  reset((_p, n) => (n === 1 ? '{"score": "high"}' : '{"explanation": "fine", "score": 7.5}'));
  const p = await judgeTemplatePointwise('Rate 0-10: {response}', { response: 'ok' }, settings());
  assert.equal(p.score, 7.5);
  assert.equal(p.judgments[0].attempts, 2);
  assert.match(seen[1].prompt, /"score" is "high", not a number/);

  const template = 'Q: {prompt}\nBaseline: {baseline_model_response}\nCandidate: {response}';
  const values = { prompt: 'q', response: 'GOOD', baseline_model_response: 'meh' };
  reset(() => '{"explanation": "always the candidate label", "choice": "CANDIDATE"}');
  const biased = await judgeTemplatePairwise(template, values, settings(), true);
  assert.match(seen[0].prompt, /Baseline: meh\nCandidate: GOOD/);
  assert.match(seen[1].prompt, /Baseline: GOOD\nCandidate: meh/);
  assert.deepEqual([biased.choice, biased.disagreements], ['TIE', 1]);
  reset((prompt) => JSON.stringify({ explanation: 'GOOD wins', choice: /Candidate: GOOD/.test(prompt) ? 'CANDIDATE' : 'BASELINE' }));
  const fair = await judgeTemplatePairwise(template, values, settings(), true);
  assert.deepEqual([fair.choice, fair.disagreements, fair.candidateScore], ['CANDIDATE', 0, 1]);
  const once = await judgeTemplatePairwise(template, values, settings(), false);
  assert.equal(seen.length, 3);
  assert.equal(once.candidateFirst.length, 0);
  assert.throws(() => instanceValues('{"a": 1, "b": "x"}', 'f') && instanceValues('nope', 'f.json_instance'), /'f\.json_instance': not JSON/);
  assert.deepEqual(instanceValues('{"a": 1, "b": "x"}', 'f'), { a: '1', b: 'x' });
});
