// Tuning jobs: `projects/{p}/locations/{l}/tuningJobs` create, get, list, :cancel, and /metrics.
// Order in every handler: credentials and permission (401, 403), then the location (400: the supported
// locations are told only to callers who may use them), then the request.
// The body is checked as the request version's TuningJob (proto-json.ts parseMessage, from the published
// protos): camelCase or snake_case, int64 as numbers or strings, enums by name or number, unknown fields
// (and v1beta1-only ones on /v1) refused with their path; output-only fields are ignored, as Google
// does. Every other field is honoured or refused with 400 naming it (HONOURED, below); everything else
// is checked by the tuning service (src/platform/jobs/service.ts) before a job
// is queued, sizes included (display name, description, labels: src/platform/limits.ts). List filters:
// `state="JOB_STATE_..."` terms joined by OR and `tuned_model_display_name="..."`, joined by AND; list
// pages hold at most 100 jobs and about 4 MiB of JSON (a page stops early, with a nextPageToken).
//
// GET .../tuningJobs/{id}/metrics (tunekit's own, for loss curves) answers
//   {"tuningJob": NAME, "metrics": [{"name": "/train_total_loss",
//     "points": [{"step": "1", "epoch": "1", "value": 2.31, "time": RFC3339}, ...]}, ...]}
// one series per metric (Vertex's names: /train_total_loss, /train_fraction_of_correct_next_step_preds,
// /train_num_predictions, /learning_rate, and with a validation set /eval_total_loss,
// /eval_fraction_of_correct_next_step_preds, /eval_num_predictions), points in step order, step and
// epoch as int64 strings. Eval points carry the step after which they were measured.

import type { Context, Hono } from 'hono';
import { guard, type Principal } from '../auth.js';
import { body, checkLocation, requestSignal, type ApiContext } from '../context.js';
import { fieldError, invalidArgument, notFound } from '../errors.js';
import { apiVersionOf, parseMessage, protoJson, messageDescriptor, type ApiVersion, type Message } from '../proto-json.js';
import { DEFAULT_TUNE_OPTIONS } from '../../train/trainer.js';
import type { JobState, TuningJobRecord } from '../../platform/jobs.js';
import { jsonBytes } from '../../platform/limits.js';
import type { TuningService } from '../../platform/jobs/service.js';
import { parseEvaluationConfig } from './evaluation.js';
import { registryEndpoints } from './registry.js';
import { ADAPTER_SIZE_NAMES, adapterSizeName, type AdapterSizeName } from '../../platform/jobs/spec.js';

const V = 'google.cloud.aiplatform.v1';
const JOB_STATES: readonly JobState[] = [
  'JOB_STATE_QUEUED', 'JOB_STATE_PENDING', 'JOB_STATE_RUNNING', 'JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED',
  'JOB_STATE_CANCELLING', 'JOB_STATE_CANCELLED', 'JOB_STATE_PAUSED', 'JOB_STATE_EXPIRED',
];
const UNSUPPORTED_SPECS = ['preferenceOptimizationSpec', 'distillationSpec', 'reinforcementTuningSpec', 'partnerModelTuningSpec'];

export const TUNING_PERMISSIONS = {
  create: 'aiplatform.tuningJobs.create',
  get: 'aiplatform.tuningJobs.get',
  list: 'aiplatform.tuningJobs.list',
  cancel: 'aiplatform.tuningJobs.cancel',
  readDataset: 'storage.objects.get',
  writeOutput: 'storage.objects.create',
  actAs: 'iam.serviceAccounts.actAs',
} as const;

export function registerTuningJobRoutes(app: Hono, api: ApiContext, tuning: TuningService): void {
  const base = '/projects/:project/locations/:location/tuningJobs';

  app.post(base, async (c) => {
    // First, before any await (app.ts also touches it on arrival): @hono/node-server makes the
    // request's AbortController on the first read of .signal and aborts it when the client's socket
    // closes only if it exists by then. The create (and its dataset check) stops with CANCELLED once
    // the client is gone, or 503 when the server shuts down.
    const signal = requestSignal(api, c);
    const { project, location } = c.req.param();
    const principal = await guard(api.auth, c.req.raw.headers, TUNING_PERMISSIONS.create, project);
    await checkLocation(api, location);
    const version = apiVersionOf(c.req.url);
    const request = parseMessage((await body(api, c)).value, 'TuningJob', version);
    refuseUnsupported(request.value, version);
    const job = await tuning.create({ ...await parseCreate(api, tuning, request, project, location, principal), signal });
    return protoJson(c.req.raw, tuningJobJson(job), 'TuningJob');
  });

  app.get(base, async (c) => {
    const { project, location } = c.req.param();
    await guard(api.auth, c.req.raw.headers, TUNING_PERMISSIONS.list, project);
    await checkLocation(api, location);
    const filter = parseFilter(c.req.query('filter'));
    const size = pageSize(c);
    const token = c.req.query('pageToken') || c.req.query('page_token') || undefined;
    const { jobs, nextPageToken } = filter.states?.length === 0 // clauses no state satisfies
      ? { jobs: [], nextPageToken: undefined }
      : await tuning.jobs.list(project, location, {
        pageSize: size, pageToken: token, states: filter.states, displayName: filter.displayName, sizeOf: (j) => jsonBytes(tuningJobJson(j)),
      });
    return protoJson(c.req.raw, { ...(jobs.length ? { tuningJobs: jobs.map(tuningJobJson) } : {}), ...(nextPageToken ? { nextPageToken } : {}) }, 'ListTuningJobsResponse');
  });

  app.get(`${base}/:id/metrics`, async (c) => {
    const { project, location, id } = c.req.param();
    await guard(api.auth, c.req.raw.headers, TUNING_PERMISSIONS.get, project);
    await checkLocation(api, location);
    const job = await tuning.jobs.get(project, location, id);
    const series = new Map<string, Record<string, unknown>[]>();
    for (const p of await tuning.jobs.metrics(job.id)) {
      let points = series.get(p.name);
      if (!points) series.set(p.name, (points = []));
      points.push({ step: String(p.step), ...(p.epoch !== undefined ? { epoch: String(p.epoch) } : {}), value: p.value, time: p.time });
    }
    return c.json({ tuningJob: job.name, metrics: [...series].map(([name, points]) => ({ name, points })) });
  });

  app.get(`${base}/:id`, async (c) => {
    const { project, location, id } = c.req.param();
    if (id.includes(':')) throw notFound(`The requested URL ${new URL(c.req.url).pathname} was not found on this server.`);
    await guard(api.auth, c.req.raw.headers, TUNING_PERMISSIONS.get, project);
    await checkLocation(api, location);
    return protoJson(c.req.raw, tuningJobJson(await tuning.jobs.get(project, location, id)), 'TuningJob');
  });

  app.post(`${base}/:call`, async (c) => {
    const { project, location, call } = c.req.param();
    const colon = call.lastIndexOf(':');
    if (colon < 0 || call.slice(colon + 1) !== 'cancel') throw notFound(`The requested URL ${new URL(c.req.url).pathname} was not found on this server.`);
    await guard(api.auth, c.req.raw.headers, TUNING_PERMISSIONS.cancel, project);
    await checkLocation(api, location);
    parseMessage((await body(api, c)).value, 'CancelTuningJobRequest', apiVersionOf(c.req.url));
    await tuning.cancel(project, location, call.slice(0, colon));
    return c.json({});
  });
}

/**
 * The TuningJob fields (json paths) a create honours; any other input field that is set (not output
 * only, not its default value) is refused with 400 naming it, with the reason where one is known.
 */
const HONOURED = new Set([
  'baseModel', 'tunedModelDisplayName', 'description', 'labels', 'supervisedTuningSpec',
  'supervisedTuningSpec.trainingDatasetUri', 'supervisedTuningSpec.validationDatasetUri', 'supervisedTuningSpec.tuningMode',
  'supervisedTuningSpec.hyperParameters', 'supervisedTuningSpec.hyperParameters.epochCount',
  'supervisedTuningSpec.hyperParameters.learningRateMultiplier', 'supervisedTuningSpec.hyperParameters.adapterSize',
  'supervisedTuningSpec.hyperParameters.learningRate', 'supervisedTuningSpec.exportLastCheckpointOnly',
  'serviceAccount', 'outputUri', 'preTunedModel', 'preTunedModel.tunedModelName', 'preTunedModel.checkpointId',
  // evaluation_config: its metrics are checked by parseEvaluationConfig (routes/evaluation.ts).
  'supervisedTuningSpec.evaluationConfig', 'supervisedTuningSpec.evaluationConfig.metrics',
  'supervisedTuningSpec.evaluationConfig.outputConfig', 'supervisedTuningSpec.evaluationConfig.outputConfig.gcsDestination',
  'supervisedTuningSpec.evaluationConfig.outputConfig.gcsDestination.outputUriPrefix',
  'supervisedTuningSpec.evaluationConfig.autoraterConfig', 'supervisedTuningSpec.evaluationConfig.autoraterConfig.autoraterModel',
  'supervisedTuningSpec.evaluationConfig.autoraterConfig.samplingCount', 'supervisedTuningSpec.evaluationConfig.autoraterConfig.flipEnabled',
  'supervisedTuningSpec.evaluationConfig.inferenceGenerationConfig', 'supervisedTuningSpec.evaluationConfig.inferenceGenerationConfig.temperature',
  'supervisedTuningSpec.evaluationConfig.inferenceGenerationConfig.maxOutputTokens', 'supervisedTuningSpec.evaluationConfig.inferenceGenerationConfig.seed',
]);
const WHY_NOT: Record<string, string> = {
  encryptionSpec: 'tunekit does not encrypt with customer-managed keys (CMEK): its object store and staging files are plain files under the server\'s data directory; leave encryption_spec unset',
  'supervisedTuningSpec.evaluationConfig.autoraterConfig.generationConfig': 'the judge decodes greedily (several samples: at temperature 1) under its answer\'s JSON Schema',
  'supervisedTuningSpec.evaluationConfig.inferenceGenerationConfig': 'the responses are generated with temperature, max_output_tokens and seed only',
  'supervisedTuningSpec.hyperParameters.batchSize': 'steps are packed to a token budget, not a number of examples',
};

function isDefault(v: unknown): boolean {
  return v === false || v === '' || v === 0 || v === '0' || (Array.isArray(v) && v.length === 0) ||
    (typeof v === 'string' && /_UNSPECIFIED$/.test(v));
}

/** 400 naming the first input field of a TuningJob that tunekit does not honour (see HONOURED). */
function refuseUnsupported(job: Record<string, unknown>, version: ApiVersion): void {
  const walk = (value: Record<string, unknown>, type: string, prefix: string, protoPath: string): void => {
    const desc = messageDescriptor(version, type);
    for (const [key, v] of Object.entries(value)) {
      const f = desc?.fields[key];
      if (!f || f.outputOnly || isDefault(v)) continue;
      const at = prefix ? `${prefix}.${key}` : key;
      const field = protoPath ? `${protoPath}.${f.name}` : f.name;
      if (!HONOURED.has(at)) {
        const why = WHY_NOT[at] ?? WHY_NOT[prefix] ?? (at.includes('.') ? 'tunekit runs supervised LoRA tuning of a registered publisher model' : 'only supervised tuning (supervised_tuning_spec) of a publisher model is supported');
        throw fieldError(field, `'${field}' is not supported by tunekit: ${why}.`, 'FIELD_NOT_SUPPORTED');
      }
      if (f.kind === 'message' && !f.mapKey && !f.repeated && v !== null && typeof v === 'object') walk(v as Record<string, unknown>, f.type, at, field);
    }
  };
  walk(job, 'TuningJob', '', '');
}

/** A CreateTuningJob body as the service's request; INVALID_ARGUMENT naming the field otherwise. */
async function parseCreate(api: ApiContext, tuning: TuningService, m: Message, project: string, location: string, principal: Principal) {
  for (const name of UNSUPPORTED_SPECS) {
    if (m.has(name)) throw invalidArgument(`'${m.fieldPath(name)}' is not supported by tunekit: only supervised tuning (supervised_tuning_spec) of a publisher model.`);
  }
  const preTuned = await parsePreTunedModel(api, m, project, location, principal, tuning);
  const baseModelField = preTuned?.baseModel ?? m.string('baseModel');
  if (!baseModelField) throw invalidArgument("'base_model' is required: the publisher model to tune, e.g. \"gemma3-tiny\" or \"publishers/google/models/gemma3-tiny\".");
  const { publisher, name } = parseBaseModel(baseModelField);
  const registration = await api.catalog.store.get(publisher, name);
  if (!registration) {
    const known = (await api.catalog.store.list()).map((r) => `publishers/${r.publisher}/models/${r.name}`);
    throw invalidArgument(`base_model ${JSON.stringify(baseModelField)} is not a model tunekit can tune here. Registered models: ${known.join(', ') || '(none: run `tunekit publisher-models register DIR --name NAME`)'}.`);
  }
  const spec = m.message('supervisedTuningSpec', `${V}.SupervisedTuningSpec`);
  if (!spec) throw invalidArgument("'supervised_tuning_spec' is required, with training_dataset_uri.");
  const trainingDatasetUri = spec.string('trainingDatasetUri');
  if (!trainingDatasetUri) throw invalidArgument(`'${spec.fieldPath('trainingDatasetUri')}' is required: a gs:// URI of a JSONL dataset.`);
  const validationDatasetUri = spec.string('validationDatasetUri') || undefined;
  const hp = spec.message('hyperParameters', `${V}.SupervisedHyperParameters`);
  let adapter = hp?.enumOf('adapterSize', ADAPTER_SIZE_NAMES, `${V}.SupervisedHyperParameters.AdapterSize`);
  if (preTuned) {
    // Continuous tuning trains the pre-tuned adapter further: its rank is the job's adapter size.
    const rank = adapterSizeName(preTuned.rank);
    if (adapter && adapter !== 'ADAPTER_SIZE_UNSPECIFIED' && adapter !== rank) {
      throw fieldError('supervised_tuning_spec.hyper_parameters.adapter_size',
        `'supervised_tuning_spec.hyper_parameters.adapter_size' ${adapter} differs from the pre-tuned model's adapter (${rank}): continuous tuning keeps the adapter's size; leave it unset or set ${rank}.`);
    }
    adapter = rank;
  }
  const mode = spec.string('tuningMode');
  if (mode !== undefined && mode !== 'TUNING_MODE_UNSPECIFIED' && mode !== 'TUNING_MODE_PEFT_ADAPTER') {
    throw invalidArgument(`Invalid value at '${spec.fieldPath('tuningMode')}', ${JSON.stringify(mode)}: tunekit's tuning jobs train LoRA adapters (TUNING_MODE_PEFT_ADAPTER).`);
  }
  if (hp?.has('batchSize')) throw invalidArgument(`'${hp.fieldPath('batchSize')}' is not supported by tunekit: steps are packed to a token budget.`);
  const serviceAccount = m.string('serviceAccount') || undefined;
  const outputUri = m.string('outputUri') || undefined;
  let identity = principal;
  if (serviceAccount) {
    const saProject = /^[^@]+@([^.]+)\.iam\.gserviceaccount\.com$/.exec(serviceAccount)?.[1];
    if (!saProject) throw fieldError('service_account', `Invalid value at 'service_account', ${JSON.stringify(serviceAccount)}: a service account email NAME@PROJECT.iam.gserviceaccount.com.`);
    // Google: the caller needs iam.serviceAccounts.actAs on the account (roles/iam.serviceAccountUser).
    if (serviceAccount !== principal.email) await api.auth.authorize(principal, TUNING_PERMISSIONS.actAs, saProject);
    // (Without authentication, --insecure-no-auth, everyone may do everything: the caller's identity stays.)
    if (principal.email) identity = { id: `serviceAccount:${serviceAccount}`, kind: 'serviceAccount', email: serviceAccount } as Principal;
  }
  const evaluationConfig = spec.message('evaluationConfig', `${V}.EvaluationConfig`);
  const evaluation = evaluationConfig && await parseEvaluationConfig(api, registryEndpoints(tuning), principal, evaluationConfig, validationDatasetUri);
  const labels = m.raw('labels');
  if (labels !== undefined && (typeof labels !== 'object' || Array.isArray(labels) || Object.values(labels as object).some((v) => typeof v !== 'string'))) {
    throw m.invalid('labels', 'map<string, string>', labels);
  }
  return {
    project, location,
    baseModel: `publishers/${publisher}/models/${name}`, baseDir: await api.catalog.localDir(registration),
    ...(registration.blobs !== undefined ? { baseBlobs: registration.blobs } : {}),
    // Continuous tuning makes a new version of the pre-tuned model unless a display name asks for a new model.
    tunedModelDisplayName: m.string('tunedModelDisplayName') || preTuned?.displayName || `${name}-tuned`,
    ...(preTuned ? { preTunedModel: preTuned.spec } : {}),
    description: m.string('description'),
    labels: labels as Record<string, string> | undefined,
    trainingDatasetUri, validationDatasetUri,
    epochCount: hp?.int64('epochCount') ?? DEFAULT_TUNE_OPTIONS.epochs,
    adapterSize: (adapter && adapter !== 'ADAPTER_SIZE_UNSPECIFIED' ? adapter : adapterSizeName(DEFAULT_TUNE_OPTIONS.adapterSize)) as AdapterSizeName,
    learningRateMultiplier: hp?.float('learningRateMultiplier') ?? DEFAULT_TUNE_OPTIONS.learningRateMultiplier,
    learningRate: hp?.float('learningRate'),
    ...(serviceAccount ? { serviceAccount } : {}),
    ...(outputUri ? { outputUri } : {}),
    ...(spec.bool('exportLastCheckpointOnly') ? { exportLastCheckpointOnly: true } : {}),
    ...(evaluation ? { evaluation, evaluationConfig: evaluationConfig!.value } : {}),
    // The job's identity: its service account (the caller must be allowed to act as it), else the caller.
    authorizeRead: async (bucketProject: string) => await api.auth.authorize(identity, TUNING_PERMISSIONS.readDataset, bucketProject),
    authorizeWrite: async (bucketProject: string) => await api.auth.authorize(identity, TUNING_PERMISSIONS.writeOutput, bucketProject),
  };
}

/**
 * TuningJob.pre_tuned_model (continuous tuning): a tuned Model of this project and location
 * (`projects/P/locations/L/models/M[@VERSION|@default]`), and optionally one of its version's stored
 * checkpoints (default: the version's final adapter). The caller needs aiplatform.models.get. Answers the
 * publisher model it was tuned from, the adapter's rank, and what the service stages and registers.
 */
async function parsePreTunedModel(api: ApiContext, m: Message, project: string, location: string, principal: Principal, tuning: TuningService) {
  const p = m.message('preTunedModel', `${V}.PreTunedModel`);
  if (!p) return undefined;
  const field = 'pre_tuned_model.tuned_model_name';
  const name = p.string('tunedModelName');
  if (!name) throw fieldError(field, `'${field}' is required: projects/${project}/locations/${location}/models/MODEL[@VERSION].`);
  const mm = /^projects\/([^/]+)\/locations\/([^/]+)\/models\/([^/@]+)(?:@([^/]+))?$/.exec(name);
  if (!mm || mm[1] !== project || mm[2] !== location) {
    throw fieldError(field, `'${field}' ${JSON.stringify(name)} must be a model of projects/${project}/locations/${location}: projects/${project}/locations/${location}/models/MODEL[@VERSION].`);
  }
  await api.auth.authorize(principal, 'aiplatform.models.get', project);
  const id = mm[4] === undefined || mm[4] === 'default' ? mm[3]! : `${mm[3]}@${mm[4]}`;
  const model = await tuning.registry.getModel(project, location, id);
  const version = tuning.registry.modelVersion(model, id);
  const checkpointId = p.string('checkpointId') || undefined;
  let adapterUri = version.adapterUri;
  if (checkpointId !== undefined) {
    const k = version.checkpoints.find((c) => c.checkpointId === checkpointId && c.adapterUri);
    if (!k) {
      throw fieldError('pre_tuned_model.checkpoint_id', `'pre_tuned_model.checkpoint_id' ${JSON.stringify(checkpointId)} is not a stored checkpoint of ${model.name}@${version.version} ` +
        `(stored: ${version.checkpoints.filter((c) => c.adapterUri).map((c) => c.checkpointId).join(', ') || 'none'}).`);
    }
    adapterUri = k.adapterUri!;
  }
  const newModel = Boolean(m.string('tunedModelDisplayName'));
  return {
    baseModel: model.baseModel, rank: await tuning.adapterRank(adapterUri), displayName: newModel ? undefined : model.displayName,
    spec: {
      tunedModelName: `${model.name}@${version.version}`, ...(checkpointId !== undefined ? { checkpointId } : {}), adapterUri,
      // A new version of this model, unless the request names a new model (tuned_model_display_name).
      ...(newModel ? {} : { parentModelId: model.id }),
    },
  };
}

/** "NAME", "publishers/PUB/models/NAME" or "projects/P/locations/L/publishers/PUB/models/NAME". */
function parseBaseModel(s: string): { publisher: string; name: string } {
  const full = /^(?:projects\/[^/]+\/locations\/[^/]+\/)?publishers\/([^/]+)\/models\/([^/@]+)(?:@[^/]+)?$/.exec(s);
  if (full) return { publisher: full[1]!, name: full[2]! };
  if (/^[^/]+$/.test(s)) return { publisher: 'google', name: s.replace(/@.*$/, '') };
  throw invalidArgument(`base_model ${JSON.stringify(s)} is not a model name: use "NAME" or "publishers/PUBLISHER/models/NAME".`);
}

function pageSize(c: Context): number | undefined {
  const raw = c.req.query('pageSize') ?? c.req.query('page_size');
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw invalidArgument(`Invalid value at 'page_size' (TYPE_INT32), ${JSON.stringify(raw)}`);
  return n === 0 ? undefined : n;
}

/**
 * Filters: clauses joined by AND, each `state="JOB_STATE_X"` terms joined by OR (in parentheses or not),
 * or `tuned_model_display_name="NAME"` (also `display_name`); quotes optional for states. Empty: all jobs.
 */
function parseFilter(filter: string | undefined): { states?: JobState[]; displayName?: string } {
  const out: { states?: JobState[]; displayName?: string } = {};
  if (filter === undefined || filter.trim() === '') return out;
  const bad = () => invalidArgument(
    `filter ${JSON.stringify(filter)} is not supported: use state="JOB_STATE_..." terms joined by OR, and tuned_model_display_name="NAME", joined by AND.`,
  );
  for (const clause of filter.split(/\s+AND\s+/)) {
    const name = /^\s*(?:tuned_model_display_name|display_name|tunedModelDisplayName|displayName)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$/.exec(clause);
    if (name) {
      if (out.displayName !== undefined) throw bad();
      try {
        out.displayName = JSON.parse(`"${name[1]}"`) as string; // JSON's escapes; `\x41` and the like are not
      } catch {
        throw bad();
      }
      continue;
    }
    const states: JobState[] = [];
    for (const term of clause.trim().replace(/^\((.*)\)$/, '$1').split(/\s+OR\s+/)) {
      const m = /^\s*state\s*[=:]\s*"?([A-Z_]+)"?\s*$/.exec(term);
      if (!m || !(JOB_STATES as readonly string[]).includes(m[1]!)) throw bad();
      states.push(m[1] as JobState);
    }
    out.states = out.states ? out.states.filter((x) => states.includes(x)) : states;
  }
  return out;
}

/** The TuningJob in proto3 JSON: the request as created, its state and times, and what the run produced. */
export function tuningJobJson(job: TuningJobRecord): Record<string, unknown> {
  const { tuningDataStats, ...request } = job.request as Record<string, unknown>;
  const result = (job.result ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = { name: job.name, ...request, state: job.state, createTime: job.createTime };
  if (job.startTime) out.startTime = job.startTime;
  if (job.endTime) out.endTime = job.endTime;
  out.updateTime = job.updateTime;
  if (job.error) out.error = job.error;
  if (result.tunedModel) out.tunedModel = result.tunedModel;
  if (result.evaluateDatasetRuns) out.evaluateDatasetRuns = result.evaluateDatasetRuns;
  if (tuningDataStats) out.tuningDataStats = tuningDataStats;
  return out;
}
