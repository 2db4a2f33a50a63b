// `tunekit eval` end to end: two tiny local models answer a dataset through the serving engine, the
// computed metrics and a pairwise judged metric (a scripted OpenAI-protocol judge on a real local HTTP
// server) score them, and the run writes results.jsonl, summary.json and a self-contained report.html.
// The references are the candidate's own greedy answers, so the candidate must win exact_match.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { tinyModelDir } from './helpers/tiny-models.js';
import { cliMain, runNode } from './helpers/platform.js';
import { loadModel } from '../src/models/model.js';
import { Engine } from '../src/serve/engine.js';
import { generateLocal } from '../src/eval/local-model.js';
import { parseEvalExample } from '../src/eval/dataset.js';
import { bootstrapCi } from '../src/eval/stats.js';
import type { InstanceResult, MetricSummary } from '../src/eval/run.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-eval-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The tunekit CLI, as a user runs it. */
const run = (args: string[]) => runNode([cliMain, ...args]);

test('tunekit eval: candidate vs baseline, computed + pairwise judged metrics, results and report', async () => {
  const candidateDir = tinyModelDir('qwen3', { seed: 1 });
  const baselineDir = tinyModelDir('qwen3', { seed: 2 });
  const prompts = ['Name a colour.', 'Count to three.', 'Say hello.', 'What is 2+2?'];
  // References: the candidate's greedy answers (as a tuned model would reproduce its training targets).
  const model = await loadModel(candidateDir);
  const engine = new Engine(model);
  const refs = await Promise.all(prompts.map((p) => generateLocal(engine, model, p, { maxTokens: 6, temperature: 0 })));
  const dataset = path.join(tmp, 'eval.jsonl');
  fs.writeFileSync(dataset, [
    JSON.stringify({ prompt: prompts[0], reference: refs[0] }),
    JSON.stringify({ contents: [{ role: 'user', parts: [{ text: prompts[1] }] }, { role: 'model', parts: [{ text: refs[1] }] }] }),
    JSON.stringify({ messages: [{ role: 'user', content: prompts[2] }, { role: 'assistant', content: refs[2] }] }),
    JSON.stringify({ prompt: prompts[3], reference: refs[3] }),
  ].join('\n') + '\n');

  // The judge prefers whichever response is shown as A, except on the last prompt, where it never answers usably.
  let judged = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      judged++;
      const prompt = (JSON.parse(body) as { messages: { content: string }[] }).messages[0].content;
      const content = prompt.includes('What is 2+2?') ? 'no comment' : '{"explanation": "A reads better", "choice": "A"}';
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ choices: [{ message: { role: 'assistant', content } }] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const judgeUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;

  const out = path.join(tmp, 'out');
  const r = await run([
    'eval', '--dataset', dataset, '--candidate', candidateDir, '--baseline', baselineDir,
    '--metrics', 'exact_match,rouge_l,bleu,json_valid,pairwise_fluency', '--judge', judgeUrl, '--judge-model', 'j',
    '--judge-retries', '1', '--max-tokens', '6', '--seed', '7', '--out', out,
  ]);
  server.close();
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^metric +candidate \(95% CI\) +baseline \(95% CI\) +failed$/m);
  assert.match(r.out, /^exact_match +1\.000 \[1\.000, 1\.000\] +0\.000 \[0\.000, 0\.000\] +0\/0$/m);
  assert.match(r.out, /^pairwise_fluency +0\.500 \[0\.500, 0\.500\] \(win 0\.0% \/ loss 0\.0% \/ tie 100\.0%; orders disagree 100\.0%\) +- +1$/m);
  assert.match(r.err, /generating candidate: 4\/4/);
  assert.equal(judged, 3 * 2 + 2); // three pairs in both orders; the last pair fails in its first order after one retry

  const rows = fs.readFileSync(path.join(out, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as InstanceResult);
  assert.equal(rows.length, 4);
  rows.forEach((row, i) => {
    assert.equal(row.prompt, prompts[i]);
    assert.equal(row.reference, refs[i]);
    assert.equal(row.candidate.response, refs[i]);
    assert.equal(row.candidate.scores.exact_match, 1);
    assert.equal(row.candidate.scores.rouge_l !== undefined, true);
    assert.equal(typeof row.baseline!.response, 'string');
  });
  assert.deepEqual(rows[0].pairwise.pairwise_fluency, { choice: 'TIE', candidateScore: 0.5, disagreements: 1, explanation: 'A reads better\n---\nA reads better' });
  assert.match(rows[3].pairwise.pairwise_fluency.error!, /^no usable judgment after 2 attempts/);

  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as { summary: MetricSummary[]; config: { judge: string } };
  assert.equal(summary.config.judge, `j at ${judgeUrl}`);
  assert.deepEqual(summary.summary.find((s) => s.metric === 'exact_match')!.candidate, { mean: 1, lo: 1, hi: 1, n: 4 });

  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  assert.match(html, /^<!doctype html>/);
  assert.doesNotMatch(html, /(src|href)=["']?https?:/); // self-contained
  assert.match(html, /<svg class="chart"/);
  const data = JSON.parse(/<script type="application\/json" id="eval-data">([\s\S]*?)<\/script>/.exec(html)![1]) as { results: InstanceResult[] };
  assert.equal(data.results.length, 4);
});

test('--judge-max-tokens bounds a local judge\'s answers: under a budget below the answer\'s shortest form it is cut there', async () => {
  const dir = tinyModelDir('qwen3');
  const dataset = path.join(tmp, 'short.jsonl');
  fs.writeFileSync(dataset, ['{"prompt": "Say hi.", "reference": "hi"}', '{"prompt": "Name a fruit.", "reference": "apple"}'].join('\n') + '\n');
  const out = path.join(tmp, 'judge-max');
  const r = await run(['eval', '--dataset', dataset, '--candidate', dir, '--metrics', 'coherence', '--judge', dir, '--judge-max-tokens', '8', '--judge-retries', '0', '--max-tokens', '4', '--seed', '1', '--out', out]);
  assert.equal(r.code, 0, r.err);
  const tokenizer = (await loadModel(dir)).tokenizer;
  const rows = fs.readFileSync(path.join(out, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as InstanceResult);
  assert.equal(rows.length, 2);
  for (const row of rows) {
    // The whole answer is quoted (it is under the 120 characters the message keeps) and holds at most 8 tokens.
    const quoted = /the answer holds no JSON object; the answer began ("(?:[^"\\]|\\.)*")$/.exec(row.candidate.errors.coherence);
    assert.ok(quoted, row.candidate.errors.coherence);
    const answer = JSON.parse(quoted[1]) as string;
    assert.ok(answer.startsWith('{') && answer.length < 120, answer);
    assert.ok(tokenizer.encode(answer, { addSpecialTokens: false }).length <= 8, answer);
  }
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as { config: { judgeMaxTokens: number } };
  assert.equal(summary.config.judgeMaxTokens, 8);
});

test('tunekit eval refuses what it cannot run, naming the flag', async () => {
  const dataset = path.join(tmp, 'one.jsonl');
  fs.writeFileSync(dataset, '{"prompt": "hi", "reference": "hello"}\n');
  const dir = tinyModelDir('qwen3');
  const noJudge = await run(['eval', '--dataset', dataset, '--candidate', dir, '--metrics', 'coherence', '--out', path.join(tmp, 'x')]);
  assert.equal(noJudge.code, 1);
  assert.match(noJudge.err, /Metric coherence is judged by a model: give --judge/);
  const unknown = await run(['eval', '--dataset', dataset, '--candidate', dir, '--metrics', 'accuracy', '--out', path.join(tmp, 'x')]);
  assert.match(unknown.err, /Unknown metric "accuracy"/);
  const missing = await run(['eval', '--dataset', dataset, '--candidate', path.join(tmp, 'nope'), '--metrics', 'exact_match', '--out', path.join(tmp, 'x')]);
  assert.match(missing.err, /--candidate .*nope: not a directory, an http\(s\) URL, or a tunekit endpoint/);
  const noBaseline = await run(['eval', '--dataset', dataset, '--candidate', dir, '--metrics', 'pairwise_fluency', '--judge', 'http://127.0.0.1:1/v1', '--out', path.join(tmp, 'x')]);
  assert.match(noBaseline.err, /compares two sides: give --baseline/);
  const judgeTokens = await run(['eval', '--dataset', dataset, '--candidate', dir, '--metrics', 'exact_match', '--judge-max-tokens', '8', '--out', path.join(tmp, 'x')]);
  assert.equal(judgeTokens.code, 1);
  assert.match(judgeTokens.err, /--judge-max-tokens limits the judge's answers, and no --judge is given/);
});

test('dataset layouts and the bootstrap interval', () => {
  assert.deepEqual(parseEvalExample({ systemInstruction: { parts: [{ text: 'Be brief.' }] }, contents: [
    { role: 'user', parts: [{ text: 'a' }] }, { role: 'model', parts: [{ text: 'b' }] }, { role: 'user', parts: [{ text: 'c' }] }, { role: 'model', parts: [{ text: 'd' }] },
  ] }, 'x:1'), { prompt: 'c', reference: 'd', system: 'Be brief.' });
  assert.deepEqual(parseEvalExample({ messages: [{ role: 'user', content: 'q' }] }, 'x:1'), { prompt: 'q', reference: undefined, system: undefined });
  assert.throws(() => parseEvalExample({ text: 'q' }, 'x:3'), /^.*x:3: expected "prompt", "contents" \(Vertex\) or "messages" \(OpenAI\)/);
  const ci = bootstrapCi([0, 1, 0, 1, 1, 1, 0, 1], { seed: 3 })!;
  assert.equal(ci.mean, 0.625);
  assert.ok(ci.lo < 0.625 && ci.hi > 0.625 && ci.lo >= 0 && ci.hi <= 1);
  assert.deepEqual(bootstrapCi([0, 1, 0, 1, 1, 1, 0, 1], { seed: 3 }), ci); // seeded: reproducible
  assert.equal(bootstrapCi([]), undefined);
});
