// Generation through the in-process app equals the library called directly: same prompt ids (rendered
// by data/render.ts), same seed, same text; SSE chunks concatenate to the non-streamed text; token
// counting agrees with usageMetadata.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PREFIX, tinyApi, userText } from './helpers/api-app.js';
import { renderPrompt } from '../src/data/render.js';
import { generate } from '../src/generate/generate.js';
import { loadModel } from '../src/models/model.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createApp } from '../src/api/app.js';
import { ModelCatalog, registerPublisherModel } from '../src/api/catalog.js';
import { scratchCopy, tinyModelDir } from './helpers/tiny-models.js';

const api = await tinyApi();
const gemma = await loadModel(tinyModelDir('gemma3'));
const qwen = await loadModel(tinyModelDir('qwen3'));

interface GenResponse {
  candidates: { content: { role: string; parts?: { text: string }[] }; finishReason?: string }[];
  usageMetadata?: { promptTokenCount: number; candidatesTokenCount: number; totalTokenCount: number };
  modelVersion: string;
  responseId: string;
  createTime: string;
}

const textOf = (r: GenResponse): string => (r.candidates[0]!.content.parts ?? []).map((p) => p.text).join('');

async function generateJson(model: string, body: unknown, version = 'v1'): Promise<GenResponse> {
  const res = await api.post(`${PREFIX.replace('/v1/', `/${version}/`)}/${model}:generateContent`, body);
  assert.equal(res.status, 200, await res.clone().text());
  return await res.json() as GenResponse;
}

/** The events of an SSE body, parsed as the SDK does (split on blank lines, strip "data:"). */
async function sseEvents(res: Response): Promise<GenResponse[]> {
  const text = await res.text();
  assert.ok(text.endsWith('\r\n\r\n'));
  return text.split('\r\n\r\n').filter((e) => e !== '').map((e) => {
    assert.ok(e.startsWith('data: '), e);
    return JSON.parse(e.slice('data: '.length)) as GenResponse;
  });
}

const request = {
  systemInstruction: { parts: [{ text: 'Answer briefly.' }] },
  contents: [
    { role: 'user', parts: [{ text: 'Name a colour.' }] },
    { role: 'model', parts: [{ text: 'Blue.' }] },
    { role: 'user', parts: [{ text: 'Another one?' }] },
  ],
  generationConfig: { temperature: 0.9, topK: 40, topP: 0.95, seed: 7, maxOutputTokens: 16 },
};
const dialogue = {
  systemInstruction: 'Answer briefly.',
  turns: [{ role: 'user' as const, text: 'Name a colour.' }, { role: 'model' as const, text: 'Blue.' }, { role: 'user' as const, text: 'Another one?' }],
};

test('generateContent equals generate() with the same prompt and seed', async () => {
  const ids = renderPrompt(dialogue, gemma.tokenizer).tokens;
  const direct = await generate(gemma, ids, { temperature: 0.9, topK: 40, topP: 0.95, seed: 7, maxTokens: 16 });
  for (const version of ['v1', 'v1beta1']) {
    const r = await generateJson('gemma3-tiny', request, version);
    assert.equal(textOf(r), direct.text);
    assert.equal(r.candidates[0]!.content.role, 'model');
    assert.equal(r.candidates[0]!.finishReason, direct.finishReason === 'length' ? 'MAX_TOKENS' : 'STOP');
    assert.deepEqual(r.usageMetadata, {
      promptTokenCount: ids.length, candidatesTokenCount: direct.tokenIds.length, totalTokenCount: ids.length + direct.tokenIds.length,
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: ids.length }], candidatesTokensDetails: [{ modality: 'TEXT', tokenCount: direct.tokenIds.length }],
    });
    assert.equal(r.modelVersion, 'gemma3-tiny');
    assert.match(r.responseId, /^[A-Za-z0-9_-]{16}$/);
    assert.match(r.createTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
});

test('snake_case input and numbers as strings are accepted', async () => {
  const camel = await generateJson('gemma3-tiny', request);
  const snake = await generateJson('gemma3-tiny', {
    system_instruction: request.systemInstruction,
    contents: request.contents,
    generation_config: { temperature: '0.9', top_k: 40, top_p: 0.95, seed: '7', max_output_tokens: '16' },
  });
  assert.equal(textOf(snake), textOf(camel));
});

test('greedy generation stops at maxOutputTokens with MAX_TOKENS; a stop sequence ends it with STOP', async () => {
  const greedy = await generateJson('gemma3-tiny', { ...userText('Hello there'), generationConfig: { temperature: 0, maxOutputTokens: 12 } });
  const ids = renderPrompt({ turns: [{ role: 'user', text: 'Hello there' }] }, gemma.tokenizer).tokens;
  const direct = await generate(gemma, ids, { temperature: 0, maxTokens: 12 });
  assert.equal(textOf(greedy), direct.text);
  assert.equal(greedy.candidates[0]!.finishReason, direct.finishReason === 'length' ? 'MAX_TOKENS' : 'STOP');
  const text = direct.text;
  const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 2);
  assert.ok(stop.length === 2, `greedy text too short: ${JSON.stringify(text)}`);
  const stopped = await generateJson('gemma3-tiny', { ...userText('Hello there'), generationConfig: { temperature: 0, maxOutputTokens: 12, stopSequences: [stop] } });
  assert.equal(textOf(stopped), text.slice(0, text.indexOf(stop)));
  assert.equal(stopped.candidates[0]!.finishReason, 'STOP');
});

test('streamGenerateContent?alt=sse: chunks carry only new text, concatenate to the whole; usage on the last', async () => {
  const whole = await generateJson('qwen3-tiny', request);
  const res = await api.post(`${PREFIX}/qwen3-tiny:streamGenerateContent?alt=sse`, request);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const events = await sseEvents(res);
  assert.ok(events.length > 1, `expected several chunks, got ${events.length}`);
  assert.equal(events.map(textOf).join(''), textOf(whole));
  const last = events[events.length - 1]!;
  assert.deepEqual(last.usageMetadata, whole.usageMetadata);
  assert.equal(last.candidates[0]!.finishReason, whole.candidates[0]!.finishReason);
  for (const e of events.slice(0, -1)) {
    assert.equal(e.usageMetadata, undefined);
    assert.equal(e.candidates[0]!.finishReason, undefined);
    assert.ok(textOf(e).length > 0);
  }
  assert.equal(new Set(events.map((e) => e.responseId)).size, 1);
});

test('streamGenerateContent errors before the first token are ordinary statuses', async () => {
  const res = await api.post(`${PREFIX}/qwen3-tiny:streamGenerateContent?alt=sse`, { ...userText('hi'), generationConfig: { candidateCount: 9 } });
  assert.equal(res.status, 400);
  assert.equal((await res.json() as { error: { status: string } }).error.status, 'INVALID_ARGUMENT');
});

test('countTokens equals promptTokenCount; computeTokens gives each content\'s ids and bytes', async () => {
  for (const [name, model] of [['gemma3-tiny', gemma], ['qwen3-tiny', qwen]] as const) {
    const res = await api.post(`${PREFIX}/${name}:countTokens`, request);
    const { totalTokens } = await res.json() as { totalTokens: number };
    assert.equal(totalTokens, renderPrompt(dialogue, model.tokenizer).tokens.length);

    const contents = [{ role: 'user', parts: [{ text: 'Héllo, wörld — 123' }] }, { role: 'model', parts: [{ text: ' spaced  out' }] }];
    const ct = await (await api.post(`${PREFIX}/${name}:computeTokens`, { contents })).json() as {
      tokensInfo: { tokenIds: string[]; tokens: string[]; role: string }[];
    };
    assert.equal(ct.tokensInfo.length, 2);
    ct.tokensInfo.forEach((info, i) => {
      const text = contents[i]!.parts[0]!.text;
      assert.deepEqual(info.tokenIds, model.tokenizer.encode(text, { addSpecialTokens: false }).map(String));
      assert.equal(info.role, contents[i]!.role);
      const bytes = Buffer.concat(info.tokens.map((t) => Buffer.from(t, 'base64')));
      assert.equal(bytes.toString('utf8'), text, name);
    });
  }
});

test('thinkingBudget 0 renders the Qwen3 prompt with thinking off', async () => {
  const body = { ...userText('Think about it'), generationConfig: { temperature: 0, maxOutputTokens: 4, thinkingConfig: { thinkingBudget: 0 } } };
  const r = await generateJson('qwen3-tiny', body);
  const off = renderPrompt({ turns: [{ role: 'user', text: 'Think about it' }] }, qwen.tokenizer, { enableThinking: false });
  const on = renderPrompt({ turns: [{ role: 'user', text: 'Think about it' }] }, qwen.tokenizer);
  assert.ok(off.text.endsWith('<think>\n\n</think>\n\n'), off.text);
  assert.notEqual(off.tokens.length, on.tokens.length);
  assert.equal(r.usageMetadata!.promptTokenCount, off.tokens.length);
  const direct = await generate(qwen, off.tokens, { temperature: 0, maxTokens: 4 });
  assert.equal(textOf(r), direct.text);
});

test('concurrent requests on one model each get their solo result', async () => {
  const bodies = [1, 2, 3].map((seed) => ({ ...request, generationConfig: { ...request.generationConfig, seed } }));
  const solo: string[] = [];
  for (const b of bodies) solo.push(textOf(await generateJson('gemma3-tiny', b)));
  const streamed = api.post(`${PREFIX}/gemma3-tiny:streamGenerateContent?alt=sse`, bodies[0]).then(sseEvents);
  const together = await Promise.all(bodies.map((b) => generateJson('gemma3-tiny', b)));
  assert.deepEqual(together.map(textOf), solo);
  assert.equal((await streamed).map(textOf).join(''), solo[0]);
});

test('publisher model get', async () => {
  const res = await api.request(`${PREFIX}/gemma3-tiny`);
  assert.equal(res.status, 200);
  const m = await res.json() as { name: string };
  assert.equal(m.name, 'publishers/google/models/gemma3-tiny');
  assert.equal((await api.request('/v1beta1/publishers/google/models/qwen3-tiny')).status, 200);
  const list = await (await api.request('/v1beta1/publishers/google/models')).json() as { publisherModels: { name: string }[] };
  assert.deepEqual(list.publisherModels.map((x) => x.name).filter((n) => !n.includes('thinking')),
    ['publishers/google/models/gemma3-tiny', 'publishers/google/models/qwen3-tiny']);
  assert.deepEqual(await (await api.request('/v1/publishers/meta/models')).json(), {});
});

// A Qwen3 whose template opens the thinking block itself (as Qwen3 "Thinking" releases do), so the
// tiny random model thinks until the budget closes the block.
function thinkingQwenDir(): string {
  const dir = scratchCopy(tinyModelDir('qwen3'));
  const file = path.join(dir, 'tokenizer_config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8')) as { chat_template: string };
  const from = "{{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- endif %}";
  assert.ok(config.chat_template.includes(from));
  config.chat_template = config.chat_template.replace(from, "{{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- else %}\n        {{- '<think>\\n' }}\n    {%- endif %}");
  fs.writeFileSync(file, JSON.stringify(config));
  return dir;
}

test('thinkingBudget caps thinking; includeThoughts returns thought parts; usage counts thoughts apart', async () => {
  const dir = thinkingQwenDir();
  await registerPublisherModel(api.store, dir, { name: 'qwen3-thinking' });
  const model = await loadModel(dir);
  const ids = renderPrompt({ turns: [{ role: 'user', text: 'Hello there' }] }, model.tokenizer).tokens;
  assert.ok(renderPrompt({ turns: [{ role: 'user', text: 'Hello there' }] }, model.tokenizer).text.endsWith('<think>\n'));
  const closing = model.tokenizer.encode('</think>\n\n', { addSpecialTokens: false }).length;
  const generationConfig = { temperature: 0, maxOutputTokens: 24, thinkingConfig: { thinkingBudget: 5, includeThoughts: true } };
  const direct = await generate(model, ids, { temperature: 0, maxTokens: 24, thinkingBudget: 5 });
  assert.ok(direct.thoughtText.length > 0 && direct.text.length > 0);

  const r = await generateJson('qwen3-thinking', { ...userText('Hello there'), generationConfig });
  const parts = r.candidates[0]!.content.parts as { text: string; thought?: boolean }[];
  assert.deepEqual(parts, [{ text: direct.thoughtText, thought: true }, { text: direct.text }]);
  const u = r.usageMetadata as Record<string, number>;
  assert.ok(u.thoughtsTokenCount! <= 5 + closing);
  assert.equal(u.thoughtsTokenCount, direct.thoughtTokens);
  assert.equal(u.candidatesTokenCount, direct.tokenIds.length - direct.thoughtTokens);
  assert.equal(u.totalTokenCount, ids.length + direct.tokenIds.length);

  const hidden = await generateJson('qwen3-thinking', { ...userText('Hello there'), generationConfig: { ...generationConfig, thinkingConfig: { thinkingBudget: 5 } } });
  assert.deepEqual(hidden.candidates[0]!.content.parts, [{ text: direct.text }]);
  assert.equal(hidden.usageMetadata!.totalTokenCount, u.totalTokenCount);

  const events = await sseEvents(await api.post(`${PREFIX}/qwen3-thinking:streamGenerateContent?alt=sse`, { ...userText('Hello there'), generationConfig }));
  const streamedParts = events.flatMap((e) => (e.candidates[0]!.content.parts ?? []) as { text: string; thought?: boolean }[]);
  assert.equal(streamedParts.filter((p) => p.thought).map((p) => p.text).join(''), direct.thoughtText);
  assert.equal(streamedParts.filter((p) => !p.thought).map((p) => p.text).join(''), direct.text);
  assert.deepEqual(events[events.length - 1]!.usageMetadata, r.usageMetadata);

  const off = await generateJson('qwen3-thinking', { ...userText('Hello there'), generationConfig: { ...generationConfig, thinkingConfig: { thinkingBudget: 0, includeThoughts: true } } });
  assert.equal((off.usageMetadata as Record<string, number>).thoughtsTokenCount, undefined);
  assert.ok((off.candidates[0]!.content.parts ?? []).every((p) => !(p as { thought?: boolean }).thought));
});

test('a client that drops an SSE stream frees its slot at once (generation stops)', async () => {
  const served = await api.catalog.served('google', 'gemma3-tiny');
  const long = { ...userText('Go on'), generationConfig: { temperature: 0, maxOutputTokens: 400 } };
  const res = await api.post(`${PREFIX}/gemma3-tiny:streamGenerateContent?alt=sse`, long);
  const reader = res.body!.getReader();
  const first = await reader.read();
  assert.ok(!first.done && new TextDecoder().decode(first.value).startsWith('data: '));
  const t0 = performance.now();
  await reader.cancel();
  await served.engine.idle();
  const freedMs = performance.now() - t0;
  const t1 = performance.now();
  const whole = await generateJson('gemma3-tiny', long);
  const wholeMs = performance.now() - t1;
  assert.ok(whole.usageMetadata!.candidatesTokenCount > 50, 'the long generation is long');
  assert.ok(freedMs * 5 < wholeMs, `freed after ${freedMs.toFixed(1)} ms; the whole generation takes ${wholeMs.toFixed(1)} ms`);
});

test('an error mid-stream ends the SSE body with a bare {"error": ...} event; the model is freed', async () => {
  let calls = 0;
  const failing = new ModelCatalog(api.store, async (dir) => {
    const m = await loadModel(dir);
    const decoder = m.transformer.decoder;
    const forward = decoder.forward.bind(decoder);
    decoder.forward = (...args: Parameters<typeof forward>) => {
      if (++calls === 4) throw new Error('simulated kernel failure');
      return forward(...args);
    };
    return m;
  });
  const logged: unknown[] = [];
  const app = createApp({ catalog: failing, log: (e) => logged.push(e) });
  const res = await app.request(`${PREFIX}/gemma3-tiny:streamGenerateContent?alt=sse`, {
    method: 'POST', body: JSON.stringify({ ...userText('hi'), generationConfig: { temperature: 0, maxOutputTokens: 20 } }),
  });
  assert.equal(res.status, 200);
  const events = (await res.text()).split('\r\n\r\n').filter((e) => e !== '').map((e) => JSON.parse(e.slice('data: '.length)) as Record<string, unknown>);
  assert.deepEqual(events[events.length - 1], { error: { code: 500, message: 'Internal error encountered.', status: 'INTERNAL', details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'INTERNAL', domain: 'aiplatform.googleapis.com' }] } });
  assert.ok(events.length >= 2);
  assert.match(String(logged[0]), /simulated kernel failure/);
  const served = await failing.served('google', 'gemma3-tiny');
  await served.engine.idle();
  assert.deepEqual({ running: served.engine.stats().running, queued: served.engine.stats().queued }, { running: 0, queued: 0 });
});

test('the server stays responsive while a generation runs: other requests are answered between tokens', async () => {
  const long = { ...userText('Go on'), generationConfig: { temperature: 0, maxOutputTokens: 300 } };
  let finished = false;
  const running = generateJson('gemma3-tiny', long).then((r) => { finished = true; return r; });
  await new Promise((r) => setTimeout(r, 20));
  const count = await api.post(`${PREFIX}/gemma3-tiny:countTokens`, userText('quick'));
  assert.equal(count.status, 200);
  assert.equal(finished, false, 'countTokens was answered before the generation finished');
  assert.ok((await running).usageMetadata!.candidatesTokenCount > 50);
});
