// proto3 JSON from the published protos (issue 12): the generated descriptors (src/api/proto/, from
// tools/gen-proto-descriptors.ts) hold each API version's own field set; request bodies are checked
// against them (enum names and numbers, unknown fields refused with their path, v1beta1-only fields
// refused on /v1), responses are written in the request's version (no v1beta1-only field on /v1) and
// with enums as numbers on `$alt=json;enum-encoding=int`; TuningJob fields tunekit does not honour are
// refused naming the field; errors carry google.rpc.Status.details.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { checkMessage, encodeMessage, messageDescriptor, protoSet, wantsIntEnums } from '../src/api/proto-json.js';
import { generate } from '../tools/gen-proto-descriptors.js';
import { createBody, tuningPlatform, waitForJob } from './helpers/tuning.js';

const t = await tuningPlatform();
after(() => t.close());
const { call, keys } = t;
const JOBS_V1 = '/v1/projects/p/locations/us-central1/tuningJobs';
const JOBS_V1BETA1 = '/v1beta1/projects/p/locations/us-central1/tuningJobs';

type Detail = { '@type': string; [k: string]: any };
/** Cancels a job and waits for it to end: one the runner already started is CANCELLING until its worker exits (and holds its quota until then). */
async function cancel(name: string): Promise<void> {
  assert.equal((await call('POST', `/v1/${name}:cancel`, keys.trainer, {})).status, 200);
  assert.equal((await waitForJob(async () => (await call('GET', `/v1/${name}`, keys.trainer)).json, 30_000)).state, 'JOB_STATE_CANCELLED');
}
const detail = (json: Record<string, any>, type: string): Detail | undefined =>
  (json.error.details as Detail[]).find((d) => d['@type'] === `type.googleapis.com/google.rpc.${type}`);

test('the descriptors are the published protos: each version its own fields, enums with their numbers', () => {
  const v1 = messageDescriptor('v1', 'SupervisedHyperParameters')!;
  const beta = messageDescriptor('v1beta1', 'SupervisedHyperParameters')!;
  assert.deepEqual(Object.keys(v1.fields).sort(), ['adapterSize', 'epochCount', 'learningRateMultiplier']);
  assert.ok(beta.fields.learningRate && beta.fields.batchSize);
  assert.equal(v1.fields.epochCount!.type, 'int64');
  assert.ok(!messageDescriptor('v1', 'SupervisedTuningSpec')!.fields.tuningMode);
  assert.ok(messageDescriptor('v1beta1', 'SupervisedTuningSpec')!.fields.tuningMode);
  assert.ok(!messageDescriptor('v1', 'TuningJob')!.fields.outputUri);
  assert.ok(messageDescriptor('v1beta1', 'TuningJob')!.fields.outputUri);
  // AdapterSize numbers are not ranks: FOUR is 2, TWO (added later) is 6.
  assert.equal(protoSet('v1').enums['google.cloud.aiplatform.v1.SupervisedHyperParameters.AdapterSize']!.values.ADAPTER_SIZE_FOUR, 2);
  assert.equal(protoSet('v1').enums['google.cloud.aiplatform.v1.SupervisedHyperParameters.AdapterSize']!.values.ADAPTER_SIZE_TWO, 6);
  assert.equal(protoSet('v1').enums['google.cloud.aiplatform.v1.HarmCategory']!.values.HARM_CATEGORY_HATE_SPEECH, 1);
  assert.equal(messageDescriptor('v1', 'TuningJob')!.fields.state!.outputOnly, true);
  assert.equal(messageDescriptor('v1', 'google.rpc.QuotaFailure.Violation')!.fields.quotaMetric!.type, 'string');
  assert.match(protoSet('v1').source, /^googleapis\/googleapis@[0-9a-f]{40}$/);
});

test('the generator reads proto syntax: nesting, oneofs, maps, options, field behaviour, scopes', () => {
  const files: Record<string, string> = {
    'google/cloud/aiplatform/v1/a.proto': `syntax = "proto3"; package google.cloud.aiplatform.v1;
      import "google/api/field_behavior.proto"; import "google/protobuf/timestamp.proto";
      option java_package = "x";
      // comment { with braces }
      message TuningJob { option (google.api.resource) = { type: "a/b" pattern: "p/{p}" };
        oneof source { string base_model = 4; Inner inner = 5; }
        message Inner { enum Kind { KIND_UNSPECIFIED = 0; KIND_A = 1 [deprecated = true]; } Kind kind = 1; }
        map<string, string> labels = 9 [(google.api.field_behavior) = OPTIONAL];
        repeated google.protobuf.Timestamp times = 10 [(google.api.field_behavior) = OUTPUT_ONLY];
        /* block */ reserved 2, 3; string display_name = 11 [json_name = "shown"];
      }
      service S { rpc Get(TuningJob) returns (TuningJob) { option (google.api.http) = { get: "/v1/{name=*}" }; } }`,
  };
  const roots = ['TuningJob'];
  const set = generate((f) => files[f] ?? '', 'v1', 'test', () => Object.keys(files), roots);
  const job = set.messages['google.cloud.aiplatform.v1.TuningJob']!.fields;
  assert.deepEqual(job.baseModel, { name: 'base_model', number: 4, type: 'string', kind: 'scalar', oneof: 'source' });
  assert.equal(job.inner!.type, 'google.cloud.aiplatform.v1.TuningJob.Inner');
  assert.equal(job.labels!.mapKey, 'string');
  assert.deepEqual([job.times!.repeated, job.times!.outputOnly, job.times!.type], [true, true, 'google.protobuf.Timestamp']);
  assert.equal(job.shown!.name, 'display_name');
  assert.deepEqual(set.enums['google.cloud.aiplatform.v1.TuningJob.Inner.Kind'], { values: { KIND_UNSPECIFIED: 0, KIND_A: 1 } });
});

test('the committed descriptors equal a fresh generation from googleapis (when a checkout is at hand)', (ctx) => {
  const root = process.env.GOOGLEAPIS_DIR ?? '/work/.mirror/googleapis+googleapis/repo';
  if (!fs.existsSync(root)) return ctx.skip(`no googleapis checkout at ${root} (set GOOGLEAPIS_DIR)`);
  const out = fs.mkdtempSync('/tmp/tunekit-proto-');
  try {
    execFileSync(process.execPath, ['dist/tools/gen-proto-descriptors.js', '--googleapis', root, '--out', out]);
    for (const v of ['v1', 'v1beta1']) {
      assert.equal(fs.readFileSync(`${out}/aiplatform-${v}.json`, 'utf8'), fs.readFileSync(`src/api/proto/aiplatform-${v}.json`, 'utf8'), v);
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('checkMessage: names and numbers for enums, unknown fields by path, types, oneofs, well-known types', () => {
  const spec = checkMessage({ training_dataset_uri: 'gs://b/x', hyperParameters: { adapterSize: 2, epochCount: '3' } }, 'SupervisedTuningSpec', 'v1');
  assert.deepEqual(spec, { trainingDatasetUri: 'gs://b/x', hyperParameters: { adapterSize: 'ADAPTER_SIZE_FOUR', epochCount: '3' } });
  const refused = (f: () => unknown, message: RegExp, field: string) => {
    assert.throws(f, (e: any) => {
      assert.match(e.message, message);
      assert.equal(e.status, 'INVALID_ARGUMENT');
      assert.deepEqual(e.details.fieldViolations.map((v: any) => v.field), [field]);
      return true;
    });
  };
  refused(() => checkMessage({ foo: 1 }, 'TuningJob', 'v1'), /^Invalid JSON payload received\. Unknown name "foo": Cannot find field\.$/, 'foo');
  refused(() => checkMessage({ supervisedTuningSpec: { hyperParameters: { bogus: 1 } } }, 'TuningJob', 'v1'),
    /Unknown name "bogus" at 'supervised_tuning_spec.hyper_parameters': Cannot find field/, 'supervised_tuning_spec.hyper_parameters.bogus');
  refused(() => checkMessage({ supervisedTuningSpec: { hyperParameters: { learningRate: 0.1 } } }, 'TuningJob', 'v1'),
    /Unknown name "learningRate" .*a field of the v1beta1 API/, 'supervised_tuning_spec.hyper_parameters.learning_rate');
  refused(() => checkMessage({ supervisedTuningSpec: { hyperParameters: { adapterSize: 7 } } }, 'TuningJob', 'v1'),
    /Invalid value at 'supervised_tuning_spec.hyper_parameters.adapter_size' \(type.googleapis.com\/google.cloud.aiplatform.v1.SupervisedHyperParameters.AdapterSize\), 7/,
    'supervised_tuning_spec.hyper_parameters.adapter_size');
  refused(() => checkMessage({ supervisedTuningSpec: { hyperParameters: { epochCount: 1.5 } } }, 'TuningJob', 'v1'), /\(TYPE_INT64\), 1.5/, 'supervised_tuning_spec.hyper_parameters.epoch_count');
  refused(() => checkMessage({ contents: [{ parts: [{ text: 3 }] }] }, 'GenerateContentRequest', 'v1'), /'contents\[0\].parts\[0\].text' \(TYPE_STRING\)/, 'contents[0].parts[0].text');
  refused(() => checkMessage({ contents: {} }, 'GenerateContentRequest', 'v1'), /'contents' \(repeated type.googleapis.com\/google.cloud.aiplatform.v1.Content\)/, 'contents');
  refused(() => checkMessage({ tunedModelDisplayName: 'a', tuned_model_display_name: 'b' }, 'TuningJob', 'v1'), /Duplicate field/, 'tuned_model_display_name');
  refused(() => checkMessage({ createTime: 'yesterday' }, 'TuningJob', 'v1'), /google.protobuf.Timestamp/, 'create_time');
  // null is absent; numbers as strings for floats; int64 as numbers or strings.
  assert.deepEqual(checkMessage({ systemInstruction: null, generationConfig: { temperature: '0.5', seed: 3 } }, 'GenerateContentRequest', 'v1beta1'),
    { generationConfig: { temperature: '0.5', seed: 3 } });
  assert.deepEqual(checkMessage({ safetySettings: [{ category: 1, threshold: 'BLOCK_NONE' }] }, 'GenerateContentRequest', 'v1'),
    { safetySettings: [{ category: 'HARM_CATEGORY_HATE_SPEECH', threshold: 'BLOCK_NONE' }] });
});

test('encodeMessage: only the version\'s fields, enums as numbers when asked', () => {
  const job = { name: 'n', state: 'JOB_STATE_RUNNING', tunekitOnly: 1, supervisedTuningSpec: { tuningMode: 'TUNING_MODE_PEFT_ADAPTER', hyperParameters: { learningRate: 0.1, adapterSize: 'ADAPTER_SIZE_FOUR' } } };
  assert.deepEqual(encodeMessage(job, 'TuningJob', 'v1'), { name: 'n', state: 'JOB_STATE_RUNNING', supervisedTuningSpec: { hyperParameters: { adapterSize: 'ADAPTER_SIZE_FOUR' } } });
  assert.deepEqual(encodeMessage(job, 'TuningJob', 'v1beta1', { enumsAsInts: true }),
    { name: 'n', state: 3, supervisedTuningSpec: { tuningMode: 2, hyperParameters: { learningRate: 0.1, adapterSize: 2 } } });
  assert.equal(wantsIntEnums('/v1/x?%24alt=json%3Benum-encoding%3Dint'), true);
  assert.equal(wantsIntEnums('/v1/x?$alt=json;enum-encoding=int'), true);
  assert.equal(wantsIntEnums('/v1/x?alt=json'), false);
});

test('tuning jobs: integer enums as the Python SDK sends them; v1beta1 fields on /v1beta1 only; int enums on responses', async () => {
  const body = createBody();
  (body.supervisedTuningSpec as any).hyperParameters.adapterSize = 2; // ADAPTER_SIZE_FOUR (adapter_size=4), as use_integers_for_enums sends it
  (body.supervisedTuningSpec as any).hyperParameters.learningRate = 0.001;
  (body.supervisedTuningSpec as any).tuningMode = 2; // TUNING_MODE_PEFT_ADAPTER
  const onV1 = await call('POST', JOBS_V1, keys.trainer, body);
  assert.equal(onV1.status, 400);
  assert.match(onV1.json.error.message, /Unknown name "learningRate" at 'supervised_tuning_spec.hyper_parameters'/);
  assert.equal(detail(onV1.json, 'BadRequest')!.fieldViolations[0].field, 'supervised_tuning_spec.hyper_parameters.learning_rate');

  const created = await call('POST', `${JOBS_V1BETA1}?%24alt=json%3Benum-encoding%3Dint`, keys.trainer, body);
  assert.equal(created.status, 200, JSON.stringify(created.json));
  assert.equal(created.json.state, 2); // JOB_STATE_PENDING
  assert.equal(created.json.supervisedTuningSpec.hyperParameters.adapterSize, 2);
  assert.equal(created.json.supervisedTuningSpec.hyperParameters.learningRate, 0.001);
  const name = created.json.name as string;
  await cancel(name);

  const v1 = (await call('GET', `/v1/${name}`, keys.trainer)).json;
  assert.equal(v1.supervisedTuningSpec.hyperParameters.adapterSize, 'ADAPTER_SIZE_FOUR');
  assert.equal(v1.supervisedTuningSpec.hyperParameters.learningRate, undefined, 'a v1beta1-only field on /v1');
  const list = (await call('GET', '/v1/projects/p/locations/us-central1/tuningJobs', keys.trainer)).json;
  const every = JSON.stringify(list);
  assert.ok(!every.includes('learningRate\"') && !every.includes('tuningMode'), every.slice(0, 300));
  for (const job of list.tuningJobs) checkMessage(job, 'TuningJob', 'v1'); // a strict v1 parse of the response succeeds
  const beta = (await call('GET', `/v1beta1/${name}`, keys.trainer)).json;
  assert.equal(beta.supervisedTuningSpec.hyperParameters.learningRate, 0.001);
});

test('TuningJob fields tunekit does not honour are refused with 400 naming them; output-only fields are ignored', async () => {
  const refused = async (url: string, extra: (b: Record<string, any>) => void, field: string, why: RegExp) => {
    const body = createBody();
    extra(body);
    const r = await call('POST', url, keys.trainer, body);
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(r.json.error.message, new RegExp(`^'${field.replace(/[.[\]]/g, '\\$&')}' is not supported by tunekit: `));
    assert.match(r.json.error.message, why);
    assert.equal(detail(r.json, 'BadRequest')!.fieldViolations[0].field, field);
    assert.equal(detail(r.json, 'ErrorInfo')!.reason, 'FIELD_NOT_SUPPORTED');
  };
  await refused(JOBS_V1, (b) => { b.encryptionSpec = { kmsKeyName: 'k' }; }, 'encryption_spec', /customer-managed keys/);
  await refused(JOBS_V1, (b) => { b.supervisedTuningSpec.evaluationConfig = { metrics: [{ exactMatchSpec: {} }], autoraterConfig: { generationConfig: { topK: 2 } } }; },
    'supervised_tuning_spec.evaluation_config.autorater_config.generation_config', /greedily/);
  await refused(JOBS_V1BETA1, (b) => { b.supervisedTuningSpec.hyperParameters.batchSize = 8; }, 'supervised_tuning_spec.hyper_parameters.batch_size', /token budget/);
  await refused(JOBS_V1BETA1, (b) => { b.distillationSpec = { baseTeacherModel: 'x' }; delete b.supervisedTuningSpec; }, 'distillation_spec', /supervised/);
  // Defaults are as good as absent; output-only fields are ignored, as Google ignores them.
  const body = createBody();
  Object.assign(body, { state: 'JOB_STATE_SUCCEEDED', name: 'projects/x/locations/y/tuningJobs/1', description: '' });
  (body.supervisedTuningSpec as any).exportLastCheckpointOnly = false;
  const ok = await call('POST', JOBS_V1, keys.trainer, body);
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.equal(ok.json.state, 'JOB_STATE_PENDING');
  await cancel(ok.json.name);
});

test('google.rpc.Status.details: ErrorInfo always, BadRequest on 400, QuotaFailure and RetryInfo on 429', async () => {
  const missing = await call('GET', '/v1/projects/p/locations/us-central1/tuningJobs/123', keys.trainer);
  assert.equal(missing.status, 404);
  assert.deepEqual(detail(missing.json, 'ErrorInfo'), { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'NOT_FOUND', domain: 'aiplatform.googleapis.com' });
  const unauthenticated = await call('GET', '/v1/projects/p/locations/us-central1/tuningJobs', undefined);
  assert.equal(unauthenticated.status, 401);
  assert.equal(detail(unauthenticated.json, 'ErrorInfo')!.domain, 'aiplatform.googleapis.com');

  const first = await call('POST', JOBS_V1, keys.trainer, createBody());
  assert.equal(first.status, 200, JSON.stringify(first.json));
  const second = await call('POST', JOBS_V1, keys.trainer, createBody());
  assert.equal(second.status, 429);
  assert.equal(detail(second.json, 'ErrorInfo')!.reason, 'RATE_LIMIT_EXCEEDED');
  const quota = detail(second.json, 'QuotaFailure')!.violations[0];
  assert.equal(quota.quotaMetric, 'aiplatform.googleapis.com/concurrent_tuning_jobs');
  assert.equal(quota.quotaId, 'concurrent_tuning_jobs');
  assert.equal(quota.subject, 'projects/p');
  assert.match(detail(second.json, 'RetryInfo')!.retryDelay, /^\d+s$/);
  await cancel(first.json.name);

  const bad = await call('POST', JOBS_V1, keys.trainer, { ...createBody(), tunedModelDisplayName: 'x'.repeat(200) });
  assert.equal(bad.status, 400);
  assert.equal(detail(bad.json, 'BadRequest')!.fieldViolations[0].field, 'tuned_model_display_name');
  // Every detail is a message of the published protos (strict parse of the Status; `status` is the
  // HTTP mapping's code name beside it) and each Any's payload parses as the type it names.
  for (const r of [missing, second, bad]) {
    const { status: _, ...status } = r.json.error;
    checkMessage(status, 'google.rpc.Status', 'v1');
    for (const { '@type': type, ...payload } of status.details as Detail[]) checkMessage(payload, type.replace('type.googleapis.com/', ''), 'v1');
  }
});

test('generation accepts enums by number (safetySettings[].category: 1)', async () => {
  const r = await call('POST', '/v1/projects/p/locations/us-central1/publishers/google/models/gemma3-tiny:generateContent', keys.trainer, {
    contents: [{ role: 'user', parts: [{ text: 'hi' }] }], safetySettings: [{ category: 1, threshold: 4 }], generationConfig: { maxOutputTokens: 2 },
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
});

test('?key=API_KEY is accepted as Google\'s APIs accept it; a header key wins', async () => {
  const list = '/v1/projects/p/locations/us-central1/tuningJobs';
  assert.equal((await call('GET', `${list}?key=${encodeURIComponent(keys.trainer)}&pageSize=1`, undefined)).status, 200);
  const bad = await call('GET', `${list}?key=nope`, undefined);
  assert.equal(bad.status, 401);
  assert.equal(detail(bad.json, 'ErrorInfo')!.reason, 'UNAUTHENTICATED');
  assert.equal((await call('GET', `${list}?key=nope`, keys.trainer)).status, 200);
  assert.equal((await call('GET', `${list}?pageSize=1`, undefined)).status, 401);
  // A key no header can carry (found by the fuzzer: ?key=%EF%BC%97 was a 500) is a key that matches none.
  assert.equal((await call('GET', `${list}?key=%EF%BC%97`, undefined)).status, 401);
  assert.equal((await call('GET', `${list}?key=a%0Ab`, undefined)).status, 401);
});
