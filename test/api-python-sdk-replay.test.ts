// The exact HTTP requests the Python `vertexai` SDK sends with `vertexai.init(api_endpoint=...,
// api_transport="rest")` for the article's workflow, replayed against tunekit (issue 12). Written down
// from google-cloud-aiplatform's published source: `vertexai.tuning.sft` (GA) builds
// google.cloud.aiplatform_v1 messages; the generated REST transport (gapic-generator-python) sends
//   - the path of the method's google.api.http rule under /v1,
//   - the query parameter `$alt=json;enum-encoding=int` (URL-encoded by `requests`),
//   - the body as `json_format.MessageToJson(request_body, use_integers_for_enums=True)`: lowerCamelCase
//     names, int64 as strings, enums as NUMBERS, fields at their default value left out,
//   - `Authorization: Bearer TOKEN`, `x-goog-api-client`, `Content-Type: application/json`,
// and parses every response with `json_format.Parse(..., ignore_unknown_fields=True)` into the v1
// message. The steps: `sft.train(source_model, train_dataset, validation_dataset, epochs=2,
// adapter_size=4, learning_rate_multiplier=5.0, tuned_model_display_name)` (create),
// `SupervisedTuningJob.refresh()` (get), `SupervisedTuningJob.list()` (list), `.cancel()` (cancel),
// `GenerativeModel(tuned_model_endpoint_name).generate_content(prompt, generation_config,
// safety_settings)` (generateContent on the endpoint).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { checkMessage } from '../src/api/proto-json.js';
import { tuningPlatform, waitForJob } from './helpers/tuning.js';

const t = await tuningPlatform();
after(() => t.close());
const ALT = '%24alt=json%3Benum-encoding%3Dint';
const PARENT = 'projects/p/locations/us-central1';

/** One request as the SDK's REST transport sends it. */
async function sdk(method: 'GET' | 'POST', path: string, body?: string): Promise<{ status: number; json: Record<string, any> }> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${t.keys.trainer}`,
    'x-goog-api-client': 'gl-python/3.11.9 grpc/1.66.0 gax/2.19.2 rest/2.32.0 gapic/1.71.1',
    'content-type': 'application/json',
    'user-agent': 'python-requests/2.32.3',
  };
  const res = await t.app.request(`/v1/${path}${path.includes('?') ? '&' : '?'}${ALT}`, { method, headers, ...(body === undefined ? {} : { body }) });
  return { status: res.status, json: await res.json() as Record<string, any> };
}

// sft.train(...): CreateTuningJob, the TuningJob as MessageToJson writes it (adapter_size=4 is
// ADAPTER_SIZE_FOUR = 2; epoch_count is int64, so a string).
const CREATE_BODY = `{
  "baseModel": "gemma3-tiny",
  "supervisedTuningSpec": {
    "trainingDatasetUri": "gs://us-data/train.jsonl",
    "validationDatasetUri": "gs://us-data/validation.jsonl",
    "hyperParameters": {
      "epochCount": "2",
      "learningRateMultiplier": 5.0,
      "adapterSize": 2
    }
  },
  "tunedModelDisplayName": "tone"
}`;

let job: Record<string, any>;

test('sft.train, refresh and list: requests with integer enums; responses are v1 messages with integer enums', async () => {
  const created = await sdk('POST', `${PARENT}/tuningJobs`, CREATE_BODY);
  assert.equal(created.status, 200, JSON.stringify(created.json));
  checkMessage(created.json, 'TuningJob', 'v1'); // json_format.Parse into aiplatform_v1.TuningJob
  assert.equal(created.json.state, 2); // JOB_STATE_PENDING: the SDK's has_ended is False
  assert.equal(created.json.supervisedTuningSpec.hyperParameters.adapterSize, 2);
  assert.equal(created.json.supervisedTuningSpec.hyperParameters.epochCount, '2');

  // refresh(): GET the job until it ends (has_ended: SUCCEEDED 4, FAILED 5, CANCELLED 7).
  job = await waitForJob(async () => {
    const r = await sdk('GET', created.json.name);
    assert.equal(r.status, 200);
    checkMessage(r.json, 'TuningJob', 'v1');
    const names = ['JOB_STATE_UNSPECIFIED', 'JOB_STATE_QUEUED', 'JOB_STATE_PENDING', 'JOB_STATE_RUNNING', 'JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLING', 'JOB_STATE_CANCELLED'];
    return { ...r.json, state: names[r.json.state as number] };
  });
  assert.equal(job.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(job.error));
  assert.match(job.tunedModel.model, /^projects\/p\/locations\/us-central1\/models\/\d+@1$/); // tuned_model_name
  assert.match(job.tunedModel.endpoint, /^projects\/p\/locations\/us-central1\/endpoints\/\d+$/); // tuned_model_endpoint_name

  // SupervisedTuningJob.list(): ListTuningJobs with no filter, then pages by nextPageToken.
  const list = await sdk('GET', `${PARENT}/tuningJobs`);
  assert.equal(list.status, 200);
  checkMessage(list.json, 'ListTuningJobsResponse', 'v1');
  assert.deepEqual(list.json.tuningJobs.map((j: any) => j.state), [4]);
});

test('GenerativeModel(endpoint).generate_content with generation_config and safety_settings (integer enums)', async () => {
  // body "*" minus the path's `model`; HarmCategory.HARM_CATEGORY_DANGEROUS_CONTENT = 2,
  // HarmBlockThreshold.BLOCK_NONE = 4, OFF = 5 (thresholds that block need a safety classifier).
  const body = `{
    "contents": [{"role": "user", "parts": [{"text": "the sky is red today"}]}],
    "generationConfig": {"temperature": 0.0, "topP": 0.95, "maxOutputTokens": 8},
    "safetySettings": [{"category": 2, "threshold": 4}, {"category": 1, "threshold": 5}]
  }`;
  const r = await sdk('POST', `${job.tunedModel.endpoint}:generateContent`, body);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.candidates[0].content.role, 'model');
  assert.ok(typeof r.json.candidates[0].content.parts[0].text === 'string');
  assert.ok(r.json.usageMetadata.promptTokenCount > 0);
  // An enum value that does not exist is refused naming the field, as protobuf's parser refuses it.
  const bad = await sdk('POST', `${job.tunedModel.endpoint}:generateContent`, body.replace('"category": 2', '"category": 99'));
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /safety_settings\[0\]\.category/);
});

test('SupervisedTuningJob.cancel(): POST :cancel with the body "{}"; the response is google.protobuf.Empty', async () => {
  const created = await sdk('POST', `${PARENT}/tuningJobs`, CREATE_BODY);
  assert.equal(created.status, 200, JSON.stringify(created.json));
  const cancelled = await sdk('POST', `${created.json.name}:cancel`, '{}');
  assert.equal(cancelled.status, 200);
  assert.deepEqual(cancelled.json, {});
  const after = await sdk('GET', created.json.name);
  assert.ok([6, 7].includes(after.json.state), String(after.json.state)); // CANCELLING or CANCELLED
  // Errors are google.rpc.Status with details the SDK's exceptions read (reason, domain).
  const missing = await sdk('GET', `${PARENT}/tuningJobs/1`);
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error.details[0].domain, 'aiplatform.googleapis.com');
});
