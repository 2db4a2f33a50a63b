// The OpenAI-compatible API driven by the official `openai` client (6.x, Node 20): chat completions
// (n, seed, stop, max_completion_tokens, logprobs/top_logprobs, response_format json_object and
// json_schema, tools with tool_choice), streaming with include_usage, /v1/completions, /v1/models, and
// errors in OpenAI's shape for unknown parameters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import OpenAI from 'openai';
import { Ajv } from 'ajv';
import { registerPublisherModel } from '../src/api/catalog.js';
import { initTinyModel } from '../src/models/tiny.js';
import { tinyApi } from './helpers/api-app.js';
import { realTokenizerDir } from './helpers/real-tokenizers.js';

const api = await tinyApi();
const client = new OpenAI({
  apiKey: 'unused', baseURL: 'http://tunekit.local/v1', maxRetries: 0,
  fetch: (async (url: string | URL | Request, init?: RequestInit) => api.app.request(String(url), init)) as typeof fetch,
});

test('chat completions: text, n with seeds, stop and max_completion_tokens, usage', async () => {
  const r = await client.chat.completions.create({
    model: 'gemma3-tiny', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say something.' }],
    n: 3, seed: 4, temperature: 1.3, max_completion_tokens: 6,
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 3);
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  for (const c of r.choices) {
    assert.equal(c.message.role, 'assistant');
    assert.equal(typeof c.message.content, 'string');
    assert.ok(['stop', 'length'].includes(c.finish_reason));
  }
  assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + r.usage!.completion_tokens);
  const again = await client.chat.completions.create({ model: 'gemma3-tiny', messages: [{ role: 'user', content: 'Say something.' }], seed: 9, temperature: 1.3, max_tokens: 6 });
  const same = await client.chat.completions.create({ model: 'gemma3-tiny', messages: [{ role: 'user', content: 'Say something.' }], seed: 9, temperature: 1.3, max_tokens: 6 });
  assert.equal(again.choices[0]!.message.content, same.choices[0]!.message.content);
});

test('logprobs/top_logprobs and response_format json_object / json_schema', async () => {
  const r = await client.chat.completions.create({ model: 'gemma3-tiny', messages: [{ role: 'user', content: 'x' }], max_tokens: 5, logprobs: true, top_logprobs: 3, seed: 1 });
  const lp = r.choices[0]!.logprobs!.content!;
  assert.equal(lp.length, r.usage!.completion_tokens);
  assert.equal(lp[0]!.top_logprobs.length, 3);
  assert.ok(lp[0]!.logprob <= 0);
  const obj = await client.chat.completions.create({ model: 'qwen3-tiny', messages: [{ role: 'user', content: 'JSON' }], max_tokens: 40, temperature: 2, seed: 3, response_format: { type: 'json_object' } });
  const parsed = JSON.parse(obj.choices[0]!.message.content!);
  assert.equal(typeof parsed, 'object');
  assert.ok(!Array.isArray(parsed) && parsed !== null);
  const schema = { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer' } }, required: ['ok', 'n'], additionalProperties: false };
  for (let seed = 1; seed <= 3; seed++) {
    const s = await client.chat.completions.create({
      model: 'gemma3-tiny', messages: [{ role: 'user', content: 'JSON' }], max_tokens: 40, temperature: 2, seed,
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } },
    });
    assert.ok(new Ajv().compile(schema)(JSON.parse(s.choices[0]!.message.content!)), s.choices[0]!.message.content!);
  }
});

test('streaming: deltas concatenate to the whole text; include_usage sends a last usage chunk', async () => {
  const params = { model: 'gemma3-tiny', messages: [{ role: 'user' as const, content: 'Count.' }], seed: 2, temperature: 1, max_tokens: 8 };
  const whole = await client.chat.completions.create(params);
  const s = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let usage: OpenAI.CompletionUsage | undefined;
  let finish: string | null = null;
  for await (const chunk of s) {
    for (const c of chunk.choices) {
      text += c.delta.content ?? '';
      finish = c.finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, whole.choices[0]!.message.content);
  assert.equal(finish, whole.choices[0]!.finish_reason);
  assert.deepEqual(usage, whole.usage);
});

test('completions and models', async () => {
  const r = await client.completions.create({ model: 'gemma3-tiny', prompt: 'Once upon a time', max_tokens: 5, seed: 1 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0]!.text, 'string');
  assert.ok(r.usage!.completion_tokens >= 1);
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id).sort(), ['gemma3-tiny', 'qwen3-tiny']);
});

test('tools: tool_choice required gives a valid tool call; tool results go back through the template', async () => {
  const dir = path.join(api.dataDir, 'qwen3-tools');
  initTinyModel({ family: 'qwen3', size: 'tiny', seed: 2, out: dir });
  const published = JSON.parse(fs.readFileSync(path.join(realTokenizerDir('qwen3'), 'tokenizer_config.json'), 'utf8')) as { chat_template: string };
  const configFile = path.join(dir, 'tokenizer_config.json');
  fs.writeFileSync(configFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(configFile, 'utf8')), chat_template: published.chat_template }));
  await registerPublisherModel(api.store, dir, { name: 'qwen3-tools' });
  const tools: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'add', parameters: { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } }, required: ['a', 'b'] } } }];
  const r = await client.chat.completions.create({ model: 'qwen3-tools', messages: [{ role: 'user', content: '2+2?' }], tools, tool_choice: 'required', temperature: 2, seed: 5, max_tokens: 60 });
  const call = r.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
  assert.equal(r.choices[0]!.finish_reason, 'tool_calls');
  assert.equal(call.function.name, 'add');
  const args = JSON.parse(call.function.arguments) as { a: number; b: number };
  assert.ok(Number.isInteger(args.a) && Number.isInteger(args.b));
  const next = await client.chat.completions.create({
    model: 'qwen3-tools', tools, max_tokens: 3, seed: 1,
    messages: [{ role: 'user', content: '2+2?' }, r.choices[0]!.message, { role: 'tool', tool_call_id: call.id, content: '{"sum": 4}' }],
  });
  assert.equal(next.choices.length, 1);
  // response_format beside tools: each answer is a tool call or JSON of the schema (both occur).
  const weather: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const schema = { type: 'object', properties: { answer: { type: 'string' }, confidence: { type: 'number' } }, required: ['answer', 'confidence'], additionalProperties: false };
  const kinds = new Set<string>();
  for (let seed = 1; seed <= 4; seed++) {
    const c = (await client.chat.completions.create({
      model: 'qwen3-tools', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: weather, temperature: 2, seed, max_tokens: 120,
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } },
    })).choices[0]!;
    if (c.finish_reason === 'tool_calls') {
      const a = JSON.parse((c.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall).function.arguments) as { city: unknown };
      assert.equal(typeof a.city, 'string');
      kinds.add('call');
    } else {
      assert.equal(c.finish_reason, 'stop');
      assert.ok(new Ajv().compile(schema)(JSON.parse(c.message.content!)), c.message.content!);
      kinds.add('json');
    }
  }
  assert.deepEqual([...kinds].sort(), ['call', 'json']);
});

test('errors in OpenAI\'s shape: unknown parameters, unknown models, bad values', async () => {
  const err = async (p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> => {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof OpenAI.APIError, String(e));
      return e;
    }
    assert.fail('expected an error');
  };
  const unknown = await err(client.chat.completions.create({ model: 'gemma3-tiny', messages: [{ role: 'user', content: 'x' }], logit_bias: { 1: 5 } }));
  assert.equal(unknown.status, 400);
  assert.equal(unknown.param, 'logit_bias');
  assert.equal(unknown.type, 'invalid_request_error');
  const missing = await err(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }));
  assert.equal(missing.status, 404);
  const range = await err(client.chat.completions.create({ model: 'gemma3-tiny', messages: [{ role: 'user', content: 'x' }], temperature: 5 }));
  assert.equal(range.status, 400);
  assert.match(range.message, /temperature/);
});

test('model may name an endpoint: it serves what the endpoint deploys; an unknown endpoint is 404', async () => {
  const withEndpoint = await tinyApi({
    endpoints: {
      resolve: (project, location, endpoint) => {
        if (endpoint !== '42') throw Object.assign(new Error(`Endpoint ${endpoint} not found.`), { status: 'NOT_FOUND' });
        return { publisher: 'google', model: 'gemma3-tiny', modelVersion: `projects/${project}/locations/${location}/models/7@1` };
      },
    },
  });
  const c = new OpenAI({
    apiKey: 'unused', baseURL: 'http://tunekit.local/v1', maxRetries: 0,
    fetch: (async (url: string | URL | Request, init?: RequestInit) => withEndpoint.app.request(String(url), init)) as typeof fetch,
  });
  const params = { messages: [{ role: 'user' as const, content: 'hi' }], seed: 3, temperature: 1, max_tokens: 5 };
  const viaEndpoint = await c.chat.completions.create({ ...params, model: 'projects/p/locations/us-central1/endpoints/42' });
  const direct = await c.chat.completions.create({ ...params, model: 'gemma3-tiny' });
  assert.equal(viaEndpoint.choices[0]!.message.content, direct.choices[0]!.message.content);
  const missing = await c.chat.completions.create({ ...params, model: 'projects/p/locations/us-central1/endpoints/9' }).catch((e: unknown) => e);
  assert.ok(missing instanceof OpenAI.APIError);
  assert.equal(missing.status, 404);
});
