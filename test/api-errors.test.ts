// Every class of bad request gets an exact google.rpc.Status body with the right code, and the app
// keeps serving afterwards.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PREFIX, tinyApi, userText } from './helpers/api-app.js';
import { toStatus, HttpError } from '../src/api/errors.js';
import { NotFoundError, ResourceExhaustedError } from '../src/errors.js';

const api = await tinyApi({ bodyLimit: 4096 });
const GEN = `${PREFIX}/gemma3-tiny:generateContent`;

async function expectStatus(res: Response, code: number, status: string, message: string): Promise<void> {
  assert.equal(res.status, code);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const { error: { details, ...error } } = await res.json() as { error: { details: { '@type': string; reason?: string; domain?: string }[] } };
  assert.deepEqual(error, { code, message, status });
  // google.rpc.Status.details: ErrorInfo first, always (tested in full in api-proto-json).
  assert.equal(details[0]?.['@type'], 'type.googleapis.com/google.rpc.ErrorInfo');
  assert.equal(details[0]?.domain, 'aiplatform.googleapis.com');
}

test('malformed JSON is 400 INVALID_ARGUMENT', async () => {
  const res = await api.post(GEN, '{"contents": [');
  assert.equal(res.status, 400);
  const body = await res.json() as { error: { message: string; status: string; code: number } };
  assert.equal(body.error.status, 'INVALID_ARGUMENT');
  assert.equal(body.error.code, 400);
  assert.match(body.error.message, /^Invalid JSON payload received\. /);
  await expectStatus(await api.post(GEN, '[1, 2]'), 400, 'INVALID_ARGUMENT', 'Invalid JSON payload received. Expected an object at the top level.');
});

test('wrong types name the field (snake_case path, proto type, value)', async () => {
  await expectStatus(await api.post(GEN, { ...userText('hi'), generationConfig: { temperature: 'hot' } }), 400, 'INVALID_ARGUMENT',
    'Invalid value at \'generation_config.temperature\' (TYPE_FLOAT), "hot"');
  await expectStatus(await api.post(GEN, { ...userText('hi'), generation_config: { max_output_tokens: 1.5 } }), 400, 'INVALID_ARGUMENT',
    'Invalid value at \'generation_config.max_output_tokens\' (TYPE_INT32), 1.5');
  await expectStatus(await api.post(GEN, { contents: 'hi' }), 400, 'INVALID_ARGUMENT',
    'Invalid value at \'contents\' (repeated type.googleapis.com/google.cloud.aiplatform.v1.Content), "hi"');
  await expectStatus(await api.post(GEN, { contents: [{ role: 'user', parts: [{ text: 7 }] }] }), 400, 'INVALID_ARGUMENT',
    'Invalid value at \'contents[0].parts[0].text\' (TYPE_STRING), 7');
  await expectStatus(await api.post(GEN, { contents: [{ role: 'system', parts: [{ text: 'x' }] }] }), 400, 'INVALID_ARGUMENT',
    'Invalid value at \'contents[0].role\', "system": use "user" or "model".');
  await expectStatus(await api.post(GEN, { contents: [{ role: 'user', parts: [{ inlineData: { mimeType: 'image/png', data: '' } }] }] }), 400, 'INVALID_ARGUMENT',
    'Invalid value at \'contents[0].parts[0]\': only text parts are supported, got "inlineData".');
  await expectStatus(await api.post(GEN, { contents: [] }), 400, 'INVALID_ARGUMENT',
    'Unable to submit request because it must have at least one contents field with a text part.');
});

test('unknown enum names are 400 naming the field and the enum', async () => {
  await expectStatus(await api.post(GEN, { ...userText('hi'), safetySettings: [{ category: 'HARM_CATEGORY_RUDENESS', threshold: 'BLOCK_NONE' }] }), 400, 'INVALID_ARGUMENT',
    'Invalid value at \'safety_settings[0].category\' (type.googleapis.com/google.cloud.aiplatform.v1.HarmCategory), "HARM_CATEGORY_RUDENESS"');
  await expectStatus(await api.post(GEN, { ...userText('hi'), safety_settings: [{ category: 'HARM_CATEGORY_HATE_SPEECH', threshold: 'BLOCK_SOME' }] }), 400, 'INVALID_ARGUMENT',
    'Invalid value at \'safety_settings[0].threshold\' (type.googleapis.com/google.cloud.aiplatform.v1.SafetySetting.HarmBlockThreshold), "BLOCK_SOME"');
});

test('generation config limits: one candidate, five stop sequences, ranges, unsupported options', async () => {
  await expectStatus(await api.post(GEN, { ...userText('hi'), generationConfig: { candidateCount: 9 } }), 400, 'INVALID_ARGUMENT',
    'Invalid value at \'generation_config.candidate_count\', 9: must be in [1, 8].');
  await expectStatus(await api.post(GEN, { ...userText('hi'), generationConfig: { stopSequences: ['a', 'b', 'c', 'd', 'e', 'f'] } }), 400, 'INVALID_ARGUMENT',
    'Invalid value at \'generation_config.stop_sequences\': at most 5 stop sequences are allowed, got 6.');
  await expectStatus(await api.post(GEN, { ...userText('hi'), generationConfig: { topP: 1.5 } }), 400, 'INVALID_ARGUMENT',
    'Invalid value at \'generation_config.top_p\', 1.5: must be in (0, 1].');
  await expectStatus(await api.post(GEN, { ...userText('hi'), generationConfig: { responseMimeType: 'text/html' } }), 400, 'INVALID_ARGUMENT',
    'Invalid value at \'generation_config.response_mime_type\', "text/html": supported types are text/plain, application/json, text/x.enum.');
  await expectStatus(await api.post(GEN, { ...userText('hi'), generationConfig: { thinkingConfig: { thinkingBudget: -5 } } }), 400, 'INVALID_ARGUMENT',
    'Invalid value at \'generation_config.thinking_config.thinking_budget\', -5: use -1 (dynamic), 0 (off) or a positive number of tokens.');
  await expectStatus(await api.post(GEN, { ...userText('hi'), generationConfig: { responseSchema: { type: 'OBJECT' } } }), 400, 'INVALID_ARGUMENT',
    '\'generation_config.response_schema\' requires \'generation_config.response_mime_type\' to be "application/json" or "text/x.enum".');
  await expectStatus(await api.post(GEN, { ...userText('hi'), generationConfig: { responseMimeType: 'application/json', responseSchema: { type: 'STRING', pattern: 'a+' } } }), 400, 'INVALID_ARGUMENT',
    'Invalid value at \'generation_config.response_schema.pattern\': the schema keyword "pattern" cannot be enforced by constrained decoding; it is not supported.');
});

test('an oversized body is 400 INVALID_ARGUMENT, declared or streamed', async () => {
  const big = JSON.stringify(userText('x'.repeat(5000)));
  await expectStatus(await api.post(GEN, big), 400, 'INVALID_ARGUMENT', 'Request payload size exceeds the limit: 4096 bytes.');
  // No content-length: the limit is enforced while reading.
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode(big));
      c.close();
    },
  });
  const res = await api.app.request(GEN, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
  await expectStatus(res, 400, 'INVALID_ARGUMENT', 'Request payload size exceeds the limit: 4096 bytes.');
});

test('unknown model, unknown method, unknown route, unsupported location', async () => {
  await expectStatus(await api.post(`${PREFIX}/nope:generateContent`, userText('hi')), 404, 'NOT_FOUND',
    'Publisher Model `publishers/google/models/nope` not found.');
  await expectStatus(await api.request(`${PREFIX}/nope`), 404, 'NOT_FOUND', 'Publisher Model `publishers/google/models/nope` not found.');
  await expectStatus(await api.post(`${PREFIX}/gemma3-tiny:predictLong`, {}), 404, 'NOT_FOUND',
    'The requested URL /v1/projects/p/locations/us-central1/publishers/google/models/gemma3-tiny:predictLong was not found on this server.');
  await expectStatus(await api.request('/v2/whatever'), 404, 'NOT_FOUND', 'The requested URL /v2/whatever was not found on this server.');
  await expectStatus(await api.post('/v1beta1/projects/p/locations/mars-north1/publishers/google/models/gemma3-tiny:generateContent', userText('hi')), 400, 'INVALID_ARGUMENT',
    'Location "mars-north1" is not supported: the resource is unavailable there. Supported locations: us-central1, europe-west4.');
});

test('library errors map by code; unknown errors are a logged 500 without internals', () => {
  assert.deepEqual(toStatus(new NotFoundError('gone')), { httpStatus: 404, body: { error: { code: 404, message: 'gone', status: 'NOT_FOUND', details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'NOT_FOUND', domain: 'aiplatform.googleapis.com' }] } } });
  assert.deepEqual(toStatus(new ResourceExhaustedError('quota')).httpStatus, 429);
  assert.deepEqual(toStatus(new HttpError('UNAUTHENTICATED', 'who')).body.error, { code: 401, message: 'who', status: 'UNAUTHENTICATED', details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'UNAUTHENTICATED', domain: 'aiplatform.googleapis.com' }] });
  const logged: unknown[] = [];
  assert.deepEqual(toStatus(new TypeError('x is undefined'), (e) => logged.push(e)).body,
    { error: { code: 500, message: 'Internal error encountered.', status: 'INTERNAL', details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'INTERNAL', domain: 'aiplatform.googleapis.com' }] } });
  assert.equal(logged.length, 1);
});

test('the app keeps serving after bad input', async () => {
  const res = await api.post(`${PREFIX}/gemma3-tiny:countTokens`, userText('hello'));
  assert.equal(res.status, 200);
  const body = await res.json() as { totalTokens: number };
  assert.ok(body.totalTokens > 0);
  assert.deepEqual(api.errors, []);
});
