// Every field of a generateContent / countTokens / computeTokens request is honoured or refused with a
// 400 naming it: unknown fields at any depth (strict proto3 JSON), fields tunekit does not carry out
// (FIELD_NOT_SUPPORTED), and safety thresholds that could block, which need a classifier (400
// FAILED_PRECONDITION) — BLOCK_NONE and OFF pass.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PREFIX, tinyApi, userText } from './helpers/api-app.js';

const api = await tinyApi();
const GEN = `${PREFIX}/gemma3-tiny:generateContent`;

async function refused(url: string, body: unknown, status: string, field: string, message: RegExp): Promise<void> {
  const r = await api.post(url, body);
  const json = await r.json() as { error: { status: string; message: string; details?: { '@type': string; fieldViolations?: { field: string }[] }[] } };
  assert.equal(r.status, 400, JSON.stringify(json));
  assert.equal(json.error.status, status);
  assert.match(json.error.message, message);
  const bad = json.error.details?.find((d) => d['@type'] === 'type.googleapis.com/google.rpc.BadRequest');
  assert.equal(bad?.fieldViolations?.[0]?.field, field, JSON.stringify(json));
}

test('unknown fields, top-level and nested, are 400 naming their path', async () => {
  await refused(GEN, { ...userText('hi'), temprature: 1 }, 'INVALID_ARGUMENT', 'temprature', /Unknown name "temprature"/);
  await refused(GEN, { ...userText('hi'), generationConfig: { temprature: 1 } }, 'INVALID_ARGUMENT', 'generation_config.temprature', /Unknown name "temprature" at 'generation_config'/);
  await refused(GEN, { contents: [{ role: 'user', parts: [{ text: 'hi', colour: 'red' }] }] }, 'INVALID_ARGUMENT', 'contents[0].parts[0].colour', /Unknown name "colour"/);
  await refused(GEN, { ...userText('hi'), generationConfig: { responseMimeType: 'application/json', responseSchema: { type: 'OBJECT', propertiez: {} } } }, 'INVALID_ARGUMENT', 'generation_config.response_schema.propertiez', /Unknown name/);
  await refused(`${PREFIX}/gemma3-tiny:countTokens`, { ...userText('hi'), extra: true }, 'INVALID_ARGUMENT', 'extra', /Unknown name "extra"/);
  await refused(`${PREFIX}/gemma3-tiny:computeTokens`, { ...userText('hi'), generationConfig: {} }, 'INVALID_ARGUMENT', 'generation_config', /Unknown name "generationConfig"/);
});

test('fields tunekit does not carry out are 400 FIELD_NOT_SUPPORTED by path', async () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ cachedContent: 'projects/p/locations/us-central1/cachedContents/1' }, 'cached_content', /context caching/],
    [{ labels: { team: 'a' } }, 'labels', /labels/],
    [{ tools: [{ googleSearch: {} }] }, 'tools[0].google_search', /Google services/],
    [{ generationConfig: { responseModalities: ['IMAGE'] } }, 'generation_config.response_modalities', /text only/],
    [{ generationConfig: { speechConfig: { languageCode: 'en' } } }, 'generation_config.speech_config', /text only/],
    [{ generationConfig: { routingConfig: { autoMode: {} } } }, 'generation_config.routing_config', /routing/],
  ];
  for (const [extra, field, why] of cases) {
    await refused(GEN, { ...userText('hi'), ...extra }, 'INVALID_ARGUMENT', field, new RegExp(`^'${field.replace(/[.[\]]/g, '\\$&')}' is not supported by tunekit: .*${why.source}`));
  }
  // Defaults count as absent (proto3): an empty tools list, labels {}, responseModalities ["TEXT"].
  const ok = await api.post(GEN, { ...userText('hi'), tools: [], labels: {}, generationConfig: { maxOutputTokens: 2, responseModalities: ['TEXT'] } });
  assert.equal(ok.status, 200, await ok.text());
});

test('safetySettings: thresholds that could block need a classifier (FAILED_PRECONDITION); BLOCK_NONE and OFF pass', async () => {
  for (const threshold of ['BLOCK_LOW_AND_ABOVE', 'BLOCK_MEDIUM_AND_ABOVE', 'BLOCK_ONLY_HIGH', 'HARM_BLOCK_THRESHOLD_UNSPECIFIED']) {
    await refused(GEN, { ...userText('hi'), safetySettings: [{ category: 'HARM_CATEGORY_HATE_SPEECH', threshold: 'BLOCK_NONE' }, { category: 'HARM_CATEGORY_HARASSMENT', threshold }] },
      'FAILED_PRECONDITION', 'safety_settings[1].threshold', /needs a safety classifier.*--safety-config.*send threshold BLOCK_NONE or OFF/);
  }
  const ok = await api.post(GEN, { ...userText('hi'), safetySettings: [{ category: 'HARM_CATEGORY_HATE_SPEECH', threshold: 'BLOCK_NONE' }, { category: 2, threshold: 'OFF' }], generationConfig: { maxOutputTokens: 2 } });
  assert.equal(ok.status, 200, await ok.text());
});
