// tunekit validate: a generated corpus of 545 lines with a problem of a known kind on almost every line
// (every kind the issue lists), each reported at exactly its line and JSON path and nothing else; token
// limits (truncated vs dropped) with a tiny model; dataset-wide warnings; the CLI's exit codes, human
// report and --json.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { validateDataset, formatValidationReport } from '../src/data/validate.js';
import type { DatasetProblem } from '../src/data/errors.js';
import { PROBLEM_KINDS, type ProblemKind } from '../src/data/problems.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-validate-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const CLI = path.resolve('dist/src/cli/main.js');

const turn = (role: string, text: unknown) => ({ role, parts: [{ text }] });
const valid = (i: number, extra: object = {}) => ({ contents: [turn('user', `question #${i}`), turn('model', `answer #${i}`)], ...extra });

interface Expected { kind: ProblemKind; path: string; message?: RegExp }
type Gen = (i: number) => { bytes: Buffer | string; expect: Expected | null };
const json = (v: unknown): string => JSON.stringify(v);

// One generator per kind; each line is otherwise unique, so no line is accidentally a duplicate.
const GENERATORS: Gen[] = [
  (i) => ({ bytes: `{"contents": [{"role": "user", #${i}`, expect: { kind: 'invalid_json', path: '' } }),
  (i) => ({ bytes: Buffer.concat([Buffer.from(`{"contents": "#${i} `), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), expect: { kind: 'invalid_utf8', path: '' } }),
  (i) => ({ bytes: json([i, 'an array']), expect: { kind: 'not_object', path: '' } }),
  (i) => ({ bytes: json({ conversation: [i] }), expect: { kind: 'missing_contents', path: '' } }),
  (i) => ({ bytes: json({ contents: [turn('assistant', `a #${i}`), turn('model', 'b')] }), expect: { kind: 'unknown_role', path: 'contents[0].role' } }),
  (i) => ({ bytes: json({ contents: [turn('user', '   '), turn('model', `b #${i}`)] }), expect: { kind: 'empty_content', path: 'contents[0].parts[0].text' } }),
  (i) => ({ bytes: json({ contents: [turn('user', i), turn('model', 'b')] }), expect: { kind: 'non_string_content', path: 'contents[0].parts[0].text' } }),
  (i) => ({ bytes: json({ contents: [turn('user', `only a question #${i}`)] }), expect: { kind: 'no_model_turn', path: 'contents[0].role' } }),
  (i) => ({ bytes: json({ contents: [turn('user', `q #${i}`), turn('model', 'a'), turn('user', 'q2')] }), expect: { kind: 'last_turn_not_model', path: 'contents[2].role' } }),
  (i) => ({ bytes: json({ contents: [turn('user', `q #${i}`), turn('user', 'again'), turn('model', 'a')] }), expect: { kind: 'roles_not_alternating', path: 'contents[1].role' } }),
  (i) => ({ bytes: json({ contents: [turn('model', `hello #${i}`), turn('user', 'hi'), turn('model', 'a')] }), expect: { kind: 'roles_not_alternating', path: 'contents[0].role' } }),
  (i) => ({ bytes: json(valid(i, { metadata: { id: i } })), expect: { kind: 'unknown_field', path: 'metadata' } }),
  (i) => ({ bytes: json({ contents: [{ role: 'user', parts: [{ text: `q #${i}`, txt: 'typo' }] }, turn('model', 'a')] }), expect: { kind: 'unknown_field', path: 'contents[0].parts[0].txt' } }),
  (i) => ({
    bytes: json({ contents: [{ role: 'user', parts: [{ text: `what is this? #${i}` }, { inlineData: { mimeType: 'image/png', data: 'AAAA' } }] }, turn('model', 'a cat')] }),
    expect: { kind: 'multimodal', path: 'contents[0].parts[1].inlineData', message: /^multimodal examples are not supported by this base model/ },
  }),
  (i) => ({
    bytes: json({ contents: [{ role: 'user', parts: [{ fileData: { mimeType: 'application/pdf', fileUri: `gs://b/${i}.pdf` } }] }, turn('model', 'a summary')] }),
    expect: { kind: 'multimodal', path: 'contents[0].parts[0].fileData', message: /^multimodal examples are not supported by this base model/ },
  }),
  (i) => ({ bytes: json({ messages: [{ role: 'user', content: `q #${i}` }, { role: 'assistant', content: 'a' }] }), expect: { kind: 'mixed_layout', path: '' } }),
  (i) => ({ bytes: json({ contents: `#${i}` }), expect: { kind: 'wrong_type', path: 'contents' } }),
  (i) => ({ bytes: json(valid(i)) + '\r', expect: { kind: 'crlf', path: '' } }),
  () => ({ bytes: '', expect: { kind: 'blank_line', path: '' } }),
  () => ({ bytes: '   \t', expect: { kind: 'blank_line', path: '' } }),
  () => ({ bytes: json(valid(1)), expect: { kind: 'duplicate', path: '', message: /^the same example as line 1$/ } }),
  (i) => ({ bytes: json(valid(i)), expect: null }),
];

function buildCorpus(lines: number): { file: string; expected: Map<number, Expected | null> } {
  const expected = new Map<number, Expected | null>();
  const parts: Buffer[] = [Buffer.from('\uFEFF' + json(valid(1)) + '\n')];
  expected.set(1, { kind: 'bom', path: '' });
  for (let line = 2; line <= lines; line++) {
    const { bytes, expect } = GENERATORS[(line - 2) % GENERATORS.length](line);
    parts.push(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes), Buffer.from('\n'));
    expected.set(line, expect);
  }
  const file = path.join(dir, 'corpus.jsonl');
  fs.writeFileSync(file, Buffer.concat(parts));
  return { file, expected };
}

test('a 545-line malformed corpus: every problem at its line and JSON path, nothing else, nothing thrown', async () => {
  const { file, expected } = buildCorpus(545);
  const seen: DatasetProblem[] = [];
  const { report } = await validateDataset(file, { onProblem: (p) => seen.push(p) });
  const byLine = new Map<number, DatasetProblem[]>();
  for (const p of seen) byLine.set(p.line, [...(byLine.get(p.line) ?? []), p]);
  let malformed = 0;
  for (const [line, expect] of expected) {
    const got = (byLine.get(line) ?? []).map((p) => ({ kind: p.kind, path: p.path }));
    if (expect === null) {
      assert.deepEqual(got, [], `line ${line} is valid`);
      continue;
    }
    malformed++;
    assert.deepEqual(got, [{ kind: expect.kind, path: expect.path }], `line ${line}`);
    if (expect.message) assert.match(byLine.get(line)![0].message, expect.message, `line ${line}`);
    assert.ok(byLine.get(line)!.every((p) => p.file === file));
  }
  assert.ok(malformed >= 500, `${malformed} malformed lines`);
  // Every kind the issue lists is in the corpus.
  const kinds = new Set([...expected.values()].map((e) => e?.kind));
  for (const k of ['invalid_json', 'invalid_utf8', 'bom', 'crlf', 'blank_line', 'not_object', 'missing_contents', 'unknown_role', 'empty_content',
    'non_string_content', 'no_model_turn', 'last_turn_not_model', 'roles_not_alternating', 'unknown_field', 'multimodal', 'duplicate'] as ProblemKind[]) {
    assert.ok(kinds.has(k), k);
  }
  // Lines whose only problem is a warning are valid examples; with fewer than 100 the file is "too few".
  const validRows = [...expected.values()].filter((e) => e === null || (e.kind !== 'blank_line' && PROBLEM_KINDS[e.kind].severity === 'warning')).length;
  assert.equal(report.files[0].validExamples, validRows);
  assert.deepEqual(seen.filter((p) => p.line === 0).map((p) => p.kind), validRows < 100 ? ['too_few_examples'] : []);
  assert.equal(report.ok, false);
  const counts = new Map(report.kinds.map((k) => [k.kind, k.count]));
  for (const kind of kinds) {
    if (!kind) continue;
    const n = [...expected.values()].filter((e) => e?.kind === kind).length;
    assert.equal(counts.get(kind), n, kind);
  }
  const f = report.files[0];
  assert.equal(f.lines, 545);
  assert.equal(f.rows, 545 - [...expected.values()].filter((e) => e?.kind === 'blank_line').length);
  assert.equal(report.errors, seen.filter((p) => PROBLEM_KINDS[p.kind!].severity === 'error').length);
  // The report lists the first problems of each kind in line order.
  const json = report.kinds.find((k) => k.kind === 'invalid_json')!;
  assert.deepEqual(json.first.slice(0, 3).map((p) => p.line), [2, 24, 46]);
  const text = formatValidationReport(report);
  assert.match(text, /^training file .*corpus\.jsonl \(Vertex "contents" layout/);
  const n = (kind: ProblemKind) => [...expected.values()].filter((e) => e?.kind === kind).length;
  assert.ok(text.includes(`invalid JSON [invalid_json]: ${n('invalid_json')}\n    ${file}:2: invalid JSON`));
  assert.ok(text.includes(`CRLF line ends [crlf]: ${n('crlf')} (tolerated`));
  assert.match(text, /\nFAILED: \d+ errors, \d+ warnings/);
});

test('with a model: over-limit examples are truncated (warning) or dropped (error), as Vertex reports them', async () => {
  const model = tinyModelDir('llama');
  const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
  const file = path.join(dir, 'limits.jsonl');
  fs.writeFileSync(file, [
    valid(1), // short: kept
    { contents: [turn('user', 'short question'), turn('model', long)] }, // the reply starts inside the limit: truncated
    { contents: [turn('user', long), turn('model', 'short answer')] }, // the reply starts past the limit: dropped
    { messages: [{ role: 'user', content: 'q' }, { role: 'model', content: 'a' }] }, // mixed layout: not counted
  ].map((v) => JSON.stringify(v)).join('\n') + '\n');
  const seen: DatasetProblem[] = [];
  const { report, scans } = await validateDataset(file, { model: { dir: model, limit: 40 }, onProblem: (p) => seen.push(p) });
  const at = (kind: ProblemKind) => seen.filter((p) => p.kind === kind).map((p) => p.line);
  assert.deepEqual(at('too_long_truncated'), [2]);
  assert.deepEqual(at('too_long_dropped'), [3]);
  assert.match(seen.find((p) => p.kind === 'too_long_truncated')!.message, /^\d+ tokens, over the limit of 40: truncated to the first 40/);
  assert.deepEqual(at('mixed_layout'), [4]);
  assert.equal(report.files[0].tokenLimit, 40);
  assert.equal(report.files[0].truncated, 1);
  assert.equal(report.files[0].dropped, 1);
  assert.equal(scans[0].truncatedRows[0], 2);
  assert.equal(report.ok, false);
  // Without an explicit limit: min(131072, the model's context).
  const { scans: s2 } = await validateDataset(file, { model: { dir: model } });
  assert.equal(s2[0].limit, 2048);
  assert.equal(s2[0].truncatedCount, 0);
});

test('dataset-wide warnings: system prompts, too few examples, overlap, a validation set over 5,000', async () => {
  const train = path.join(dir, 'train.jsonl');
  const si = (text: string) => ({ systemInstruction: { parts: [{ text }] } });
  const rows = Array.from({ length: 60 }, (_, i) => valid(i, i < 50 ? si('Be brief.') : si('Be verbose.')));
  fs.writeFileSync(train, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const validation = path.join(dir, 'validation.jsonl');
  const vrows = Array.from({ length: 5001 }, (_, i) => (i === 7 ? rows[3] : valid(10_000 + i, si('Be brief.'))));
  fs.writeFileSync(validation, vrows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const seen: DatasetProblem[] = [];
  const { report } = await validateDataset(train, { validationFile: validation, onProblem: (p) => seen.push(p) });
  assert.equal(report.ok, true);
  assert.equal(report.errors, 0);
  const only = (kind: ProblemKind) => seen.filter((p) => p.kind === kind);
  assert.deepEqual(only('system_prompts_differ').map((p) => [p.file, p.line]), [[train, 51]]);
  assert.match(only('system_prompts_differ')[0].message, /^2 different system prompts .*"Be brief\." \(50 examples, first at line 1\), "Be verbose\." \(10, first at line 51\)/);
  assert.deepEqual(only('too_few_examples').map((p) => p.file), [train]);
  assert.match(only('too_few_examples')[0].message, /only 60 valid examples: 100-500 examples is the usual sweet spot/);
  assert.deepEqual(only('train_validation_overlap').map((p) => [p.file, p.line, p.message]), [[validation, 8, 'the same example as line 4 of the training file']]);
  assert.deepEqual(only('validation_too_large').map((p) => p.file), [validation]);
  assert.deepEqual(report.files.map((f) => [f.role, f.validExamples]), [['training', 60], ['validation', 5001]]);

  const few = path.join(dir, 'few.jsonl');
  fs.writeFileSync(few, JSON.stringify(valid(1)) + '\n');
  const fewSeen: DatasetProblem[] = [];
  await validateDataset(few, { onProblem: (p) => fewSeen.push(p) });
  assert.match(fewSeen.find((p) => p.kind === 'too_few_examples')!.message, /only 1 valid example: with 1-50 examples, few-shot prompting/);
});

test('CLI: exit 1 with errors, 0 with warnings only; --json is the report', () => {
  const { file } = buildCorpus(40);
  const bad = spawnSync(process.execPath, [CLI, 'validate', file, '--json'], { encoding: 'utf8' });
  assert.equal(bad.status, 1, bad.stderr);
  const report = JSON.parse(bad.stdout);
  assert.equal(report.ok, false);
  assert.deepEqual(report.kinds.find((k: { kind: string }) => k.kind === 'invalid_json').first.map((p: DatasetProblem) => [p.line, p.path, p.kind]), [[2, '', 'invalid_json'], [24, '', 'invalid_json']]);
  const good = path.join(dir, 'good.jsonl');
  fs.writeFileSync(good, [valid(1), valid(2)].map((v) => JSON.stringify(v)).join('\r\n') + '\r\n');
  const ok = spawnSync(process.execPath, [CLI, 'validate', good], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /CRLF line ends \[crlf\]: 2 \(tolerated/);
  assert.match(ok.stdout, /\nOK: no errors, 3 warnings\n$/);
  const val = path.join(dir, 'good-val.jsonl');
  fs.writeFileSync(val, [valid(2), valid(3)].map((v) => JSON.stringify(v)).join('\n') + '\n');
  const both = spawnSync(process.execPath, [CLI, 'validate', good, '--validation', val, '--model', tinyModelDir('llama')], { encoding: 'utf8' });
  assert.equal(both.status, 0, both.stdout + both.stderr);
  assert.match(both.stdout, /^training file .*good\.jsonl .*\n  2 lines, 2 examples: 2 valid, 0 invalid; token limit 2048: 0 truncated, 0 dropped; 0 errors, 3 warnings\n/);
  assert.match(both.stdout, /\nvalidation file .*good-val\.jsonl .*\n  2 lines, 2 examples: 2 valid, 0 invalid; token limit 2048: 0 truncated, 0 dropped; 0 errors, 1 warnings\n/);
  assert.ok(both.stdout.includes(`in both training and validation [train_validation_overlap]: 1 (validation examples seen in training make the eval metrics look better than they are)\n    ${val}:1: the same example as line 2 of the training file\n`), both.stdout);
  const missing = spawnSync(process.execPath, [CLI, 'validate', path.join(dir, 'nope.jsonl')], { encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^tunekit: error: dataset file .*nope\.jsonl does not exist\n$/);
});
