// Dataset checks that are bounded and cancellable (issue 8):
// - an example over MAX_TURNS_PER_EXAMPLE turns is a `too_many_turns` error at its line and the JSON
//   path of the first turn past the limit, in every layout; one at the limit is fine;
// - validateDataset with an aborted signal rejects with CANCELLED before doing anything;
// - aborted mid-way (inline counting, worker threads, one long example inside a worker, the two-thread
//   scan without a model) it rejects with CANCELLED, reports nothing after the abort, and leaves no
//   worker thread behind: each case runs in a child process that must exit on its own.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateDataset, formatValidationReport } from '../src/data/validate.js';
import { MAX_TURNS_PER_EXAMPLE } from '../src/data/checks.js';
import type { DatasetProblem } from '../src/data/errors.js';
import { TunekitError } from '../src/errors.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-cancel-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

const vertex = (n: number, tag: string) => ({
  contents: Array.from({ length: n }, (_, i) => ({ role: i % 2 ? 'model' : 'user', parts: [{ text: `${tag} ${i}` }] })),
});
const messages = (n: number, tag: string) => ({
  messages: [{ role: 'system', content: 'Be brief.' }, ...Array.from({ length: n }, (_, i) => ({ role: i % 2 ? 'model' : 'user', content: `${tag} ${i}` }))],
});

test(`an example over ${MAX_TURNS_PER_EXAMPLE} turns is a too_many_turns error at the first turn past the limit`, async () => {
  assert.equal(MAX_TURNS_PER_EXAMPLE, 32_768);
  const file = path.join(dir, 'turns.jsonl');
  const over = MAX_TURNS_PER_EXAMPLE + 2; // ends with a model turn
  fs.writeFileSync(file, [vertex(2, 'a'), vertex(over, 'b'), vertex(MAX_TURNS_PER_EXAMPLE, 'c'), messages(over, 'd')].map((v) => JSON.stringify(v)).join('\n') + '\n');
  const seen: DatasetProblem[] = [];
  const { report } = await validateDataset(file, { onProblem: (p) => seen.push(p) });
  const errors = seen.filter((p) => p.kind !== 'too_few_examples' && p.kind !== 'mixed_layout');
  assert.deepEqual(seen.filter((p) => p.kind === 'too_many_turns').map((p) => [p.line, p.path]), [[2, 'contents[32768]']]);
  // Line 4 is in another layout: its own problem is the mix; the turn count is checked per layout too.
  assert.ok(seen.some((p) => p.kind === 'mixed_layout' && p.line === 4));
  assert.deepEqual(errors.map((p) => p.kind), ['too_many_turns']);
  assert.equal(errors[0]!.message, `${over} turns, over the limit of 32768 per example (every turn renders to at least 4 tokens, so this many can never fit in the 131,072-token limit); split the conversation into several examples`);
  assert.equal(report.ok, false);
  assert.equal(report.files[0]!.validExamples, 2);
  assert.match(formatValidationReport(report), /too many turns \[too_many_turns\]: 1 \(at most 32,768 turns per example: more can never fit in the 131,072-token limit\)\n    .*turns\.jsonl:2: contents\[32768\]: 32770 turns, over the limit/);

  const chat = path.join(dir, 'turns-messages.jsonl');
  fs.writeFileSync(chat, [messages(2, 'e'), messages(over, 'f')].map((v) => JSON.stringify(v)).join('\n') + '\n');
  const chatSeen: DatasetProblem[] = [];
  await validateDataset(chat, { onProblem: (p) => chatSeen.push(p) });
  assert.deepEqual(chatSeen.filter((p) => p.kind === 'too_many_turns').map((p) => [p.line, p.path]), [[2, 'messages[32769]']]);
});

test('validateDataset with an aborted signal rejects with CANCELLED at once', async () => {
  const file = path.join(dir, 'small.jsonl');
  fs.writeFileSync(file, JSON.stringify(vertex(2, 'x')) + '\n');
  for (const model of [undefined, { dir: tinyModelDir('llama') }]) {
    await assert.rejects(validateDataset(file, { model, signal: AbortSignal.abort() }), (e: unknown) => {
      assert.ok(e instanceof TunekitError);
      assert.equal(e.code, 'CANCELLED');
      return true;
    });
  }
  await assert.rejects(validateDataset(file, { signal: AbortSignal.abort('the client left') }), /the client left/);
});

// Runs in a child process; prints one JSON line per case, then must exit by itself.
const CHILD = `
import { validateDataset } from ${JSON.stringify(new URL('../src/data/validate.js', import.meta.url).href)};
import { scanDataset } from ${JSON.stringify(new URL('../src/data/scan.js', import.meta.url).href)};
const [many, long, big, model] = process.argv.slice(2);
async function run(name, start) {
  const controller = new AbortController();
  const state = { aborted: false, after: 0, before: 0 };
  const abort = () => { if (!state.aborted) { state.aborted = true; state.at = performance.now(); controller.abort(); } };
  const onProblem = (p) => {
    if (state.aborted) state.after++;
    else if (p.kind?.startsWith('too_long') && ++state.before === 5) abort();
  };
  let code = 'resolved';
  try {
    await start(controller.signal, onProblem, abort);
  } catch (e) {
    code = e.code ?? String(e);
  }
  console.log(JSON.stringify({ name, code, aborted: state.aborted, before: state.before, after: state.after, ms: Math.round(performance.now() - state.at) }));
}
await run('inline', (signal, onProblem) => validateDataset(many, { model: { dir: model, limit: 8, threads: 0 }, onProblem, signal }));
await run('workers', (signal, onProblem) => validateDataset(many, { model: { dir: model, limit: 8, threads: 2 }, onProblem, signal }));
await run('long example', (signal, onProblem, abort) => {
  setTimeout(abort, 300);
  return validateDataset(long, { model: { dir: model, limit: 64 }, onProblem, signal });
});
await run('parallel scan', (signal, onProblem, abort) => {
  setTimeout(abort, 20);
  return scanDataset(big, { parallelMinBytes: 0, signal });
});
`;

test('validateDataset aborted mid-way rejects with CANCELLED, reports nothing more and leaves no worker running', () => {
  const many = path.join(dir, 'many.jsonl');
  fs.writeFileSync(many, Array.from({ length: 3000 }, (_, i) => JSON.stringify(vertex(4, `example ${i} with a few words`))).join('\n') + '\n');
  const long = path.join(dir, 'long.jsonl');
  fs.writeFileSync(long, JSON.stringify(vertex(30_000, 'a turn of a very long conversation')) + '\n');
  const big = path.join(dir, 'big.jsonl');
  fs.writeFileSync(big, Array.from({ length: 60_000 }, (_, i) => JSON.stringify(vertex(2, `row ${i}`))).join('\n') + '\n');
  const script = path.join(dir, 'child.mjs');
  fs.writeFileSync(script, CHILD);
  const child = spawnSync(process.execPath, [script, many, long, big, tinyModelDir('llama')], { encoding: 'utf8', timeout: 120_000 });
  // Exiting by itself (no timeout, no signal) means no worker thread or handle was left behind.
  assert.equal(child.signal, null, `the child did not exit by itself: ${child.stdout}${child.stderr}`);
  assert.equal(child.status, 0, child.stdout + child.stderr);
  const results = child.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; code: string; aborted: boolean; before: number; after: number; ms: number });
  assert.deepEqual(results.map((r) => r.name), ['inline', 'workers', 'long example', 'parallel scan']);
  for (const r of results) {
    assert.equal(r.code, 'CANCELLED', JSON.stringify(r));
    assert.ok(r.aborted, JSON.stringify(r));
    assert.equal(r.after, 0, `problems reported after the abort: ${JSON.stringify(r)}`);
    // Loose: the long example alone takes seconds to count; the abort ends it long before.
    assert.ok(r.ms < 20_000, JSON.stringify(r));
  }
  assert.equal(results[0]!.before, 5);
  assert.equal(results[1]!.before, 5);
  assert.equal(results[2]!.before, 0, 'the long example was cancelled before its count came back');
});
