// The model registry and endpoints as resources: `projects/{p}/locations/{l}/models` get/list and
// `.../endpoints` get/list, :deployModel, :undeployModel, in Vertex's JSON. Tuning jobs fill both
// (src/platform/jobs/registry.ts); generation on an endpoint (routes/endpoints.ts) resolves what it
// serves through `registryEndpoints`. Every handler checks credentials and permission (401, 403) before
// the location (400), so only callers who may use a location learn which ones exist. List pages hold at
// most 100 items and about 4 MiB of JSON (src/platform/limits.ts); models and endpoints carry the labels
// of the tuning job that made them. Bodies and responses are the request version's messages (proto-json.ts).

import type { Context, Hono } from 'hono';
import { guard } from '../auth.js';
import { body, checkLocation, type ApiContext } from '../context.js';
import { fieldError, invalidArgument, notFound } from '../errors.js';
import type { EndpointResolver } from './endpoints.js';
import { endpointEtag, modelEtag, type DeployedModelRecord, type EndpointRecord, type ModelRecord } from '../../platform/jobs/registry.js';
import type { TuningService } from '../../platform/jobs/service.js';
import { checkDescription, checkDisplayName, checkLabels, jsonBytes } from '../../platform/limits.js';
import { apiVersionOf, encodeMessage, messageDescriptor, parseMessage, protoJson, snakeCase, type ApiVersion, type Message } from '../proto-json.js';

const V = 'google.cloud.aiplatform.v1';

/** What endpoints serve, from the registry: the tuned model's base and its adapter (copied out of the store). */
export function registryEndpoints(tuning: TuningService): EndpointResolver {
  return {
    async resolve(project, location, endpoint) {
      const { model, version, deployed } = await tuning.registry.endpointTarget(project, location, endpoint);
      // A deployed checkpoint serves its own stored adapter.
      const adapterUri = deployed.checkpointId === undefined ? version.adapterUri
        : version.checkpoints.find((k) => k.checkpointId === deployed.checkpointId)?.adapterUri ?? version.adapterUri;
      const m = /^publishers\/([^/]+)\/models\/([^/]+)$/.exec(model.baseModel);
      if (!m) throw new Error(`model ${model.name} has a malformed base model ${JSON.stringify(model.baseModel)}`);
      return { publisher: m[1]!, model: m[2]!, adapterDir: await tuning.adapterDir(adapterUri), modelVersion: `${model.name}@${version.version}` };
    },
  };
}

export function registerRegistryRoutes(app: Hono, api: ApiContext, tuning: TuningService): void {
  const parent = '/projects/:project/locations/:location';
  registerLifecycleRoutes(app, api, tuning);

  app.get(`${parent}/models`, async (c) => {
    const { project, location } = c.req.param();
    await guard(api.auth, c.req.raw.headers, 'aiplatform.models.list', project);
    await checkLocation(api, location);
    const filter = parseModelFilter(c.req.query('filter'));
    const { models, nextPageToken } = await tuning.registry.listModels(project, location, { ...listOptions(c), ...filter, sizeOf: (m) => jsonBytes(modelJson(m)) });
    return protoJson(c.req.raw, { ...(models.length ? { models: await Promise.all(models.map(async (m) => modelJson(m, undefined, await tuning.registry.deployedRefs(m.id)))) } : {}), ...(nextPageToken ? { nextPageToken } : {}) }, 'ListModelsResponse');
  });

  app.get(`${parent}/models/:id`, async (c) => {
    const { project, location, id } = c.req.param();
    await guard(api.auth, c.req.raw.headers, 'aiplatform.models.get', project);
    await checkLocation(api, location);
    const model = await tuning.registry.getModel(project, location, id);
    return protoJson(c.req.raw, modelJson(model, tuning.registry.modelVersion(model, id).version, await tuning.registry.deployedRefs(model.id)), 'Model');
  });

  app.get(`${parent}/endpoints`, async (c) => {
    const { project, location } = c.req.param();
    await guard(api.auth, c.req.raw.headers, 'aiplatform.endpoints.list', project);
    await checkLocation(api, location);
    const { endpoints, nextPageToken } = await tuning.registry.listEndpoints(project, location, { ...listOptions(c), sizeOf: (e) => jsonBytes(endpointJson(e)) });
    return protoJson(c.req.raw, { ...(endpoints.length ? { endpoints: endpoints.map(endpointJson) } : {}), ...(nextPageToken ? { nextPageToken } : {}) }, 'ListEndpointsResponse');
  });

  app.get(`${parent}/endpoints/:id`, async (c) => {
    const { project, location, id } = c.req.param();
    if (id.includes(':')) throw notFound(`The requested URL ${new URL(c.req.url).pathname} was not found on this server.`);
    await guard(api.auth, c.req.raw.headers, 'aiplatform.endpoints.get', project);
    await checkLocation(api, location);
    return protoJson(c.req.raw, endpointJson(await tuning.registry.getEndpoint(project, location, id)), 'Endpoint');
  });

  // :deployModel / :undeployModel answer a google.longrunning.Operation under the endpoint
  // (src/platform/operations.ts), done, with DeployModelResponse / UndeployModelResponse.
  for (const verb of ['deployModel', 'undeployModel'] as const) {
    app.post(`${parent}/endpoints/:call{.+:${verb}}`, async (c) => {
      const { project, location, call } = c.req.param();
      const id = call.slice(0, -(verb.length + 1));
      await guard(api.auth, c.req.raw.headers, verb === 'deployModel' ? 'aiplatform.endpoints.deploy' : 'aiplatform.endpoints.undeploy', project);
      await checkLocation(api, location);
      const request = parseMessage((await body(api, c)).value, verb === 'deployModel' ? 'DeployModelRequest' : 'UndeployModelRequest', apiVersionOf(c.req.url));
      if (verb === 'deployModel') {
        const dm = request.message('deployedModel', `${V}.DeployedModel`);
        const model = dm?.string('model');
        if (!dm || !model) throw invalidArgument("'deployed_model.model' is required: projects/P/locations/L/models/ID[@VERSION].");
        const displayName = dm.string('displayName');
        if (displayName !== undefined) checkDisplayName(displayName, dm.fieldPath('displayName'));
        const mm = new RegExp(`^projects/${project}/locations/${location}/models/([^/]+)$`).exec(model);
        if (!mm) throw invalidArgument(`'deployed_model.model' ${JSON.stringify(model)} must be a model of projects/${project}/locations/${location}.`);
        const op = await tuning.operations.run(project, location, `endpoints/${id}`, 'DeployModelOperationMetadata', 'DeployModelResponse', async () => {
            const d = await tuning.registry.deploy(project, location, id, mm[1]!, trafficSplitOf(request.raw('trafficSplit')), dm.string('checkpointId') || undefined);
          return { deployedModel: deployedModelJson(project, location, d) };
        });
        return protoJson(c.req.raw, op, 'google.longrunning.Operation');
      }
      const deployedModelId = request.string('deployedModelId');
      if (!deployedModelId) throw invalidArgument("'deployed_model_id' is required.");
      const op = await tuning.operations.run(project, location, `endpoints/${id}`, 'UndeployModelOperationMetadata', 'UndeployModelResponse', async () => {
        await tuning.registry.undeploy(project, location, id, deployedModelId, trafficSplitOf(request.raw('trafficSplit')));
        return {};
      });
      return protoJson(c.req.raw, op, 'google.longrunning.Operation');
    });
  }
}

/** Endpoint create / delete, model delete, and the operations routes (get, list, :wait, :cancel, delete). */
function registerLifecycleRoutes(app: Hono, api: ApiContext, tuning: TuningService): void {
  const parent = '/projects/:project/locations/:location';

  // models/M:listVersions (ListModelVersionsResponse, newest version first) and
  // models/M[@V]:listCheckpoints (ListModelVersionCheckpointsResponse: the version's epoch checkpoints).
  app.get(`${parent}/models/:call{[^/]+:(?:listVersions|listCheckpoints)}`, async (c) => {
    const { project, location, call } = c.req.param();
    const [id, verb] = [call.slice(0, call.lastIndexOf(':')), call.slice(call.lastIndexOf(':') + 1)];
    await guard(api.auth, c.req.raw.headers, verb === 'listVersions' ? 'aiplatform.models.list' : 'aiplatform.models.get', project);
    await checkLocation(api, location);
    const model = await tuning.registry.getModel(project, location, id);
    if (verb === 'listVersions') {
      if (id.includes('@')) throw invalidArgument(`models:listVersions takes a model, not a version: ${id}.`);
      const filter = c.req.query('filter');
      if (filter !== undefined && filter.trim() !== '') throw fieldError('filter', `filter ${JSON.stringify(filter)} is not supported for listVersions: list them without a filter.`);
      const refs = await tuning.registry.deployedRefs(model.id);
      const models = [...model.versions].reverse().map((v) => modelJson(model, v.version, refs));
      return protoJson(c.req.raw, { models }, 'ListModelVersionsResponse');
    }
    const version = tuning.registry.modelVersion(model, id);
    const checkpoints = version.checkpoints.map((k) => ({ checkpointId: k.checkpointId, epoch: String(k.epoch), step: String(k.step) }));
    return protoJson(c.req.raw, checkpoints.length ? { checkpoints } : {}, 'ListModelVersionCheckpointsResponse');
  });

  app.post(`${parent}/endpoints`, async (c) => {
    const { project, location } = c.req.param();
    await guard(api.auth, c.req.raw.headers, 'aiplatform.endpoints.create', project);
    await checkLocation(api, location);
    const request = parseMessage((await body(api, c)).value, 'Endpoint', apiVersionOf(c.req.url));
    const displayName = request.string('displayName');
    if (!displayName) throw fieldError('endpoint.display_name', "'endpoint.display_name' is required.");
    checkDisplayName(displayName, 'endpoint.display_name');
    const labels = request.raw('labels') as Record<string, string> | undefined;
    checkLabels(labels, 'endpoint.labels');
    const description = request.string('description') || undefined;
    if (description !== undefined) checkDescription(description, 'endpoint.description');
    if (Object.keys(trafficSplitOf(request.raw('trafficSplit'))).length) {
      throw fieldError('endpoint.traffic_split', "'endpoint.traffic_split' must be empty on a new endpoint: nothing is deployed on it yet (deployModel's traffic_split sets it).");
    }
    const endpointId = c.req.query('endpointId') ?? c.req.query('endpoint_id');
    if (endpointId !== undefined && !/^[1-9]\d{0,18}$|^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/.test(endpointId)) {
      throw fieldError('endpoint_id', `Invalid value at 'endpoint_id', ${JSON.stringify(endpointId)}: up to 19 digits, or a lowercase name of at most 63 characters.`);
    }
    for (const [field, value] of Object.entries(request.value)) {
      if (!['displayName', 'description', 'labels', 'name', 'createTime', 'updateTime', 'etag', 'deployedModels', 'trafficSplit'].includes(field) && value !== undefined) {
        throw fieldError(`endpoint.${snakeCase(field)}`, `'endpoint.${snakeCase(field)}' is not supported by tunekit's endpoints.`, 'FIELD_NOT_SUPPORTED');
      }
    }
    const op = await tuning.operations.run(project, location, '', 'CreateEndpointOperationMetadata', 'Endpoint', async () =>
      encodeMessage(endpointJson(await tuning.registry.createEndpoint(project, location, {
        displayName, labels, ...(description ? { description } : {}), ...(endpointId ? { id: endpointId } : {}),
      })), 'Endpoint', apiVersionOf(c.req.url)));
    return protoJson(c.req.raw, op, 'google.longrunning.Operation');
  });

  // endpoints/E:update (UpdateEndpointLongRunning) updates only client_connection_config, as its proto
  // says; tunekit's endpoints have no such setting, so it is refused by name (PATCH updates the others).
  app.post(`${parent}/endpoints/:call{.+:update}`, async (c) => {
    const { project } = c.req.param();
    await guard(api.auth, c.req.raw.headers, 'aiplatform.endpoints.update', project);
    await checkLocation(api, c.req.param('location'));
    throw fieldError('endpoint.client_connection_config',
      "endpoints:update (UpdateEndpointLongRunning) updates only 'endpoint.client_connection_config', which tunekit's endpoints do not have: " +
        'update display_name, description, labels or traffic_split with PATCH .../endpoints/E?updateMask=...', 'FIELD_NOT_SUPPORTED');
  });

  app.delete(`${parent}/endpoints/:id`, async (c) => {
    const { project, location, id } = c.req.param();
    await guard(api.auth, c.req.raw.headers, 'aiplatform.endpoints.delete', project);
    await checkLocation(api, location);
    const op = await tuning.operations.run(project, location, '', 'DeleteOperationMetadata', 'google.protobuf.Empty', async () => {
      await tuning.registry.deleteEndpoint(project, location, id);
      return {};
    });
    return protoJson(c.req.raw, op, 'google.longrunning.Operation');
  });

  // models.patch (ModelService.UpdateModel: the Model itself, not an operation): display_name, description
  // and labels by update_mask, with the etag for optimistic concurrency (a stale etag is 409 ABORTED).
  // Mask paths naming other fields are refused naming update_mask.
  app.patch(`${parent}/models/:id`, async (c) => {
    const { project, location, id } = c.req.param();
    await guard(api.auth, c.req.raw.headers, 'aiplatform.models.update', project);
    await checkLocation(api, location);
    const version = apiVersionOf(c.req.url);
    const request = parseMessage((await body(api, c)).value, 'Model', version);
    const patch: { displayName?: string; description?: string; labels?: Record<string, string> | null; etag?: string } = {};
    for (const path of updateMask(c, 'Model', ['display_name', 'description', 'labels'], version)) {
      if (path === 'display_name') patch.displayName = displayNameOf(request, 'model');
      else if (path === 'description') patch.description = descriptionOf(request, 'model');
      else patch.labels = labelsOf(request, 'model');
    }
    const etag = request.string('etag');
    if (etag) patch.etag = etag;
    const model = await tuning.registry.updateModel(project, location, id, patch);
    return protoJson(c.req.raw, modelJson(model, undefined, await tuning.registry.deployedRefs(model.id)), 'Model');
  });

  // endpoints.patch (EndpointService.UpdateEndpoint: the Endpoint itself, not an operation): display_name,
  // description, labels and traffic_split (over the deployed models, summing to 100) by update_mask, with
  // the etag's optimistic concurrency.
  app.patch(`${parent}/endpoints/:id`, async (c) => {
    const { project, location, id } = c.req.param();
    await guard(api.auth, c.req.raw.headers, 'aiplatform.endpoints.update', project);
    await checkLocation(api, location);
    const version = apiVersionOf(c.req.url);
    const request = parseMessage((await body(api, c)).value, 'Endpoint', version);
    const patch: { displayName?: string; description?: string; labels?: Record<string, string> | null; trafficSplit?: Record<string, number>; etag?: string } = {};
    for (const path of updateMask(c, 'Endpoint', ['display_name', 'description', 'labels', 'traffic_split'], version)) {
      if (path === 'display_name') patch.displayName = displayNameOf(request, 'endpoint');
      else if (path === 'description') patch.description = descriptionOf(request, 'endpoint');
      else if (path === 'labels') patch.labels = labelsOf(request, 'endpoint');
      else patch.trafficSplit = trafficSplitOf(request.raw('trafficSplit'));
    }
    const etag = request.string('etag');
    if (etag) patch.etag = etag;
    return protoJson(c.req.raw, endpointJson(await tuning.registry.updateEndpoint(project, location, id, patch)), 'Endpoint');
  });

  app.delete(`${parent}/models/:id`, async (c) => {
    const { project, location, id } = c.req.param();
    await guard(api.auth, c.req.raw.headers, 'aiplatform.models.delete', project);
    await checkLocation(api, location);
    const op = await tuning.operations.run(project, location, '', 'DeleteOperationMetadata', 'google.protobuf.Empty', async () => {
      await tuning.registry.deleteModel(project, location, id);
      return {};
    });
    return protoJson(c.req.raw, op, 'google.longrunning.Operation');
  });

  // Operations live under the location, an endpoint or a model.
  for (const under of ['', '/endpoints/:resource', '/models/:resource']) {
    const base = `${parent}${under}/operations`;
    const parentOf = (c: Context): string => (under ? `${under.split('/')[1]}/${c.req.param('resource')}` : '');
    app.get(base, async (c) => {
      const { project, location } = c.req.param() as Record<string, string>;
      await guard(api.auth, c.req.raw.headers, 'aiplatform.operations.list', project);
      await checkLocation(api, location);
      const { operations, nextPageToken } = await tuning.operations.list(project, location, parentOf(c), { ...listOptions(c), filter: c.req.query('filter') });
      return protoJson(c.req.raw, { ...(operations.length ? { operations } : {}), ...(nextPageToken ? { nextPageToken } : {}) }, 'google.longrunning.ListOperationsResponse');
    });
    app.get(`${base}/:op`, async (c) => {
      const { project, location, op } = c.req.param() as Record<string, string>;
      if (op.includes(':')) throw notFound(`The requested URL ${new URL(c.req.url).pathname} was not found on this server.`);
      await guard(api.auth, c.req.raw.headers, 'aiplatform.operations.get', project);
      await checkLocation(api, location);
      return protoJson(c.req.raw, await tuning.operations.get(project, location, parentOf(c), op), 'google.longrunning.Operation');
    });
    app.delete(`${base}/:op`, async (c) => {
      const { project, location, op } = c.req.param() as Record<string, string>;
      await guard(api.auth, c.req.raw.headers, 'aiplatform.operations.delete', project);
      await checkLocation(api, location);
      await tuning.operations.delete(project, location, parentOf(c), op);
      return c.json({});
    });
    app.post(`${base}/:call`, async (c) => {
      const { project, location, call } = c.req.param() as Record<string, string>;
      const m = /^([^:]+):(wait|cancel)$/.exec(call);
      if (!m) throw notFound(`The requested URL ${new URL(c.req.url).pathname} was not found on this server.`);
      await guard(api.auth, c.req.raw.headers, m[2] === 'wait' ? 'aiplatform.operations.get' : 'aiplatform.operations.cancel', project);
      await checkLocation(api, location);
      const raw = (await body(api, c)).value;
      if (m[2] === 'cancel') {
        await tuning.operations.cancel(project, location, parentOf(c), m[1]!);
        return c.json({});
      }
      parseMessage(raw, 'google.longrunning.WaitOperationRequest', apiVersionOf(c.req.url)); // {timeout: "5s"} or {}
      // Every tunekit operation is done when it is created, so :wait returns at once (any timeout).
      return protoJson(c.req.raw, await tuning.operations.get(project, location, parentOf(c), m[1]!), 'google.longrunning.Operation');
    });
  }
}

/**
 * models.list filters tunekit honours: `display_name="NAME"` and `labels.KEY="VALUE"` (or
 * `labels.KEY:*`, the label is present), joined by AND; anything else is 400 naming the filter.
 */
function parseModelFilter(filter: string | undefined): { displayName?: string; labels?: [string, string | undefined][] } {
  if (filter === undefined || filter.trim() === '') return {};
  const out: { displayName?: string; labels?: [string, string | undefined][] } = {};
  const bad = () => fieldError('filter', `filter ${JSON.stringify(filter)} is not supported: use display_name="NAME" and labels.KEY="VALUE" (or labels.KEY:*), joined by AND.`);
  const unquote = (q: string): string => {
    try {
      return JSON.parse(q) as string;
    } catch {
      throw bad();
    }
  };
  for (const clause of filter.trim().split(/\s+AND\s+/)) {
    const name = /^(?:display_name|displayName)\s*=\s*("(?:[^"\\]|\\.)*")$/.exec(clause.trim());
    const label = /^labels\.([a-z][a-z0-9_-]{0,62})\s*(?:=\s*("(?:[^"\\]|\\.)*")|:\s*\*)$/.exec(clause.trim());
    if (name && out.displayName === undefined) out.displayName = unquote(name[1]!);
    else if (label) (out.labels ??= []).push([label[1]!, label[2] === undefined ? undefined : unquote(label[2])]);
    else throw bad();
  }
  return out;
}

function deployedModelJson(project: string, location: string, d: DeployedModelRecord): Record<string, unknown> {
  return {
    id: d.id, model: `projects/${project}/locations/${location}/models/${d.modelId}`, modelVersionId: String(d.modelVersion),
    ...(d.checkpointId !== undefined ? { checkpointId: d.checkpointId } : {}), createTime: d.createTime,
  };
}

/**
 * The update_mask query parameter (FieldMask: comma-separated paths, camelCase or snake_case) as
 * snake_case paths, each one of `allowed`; 400 naming update_mask for a missing mask, a path that is not a
 * field of `message`, or one tunekit does not update.
 */
function updateMask(c: Context, message: string, allowed: string[], version: ApiVersion): string[] {
  const mask = c.req.query('updateMask') ?? c.req.query('update_mask');
  if (!mask) throw fieldError('update_mask', `'update_mask' is required: the fields to update (${allowed.join(', ')}).`);
  const fields = Object.values(messageDescriptor(version, message)?.fields ?? {}).map((f) => f.name);
  const paths = mask.split(',').map((p) => snakeCase(p.trim()));
  for (const path of paths) {
    if (allowed.includes(path)) continue;
    if (!fields.includes(path.split('.')[0]!)) throw fieldError('update_mask', `update_mask path ${JSON.stringify(path)} is not a field of ${message}.`);
    throw fieldError('update_mask', `update_mask path ${JSON.stringify(path)} is not supported by tunekit: update ${allowed.join(', ')}.`, 'FIELD_NOT_SUPPORTED');
  }
  return [...new Set(paths)];
}

function displayNameOf(request: Message, resource: string): string {
  const name = request.string('displayName');
  if (!name) throw fieldError(`${resource}.display_name`, `'${resource}.display_name' cannot be empty.`);
  checkDisplayName(name, `${resource}.display_name`);
  return name;
}

function descriptionOf(request: Message, resource: string): string {
  const description = request.string('description') ?? '';
  checkDescription(description, `${resource}.description`);
  return description;
}

function labelsOf(request: Message, resource: string): Record<string, string> | null {
  const labels = request.raw('labels') as Record<string, string> | undefined;
  checkLabels(labels, `${resource}.labels`);
  return labels ?? null;
}

/** map<string, int32> as checked by parseMessage (numbers or numeric strings). */
function trafficSplitOf(v: unknown): Record<string, number> {
  if (v === undefined || v === null || typeof v !== 'object') return {};
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, Number(x)]));
}

function listOptions(c: Context): { pageSize?: number; pageToken?: string } {
  const raw = c.req.query('pageSize') ?? c.req.query('page_size');
  const n = raw === undefined || raw === '' ? undefined : Number(raw);
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) throw invalidArgument(`Invalid value at 'page_size' (TYPE_INT32), ${JSON.stringify(raw)}`);
  const pageToken = c.req.query('pageToken') || c.req.query('page_token') || undefined;
  return { ...(n ? { pageSize: n } : {}), ...(pageToken ? { pageToken } : {}) };
}

/** A Model in Vertex's JSON, at `version` (default the newest). */
function modelJson(
  m: ModelRecord, version?: number, deployed: { endpoint: string; deployedModelId: string; version: number }[] = [],
): Record<string, unknown> {
  const v = m.versions.find((x) => x.version === version) ?? m.versions[m.versions.length - 1];
  const out: Record<string, unknown> = { name: m.name, displayName: m.displayName };
  if (v) {
    out.versionId = String(v.version);
    out.versionAliases = v.version === m.versions[m.versions.length - 1]?.version ? ['default'] : [];
    out.versionCreateTime = v.createTime;
    out.versionUpdateTime = v.createTime; // versions are not updated after they are registered
    const refs = deployed.filter((r) => r.version === v.version);
    if (refs.length) out.deployedModels = refs.map((r) => ({ endpoint: r.endpoint, deployedModelId: r.deployedModelId }));
    out.artifactUri = v.adapterUri;
    if (v.checkpoints.length) out.checkpoints = v.checkpoints.map((c) => ({ checkpointId: c.checkpointId, epoch: String(c.epoch), step: String(c.step) }));
  }
  if (m.description) out.description = m.description;
  out.baseModelSource = { modelGardenSource: { publicModelName: m.baseModel } };
  if (m.labels) out.labels = m.labels;
  out.createTime = m.createTime;
  out.updateTime = m.updateTime;
  out.etag = modelEtag(m);
  return out;
}

function endpointJson(e: EndpointRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { name: e.name, displayName: e.displayName };
  if (e.description) out.description = e.description;
  if (e.deployedModels.length) {
    out.deployedModels = e.deployedModels.map((d) => deployedModelJson(e.project, e.location, d));
    out.trafficSplit = Object.fromEntries(e.deployedModels.filter((d) => d.trafficPercent > 0).map((d) => [d.id, d.trafficPercent]));
  }
  if (e.labels) out.labels = e.labels;
  out.createTime = e.createTime;
  out.updateTime = e.updateTime;
  out.etag = endpointEtag(e);
  return out;
}
