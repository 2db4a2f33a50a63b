// The model registry and endpoints as tuning jobs fill them (tables models, model_versions, endpoints,
// deployed_models of migration 2). A succeeded job registers a new model (@1), or with continuous tuning
// (pre_tuned_model) a new version of the pre-tuned model, and deploys it on a new endpoint, as Vertex does. `commitTunedModel`
// does all of that and ends the job in one IMMEDIATE transaction, so a crash leaves either nothing or
// everything, and a job is never registered twice. Lists are newest first, in pages bounded in items
// and in bytes (limits.ts); page tokens are offsets, and any other token is INVALID_ARGUMENT. A new
// model and its endpoint carry the job's labels.

import { createHash } from 'node:crypto';
import { AlreadyExistsError, FailedPreconditionError, NotFoundError, InvalidRequestError, TunekitError } from '../../errors.js';

/** A stale etag (google.rpc.Code ABORTED, HTTP 409). */
class AbortedError extends TunekitError {
  constructor(message: string) {
    super('ABORTED' as never, message);
  }
}
import { newNumericId, now, type PlatformDb, type SqlValue } from '../db.js';
import type { TuningJobs } from '../jobs.js';
import { fitPage, LIMITS, type PageOptions } from '../limits.js';

export interface CheckpointInfo {
  checkpointId: string;
  epoch: number;
  step: number;
  /** Where the checkpoint's PEFT adapter is stored (gs://.../checkpoints/N/), for deploying it. */
  adapterUri?: string;
}

export interface ModelVersionRecord {
  modelId: string;
  version: number;
  tuningJob?: string;
  adapterUri: string;
  checkpoints: CheckpointInfo[];
  createTime: string;
}

export interface ModelRecord {
  id: string;
  /** projects/{p}/locations/{l}/models/{id} */
  name: string;
  project: string;
  location: string;
  displayName: string;
  /** The publisher model it was tuned from: publishers/{pub}/models/{name}. */
  baseModel: string;
  createTime: string;
  updateTime: string;
  versions: ModelVersionRecord[];
  /** map<string, string>; a tuning job's labels. */
  labels?: Record<string, string>;
  /** Model.description (models.patch). */
  description?: string;
}

export interface DeployedModelRecord {
  id: string;
  modelId: string;
  modelVersion: number;
  /** A stored checkpoint of the version, when one is served instead of the final adapter. */
  checkpointId?: string;
  trafficPercent: number;
  createTime: string;
}

export interface EndpointRecord {
  id: string;
  /** projects/{p}/locations/{l}/endpoints/{id} */
  name: string;
  project: string;
  location: string;
  displayName: string;
  createTime: string;
  updateTime: string;
  deployedModels: DeployedModelRecord[];
  labels?: Record<string, string>;
  description?: string;
}

/** What an endpoint serves: the base model and the adapter of one deployed model version. */
export interface EndpointTarget {
  endpoint: EndpointRecord;
  deployed: DeployedModelRecord;
  model: ModelRecord;
  version: ModelVersionRecord;
}

interface ModelRow { id: string; project: string; location: string; display_name: string; base_model: string; create_time: string; update_time: string; labels: string | null; description: string | null }
interface VersionRow { model_id: string; version: number; tuning_job: string | null; adapter_uri: string; checkpoints: string | null; create_time: string }
interface EndpointRow { id: string; project: string; location: string; display_name: string; create_time: string; update_time: string; labels: string | null; description: string | null }
interface DeployedRow { id: string; endpoint_id: string; model_id: string; model_version: number; traffic_percent: number; create_time: string; checkpoint_id: string | null }

const MAX_PAGE = LIMITS.pageSize.models;

export class Registry {
  /** Picks among an endpoint's deployed models by their traffic shares (tests seed it). */
  random: () => number = Math.random;

  constructor(private readonly db: PlatformDb) {}

  /**
   * Registers the adapter of a succeeded job as a model version, deploys it on a new endpoint and ends
   * the job SUCCEEDED with `result(model, version, endpoint)` as its result, all in one transaction.
   * If the job already has a registered version (a worker re-run after a crash past this point), that
   * registration is kept and returned. With `job.attempt`, nothing happens (finished: false) unless the
   * job is still held by that attempt.
   */
  async commitTunedModel(
    jobs: TuningJobs,
    job: { id: string; project: string; location: string; displayName: string; baseModel: string; labels?: Record<string, string>; parentModelId?: string; attempt?: number },
    version: { adapterUri: string; checkpoints: CheckpointInfo[] },
    result: (t: { model: string; endpoint: string }) => unknown,
  ): Promise<{ model: string; endpoint: string; finished: boolean }> {
    return await this.db.transaction(async () => {
      if (job.attempt !== undefined) {
        // Fenced: a run that no longer holds the job (taken over by another worker) registers nothing.
        const held = await this.db.get("SELECT 1 FROM tuning_jobs WHERE id = ? AND attempts = ? AND state IN ('JOB_STATE_RUNNING', 'JOB_STATE_CANCELLING')", job.id, job.attempt);
        if (!held) return { model: '', endpoint: '', finished: false };
      }
      const existing = (await this.db.get(`SELECT v.model_id, v.version, d.endpoint_id FROM model_versions v
             LEFT JOIN deployed_models d ON d.model_id = v.model_id AND d.model_version = v.version
           WHERE v.tuning_job = ? LIMIT 1`, job.id)) as { model_id: string; version: number; endpoint_id: string | null } | undefined;
      const prefix = `projects/${job.project}/locations/${job.location}`;
      let model: string;
      let endpoint: string;
      if (existing) {
        model = `${prefix}/models/${existing.model_id}@${existing.version}`;
        endpoint = `${prefix}/endpoints/${existing.endpoint_id ?? ''}`;
      } else {
        const t = now();
        // A new Model per job, as Vertex does: a job makes a version of an existing model only through
        // continuous tuning (TuningJob.pre_tuned_model without a tuned_model_display_name); the same
        // display name does not make a version (tuned_model_display_name's comment in tuning_job.proto).
        // A parent deleted while the job ran leaves the result a Model of its own.
        const parent = job.parentModelId === undefined ? undefined
          : (await this.db.get('SELECT id FROM models WHERE id = ? AND project = ? AND location = ?', job.parentModelId, job.project, job.location)) as { id: string } | undefined;
        const modelId = parent?.id ?? newNumericId();
        if (parent) {
          await this.db.run('UPDATE models SET update_time = ? WHERE id = ?', t, modelId);
        } else {
          await this.db.run('INSERT INTO models (id, project, location, display_name, base_model, create_time, update_time, labels) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', modelId, job.project, job.location, job.displayName, job.baseModel, t, t, labelsColumn(job.labels));
        }
        const v = ((await this.db.get('SELECT COALESCE(MAX(version), 0) + 1 AS v FROM model_versions WHERE model_id = ?', modelId)) as { v: number }).v;
        await this.db.run('INSERT INTO model_versions (model_id, version, tuning_job, adapter_uri, checkpoints, create_time) VALUES (?, ?, ?, ?, ?, ?)', modelId, v, job.id, version.adapterUri, JSON.stringify(version.checkpoints), t);
        const endpointId = newNumericId();
        await this.db.run('INSERT INTO endpoints (id, project, location, display_name, create_time, update_time, labels) VALUES (?, ?, ?, ?, ?, ?, ?)', endpointId, job.project, job.location, job.displayName, t, t, labelsColumn(job.labels));
        await this.db.run('INSERT INTO deployed_models (id, endpoint_id, model_id, model_version, traffic_percent, create_time) VALUES (?, ?, ?, ?, 100, ?)', newNumericId(), endpointId, modelId, v, t);
        model = `${prefix}/models/${modelId}@${v}`;
        endpoint = `${prefix}/endpoints/${endpointId}`;
      }
      const finished = await jobs.finish(job.id, { state: 'JOB_STATE_SUCCEEDED', result: result({ model, endpoint }) }, job.attempt);
      return { model, endpoint, finished };
    });
  }

  // ---- models ----

  /** `id` may carry a version (`123@2`); NOT_FOUND naming the model otherwise. */
  async getModel(project: string, location: string, id: string): Promise<ModelRecord> {
    const { modelId } = splitVersion(id);
    const row = (await this.db.get('SELECT * FROM models WHERE id = ? AND project = ? AND location = ?', modelId, project, location)) as ModelRow | undefined;
    if (!row) throw new NotFoundError(`Model projects/${project}/locations/${location}/models/${id} does not exist.`);
    return await this.toModel(row);
  }

  /** Newest first; pages of at most `pageSize` (100) models and about LIMITS.listPageBytes of JSON (by `sizeOf`). */
  async listModels(
    project: string, location: string,
    opts: PageOptions<ModelRecord> & { displayName?: string; labels?: [string, string | undefined][] } = {},
  ): Promise<{ models: ModelRecord[]; nextPageToken?: string }> {
    const { size, offset } = page(opts);
    let where = 'project = ? AND location = ?';
    const args: SqlValue[] = [project, location];
    if (opts.displayName !== undefined) {
      where += ' AND display_name = ?';
      args.push(opts.displayName);
    }
    const label = this.db.jsonField('labels');
    for (const [key, value] of opts.labels ?? []) {
      where += value === undefined ? ` AND ${label.sql} IS NOT NULL` : ` AND ${label.sql} = ?`;
      args.push(label.arg(key), ...(value === undefined ? [] : [value]));
    }
    const rows = (await this.db.all(`SELECT * FROM models WHERE ${where} ORDER BY create_time DESC, id DESC LIMIT ? OFFSET ?`, ...args, size + 1, offset)) as ModelRow[];
    const all: ModelRecord[] = [];
    for (const r of rows.slice(0, size)) all.push(await this.toModel(r));
    const models = all.slice(0, fitPage(all, opts.sizeOf, opts.maxBytes));
    return rows.length > models.length ? { models, nextPageToken: pageToken(offset + models.length) } : { models };
  }

  /** A version of a model: `@N`, or the newest when `id` carries none. */
  modelVersion(model: ModelRecord, id: string): ModelVersionRecord {
    const { version } = splitVersion(id);
    const v = version === undefined ? model.versions[model.versions.length - 1] : model.versions.find((x) => x.version === version);
    if (!v) throw new NotFoundError(`Model ${model.name}@${version ?? ''} does not exist.`);
    return v;
  }

  // ---- endpoints ----

  async getEndpoint(project: string, location: string, id: string): Promise<EndpointRecord> {
    const row = (await this.db.get('SELECT * FROM endpoints WHERE id = ? AND project = ? AND location = ?', id, project, location)) as EndpointRow | undefined;
    if (!row) throw new NotFoundError(`Endpoint projects/${project}/locations/${location}/endpoints/${id} does not exist.`);
    return await this.toEndpoint(row);
  }

  /** Newest first; pages of at most `pageSize` (100) endpoints and about LIMITS.listPageBytes of JSON (by `sizeOf`). */
  async listEndpoints(project: string, location: string, opts: PageOptions<EndpointRecord> = {}): Promise<{ endpoints: EndpointRecord[]; nextPageToken?: string }> {
    const { size, offset } = page(opts);
    const rows = (await this.db.all('SELECT * FROM endpoints WHERE project = ? AND location = ? ORDER BY create_time DESC, id DESC LIMIT ? OFFSET ?', project, location, size + 1, offset)) as EndpointRow[];
    const all: EndpointRecord[] = [];
    for (const r of rows.slice(0, size)) all.push(await this.toEndpoint(r));
    const endpoints = all.slice(0, fitPage(all, opts.sizeOf, opts.maxBytes));
    return rows.length > endpoints.length ? { endpoints, nextPageToken: pageToken(offset + endpoints.length) } : { endpoints };
  }

  /**
   * The model version that serves one request to an endpoint: a deployed model drawn with the
   * probabilities of the endpoint's trafficSplit (percentages); INVALID_ARGUMENT when nothing is deployed.
   */
  async endpointTarget(project: string, location: string, id: string): Promise<EndpointTarget> {
    const endpoint = await this.getEndpoint(project, location, id);
    const withTraffic = endpoint.deployedModels.filter((d) => d.trafficPercent > 0);
    let deployed: DeployedModelRecord | undefined;
    if (withTraffic.length > 0) {
      const total = withTraffic.reduce((n, d) => n + d.trafficPercent, 0);
      let x = this.random() * total;
      deployed = withTraffic.find((d) => (x -= d.trafficPercent) < 0) ?? withTraffic[withTraffic.length - 1];
    } else {
      deployed = endpoint.deployedModels[endpoint.deployedModels.length - 1];
    }
    if (!deployed) throw new InvalidRequestError(`Endpoint ${endpoint.name} has no deployed model.`);
    const model = await this.getModel(project, location, deployed.modelId);
    const version = this.modelVersion(model, `${deployed.modelId}@${deployed.modelVersion}`);
    return { endpoint, deployed, model, version };
  }

  /**
   * Deploys a model version on an endpoint, with DeployModelRequest.traffic_split's rules: a non-empty
   * split (deployed model id -> percent, "0" for the model being deployed, summing to 100) replaces the
   * endpoint's; an empty one leaves it as it is (the new model gets 0%), except on an endpoint with
   * nothing deployed, where the new model gets 100%.
   */
  async deploy(
    project: string, location: string, endpointId: string, modelName: string, trafficSplit: Record<string, number> = {}, checkpointId?: string,
  ): Promise<DeployedModelRecord> {
    return await this.db.transaction(async () => {
      const endpoint = await this.getEndpoint(project, location, endpointId);
      const model = await this.getModel(project, location, modelName);
      const v = this.modelVersion(model, modelName);
      if (checkpointId !== undefined && !v.checkpoints.some((k) => k.checkpointId === checkpointId && k.adapterUri)) {
        throw new InvalidRequestError(
          `deployed_model.checkpoint_id ${JSON.stringify(checkpointId)} is not a stored checkpoint of ${model.name}@${v.version}` +
            ` (stored: ${v.checkpoints.filter((k) => k.adapterUri).map((k) => k.checkpointId).join(', ') || 'none'}).`,
        );
      }
      const existing = endpoint.deployedModels.map((d) => d.id);
      const split = checkTrafficSplit(trafficSplit, [...existing, '0'], 'traffic_split');
      const t = now();
      const id = newNumericId();
      let share: number;
      if (split) {
        for (const d of existing) await this.setTraffic(d, split[d] ?? 0);
        share = split['0'] ?? 0;
      } else {
        share = existing.length === 0 ? 100 : 0;
      }
      await this.db.run('INSERT INTO deployed_models (id, endpoint_id, model_id, model_version, traffic_percent, create_time, checkpoint_id) VALUES (?, ?, ?, ?, ?, ?, ?)', id, endpoint.id, model.id, v.version, share, t, checkpointId ?? null);
      await this.db.run('UPDATE endpoints SET update_time = ? WHERE id = ?', t, endpoint.id);
      return { id, modelId: model.id, modelVersion: v.version, trafficPercent: share, createTime: t, ...(checkpointId !== undefined ? { checkpointId } : {}) };
    });
  }

  /**
   * Removes a deployed model, with UndeployModelRequest.traffic_split's rules: a non-empty split
   * replaces the endpoint's (over the models that stay; the undeployed one may appear with 0); without
   * one, a model that still has traffic cannot be undeployed (FAILED_PRECONDITION), unless it is the last.
   */
  async undeploy(project: string, location: string, endpointId: string, deployedModelId: string, trafficSplit: Record<string, number> = {}): Promise<void> {
    await this.db.transaction(async () => {
      const endpoint = await this.getEndpoint(project, location, endpointId);
      const target = endpoint.deployedModels.find((d) => d.id === deployedModelId);
      if (!target) throw new NotFoundError(`Deployed model ${deployedModelId} does not exist on ${endpoint.name}.`);
      const staying = endpoint.deployedModels.filter((d) => d.id !== deployedModelId).map((d) => d.id);
      const split = staying.length === 0 ? undefined : checkTrafficSplit(trafficSplit, [...staying, deployedModelId], 'traffic_split');
      if (split && (split[deployedModelId] ?? 0) !== 0) {
        throw new InvalidRequestError(`traffic_split gives ${split[deployedModelId]}% to deployed model ${deployedModelId}, which is being undeployed.`);
      }
      if (!split && staying.length > 0 && target.trafficPercent > 0) {
        throw new FailedPreconditionError(
          `Deployed model ${deployedModelId} has ${target.trafficPercent}% of ${endpoint.name}'s traffic: undeploy it with a traffic_split that gives its share to the models that stay.`,
        );
      }
      await this.db.run('DELETE FROM deployed_models WHERE id = ? AND endpoint_id = ?', deployedModelId, endpoint.id);
      if (split) for (const d of staying) await this.setTraffic(d, split[d] ?? 0);
      await this.db.run('UPDATE endpoints SET update_time = ? WHERE id = ?', now(), endpoint.id);
    });
  }

  /** A new endpoint with nothing deployed (EndpointService.CreateEndpoint). */
  async createEndpoint(project: string, location: string, e: { displayName: string; description?: string; labels?: Record<string, string>; id?: string }): Promise<EndpointRecord> {
    return await this.db.transaction(async () => {
      const id = e.id ?? newNumericId();
      if ((await this.db.get('SELECT 1 FROM endpoints WHERE id = ?', id))) throw new AlreadyExistsError(`Endpoint projects/${project}/locations/${location}/endpoints/${id} already exists.`);
      const t = now();
      await this.db.run('INSERT INTO endpoints (id, project, location, display_name, create_time, update_time, labels, description) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', id, project, location, e.displayName, t, t, labelsColumn(e.labels), e.description || null);
      return await this.getEndpoint(project, location, id);
    });
  }

  /** Deletes an endpoint; FAILED_PRECONDITION while a model is deployed on it (undeploy first, as Vertex requires). */
  async deleteEndpoint(project: string, location: string, id: string): Promise<void> {
    await this.db.transaction(async () => {
      const endpoint = await this.getEndpoint(project, location, id);
      if (endpoint.deployedModels.length > 0) {
        throw new FailedPreconditionError(`Endpoint ${endpoint.name} has ${endpoint.deployedModels.length} deployed model(s) (${endpoint.deployedModels.map((d) => d.id).join(', ')}): undeploy them first.`);
      }
      await this.db.run('DELETE FROM endpoints WHERE id = ?', endpoint.id);
    });
  }

  /**
   * Updates a model's display name, description and/or labels (ModelService.UpdateModel with an update
   * mask), with optimistic concurrency: when `etag` is given it must be the model's current one (ABORTED
   * otherwise).
   */
  async updateModel(project: string, location: string, id: string, patch: { displayName?: string; description?: string; labels?: Record<string, string> | null; etag?: string }): Promise<ModelRecord> {
    return await this.db.transaction(async () => {
      const model = await this.getModel(project, location, id);
      if (patch.etag !== undefined && patch.etag !== modelEtag(model)) {
        throw new AbortedError(`The etag ${JSON.stringify(patch.etag)} of ${model.name} is stale (the model changed since it was read): read it again and retry.`);
      }
      const t = now();
      if (patch.displayName !== undefined) (await this.db.run('UPDATE models SET display_name = ? WHERE id = ?', patch.displayName, model.id));
      if (patch.description !== undefined) (await this.db.run('UPDATE models SET description = ? WHERE id = ?', patch.description || null, model.id));
      if (patch.labels !== undefined) (await this.db.run('UPDATE models SET labels = ? WHERE id = ?', labelsColumn(patch.labels ?? undefined), model.id));
      await this.db.run('UPDATE models SET update_time = ? WHERE id = ?', t, model.id);
      return await this.getModel(project, location, model.id);
    });
  }

  /**
   * Updates an endpoint (EndpointService.UpdateEndpoint with an update mask): display name, description,
   * labels, and the traffic split (deployed model id -> percent over every deployed model, summing to 100;
   * models left out get 0), with the etag's optimistic concurrency as updateModel.
   */
  async updateEndpoint(
    project: string, location: string, id: string,
    patch: { displayName?: string; description?: string; labels?: Record<string, string> | null; trafficSplit?: Record<string, number>; etag?: string },
  ): Promise<EndpointRecord> {
    return await this.db.transaction(async () => {
      const endpoint = await this.getEndpoint(project, location, id);
      if (patch.etag !== undefined && patch.etag !== endpointEtag(endpoint)) {
        throw new AbortedError(`The etag ${JSON.stringify(patch.etag)} of ${endpoint.name} is stale (the endpoint changed since it was read): read it again and retry.`);
      }
      if (patch.trafficSplit !== undefined) {
        const deployed = endpoint.deployedModels.map((d) => d.id);
        const split = deployed.length === 0 && Object.keys(patch.trafficSplit).length === 0
          ? {}
          : checkTrafficSplit(patch.trafficSplit, deployed, 'endpoint.traffic_split');
        if (!split) throw new InvalidRequestError(`endpoint.traffic_split is empty but ${endpoint.name} has deployed models (${deployed.join(', ')}): give them percentages summing to 100.`);
        for (const d of deployed) await this.setTraffic(d, split[d] ?? 0);
      }
      if (patch.displayName !== undefined) (await this.db.run('UPDATE endpoints SET display_name = ? WHERE id = ?', patch.displayName, endpoint.id));
      if (patch.description !== undefined) (await this.db.run('UPDATE endpoints SET description = ? WHERE id = ?', patch.description || null, endpoint.id));
      if (patch.labels !== undefined) (await this.db.run('UPDATE endpoints SET labels = ? WHERE id = ?', labelsColumn(patch.labels ?? undefined), endpoint.id));
      await this.db.run('UPDATE endpoints SET update_time = ? WHERE id = ?', now(), endpoint.id);
      return await this.getEndpoint(project, location, endpoint.id);
    });
  }

  /** Where a model's versions are deployed (Model.deployedModels: DeployedModelRef). */
  async deployedRefs(modelId: string): Promise<{ endpoint: string; deployedModelId: string; version: number }[]> {
    const rows = (await this.db.all('SELECT d.id, d.model_version, e.id AS endpoint_id, e.project, e.location FROM deployed_models d JOIN endpoints e ON e.id = d.endpoint_id WHERE d.model_id = ? ORDER BY d.create_time, d.id', modelId)) as { id: string; model_version: number; endpoint_id: string; project: string; location: string }[];
    return rows.map((r) => ({ endpoint: `projects/${r.project}/locations/${r.location}/endpoints/${r.endpoint_id}`, deployedModelId: r.id, version: r.model_version }));
  }

  /** Deletes a model and its versions; FAILED_PRECONDITION while any version is deployed (Vertex's rule). */
  async deleteModel(project: string, location: string, id: string): Promise<void> {
    await this.db.transaction(async () => {
      const model = await this.getModel(project, location, id);
      if (/@/.test(id)) throw new InvalidRequestError(`models.delete takes a model, not a version: ${id}.`);
      const refs = await this.deployedRefs(model.id);
      if (refs.length > 0) {
        throw new FailedPreconditionError(`Model ${model.name} is deployed on ${[...new Set(refs.map((r) => r.endpoint))].join(', ')}: undeploy it first.`);
      }
      await this.db.run('DELETE FROM model_versions WHERE model_id = ?', model.id);
      await this.db.run('DELETE FROM models WHERE id = ?', model.id);
    });
  }

  private async setTraffic(deployedModelId: string, percent: number): Promise<void> {
    await this.db.run('UPDATE deployed_models SET traffic_percent = ? WHERE id = ?', percent, deployedModelId);
  }

  private async toModel(r: ModelRow): Promise<ModelRecord> {
    const versions = ((await this.db.all('SELECT * FROM model_versions WHERE model_id = ? ORDER BY version', r.id)) as VersionRow[]).map((v) => {
      const rec: ModelVersionRecord = {
        modelId: v.model_id, version: v.version, adapterUri: v.adapter_uri,
        checkpoints: v.checkpoints ? JSON.parse(v.checkpoints) as CheckpointInfo[] : [], createTime: v.create_time,
      };
      if (v.tuning_job !== null) rec.tuningJob = v.tuning_job;
      return rec;
    });
    return {
      id: r.id, name: `projects/${r.project}/locations/${r.location}/models/${r.id}`, project: r.project, location: r.location,
      displayName: r.display_name, baseModel: r.base_model, createTime: r.create_time, updateTime: r.update_time, versions,
      ...(r.labels ? { labels: JSON.parse(r.labels) as Record<string, string> } : {}),
      ...(r.description ? { description: r.description } : {}),
    };
  }

  private async toEndpoint(r: EndpointRow): Promise<EndpointRecord> {
    const deployedModels = ((await this.db.all('SELECT * FROM deployed_models WHERE endpoint_id = ? ORDER BY create_time, id', r.id)) as DeployedRow[])
      .map((d) => ({
        id: d.id, modelId: d.model_id, modelVersion: d.model_version, trafficPercent: d.traffic_percent, createTime: d.create_time,
        ...(d.checkpoint_id !== null ? { checkpointId: d.checkpoint_id } : {}),
      }));
    return {
      id: r.id, name: `projects/${r.project}/locations/${r.location}/endpoints/${r.id}`, project: r.project, location: r.location,
      displayName: r.display_name, createTime: r.create_time, updateTime: r.update_time, deployedModels,
      ...(r.labels ? { labels: JSON.parse(r.labels) as Record<string, string> } : {}),
      ...(r.description ? { description: r.description } : {}),
    };
  }
}

/** `123@2` -> model 123, version 2; `123` -> no version. */
/**
 * A traffic split (deployed model id -> percent) checked as Vertex checks it: keys among `allowed`,
 * integer percents in [0, 100] summing to 100. Undefined when empty (no change asked).
 */
export function checkTrafficSplit(split: Record<string, number>, allowed: string[], field: string): Record<string, number> | undefined {
  const entries = Object.entries(split);
  if (entries.length === 0) return undefined;
  let sum = 0;
  for (const [id, p] of entries) {
    if (!allowed.includes(id)) {
      throw new InvalidRequestError(`${field} names deployed model ${JSON.stringify(id)}, which is not on the endpoint (use "0" for the model being deployed).`);
    }
    if (!Number.isInteger(p) || p < 0 || p > 100) throw new InvalidRequestError(`${field}[${JSON.stringify(id)}] must be an integer percentage in [0, 100], got ${p}.`);
    sum += p;
  }
  if (sum !== 100) throw new InvalidRequestError(`${field} must add up to 100, got ${sum}.`);
  return split;
}

/** A model's etag: changes whenever the model does (its update time, display name, labels, versions). */
export function modelEtag(m: ModelRecord): string {
  return createHash('sha256').update(JSON.stringify([m.id, m.updateTime, m.displayName, m.description ?? null, m.labels ?? null, m.versions.length])).digest('base64url').slice(0, 16);
}

/** An endpoint's etag, likewise. */
export function endpointEtag(e: EndpointRecord): string {
  return createHash('sha256').update(JSON.stringify([e.id, e.updateTime, e.displayName, e.description ?? null, e.labels ?? null, e.deployedModels.map((d) => [d.id, d.trafficPercent])])).digest('base64url').slice(0, 16);
}

function labelsColumn(labels: Record<string, string> | undefined): string | null {
  return labels && Object.keys(labels).length ? JSON.stringify(labels) : null;
}

export function splitVersion(id: string): { modelId: string; version?: number } {
  const at = id.lastIndexOf('@');
  if (at < 0) return { modelId: id };
  const v = Number(id.slice(at + 1));
  if (!Number.isInteger(v) || v < 1) throw new InvalidRequestError(`model version in ${JSON.stringify(id)} is not valid: expected MODEL@N with N >= 1`);
  return { modelId: id.slice(0, at), version: v };
}

/** Page size and offset; the token is the offset in decimal digits (base64url), anything else is INVALID_ARGUMENT. */
function page(opts: { pageSize?: number; pageToken?: string }): { size: number; offset: number } {
  const pageSize = opts.pageSize ?? MAX_PAGE;
  if (!Number.isInteger(pageSize) || pageSize < 0) throw new InvalidRequestError(`pageSize must be a non-negative integer, got ${pageSize}`);
  let offset = 0;
  if (opts.pageToken) {
    const digits = Buffer.from(opts.pageToken, 'base64url').toString('utf8');
    offset = /^(0|[1-9][0-9]{0,14})$/.test(digits) ? Number(digits) : NaN; // not 1e+300, -0, 0x10 nor past 2^53
    if (!Number.isSafeInteger(offset) || pageToken(offset) !== opts.pageToken) {
      throw new InvalidRequestError(`pageToken ${JSON.stringify(opts.pageToken)} is not valid`);
    }
  }
  return { size: Math.min(pageSize === 0 ? MAX_PAGE : pageSize, MAX_PAGE), offset };
}

function pageToken(offset: number): string {
  return Buffer.from(String(offset), 'utf8').toString('base64url');
}
