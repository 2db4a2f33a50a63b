// Dataset layouts parse to one Conversation; bad lines are DatasetErrors (or DatasetProblems) naming
// file, line and JSON path; the streaming reader keeps line numbers across blank lines, CRLF, a BOM and
// lines longer than its read chunk.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readDataset, readExamples } from '../src/data/dataset.js';
import { DatasetError, type DatasetProblem } from '../src/data/errors.js';
import { detectFormat, parseExample } from '../src/data/formats.js';
import { readJsonl } from '../src/data/jsonl.js';
import { NotFoundError } from '../src/errors.js';
import type { Conversation } from '../src/data/conversation.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-data-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
let fileCount = 0;

function write(lines: (string | object)[], opts: { eol?: string; bom?: boolean } = {}): string {
  const file = path.join(dir, `d${fileCount++}.jsonl`);
  const text = lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join(opts.eol ?? '\n');
  fs.writeFileSync(file, (opts.bom ? '\uFEFF' : '') + text + (opts.eol ?? '\n'));
  return file;
}

async function rejectsWith(file: string, expected: { line: number; path: string; message: RegExp }): Promise<void> {
  await assert.rejects(readDataset(file), (e: unknown) => {
    assert.ok(e instanceof DatasetError, `expected a DatasetError, got ${e}`);
    assert.equal(e.code, 'INVALID_ARGUMENT');
    assert.equal(e.file, file);
    assert.equal(e.line, expected.line);
    assert.equal(e.path, expected.path);
    assert.match(e.reason, expected.message);
    assert.ok(e.message.startsWith(`${file}:${expected.line}: ${expected.path ? expected.path + ': ' : ''}`), e.message);
    return true;
  });
}

const SYSTEM = 'You answer in one line.';
const TURNS = [
  { role: 'user', text: 'Name a red fruit.' },
  { role: 'model', text: 'A tomato.' },
  { role: 'user', text: 'And a yellow one?' },
  { role: 'model', text: 'A banana.' },
] as const;

const VERTEX = {
  systemInstruction: { role: 'system', parts: [{ text: 'You answer ' }, { text: 'in one line.' }] },
  contents: TURNS.map((t) => ({ role: t.role, parts: [{ text: t.text }] })),
};
const ARTICLE = { messages: [{ role: 'system', content: SYSTEM }, ...TURNS.map((t) => ({ role: t.role, content: t.text }))] };
const OPENAI = {
  messages: [
    { role: 'system', content: [{ type: 'text', text: SYSTEM }] },
    ...TURNS.map((t) => ({ role: t.role === 'model' ? 'assistant' : 'user', content: t.text })),
  ],
};

test('Vertex, "messages" and OpenAI layouts parse to the same Conversation', async () => {
  const expected = (file: string, line: number): Conversation => ({
    systemInstruction: SYSTEM, turns: TURNS.map((t) => ({ ...t })), source: { file, line },
  });
  const cases = [
    { value: VERTEX, format: 'vertex', opts: {} },
    { value: ARTICLE, format: 'messages', opts: { eol: '\r\n' } },
    { value: OPENAI, format: 'openai', opts: { bom: true } },
  ] as const;
  for (const { value, format, opts } of cases) {
    // Line 2 is blank and line numbers still count it.
    const file = write([value, '', '   ', value], opts);
    const { format: got, conversations } = await readDataset(file);
    assert.equal(got, format);
    assert.deepEqual(conversations, [expected(file, 1), expected(file, 4)]);
    assert.equal(detectFormat(value), format);
  }
});

test('OpenAI weights are kept on model turns; no system instruction stays absent', async () => {
  const file = write([{ messages: [
    { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Helo', weight: 0 },
    { role: 'user', content: 'Spell it right' }, { role: 'assistant', content: 'Hello', weight: 1 },
  ] }]);
  const [conv] = (await readDataset(file)).conversations;
  assert.deepEqual(conv.turns, [
    { role: 'user', text: 'Hi' }, { role: 'model', text: 'Helo', weight: 0 },
    { role: 'user', text: 'Spell it right' }, { role: 'model', text: 'Hello', weight: 1 },
  ]);
  assert.equal('systemInstruction' in conv, false);
});

test('a file that mixes layouts is an error at the first line that differs', async () => {
  const file = write([VERTEX, VERTEX, OPENAI]);
  await rejectsWith(file, { line: 3, path: '', message: /OpenAI.*line 1 is in the Vertex.*one layout/ });
  // The two "messages" layouts are different layouts too.
  await rejectsWith(write([ARTICLE, OPENAI]), { line: 2, path: '', message: /one layout/ });
});

test('errors name the file, line and JSON path', async () => {
  const v = (contents: unknown[], extra: object = {}) => ({ contents, ...extra });
  const u = (text: unknown) => ({ role: 'user', parts: [{ text }] });
  const m = (text: unknown) => ({ role: 'model', parts: [{ text }] });
  const cases: { lines: (string | object)[]; line: number; path: string; message: RegExp }[] = [
    { lines: [VERTEX, '{"contents": [', VERTEX], line: 2, path: '', message: /invalid JSON/ },
    { lines: [VERTEX, '[1, 2]'], line: 2, path: '', message: /expected a JSON object per line, got an array/ },
    { lines: [{ prompt: 'a', completion: 'b' }], line: 1, path: '', message: /"contents".*"messages"/ },
    { lines: [v([u('q'), { role: 'assistant', parts: [{ text: 'a' }] }])], line: 1, path: 'contents[1].role', message: /unknown role "assistant" \(expected "user" or "model"\)/ },
    { lines: [v([{ role: 'system', parts: [{ text: 's' }] }, u('q'), m('a')])], line: 1, path: 'contents[0].role', message: /systemInstruction/ },
    { lines: [VERTEX, v([u('q'), m('a'), u('q2'), m('  ')])], line: 2, path: 'contents[3].parts[0].text', message: /text is empty/ },
    { lines: [v([u('q'), m(42)])], line: 1, path: 'contents[1].parts[0].text', message: /must be a string, got number/ },
    { lines: [v([u('q')])], line: 1, path: 'contents[0].role', message: /no model turn/ },
    { lines: [v([u('q'), m('a'), u('q2')])], line: 1, path: 'contents[2].role', message: /last turn must be a model turn/ },
    { lines: [v([])], line: 1, path: 'contents', message: /no user or model turns/ },
    {
      lines: [v([{ role: 'user', parts: [{ text: 'Describe' }, { fileData: { mimeType: 'image/png', fileUri: 'gs://b/x.png' } }] }, m('a')])],
      line: 1, path: 'contents[0].parts[1].fileData', message: /multimodal examples are not supported by this base model/,
    },
    { lines: [v([u('q'), m('a')], { systemInstruction: { parts: [] } })], line: 1, path: 'systemInstruction.parts', message: /non-empty array/ },
    { lines: [{ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }, { role: 'bot', content: 'b' }] }], line: 1, path: 'messages[2].role', message: /unknown role "bot" \(expected "system", "user", "assistant", "tool"\)/ },
    { lines: [{ messages: [{ role: 'user', content: '' }, { role: 'model', content: 'a' }] }], line: 1, path: 'messages[0].content', message: /text is empty/ },
    { lines: [{ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a', weight: 0.5 }] }], line: 1, path: 'messages[1].weight', message: /must be 0 or 1/ },
    { lines: [{ messages: [{ role: 'user', content: 'q', weight: 1 }, { role: 'assistant', content: 'a' }] }], line: 1, path: 'messages[0].weight', message: /only assistant messages carry a weight/ },
    { lines: [{ messages: [{ role: 'user', content: 'q' }, { role: 'system', content: 's' }, { role: 'assistant', content: 'a' }] }], line: 1, path: 'messages[1].role', message: /first message/ },
    { lines: [{ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: null, tool_calls: [] }] }], line: 1, path: 'messages[1].tool_calls', message: /must be a non-empty array/ },
    { lines: [{ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'f', arguments: '{"a": ' } }] }] }], line: 1, path: 'messages[1].tool_calls[0].function.arguments', message: /JSON text of an object/ },
    { lines: [v([{ role: 'user', parts: [{ functionCall: { name: 'f', args: {} } }] }, m('a')])], line: 1, path: 'contents[0].parts[0].functionCall', message: /functionCall parts belong in model turns/ },
    { lines: [v([u('q'), { role: 'model', parts: [{ functionCall: { args: {} } }] }])], line: 1, path: 'contents[1].parts[0].functionCall.name', message: /needs a "name"/ },
    { lines: [v([u('q'), { role: 'model', parts: [{ executableCode: { code: 'x' } }] }])], line: 1, path: 'contents[1].parts[0].executableCode', message: /code execution parts are not supported/ },
    {
      lines: [{ messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'https://x/y.png' } }] }, { role: 'assistant', content: 'a' }] }],
      line: 1, path: 'messages[0].content[1].type', message: /multimodal examples are not supported by this base model/,
    },
    { lines: [{ messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'q' }] }], line: 1, path: 'messages[1].role', message: /no model turn/ },
  ];
  for (const c of cases) await rejectsWith(write(c.lines), c);
});

test('parsing returns every problem of a line as data', () => {
  const r = parseExample({ contents: [
    { role: 'user', parts: [{ text: '' }] },
    { role: 'bot', parts: [{ inlineData: { mimeType: 'image/png', data: '' } }] },
  ] }, { file: 'f.jsonl', line: 7 });
  assert.equal(r.conversation, null);
  assert.deepEqual(r.problems.map((p) => [p.line, p.path]), [
    [7, 'contents[0].parts[0].text'], [7, 'contents[1].parts[0].inlineData'], [7, 'contents[1].role'],
  ]);
});

test('with onProblem every bad line is reported and the good ones are still read', async () => {
  const file = write([VERTEX, '{oops', { contents: [] }, VERTEX, OPENAI, VERTEX]);
  const problems: DatasetProblem[] = [];
  const lines: number[] = [];
  for await (const ex of readExamples(file, { onProblem: (p) => problems.push(p) })) lines.push(ex.conversation.source.line);
  assert.deepEqual(lines, [1, 4, 6]);
  assert.deepEqual(problems.map((p) => p.line), [2, 3, 5]);
});

test('the reader streams long files with long lines and exact line numbers', async () => {
  // 3000 lines, every 500th 100 KiB long (longer than the 64 KiB read chunk), blank every 7th.
  const lines: string[] = [];
  for (let i = 1; i <= 3000; i++) {
    if (i % 7 === 0) lines.push('');
    else lines.push(JSON.stringify({ i, pad: i % 500 === 0 ? 'x'.repeat(100 * 1024) : '' }));
  }
  const file = write(lines);
  let n = 0;
  for await (const { line, value } of readJsonl(file)) {
    assert.equal((value as { i: number }).i, line);
    n++;
  }
  assert.equal(n, 3000 - Math.floor(3000 / 7));
});

test('bad UTF-8, a missing file and an empty file', async () => {
  const bad = path.join(dir, 'bad-utf8.jsonl');
  fs.writeFileSync(bad, Buffer.concat([Buffer.from(JSON.stringify(VERTEX) + '\n'), Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a])]));
  await rejectsWith(bad, { line: 2, path: '', message: /not valid UTF-8/ });
  await assert.rejects(readDataset(path.join(dir, 'nope.jsonl')), NotFoundError);
  const empty = write(['', '']);
  await assert.rejects(readDataset(empty), (e: unknown) => e instanceof DatasetError && e.line === 0 && /no usable examples/.test(e.message));
});
