// `tunekit publisher-models register` / `publisher-models list`: registrations land in the data directory's database;
// bad names and directories are one-line errors with exit code 1.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyModelDir } from './helpers/tiny-models.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-models-cli-'));
process.on('exit', () => fs.rmSync(dataDir, { recursive: true, force: true }));
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args, '--data-dir', dataDir], { encoding: 'utf8' });

test('register, re-register, list', () => {
  const gemma = tinyModelDir('gemma3');
  const qwen = tinyModelDir('qwen3');
  const r = run('publisher-models', 'register', gemma, '--name', 'gemma3-tiny');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `registered publishers/google/models/gemma3-tiny (${gemma})\n`);
  assert.equal(run('publisher-models', 'register', qwen, '--name', 'qwen3-tiny', '--publisher', 'qwen').status, 0);
  assert.equal(run('publisher-models', 'register', qwen, '--name', 'gemma3-tiny').status, 0); // replaces the directory
  const list = run('publisher-models', 'list').stdout.split('\n');
  assert.match(list[0]!, /^MODEL +DIRECTORY +REGISTERED$/);
  assert.match(list[1]!, new RegExp(`^publishers/google/models/gemma3-tiny +${qwen} +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d$`));
  assert.match(list[2]!, new RegExp(`^publishers/qwen/models/qwen3-tiny +${qwen} +\\d{4}-`));
  assert.equal(list[0]!.indexOf('DIRECTORY'), list[1]!.indexOf(qwen), 'aligned');
  const json = JSON.parse(run('publisher-models', 'list', '--json').stdout) as { publisher: string; name: string; dir: string }[];
  assert.deepEqual(json.map((r) => [r.publisher, r.name, r.dir]), [['google', 'gemma3-tiny', qwen], ['qwen', 'qwen3-tiny', qwen]]);
});

test('bad names and directories are refused with exit code 1', () => {
  const bad = run('publisher-models', 'register', tinyModelDir('gemma3'), '--name', '../escape');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^tunekit: error: model name "\.\.\/escape" is not valid/);
  const missing = run('publisher-models', 'register', path.join(dataDir, 'nope'), '--name', 'nope');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^tunekit: error: model directory .* does not exist/);
  const publisher = run('publisher-models', 'register', tinyModelDir('gemma3'), '--name', 'ok', '--publisher', 'Big Corp');
  assert.equal(publisher.status, 1);
  assert.match(publisher.stderr, /publisher name "Big Corp" is not valid/);
});
