// Function calling: declarations rendered through the chat template's `tools` (a tiny Qwen3 with the
// published Qwen3 template), mode ANY forces a well-formed call by constrained decoding — random
// weights, high temperature — parsed into functionCall parts whose args follow the declared
// parameters; allowedFunctionNames limits the choice; functionCall / functionResponse parts in the
// history go back through the template; a template without tool support is a 400 saying so.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ajv } from 'ajv';
import { registerPublisherModel } from '../src/api/catalog.js';
import { initTinyModel } from '../src/models/tiny.js';
import { parseToolCalls, toolCallStyle, vertexToJsonSchema } from '../src/structured/tools.js';
import { compileSchema } from '../src/structured/schema.js';
import { PREFIX, tinyApi, userText } from './helpers/api-app.js';
import { realTokenizerDir } from './helpers/real-tokenizers.js';

const api = await tinyApi();
const dir = path.join(api.dataDir, 'qwen3-tools');
initTinyModel({ family: 'qwen3', size: 'tiny', seed: 2, out: dir });
const published = JSON.parse(fs.readFileSync(path.join(realTokenizerDir('qwen3'), 'tokenizer_config.json'), 'utf8')) as { chat_template: string };
const configFile = path.join(dir, 'tokenizer_config.json');
fs.writeFileSync(configFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(configFile, 'utf8')), chat_template: published.chat_template }));
await registerPublisherModel(api.store, dir, { name: 'qwen3-tools' });
const URL_ = `${PREFIX}/qwen3-tools:generateContent`;

const WEATHER = {
  name: 'get_weather', description: 'Weather in a city',
  parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' }, unit: { type: 'STRING', enum: ['C', 'F'] }, days: { type: 'INTEGER' } }, required: ['city', 'unit'] },
};
const TIME = { name: 'get_time', parametersJsonSchema: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } };
const ajv = new Ajv({ strict: false });
const validWeather = ajv.compile(vertexToJsonSchema(WEATHER.parameters));
const validTime = ajv.compile(TIME.parametersJsonSchema);

test('mode ANY: a well-formed call to a declared function, arguments valid, for every seed', async () => {
  for (let seed = 1; seed <= 6; seed++) {
    const res = await api.post(URL_, {
      ...userText('Weather in Paris?'), tools: [{ functionDeclarations: [WEATHER, TIME] }],
      toolConfig: { functionCallingConfig: { mode: 'ANY' } }, generationConfig: { temperature: 2, seed, maxOutputTokens: 80 },
    });
    assert.equal(res.status, 200, await res.clone().text());
    const c = (await res.json() as any).candidates[0];
    assert.equal(c.finishReason, 'STOP', JSON.stringify(c));
    const call = c.content.parts.find((p: any) => p.functionCall).functionCall;
    assert.ok(call.name === 'get_weather' ? validWeather(call.args) : call.name === 'get_time' && validTime(call.args), JSON.stringify(call));
  }
  const only = await (await api.post(URL_, {
    ...userText('x'), tools: [{ functionDeclarations: [WEATHER, TIME] }],
    toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_time'] } }, generationConfig: { temperature: 2, seed: 9, maxOutputTokens: 60 },
  })).json() as any;
  assert.equal(only.candidates[0].content.parts[0].functionCall.name, 'get_time');
});

test('tools are rendered by the template; function parts in the history go back through it; NONE hides the tools', async () => {
  const count = async (body: unknown) => ((await (await api.post(`${PREFIX}/qwen3-tools:countTokens`, body)).json()) as any).totalTokens as number;
  const plain = await count(userText('Weather in Paris?'));
  const withTools = await count({ ...userText('Weather in Paris?'), tools: [{ functionDeclarations: [WEATHER] }] });
  assert.ok(withTools > plain + 20, `${withTools} vs ${plain}`);
  const billed = async (body: Record<string, unknown>) => ((await (await api.post(URL_, { ...body, generationConfig: { maxOutputTokens: 1 } })).json()) as any).usageMetadata.promptTokenCount as number;
  assert.equal(await billed({ ...userText('Weather in Paris?'), tools: [{ functionDeclarations: [WEATHER] }] }), withTools, 'countTokens counts the tools as generation bills them');
  const none = await billed({ ...userText('Weather in Paris?'), tools: [{ functionDeclarations: [WEATHER] }], toolConfig: { functionCallingConfig: { mode: 'NONE' } } });
  assert.equal(none, plain);
  const history = {
    contents: [
      { role: 'user', parts: [{ text: 'Weather in Paris?' }] },
      { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris', unit: 'C' } } }] },
      { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temperature: 21 } } }] },
    ],
    tools: [{ functionDeclarations: [WEATHER] }],
    generationConfig: { maxOutputTokens: 4, seed: 1 },
  };
  const r = await api.post(URL_, history);
  assert.equal(r.status, 200, await r.clone().text());
  assert.ok(await count(history) > withTools + 15);
  const wrongTurn = await api.post(URL_, { contents: [{ role: 'user', parts: [{ functionCall: { name: 'get_weather', args: {} } }] }], tools: [{ functionDeclarations: [WEATHER] }] });
  assert.equal(wrongTurn.status, 400);
});

test('refusals: no tool support in the template, undeclared allowed names, other tool kinds', async () => {
  const bad = async (url: string, body: unknown, re: RegExp) => {
    const r = await api.post(url, body);
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as any).error.message, re);
  };
  await bad(`${PREFIX}/gemma3-tiny:generateContent`, { ...userText('x'), tools: [{ functionDeclarations: [WEATHER] }] }, /chat template has no tool support/);
  await bad(URL_, { ...userText('x'), tools: [{ functionDeclarations: [WEATHER] }], toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['nope'] } } }, /"nope" is not a declared function/);
  await bad(URL_, { ...userText('x'), tools: [{ googleSearch: {} , functionDeclarations: [WEATHER] }] }, /'tools\[0\]\.google_search' is not supported by tunekit/);
});

test('tool-call parsing: Hermes and Llama 3.1 styles, arguments checked against the declaration', () => {
  const decls = [{ name: 'f', parameters: compileSchema({ type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] }, 'json'), jsonSchema: {} }];
  assert.deepEqual(parseToolCalls('hermes', 'ok <tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>', decls), { calls: [{ name: 'f', args: { a: 1 } }], text: 'ok' });
  assert.equal(parseToolCalls('hermes', '<tool_call>\n{"name": "f", "arguments": {"a": "x"}}\n</tool_call>', decls), 'malformed');
  assert.equal(parseToolCalls('hermes', '<tool_call>\n{"name": "g", "arguments": {}}\n</tool_call>', decls), 'malformed');
  assert.equal(parseToolCalls('hermes', 'just text', decls), null);
  assert.deepEqual(parseToolCalls('llama3', '{"name": "f", "parameters": {"a": 2}}', decls), { calls: [{ name: 'f', args: { a: 2 } }], text: '' });
  assert.equal(toolCallStyle(published.chat_template), 'hermes');
  // Llama 3.1's template teaches this format in its tools block.
  assert.equal(toolCallStyle('{%- if tools %}Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.{%- endif %}'), 'llama3');
  assert.equal(toolCallStyle(JSON.parse(fs.readFileSync(path.join(realTokenizerDir('gemma3'), 'tokenizer_config.json'), 'utf8')).chat_template), null);
});

test('streamGenerateContent with tools: the answer is held and sent as one event with the functionCall parts', async () => {
  const body = {
    ...userText('Weather?'), tools: [{ functionDeclarations: [WEATHER] }],
    toolConfig: { functionCallingConfig: { mode: 'ANY' } }, generationConfig: { temperature: 1, seed: 3, maxOutputTokens: 120 },
  };
  const whole = await (await api.post(URL_, body)).json() as any;
  const res = await api.post(`${PREFIX}/qwen3-tools:streamGenerateContent?alt=sse`, body);
  assert.equal(res.status, 200);
  const events = (await res.text()).split('\r\n\r\n').filter((e) => e !== '').map((e) => JSON.parse(e.slice('data: '.length)));
  assert.equal(events.length, 1);
  assert.deepEqual(events[0].candidates, whole.candidates);
  assert.ok(events[0].candidates[0].content.parts.some((p: any) => p.functionCall), JSON.stringify(events[0].candidates[0]));
});

// A tiny Llama with the Llama 3.1 Instruct template (tool calls as bare JSON: the answer's JSON and a
// call share their first bytes, so the automaton decides by the keys written).
const llamaDir = path.join(api.dataDir, 'llama-tools');
initTinyModel({ family: 'llama', size: 'tiny', seed: 3, out: llamaDir });
const llamaConfig = path.join(llamaDir, 'tokenizer_config.json');
fs.writeFileSync(llamaConfig, JSON.stringify({ ...JSON.parse(fs.readFileSync(llamaConfig, 'utf8')), chat_template: fs.readFileSync('test/fixtures/llama3.1-instruct.jinja', 'utf8') }));
await registerPublisherModel(api.store, llamaDir, { name: 'llama-tools' });

test('tools with a JSON response format: mode AUTO answers a valid call or JSON of the schema (both templates); ANY a call; NONE JSON', async () => {
  const ANSWER = { type: 'object', properties: { answer: { type: 'string' }, confidence: { type: 'number' } }, required: ['answer', 'confidence'], additionalProperties: false };
  const validAnswer = ajv.compile(ANSWER);
  for (const model of ['qwen3-tools', 'llama-tools']) {
    const kinds = new Set<string>();
    for (let seed = 1; seed <= 10; seed++) {
      const res = await api.post(`${PREFIX}/${model}:generateContent`, {
        ...userText('Weather in Paris?'), tools: [{ functionDeclarations: [WEATHER] }],
        generationConfig: { temperature: 2, seed, maxOutputTokens: 120, responseMimeType: 'application/json', responseJsonSchema: ANSWER },
      });
      assert.equal(res.status, 200, await res.clone().text());
      const c = (await res.json() as any).candidates[0];
      assert.equal(c.finishReason, 'STOP', JSON.stringify(c));
      const call = c.content.parts.find((p: any) => p.functionCall)?.functionCall;
      if (call) {
        assert.equal(call.name, 'get_weather');
        assert.ok(validWeather(call.args), JSON.stringify(call));
        kinds.add('call');
      } else {
        const text = c.content.parts.map((p: any) => p.text).join('');
        assert.ok(validAnswer(JSON.parse(text)), text);
        kinds.add('json');
      }
    }
    assert.deepEqual([...kinds].sort(), ['call', 'json'], `${model}: both kinds of answer occur over the seeds`);
  }
  const any = await (await api.post(URL_, {
    ...userText('x'), tools: [{ functionDeclarations: [WEATHER] }], toolConfig: { functionCallingConfig: { mode: 'ANY' } },
    generationConfig: { temperature: 2, seed: 1, maxOutputTokens: 120, responseMimeType: 'application/json', responseJsonSchema: ANSWER },
  })).json() as any;
  assert.ok(validWeather(any.candidates[0].content.parts.find((p: any) => p.functionCall).functionCall.args));
  const none = await (await api.post(URL_, {
    ...userText('x'), tools: [{ functionDeclarations: [WEATHER] }], toolConfig: { functionCallingConfig: { mode: 'NONE' } },
    generationConfig: { temperature: 2, seed: 1, maxOutputTokens: 120, responseMimeType: 'application/json', responseJsonSchema: ANSWER },
  })).json() as any;
  assert.ok(validAnswer(JSON.parse(none.candidates[0].content.parts[0].text)));
});
