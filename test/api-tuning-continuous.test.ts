// Continuous tuning (TuningJob.pre_tuned_model, issue 12): a job starts from a tuned model's adapter (a
// version's final adapter, or one of its stored checkpoints) and its result becomes a new version of the
// same Model, or a new Model when tuned_model_display_name is given, as Vertex's continuous tuning does.
// Observable: with a learning rate too small to move it, the new adapter equals the one it started from,
// and its eval loss equals the earlier job's final eval loss; a fresh job at that rate keeps lora_B at 0.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { checkMessage } from '../src/api/proto-json.js';
import { loadAdapter } from '../src/lora/peft.js';
import { loadModelConfig } from '../src/models/loader.js';
import type { LoraAdapter } from '../src/lora/lora.js';
import { createBody, JOBS, tuningPlatform, waitForJob } from './helpers/tuning.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import { describeJob } from '../src/cli/commands/jobs.js';

const t = await tuningPlatform();
after(() => t.close());
const { call, keys } = t;
const LOC = 'projects/p/locations/us-central1';
const config = loadModelConfig(tinyModelDir('gemma3'));

async function run(body: Record<string, unknown>, version = 'v1'): Promise<Record<string, any>> {
  const created = await call('POST', JOBS.replace('/v1/', `/${version}/`), keys.trainer, body);
  assert.equal(created.status, 200, JSON.stringify(created.json));
  const job = await waitForJob(async () => (await call('GET', `/v1/${created.json.name}`, keys.trainer)).json);
  assert.equal(job.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(job.error));
  checkMessage(job, 'TuningJob', 'v1');
  return job;
}

async function adapterOf(uri: string): Promise<LoraAdapter> {
  return loadAdapter(await t.tuning.adapterDir(uri), config);
}

async function finalEvalLoss(job: Record<string, any>): Promise<number> {
  const m = (await call('GET', `/v1/${job.name}/metrics`, keys.trainer)).json;
  const points = m.metrics.find((s: any) => s.name === '/eval_total_loss').points;
  return points[points.length - 1].value;
}

/** Largest |a - b| over every lora_A and lora_B value, and the largest |b| of lora_B. */
function compare(a: LoraAdapter, b: LoraAdapter): { diff: number; bMax: number } {
  let diff = 0;
  let bMax = 0;
  a.layers.forEach((pairs, l) => {
    for (const [k, p] of Object.entries(pairs)) {
      const q = b.layers[l]![k as keyof typeof pairs]!;
      for (const [x, y] of [[p.A, q.A], [p.B, q.B]] as const) for (let i = 0; i < x.length; i++) diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
      for (const v of q.B) bMax = Math.max(bMax, Math.abs(v));
    }
  });
  return { diff, bMax };
}

test('continuous tuning starts from the pre-tuned adapter and makes a new version of its model', async () => {
  const first = await run(createBody({ epochs: 3 })); // (one step an epoch; the linear schedule's last step has rate 0)
  const model = (first.tunedModel.model as string).replace(/@\d+$/, '');
  const firstModel = (await call('GET', `/v1/${model}`, keys.trainer)).json;
  const firstAdapter = await adapterOf(firstModel.artifactUri);
  const tiny = { epochCount: 1, learningRateMultiplier: 1e-6 };
  const spec = (hp: Record<string, unknown>) => ({ trainingDatasetUri: 'gs://us-data/train.jsonl', validationDatasetUri: 'gs://us-data/validation.jsonl', hyperParameters: hp });

  // From the model's default version (v1beta1, as @google/genai sends it): a new version of the same model.
  const second = await run({ preTunedModel: { tunedModelName: model }, supervisedTuningSpec: spec(tiny) }, 'v1beta1');
  assert.equal(second.tunedModel.model, `${model}@2`);
  assert.deepEqual(second.preTunedModel, { tunedModelName: `${model}@1`, baseModel: 'publishers/google/models/gemma3-tiny' });
  assert.equal(second.baseModel, undefined); // one oneof with pre_tuned_model
  // `tunekit jobs get` shows the base from pre_tuned_model and the tuned model the job started from.
  assert.match(describeJob(second as any), /^base model: +publishers\/google\/models\/gemma3-tiny$/m);
  assert.match(describeJob(second as any), new RegExp(`^continued from: +${model}@1$`, 'm'));
  assert.equal(second.tunedModelDisplayName, firstModel.displayName);
  assert.equal(second.supervisedTuningSpec.hyperParameters.adapterSize, 'ADAPTER_SIZE_FOUR'); // the adapter's rank
  const versions = (await call('GET', `/v1/${model}:listVersions`, keys.viewer)).json;
  assert.deepEqual(versions.models.map((v: any) => v.versionId), ['2', '1']);
  const secondAdapter = await adapterOf(versions.models[0].artifactUri);
  const { diff, bMax } = compare(firstAdapter, secondAdapter);
  assert.ok(bMax > 1e-4, `the first job trained lora_B away from 0 (max ${bMax})`);
  assert.ok(diff < 1e-7, `the second adapter starts from the first (max difference ${diff})`);
  const [lossA, lossB] = [await finalEvalLoss(first), await finalEvalLoss(second)];
  assert.ok(Math.abs(lossA - lossB) < 1e-4 * lossA, `eval loss ${lossB} after continuing vs ${lossA} at the end of the first job`);

  // A fresh job at the same rate keeps lora_B at its initial 0: the start is what differs.
  const fresh = await run(createBody({ epochs: 1, lrm: 1e-6, name: 'fresh' }));
  const freshModel = (await call('GET', `/v1/${(fresh.tunedModel.model as string).replace(/@\d+$/, '')}`, keys.trainer)).json;
  const freshB = compare(firstAdapter, await adapterOf(freshModel.artifactUri)).bMax;
  assert.ok(freshB < 1e-7, `fresh lora_B max ${freshB}`);
  const lossFresh = await finalEvalLoss(fresh);
  assert.ok(lossFresh > lossA + 0.01, `the fresh job's loss ${lossFresh} is the base model's, above the tuned one's ${lossA}`);

  // From a stored checkpoint with a display name: a new Model, starting from that checkpoint's adapter.
  const branch = await run({ preTunedModel: { tunedModelName: `${model}@1`, checkpointId: '1' }, tunedModelDisplayName: 'branch', supervisedTuningSpec: spec(tiny) });
  assert.doesNotMatch(branch.tunedModel.model, new RegExp(`^${model}@`));
  assert.match(branch.tunedModel.model, /@1$/);
  assert.match(describeJob(branch as any), /^from checkpoint: +1$/m);
  const branchModel = (await call('GET', `/v1/${(branch.tunedModel.model as string).replace(/@\d+$/, '')}`, keys.trainer)).json;
  assert.equal(branchModel.displayName, 'branch');
  const checkpoint1 = firstModel.checkpoints.find((k: any) => k.checkpointId === '1');
  assert.ok(checkpoint1);
  const stored = (await call('GET', `/v1/${model}@1`, keys.trainer)).json;
  assert.equal(stored.checkpoints.length, 3);
  const ckptAdapter = await adapterOf(t.tuning.registry.modelVersion(await t.tuning.registry.getModel('p', 'us-central1', `${model.split('/').pop()}@1`), `${model.split('/').pop()}@1`).checkpoints[0]!.adapterUri!);
  assert.ok(compare(ckptAdapter, await adapterOf(branchModel.artifactUri)).diff < 1e-7);
  const ckptDiff = compare(firstAdapter, ckptAdapter).diff;
  assert.ok(ckptDiff > 1e-5, `the epoch-1 checkpoint differs from the final adapter (${ckptDiff})`);
});

test('pre_tuned_model is checked before a job exists', async () => {
  const first = await run(createBody({ epochs: 1, name: 'source' }));
  const model = (first.tunedModel.model as string).replace(/@\d+$/, '');
  const spec = { trainingDatasetUri: 'gs://us-data/train.jsonl', hyperParameters: { epochCount: 1 } };
  const refused = async (body: Record<string, unknown>, status: number, field?: string | RegExp) => {
    const r = await call('POST', JOBS, keys.trainer, body);
    assert.equal(r.status, status, JSON.stringify(r.json));
    if (field instanceof RegExp) assert.match(r.json.error.message, field);
    else if (field) assert.equal(r.json.error.details.find((d: any) => d.fieldViolations)?.fieldViolations[0].field, field, JSON.stringify(r.json));
  };
  await refused({ preTunedModel: { tunedModelName: model }, supervisedTuningSpec: { ...spec, hyperParameters: { adapterSize: 'ADAPTER_SIZE_EIGHT' } } }, 400, 'supervised_tuning_spec.hyper_parameters.adapter_size');
  await refused({ preTunedModel: { tunedModelName: model, checkpointId: '9' }, supervisedTuningSpec: spec }, 400, 'pre_tuned_model.checkpoint_id');
  await refused({ preTunedModel: { tunedModelName: `${LOC}/models/123` }, supervisedTuningSpec: spec }, 404);
  await refused({ preTunedModel: { tunedModelName: `${model}@7` }, supervisedTuningSpec: spec }, 404);
  await refused({ preTunedModel: { tunedModelName: 'projects/other/locations/us-central1/models/1' }, supervisedTuningSpec: spec }, 400, 'pre_tuned_model.tuned_model_name');
  await refused({ preTunedModel: {}, supervisedTuningSpec: spec }, 400, 'pre_tuned_model.tuned_model_name');
  await refused({ preTunedModel: { tunedModelName: model, bogus: 1 }, supervisedTuningSpec: spec }, 400, /bogus/);
  await refused({ baseModel: 'gemma3-tiny', preTunedModel: { tunedModelName: model }, supervisedTuningSpec: spec }, 400, /oneof|source_model|pre_tuned_model/);
  const noModelGet = await call('POST', JOBS, keys.noData, { preTunedModel: { tunedModelName: model }, supervisedTuningSpec: spec });
  assert.equal(noModelGet.status, 403); // no-data-sa may not read the dataset
});
