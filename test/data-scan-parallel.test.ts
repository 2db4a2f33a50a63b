// The two-thread scan (scan-parallel.ts) against the sequential one on a file with every sort of line
// on both sides of the cut: identical line/row numbers, counts, problems (messages included), keys,
// system prompts and columns.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { scanDataset } from '../src/data/scan.js';
import { scanParallel } from '../src/data/scan-parallel.js';
import { validateDataset } from '../src/data/validate.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-scanpar-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

const ex = (i: number, system = 'S') => JSON.stringify({ systemInstruction: { parts: [{ text: system }] }, contents: [{ role: 'user', parts: [{ text: `q${i}` }] }, { role: 'model', parts: [{ text: `a${i}` }] }] });
const KINDS: ((i: number) => Buffer | string)[] = [
  (i) => ex(i),
  () => ex(1), // duplicate of line 1, on both halves
  (i) => ex(i % 50 + 100000), // duplicates within and across halves
  (i) => `{"contents": [${i}`,
  () => '',
  () => '\u00a0\u3000', // blank only by String.prototype.trim
  (i) => `   ${ex(i + 1e6)}`,
  (i) => ex(i + 2e6) + '\r',
  (i) => JSON.stringify({ contents: [{ role: 'user', parts: [{ text: `x${i}` }] }, { role: 'model', parts: [{ text: 'y' }] }], extra: 1 }),
  (i) => JSON.stringify({ messages: [{ role: 'user', content: `m${i}` }, { role: 'assistant', content: 'n' }] }),
  (i) => ex(i + 3e6, i % 3 ? 'S' : 'T'),
  (i) => Buffer.concat([Buffer.from(`{"contents": "${i}`), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]),
];

test('parallel scan equals the sequential scan', async () => {
  const parts: Buffer[] = [Buffer.from('\uFEFF' + ex(1) + '\n')];
  for (let i = 0; i < 3000; i++) {
    const v = KINDS[i % KINDS.length](i);
    parts.push(Buffer.isBuffer(v) ? v : Buffer.from(v), Buffer.from('\n'));
  }
  const file = path.join(dir, 'mixed.jsonl');
  fs.writeFileSync(file, Buffer.concat(parts));
  const bytes = fs.statSync(file).size;
  const seq = await scanDataset(file, { parallelMinBytes: Infinity, maxPerKind: 1000 });
  const par = await scanParallel(file, bytes, { maxPerKind: 1000 });
  assert.ok(par);
  for (const k of ['bytes', 'format', 'lines', 'rows', 'examples', 'distinctSystemPrompts', 'droppedCount', 'truncatedCount'] as const) {
    assert.equal(par[k], seq[k], k);
  }
  assert.deepEqual(par.problems.counts, seq.problems.counts);
  for (const [kind, list] of seq.problems.samples) assert.deepEqual(par.problems.samples.get(kind), list, kind);
  assert.deepEqual(par.keys, seq.keys);
  assert.deepEqual(par.systemPrompts, seq.systemPrompts);
  assert.deepEqual(par.dropped, seq.dropped);
  assert.deepEqual(par.samples, seq.samples);
  for (const [name, col] of Object.entries(seq.columns)) {
    const upTo = (d: Int32Array) => {
      const out = new Int32Array(seq.rows + 1); // a column never written stays at its first size
      out.set(d.subarray(0, seq.rows + 1));
      return out;
    };
    assert.deepEqual(upTo(par.columns[name as keyof typeof seq.columns].data), upTo(col.data), name);
  }
  assert.ok(seq.problems.counts.get('duplicate')! > 100);
  // validateDataset takes the parallel path by itself for large files (here: any file).
  const { report: a } = await validateDataset(file, { maxPerKind: 5 });
  const viaParallel = await scanDataset(file, { parallelMinBytes: 0, maxPerKind: 5 });
  assert.deepEqual(viaParallel.problems.counts, seq.problems.counts);
  assert.equal(a.errors, seq.problems.errors);
});
