// Bad model directories: each problem is a typed error whose message names the file and the field or
// tensor, never a crash or silently wrong output.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../src/models/model.js';
import { InvalidModelError, InvalidRequestError, UnsupportedModelError } from '../src/errors.js';
import { generate } from '../src/generate/generate.js';
import { scratchCopy, tinyModelDir } from './helpers/tiny-models.js';

function editJson(file: string, edit: (j: Record<string, unknown>) => void): void {
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(j);
  fs.writeFileSync(file, JSON.stringify(j));
}

async function rejectsWith(dir: string, cls: new (...a: never[]) => Error, ...fragments: string[]): Promise<void> {
  await assert.rejects(loadModel(dir), (err: Error) => {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${err.constructor.name}: ${err.message}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `message "${err.message}" should mention "${f}"`);
    return true;
  });
}

test('a directory that does not exist', async () => {
  await rejectsWith('/nonexistent/model', InvalidModelError, '/nonexistent/model', 'does not exist');
});

test('config.json missing or not JSON', async () => {
  const dir = scratchCopy(tinyModelDir('llama'));
  fs.writeFileSync(path.join(dir, 'config.json'), '{ not json');
  await rejectsWith(dir, InvalidModelError, 'config.json', 'not a valid JSON');
  fs.rmSync(path.join(dir, 'config.json'));
  await rejectsWith(dir, InvalidModelError, 'config.json', 'does not exist');
});

test('an architecture or field the code does not implement', async () => {
  const dir = scratchCopy(tinyModelDir('llama'));
  editJson(path.join(dir, 'config.json'), (j) => { j.architectures = ['MistralForCausalLM']; });
  await rejectsWith(dir, UnsupportedModelError, 'MistralForCausalLM', 'not supported');
  const dir2 = scratchCopy(tinyModelDir('gemma3'));
  editJson(path.join(dir2, 'config.json'), (j) => { j.final_logit_softcapping = 30; });
  await rejectsWith(dir2, UnsupportedModelError, 'final_logit_softcapping');
  const dir3 = scratchCopy(tinyModelDir('qwen3'));
  editJson(path.join(dir3, 'config.json'), (j) => { j.some_new_feature = true; });
  await rejectsWith(dir3, UnsupportedModelError, 'some_new_feature');
  const dir4 = scratchCopy(tinyModelDir('qwen3'));
  editJson(path.join(dir4, 'config.json'), (j) => { j.rope_scaling = { rope_type: 'yarn', factor: 4 }; });
  await rejectsWith(dir4, UnsupportedModelError, 'rope_scaling', 'yarn');
});

test('a truncated safetensors file', async () => {
  const dir = scratchCopy(tinyModelDir('llama'));
  const file = path.join(dir, 'model.safetensors');
  const size = fs.statSync(file).size;
  fs.truncateSync(file, size - 100);
  await rejectsWith(dir, InvalidModelError, 'model.safetensors', 'truncated');
  fs.truncateSync(file, 4);
  await rejectsWith(dir, InvalidModelError, 'model.safetensors', 'truncated');
});

test('a tensor whose shape disagrees with config.json', async () => {
  const dir = scratchCopy(tinyModelDir('llama'));
  editJson(path.join(dir, 'config.json'), (j) => { j.intermediate_size = 160; });
  await rejectsWith(dir, InvalidModelError, 'model.safetensors', 'mlp.gate_proj.weight', '[176, 64]', '[160, 64]');
});

test('an unknown dtype in the safetensors header', async () => {
  const dir = scratchCopy(tinyModelDir('llama'));
  const file = path.join(dir, 'model.safetensors');
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = buf.subarray(8, 8 + n).toString('utf8').replace('"dtype":"F32"', '"dtype":"I8" ');
  assert.equal(Buffer.byteLength(header), n);
  buf.write(header, 8, 'utf8');
  fs.writeFileSync(file, buf);
  await rejectsWith(dir, UnsupportedModelError, 'model.safetensors', 'I8');
});

test('a tokenizer with more tokens than the vocabulary', async () => {
  const dir = scratchCopy(tinyModelDir('qwen3'));
  editJson(path.join(dir, 'config.json'), (j) => { j.vocab_size = 100; });
  await assert.rejects(loadModel(dir), (err: Error) => err instanceof InvalidModelError && /vocab_size/.test(err.message) && /tokenizer/.test(err.message));
});

test('a prompt longer than the context', async () => {
  const m = await loadModel(tinyModelDir('llama'));
  const prompt = new Array(m.config.maxPositionEmbeddings + 5).fill(5) as number[];
  await assert.rejects(generate(m, prompt, { maxTokens: 4, temperature: 0 }), (err: Error) =>
    err instanceof InvalidRequestError && err.message.includes(`${prompt.length} tokens`) && err.message.includes('context'));
});
