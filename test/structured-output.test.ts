// Constrained decoding: random-weight models at high temperature, many seeds, still write JSON that
// parses and validates (ajv) against the schema, close it within maxOutputTokens when its shortest form
// fits, and write exactly one of an enum's values. The serving engine runs the same SequenceState.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { loadModel, type LoadedModel } from '../src/models/model.js';
import { generate } from '../src/generate/generate.js';
import { compileSchema, SchemaError } from '../src/structured/schema.js';
import { ANY } from '../src/structured/schema.js';
import { jsonStart, minRest, stepAll } from '../src/structured/automaton.js';
import { Engine } from '../src/serve/engine.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const ajv = new Ajv({ strict: false, validateFormats: false });
const DATE_TIME = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$/;

const models = new Map<string, LoadedModel>();
async function model(family: 'llama' | 'qwen3' | 'gemma3'): Promise<LoadedModel> {
  let m = models.get(family);
  if (!m) models.set(family, (m = await loadModel(tinyModelDir(family))));
  return m;
}

const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    age: { type: 'integer' },
    tags: { type: 'array', items: { type: 'string', enum: ['a', 'b', 'c'] }, minItems: 1, maxItems: 3 },
    score: { type: ['number', 'null'] },
    when: { type: 'string', format: 'date-time' },
    kind: { anyOf: [{ type: 'boolean' }, { type: 'object', properties: { x: { type: 'number' } }, required: ['x'] }] },
  },
  required: ['name', 'age', 'tags', 'when'],
};

test('JSON of a schema: random models, high temperature, 8 seeds each: always parses and validates', async () => {
  const validate = ajv.compile(PERSON);
  const node = compileSchema(PERSON, 'json');
  for (const family of ['llama', 'qwen3', 'gemma3'] as const) {
    const m = await model(family);
    const prompt = m.tokenizer.encode('Describe a person as JSON:');
    for (let seed = 1; seed <= 8; seed++) {
      const r = await generate(m, prompt, { maxTokens: 80, temperature: 2, seed, responseFormat: { kind: 'json', schema: node } });
      const value = JSON.parse(r.text) as Record<string, unknown>;
      assert.ok(validate(value), `${family} seed ${seed}: ${r.text} ${JSON.stringify(validate.errors)}`);
      assert.match(value.when as string, DATE_TIME);
      assert.ok(!r.text.includes('\uFFFD'), `well-formed UTF-8 in strings: ${r.text}`);
      assert.ok(!Number.isNaN(Date.parse(value.when as string)));
      assert.equal(r.finishReason === 'length', false, `${family} seed ${seed} closed within budget`);
    }
  }
});

test('plain JSON mode (no schema) gives a JSON value; sampling with top-k/top-p still valid', async () => {
  for (const family of ['llama', 'gemma3'] as const) {
    const m = await model(family);
    const prompt = m.tokenizer.encode('JSON please');
    for (let seed = 1; seed <= 6; seed++) {
      const r = await generate(m, prompt, { maxTokens: 40, temperature: 1.5, topK: 50, topP: 0.9, seed, responseFormat: { kind: 'json', schema: ANY } });
      assert.doesNotThrow(() => JSON.parse(r.text), `${family} seed ${seed}: ${JSON.stringify(r.text)}`);
    }
  }
});

test('greedy constrained decoding is deterministic and Vertex schemas compile (STRING, nullable, int64 counts)', async () => {
  const m = await model('qwen3');
  const vertex = {
    type: 'OBJECT',
    properties: { colour: { type: 'STRING', enum: ['red', 'green'], format: 'enum' }, n: { type: 'INTEGER', nullable: true }, list: { type: 'ARRAY', items: { type: 'NUMBER' }, minItems: '2', maxItems: '2' } },
    required: ['colour', 'n', 'list'],
    propertyOrdering: ['colour', 'n', 'list'],
  };
  const node = compileSchema(vertex, 'vertex');
  const prompt = m.tokenizer.encode('x');
  const a = await generate(m, prompt, { maxTokens: 60, temperature: 0, responseFormat: { kind: 'json', schema: node } });
  const b = await generate(m, prompt, { maxTokens: 60, temperature: 0, responseFormat: { kind: 'json', schema: node } });
  assert.equal(a.text, b.text);
  const v = JSON.parse(a.text) as { colour: string; n: number | null; list: number[] };
  assert.ok(['red', 'green'].includes(v.colour));
  assert.ok(v.n === null || Number.isInteger(v.n));
  assert.equal(v.list.length, 2);
  assert.equal(a.finishReason, 'stop');
});

test('text/x.enum: exactly one of the values, raw', async () => {
  const m = await model('gemma3');
  const prompt = m.tokenizer.encode('Pick:');
  const values = ['positive', 'negative', 'neutral', 'pos'];
  for (let seed = 1; seed <= 8; seed++) {
    const r = await generate(m, prompt, { maxTokens: 20, temperature: 2, seed, responseFormat: { kind: 'enum', values } });
    assert.ok(values.includes(r.text), r.text);
    assert.equal(r.finishReason, 'stop');
  }
});

test('a budget below the shortest completion: the longest valid prefix, finishReason length', async () => {
  const m = await model('llama');
  const node = compileSchema(PERSON, 'json');
  const r = await generate(m, m.tokenizer.encode('x'), { maxTokens: 5, temperature: 1, seed: 3, responseFormat: { kind: 'json', schema: node } });
  assert.equal(r.finishReason, 'length');
  assert.ok(stepAll(jsonStart(node), new TextEncoder().encode(r.text)) !== null, `a valid prefix: ${r.text}`);
  assert.throws(() => JSON.parse(r.text));
});

test('the automaton: prefixes, rejections and the shortest completion', () => {
  const node = compileSchema(PERSON, 'json');
  const s0 = jsonStart(node);
  const enc = (t: string) => new TextEncoder().encode(t);
  assert.equal(minRest(s0), '{"name":"","age":0,"tags":["a"],"when":"0000-01-01T00:00:00Z"}'.length);
  assert.equal(stepAll(s0, enc(' {')), null, 'no leading whitespace');
  assert.equal(stepAll(s0, enc('{"nam":')), null, 'only declared keys');
  assert.equal(stepAll(s0, enc('{"name":"x"}')), null, 'required keys before }');
  assert.equal(stepAll(s0, enc('{"age":1.5')), null, 'integers have no fraction');
  assert.equal(stepAll(s0, enc('{"when":"2024-13')), null, 'months 01-12');
  assert.ok(stepAll(s0, enc('{"name":"a\\u00e9\\n", "age":-0, "tags":["c"]')));
  assert.throws(() => compileSchema({ type: 'string', pattern: 'a+' }, 'json'), (e: unknown) => e instanceof SchemaError && e.path === 'pattern');
  assert.throws(() => compileSchema({ type: 'OBJECT', properties: { a: { type: 'STRING', minLength: 2 } } }, 'vertex'), (e: unknown) => e instanceof SchemaError && e.path === 'properties.a.minLength');
});

test('the serving engine applies the same constraint per request, beside unconstrained ones', async () => {
  const m = await model('llama');
  const engine = new Engine(m, { parallel: 4 });
  const node = compileSchema(PERSON, 'json');
  const validate = ajv.compile(PERSON);
  const run = async (opts: Parameters<Engine['submit']>[1]) => {
    const it = engine.submit(m.tokenizer.encode('hello'), opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  };
  const [a, b, c] = await Promise.all([
    run({ maxTokens: 80, temperature: 1.8, seed: 11, responseFormat: { kind: 'json', schema: node } }),
    run({ maxTokens: 20, temperature: 1.8, seed: 12 }),
    run({ maxTokens: 80, temperature: 1.8, seed: 13, responseFormat: { kind: 'json', schema: node } }),
  ]);
  assert.ok(validate(JSON.parse(a.text)), a.text);
  assert.ok(validate(JSON.parse(c.text)), c.text);
  assert.equal(b.tokenIds.length > 0, true);
  const alone = await generate(m, m.tokenizer.encode('hello'), { maxTokens: 80, temperature: 1.8, seed: 11, responseFormat: { kind: 'json', schema: node } });
  assert.equal(alone.text, a.text);
  await engine.idle();
});

test('published vocabularies (Gemma 3: 262,144 tokens, Qwen3): random logits through the mask decode to valid JSON', async () => {
  const { realTokenizerDir } = await import('./helpers/real-tokenizers.js');
  const { Tokenizer } = await import('../src/tokenizer/tokenizer.js');
  const { SequenceState } = await import('../src/generate/sequence.js');
  const { Random } = await import('../src/engine/random.js');
  const validate = ajv.compile(PERSON);
  const node = compileSchema(PERSON, 'json');
  for (const name of ['gemma3', 'qwen3'] as const) {
    const tokenizer = Tokenizer.loadSync(realTokenizerDir(name));
    const V = tokenizer.embeddingSize;
    const model = { tokenizer, config: { maxPositionEmbeddings: 4096, vocabSize: V }, defaults: { eosTokenIds: tokenizer.eosTokenIds, bosTokenId: null } };
    for (let seed = 1; seed <= 3; seed++) {
      const seq = new SequenceState(model as never, [1, 2, 3], { maxTokens: 70, temperature: 1, seed, responseFormat: { kind: 'json', schema: node } });
      const rng = new Random(seed);
      const logits = new Float32Array(V);
      while (!seq.finished) {
        for (let i = 0; i < V; i++) logits[i] = rng.next() * 8;
        seq.next(logits);
      }
      const r = seq.result(0, 0);
      assert.equal(r.text, tokenizer.decode(r.tokenIds, { skipSpecialTokens: true }));
      assert.doesNotThrow(() => JSON.parse(r.text), `${name} ${seed}: ${JSON.stringify(r.text)} ${JSON.stringify(r.tokenIds.map((id) => tokenizer.idToToken(id)))}`);
      assert.ok(validate(JSON.parse(r.text)), `${name} ${seed}: ${r.text}`);
      assert.ok(!r.text.includes('\uFFFD'), r.text);
    }
  }
});
