// The command line as a user runs it: exit codes, one-line errors without stack traces for bad input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { realTokenizerDir } from './helpers/real-tokenizers.js';

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-cli-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('model init then generate, greedy twice gives the same text, sampling with a seed is reproducible', () => {
  const dir = path.join(tmp, 'gemma');
  const init = run('model', 'init', '--arch', 'gemma3', '--size', 'tiny', '--seed', '2', '--out', dir);
  assert.equal(init.code, 0, init.err);
  assert.match(init.out, /wrote gemma3 tiny/);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
    assert.ok(fs.existsSync(path.join(dir, f)), f);
  }
  const a = run('generate', '--model', dir, '--prompt', 'Hi there', '--chat', '--max-tokens', '12');
  const b = run('generate', '--model', dir, '--prompt', 'Hi there', '--chat', '--max-tokens', '12', '--stream');
  assert.equal(a.code, 0, a.err);
  assert.equal(a.out, b.out);
  const s1 = run('generate', '--model', dir, '--prompt', 'Hi', '--temperature', '1', '--top-k', '20', '--seed', '5', '--max-tokens', '12');
  const s2 = run('generate', '--model', dir, '--prompt', 'Hi', '--temperature', '1', '--top-k', '20', '--seed', '5', '--max-tokens', '12');
  assert.equal(s1.code, 0, s1.err);
  assert.equal(s1.out, s2.out);
});

test('model init writes byte-identical checkpoints for the same seed', () => {
  const a = path.join(tmp, 'a');
  const b = path.join(tmp, 'b');
  assert.equal(run('model', 'init', '--arch', 'qwen3', '--seed', '4', '--out', a).code, 0);
  assert.equal(run('model', 'init', '--arch', 'qwen3', '--seed', '4', '--out', b).code, 0);
  for (const f of fs.readdirSync(a)) assert.ok(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), f);
});

test('user errors: one line naming the problem, exit code 1, no stack trace', () => {
  const r = run('generate', '--model', path.join(tmp, 'missing-model'), '--prompt', 'x');
  assert.equal(r.code, 1);
  assert.match(r.err, /^tunekit: error: .*missing-model.*does not exist\n$/);
  assert.doesNotMatch(r.err, /\n\s+at /);
  const bad = path.join(tmp, 'bad');
  fs.mkdirSync(bad);
  fs.writeFileSync(path.join(bad, 'config.json'), JSON.stringify({ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' }));
  const r2 = run('generate', '--model', bad, '--prompt', 'x');
  assert.equal(r2.code, 1);
  assert.match(r2.err, /GPT2LMHeadModel.*not supported/);
});

test('model init --tokenizer carries a published tokenizer (Gemma 3: 262,145 tokens over 262,144 rows) and the model loads', () => {
  const tok = realTokenizerDir('gemma3');
  const dir = path.join(tmp, 'gemma-real-tok');
  const init = run('model', 'init', '--arch', 'gemma3', '--size', 'tiny', '--vocab-size', '262144', '--tokenizer', tok, '--out', dir);
  assert.equal(init.code, 0, init.err);
  assert.match(init.out, /vocabulary 262144/);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) assert.ok(fs.readFileSync(path.join(dir, f)).equals(fs.readFileSync(path.join(tok, f))), f);
  const gen = run('generate', '--model', dir, '--prompt', 'Hello', '--chat', '--max-tokens', '3');
  assert.equal(gen.code, 0, gen.err);
  // A tokenizer directory that is not there is an error naming it.
  const small = run('model', 'init', '--arch', 'gemma3', '--tokenizer', path.join(tmp, 'nowhere'), '--out', path.join(tmp, 'x'));
  assert.equal(small.code, 1);
  assert.match(small.err, /nowhere/);
});

test('bad option values: usage error naming the option, exit code 2', () => {
  const r = run('generate', '--model', 'x', '--prompt', 'y', '--temperature', 'hot');
  assert.equal(r.code, 2);
  assert.match(r.err, /--temperature/);
  const r2 = run('model', 'init', '--arch', 'gpt2', '--out', path.join(tmp, 'z'));
  assert.equal(r2.code, 2);
  assert.match(r2.err, /--arch must be one of llama, qwen3, gemma3/);
});
