// Streaming as the real APIs stream, driven by the official clients over a socket: each chunk carries
// the logprobs of its own tokens (@google/genai generateContentStream with responseLogprobs, openai
// stream with logprobs); several candidates / choices stream interleaved by index, each equal to what
// the non-streamed call returns for the same seed; function calls stream as one held chunk; a client
// that leaves a multi-candidate stream frees every slot.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GoogleGenAI, type GenerateContentResponse } from '@google/genai';
import OpenAI from 'openai';
import { registerPublisherModel } from '../src/api/catalog.js';
import { listen } from '../src/api/server.js';
import { initTinyModel } from '../src/models/tiny.js';
import { PREFIX, tinyApi, userText } from './helpers/api-app.js';
import { realTokenizerDir } from './helpers/real-tokenizers.js';

const api = await tinyApi();
const server = await listen(api.app, { port: 0, host: '127.0.0.1' });
after(() => server.close());
const genai = new GoogleGenAI({ vertexai: true, project: 'p', location: 'us-central1', apiKey: 'unused', httpOptions: { baseUrl: server.url } });
const openai = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 });

// A tiny Qwen3 with the published chat template (tool support).
const toolsDir = path.join(api.dataDir, 'qwen3-tools');
initTinyModel({ family: 'qwen3', size: 'tiny', seed: 2, out: toolsDir });
const published = JSON.parse(fs.readFileSync(path.join(realTokenizerDir('qwen3'), 'tokenizer_config.json'), 'utf8')) as { chat_template: string };
const configFile = path.join(toolsDir, 'tokenizer_config.json');
fs.writeFileSync(configFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(configFile, 'utf8')), chat_template: published.chat_template }));
await registerPublisherModel(api.store, toolsDir, { name: 'qwen3-tools' });

const textOf = (r: GenerateContentResponse, i = 0) => (r.candidates?.find((c) => (c.index ?? 0) === i)?.content?.parts ?? []).map((p) => p.text ?? '').join('');

test('generateContentStream: each chunk carries the logprobs of the tokens that wrote its text', async () => {
  const { tokenizer } = (await api.catalog.served('google', 'gemma3-tiny')).model;
  const params = { model: 'gemma3-tiny', contents: 'Tell me more.', config: { seed: 7, temperature: 1.2, maxOutputTokens: 24, responseLogprobs: true, logprobs: 3 } };
  const whole = await genai.models.generateContent(params);
  const chunks: GenerateContentResponse[] = [];
  for await (const c of await genai.models.generateContentStream(params)) chunks.push(c);
  assert.ok(chunks.length > 3, `chunks: ${chunks.length}`);
  let text = '';
  const ids: number[] = [];
  const top: number[] = [];
  for (const c of chunks) {
    const cand = c.candidates![0]!;
    const chosen = cand.logprobsResult?.chosenCandidates ?? [];
    if (textOf(c) !== '') assert.ok(chosen.length >= 1, 'a chunk with text has the logprobs of its tokens');
    text += textOf(c);
    ids.push(...chosen.map((t) => t.tokenId!));
    top.push(...(cand.logprobsResult?.topCandidates ?? []).map((t) => t.candidates!.length));
    // The tokens so far decode to at least the text so far (a chunk never runs ahead of its tokens).
    assert.ok(tokenizer.decode(ids).startsWith(text), `${JSON.stringify(tokenizer.decode(ids))} vs ${JSON.stringify(text)}`);
  }
  const w = whole.candidates![0]!;
  assert.equal(text, textOf(whole));
  assert.deepEqual(ids, w.logprobsResult!.chosenCandidates!.map((t) => t.tokenId));
  assert.deepEqual(top, w.logprobsResult!.topCandidates!.map((t) => t.candidates!.length));
  assert.equal(top[0], 3);
  const last = chunks[chunks.length - 1]!.candidates![0]!;
  assert.equal(last.avgLogprobs, w.avgLogprobs);
  assert.equal(last.finishReason, w.finishReason);
  for (const c of chunks.slice(0, -1)) assert.equal(c.candidates![0]!.avgLogprobs, undefined);
});

test('generateContentStream with candidateCount: candidates interleave by index, each equal to the non-streamed one', async () => {
  const params = { model: 'gemma3-tiny', contents: 'Say something.', config: { candidateCount: 3, seed: 4, temperature: 1.5, maxOutputTokens: 10 } };
  const whole = await genai.models.generateContent(params);
  const chunks: GenerateContentResponse[] = [];
  for await (const c of await genai.models.generateContentStream(params)) chunks.push(c);
  for (let i = 0; i < 3; i++) {
    assert.equal(chunks.map((c) => textOf(c, i)).join(''), textOf(whole, i), `candidate ${i}`);
    const finishes = chunks.map((c) => c.candidates!.find((x) => (x.index ?? 0) === i)?.finishReason).filter((f) => f !== undefined);
    assert.deepEqual(finishes, [whole.candidates!.find((x) => (x.index ?? 0) === i)!.finishReason]);
  }
  for (const c of chunks) assert.equal(c.candidates!.length, 1);
  assert.deepEqual(chunks[chunks.length - 1]!.usageMetadata, whole.usageMetadata);
  assert.ok(chunks.slice(0, -1).every((c) => c.usageMetadata === undefined));
});

test('openai stream: each delta carries the logprobs of its tokens; the whole equals the non-streamed logprobs', async () => {
  const params = { model: 'gemma3-tiny', messages: [{ role: 'user' as const, content: 'Go.' }], seed: 5, temperature: 1.2, max_tokens: 20, logprobs: true, top_logprobs: 2 };
  const whole = await openai.chat.completions.create(params);
  const s = await openai.chat.completions.create({ ...params, stream: true });
  const entries: OpenAI.ChatCompletionTokenLogprob[] = [];
  let text = '';
  let deltas = 0;
  for await (const chunk of s) {
    for (const c of chunk.choices) {
      if (c.delta.content) {
        deltas++;
        assert.ok((c.logprobs?.content?.length ?? 0) >= 1, 'a content delta carries its tokens\' logprobs');
      }
      text += c.delta.content ?? '';
      entries.push(...c.logprobs?.content ?? []);
    }
  }
  assert.ok(deltas > 3);
  assert.equal(text, whole.choices[0]!.message.content);
  assert.deepEqual(entries, whole.choices[0]!.logprobs!.content);
  assert.equal(entries[0]!.top_logprobs.length, 2);
});

test('openai stream with n: chunks per choice index, each choice equal to the non-streamed one; usage of all', async () => {
  const params = { model: 'gemma3-tiny', messages: [{ role: 'user' as const, content: 'Say something.' }], n: 3, seed: 4, temperature: 1.3, max_tokens: 8 };
  const whole = await openai.chat.completions.create(params);
  const s = await openai.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  const text = ['', '', ''];
  const finish: (string | null)[] = [null, null, null];
  const roles: string[] = [];
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of s) {
    assert.ok(chunk.choices.length <= 1);
    for (const c of chunk.choices) {
      if (c.delta.role) roles.push(`${c.index}:${c.delta.role}`);
      text[c.index] += c.delta.content ?? '';
      if (c.finish_reason) {
        assert.equal(finish[c.index], null, 'one finish per choice');
        finish[c.index] = c.finish_reason;
      }
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.deepEqual(roles, ['0:assistant', '1:assistant', '2:assistant']);
  assert.deepEqual(text, whole.choices.map((c) => c.message.content));
  assert.deepEqual(finish, whole.choices.map((c) => c.finish_reason));
  assert.deepEqual(usage, whole.usage);
});

test('streaming with tools: a call is one held chunk (Gemini functionCall part, OpenAI tool_calls delta)', async () => {
  const parameters = { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } }, required: ['a', 'b'] };
  const tools: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'add', parameters } }];
  const s = await openai.chat.completions.create({
    model: 'qwen3-tools', messages: [{ role: 'user', content: '2+2?' }], tools, tool_choice: 'required', n: 2, temperature: 2, seed: 5, max_tokens: 60, stream: true,
  });
  const calls: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[][] = [[], []];
  const finish: (string | null)[] = [null, null];
  for await (const chunk of s) {
    for (const c of chunk.choices) {
      calls[c.index]!.push(...c.delta.tool_calls ?? []);
      finish[c.index] = c.finish_reason ?? finish[c.index]!;
    }
  }
  assert.deepEqual(finish, ['tool_calls', 'tool_calls']);
  for (const cs of calls) {
    assert.equal(cs.length, 1);
    assert.equal(cs[0]!.function!.name, 'add');
    const args = JSON.parse(cs[0]!.function!.arguments!) as Record<string, unknown>;
    assert.ok(Number.isInteger(args.a) && Number.isInteger(args.b));
  }
  const chunks: GenerateContentResponse[] = [];
  for await (const c of await genai.models.generateContentStream({
    model: 'qwen3-tools', contents: '2+2?',
    config: { tools: [{ functionDeclarations: [{ name: 'add', parametersJsonSchema: parameters }] }], toolConfig: { functionCallingConfig: { mode: 'ANY' as never } }, temperature: 2, seed: 5, maxOutputTokens: 60, candidateCount: 2 },
  })) chunks.push(c);
  assert.equal(chunks.length, 2);
  for (const c of chunks) assert.equal(c.candidates![0]!.content!.parts!.find((p) => p.functionCall)!.functionCall!.name, 'add');
  assert.deepEqual(chunks.map((c) => c.candidates![0]!.index ?? 0).sort(), [0, 1]);
});

test('a client that leaves a multi-candidate stream frees every slot at once', async () => {
  const served = await api.catalog.served('google', 'gemma3-tiny');
  for (const [url, body] of [
    [`${PREFIX}/gemma3-tiny:streamGenerateContent?alt=sse`, { ...userText('Go on'), generationConfig: { candidateCount: 3, temperature: 0, maxOutputTokens: 400 } }],
    ['/v1/chat/completions', { model: 'gemma3-tiny', messages: [{ role: 'user', content: 'Go on' }], n: 3, max_tokens: 400, stream: true }],
  ] as const) {
    const before = served.engine.stats().passes;
    const res = await api.post(url, body);
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    assert.ok(!(await reader.read()).done);
    await reader.cancel();
    await served.engine.idle();
    assert.deepEqual({ running: served.engine.stats().running, queued: served.engine.stats().queued }, { running: 0, queued: 0 });
    // 400 tokens each would take 400 passes; leaving stopped all three candidates after a few.
    const passes = served.engine.stats().passes - before;
    assert.ok(passes < 50, `passes: ${passes}`);
  }
});
