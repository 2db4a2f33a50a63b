// Structured output through the Vertex routes: responseMimeType application/json with responseSchema
// (Vertex's Schema) or responseJsonSchema (JSON Schema), or none; text/x.enum; streaming chunks that
// concatenate to the same JSON; MAX_TOKENS when the budget cannot hold the value.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { PREFIX, tinyApi, userText } from './helpers/api-app.js';

const api = await tinyApi();
const ajv = new Ajv({ strict: false, validateFormats: false });

interface GenResponse { candidates: { content: { parts?: { text: string }[] }; finishReason?: string }[] }
const textOf = (r: GenResponse): string => (r.candidates[0]!.content.parts ?? []).map((p) => p.text).join('');

async function gen(model: string, generationConfig: Record<string, unknown>, version = 'v1'): Promise<GenResponse> {
  const res = await api.post(`${PREFIX.replace('/v1/', `/${version}/`)}/${model}:generateContent`, { ...userText('Give me a record.'), generationConfig });
  assert.equal(res.status, 200, await res.clone().text());
  return await res.json() as GenResponse;
}

const VERTEX_SCHEMA = {
  type: 'OBJECT',
  properties: {
    title: { type: 'STRING' },
    year: { type: 'INTEGER' },
    rating: { type: 'NUMBER', nullable: true },
    genres: { type: 'ARRAY', items: { type: 'STRING', format: 'enum', enum: ['drama', 'comedy'] }, minItems: '1', maxItems: '2' },
    released: { type: 'STRING', format: 'date' },
  },
  required: ['title', 'year', 'genres'],
};
const AS_JSON_SCHEMA = {
  type: 'object',
  properties: {
    title: { type: 'string' }, year: { type: 'integer' }, rating: { type: ['number', 'null'] },
    genres: { type: 'array', items: { enum: ['drama', 'comedy'] }, minItems: 1, maxItems: 2 },
    released: { type: 'string', pattern: '^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|1\\d|2[0-8])$' },
  },
  required: ['title', 'year', 'genres'],
};

test('responseSchema (Vertex) and responseJsonSchema: outputs validate, many seeds, high temperature, both models', async () => {
  const validate = ajv.compile(AS_JSON_SCHEMA);
  for (const model of ['gemma3-tiny', 'qwen3-tiny']) {
    for (let seed = 1; seed <= 4; seed++) {
      const a = await gen(model, { responseMimeType: 'application/json', responseSchema: VERTEX_SCHEMA, temperature: 2, seed, maxOutputTokens: 90 });
      assert.ok(validate(JSON.parse(textOf(a))), `${model} ${seed}: ${textOf(a)}`);
      assert.equal(a.candidates[0]!.finishReason, 'STOP');
      const schema = { ...AS_JSON_SCHEMA, properties: { ...AS_JSON_SCHEMA.properties, released: { type: 'string', format: 'date' } } };
      const b = await gen(model, { responseMimeType: 'application/json', responseJsonSchema: schema, temperature: 2, seed, maxOutputTokens: 90 }, 'v1beta1');
      assert.ok(validate(JSON.parse(textOf(b))), `${model} ${seed}: ${textOf(b)}`);
    }
  }
});

test('application/json without a schema: any JSON value; text/x.enum: one value', async () => {
  for (let seed = 1; seed <= 4; seed++) {
    const r = await gen('gemma3-tiny', { responseMimeType: 'application/json', temperature: 1.5, seed, maxOutputTokens: 30 });
    assert.doesNotThrow(() => JSON.parse(textOf(r)), textOf(r));
    const e = await gen('qwen3-tiny', { responseMimeType: 'text/x.enum', responseSchema: { type: 'STRING', enum: ['yes', 'no', 'maybe'] }, temperature: 2, seed });
    assert.ok(['yes', 'no', 'maybe'].includes(textOf(e)), textOf(e));
  }
  const bad = await api.post(`${PREFIX}/gemma3-tiny:generateContent`, { ...userText('x'), generationConfig: { responseMimeType: 'text/x.enum', responseSchema: { type: 'OBJECT' } } });
  assert.equal(bad.status, 400);
  assert.match((await bad.json() as { error: { message: string } }).error.message, /text\/x\.enum" requires 'generation_config\.response_schema' of type STRING with an enum/);
  const both = await api.post(`${PREFIX}/gemma3-tiny:generateContent`, { ...userText('x'), generationConfig: { responseMimeType: 'application/json', responseSchema: { type: 'STRING' }, responseJsonSchema: { type: 'string' } } });
  assert.equal(both.status, 400);
});

test('streaming a constrained answer: the chunks concatenate to the non-streamed JSON', async () => {
  const generationConfig = { responseMimeType: 'application/json', responseSchema: VERTEX_SCHEMA, temperature: 1.2, seed: 5, maxOutputTokens: 90 };
  const whole = textOf(await gen('gemma3-tiny', generationConfig));
  const res = await api.post(`${PREFIX}/gemma3-tiny:streamGenerateContent?alt=sse`, { ...userText('Give me a record.'), generationConfig });
  assert.equal(res.status, 200);
  const events = (await res.text()).split('\r\n\r\n').filter((e) => e !== '').map((e) => JSON.parse(e.slice('data: '.length)) as GenResponse);
  assert.equal(events.map(textOf).join(''), whole);
  JSON.parse(whole);
});

test('a budget too small for the value: MAX_TOKENS and a valid prefix of it', async () => {
  const r = await gen('gemma3-tiny', { responseMimeType: 'application/json', responseSchema: VERTEX_SCHEMA, temperature: 1, seed: 1, maxOutputTokens: 4 });
  assert.equal(r.candidates[0]!.finishReason, 'MAX_TOKENS');
  assert.ok(textOf(r).startsWith('{'));
  assert.throws(() => JSON.parse(textOf(r)));
});
