// The publisher-model catalog: base models registered from Hugging Face directories, served as
// `publishers/{publisher}/models/{name}`. Registrations live in a RegistrationStore; models are
// loaded on first use and cached, one in memory per name (least recently used dropped beyond the
// limit, never while its engine has work). Each base model has one serving engine (src/serve/engine.ts), made on first generation:
// its requests are batched together, and tuned models (base + LoRA adapter, behind endpoints) run
// in the same engine on the same one copy of the base weights, their adapters unmerged.

import * as path from 'node:path';
import { FailedPreconditionError, InvalidRequestError, NotFoundError } from '../errors.js';
import { loadModel, type LoadedModel, type ModelInfo } from '../models/model.js';
import { loadModelConfig } from '../models/loader.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import type { GenerationChunk, GenerationResult } from '../generate/sequence.js';
import type { BaseModelFiles } from '../platform/base-models.js';
import { Engine, DEFAULT_ENGINE_OPTIONS, type EngineOptions, type ServingEngine, type SubmitOptions } from '../serve/engine.js';

export interface ModelRegistration {
  publisher: string;
  name: string;
  /** Absolute path of the Hugging Face model directory; with `blobs`, where its files are stored (display only). */
  dir: string;
  /** The model's files in the blob store (key prefix `models/<id>/`, platform/base-models.ts): registered through object storage. */
  blobs?: string;
  /** RFC 3339. */
  createTime: string;
}

export interface RegistrationStore {
  get(publisher: string, name: string): Promise<ModelRegistration | undefined>;
  list(publisher?: string): Promise<ModelRegistration[]>;
  /** Adds or replaces the registration of (publisher, name); `check` runs in the same transaction, after the write (a throw undoes it). */
  put(registration: ModelRegistration, check?: () => Promise<void>): Promise<void>;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;

export function checkModelId(kind: 'publisher' | 'model', id: string): void {
  if (!NAME.test(id) || id.includes('..')) {
    throw new InvalidRequestError(`${kind} name ${JSON.stringify(id)} is not valid: use 1-128 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit`);
  }
}

/**
 * Checks that `dir` holds a model this code can load (config and tokenizer), then stores it: by path,
 * or, when `files` go through object storage, its files first (an upload that fails registers nothing).
 */
export async function registerPublisherModel(
  store: RegistrationStore, dir: string, opts: { name: string; publisher?: string; files?: BaseModelFiles },
): Promise<ModelRegistration> {
  const publisher = opts.publisher ?? 'google';
  checkModelId('publisher', publisher);
  checkModelId('model', opts.name);
  const abs = path.resolve(dir);
  const config = loadModelConfig(abs);
  Tokenizer.loadSync(abs, { vocabSize: config.vocabSize });
  let registration: ModelRegistration = { publisher, name: opts.name, dir: abs, createTime: new Date().toISOString() };
  if (!opts.files?.stored) {
    await store.put(registration);
    return registration;
  }
  // A sweep that removed these files (as unreferenced) just before the row was written: store them again.
  for (let attempt = 1; ; attempt++) {
    const blobs = await opts.files.store(abs);
    const stored = { ...registration, dir: opts.files.blobs.where(blobs), blobs };
    try {
      await store.put(stored, () => opts.files!.checkComplete(blobs));
      return stored;
    } catch (err) {
      if (!(err instanceof FailedPreconditionError) || attempt === 3) throw err;
    }
  }
}

/** A base model as a serving engine runs it: what the prompt side needs, and the engine to make. */
export interface ServableModel {
  model: ModelInfo;
  engine(opts: Partial<EngineOptions>): ServingEngine;
  /** Frees what the engine's runtime holds for this model (called once the catalog dropped it, idle). */
  dispose?(): Promise<void>;
}

/** How a catalog loads a base model for serving (`serve --engine`): tunekit's engine by default. */
export type ServingBackend = (dir: string) => Promise<ServableModel>;

/** tunekit's own engine over the model `load` reads (weights included). */
export function tunekitBackend(load: (dir: string) => Promise<LoadedModel> = loadModel): ServingBackend {
  return async (dir) => {
    const model = await load(dir);
    return { model, engine: (opts) => new Engine(model, opts) };
  };
}

/** A base model's engine, made on first use and shared by the base and every tuned model on it. */
class EngineHolder {
  private engine: ServingEngine | undefined;
  constructor(private readonly make: () => ServingEngine) {}
  get(): ServingEngine {
    this.engine ??= this.make();
    return this.engine;
  }

  /** Requests run or wait on it. */
  get busy(): boolean {
    const s = this.engine?.stats();
    return s !== undefined && s.running + s.queued > 0;
  }
}

/** A model that answers generation requests: a base model, or a base model with an adapter (a tuned model). */
export class ServedModel {
  /** `modelVersion` is what responses report: the publisher model's name, or the tuned model's. */
  constructor(
    readonly registration: ModelRegistration, readonly model: ModelInfo, readonly modelVersion: string,
    private readonly holder: EngineHolder, readonly adapterDir?: string,
    /** What it was loaded from: the registration's blob prefix or path. */
    readonly source: string = registration.blobs ?? registration.dir,
  ) {}

  /** Whether requests run or wait on this model's engine. */
  get busy(): boolean {
    return this.holder.busy;
  }

  /** The engine that runs this model's generations (shared with the base's other tuned models). */
  get engine(): ServingEngine {
    return this.holder.get();
  }

  /** The same base with the PEFT adapter in `adapterDir` (loaded by the engine on first use). */
  withAdapter(adapterDir: string, modelVersion: string): ServedModel {
    return new ServedModel(this.registration, this.model, modelVersion, this.holder, path.resolve(adapterDir), this.source);
  }

  /**
   * Queues a generation on the engine: chunks as they come, then the result. The request leaves the
   * queue, or the running batch at the next token, when `signal` fires or the caller stops reading.
   */
  generate(promptIds: number[], opts: SubmitOptions, signal: AbortSignal): AsyncGenerator<GenerationChunk, GenerationResult> {
    return this.engine.submit(promptIds, { ...opts, adapterDir: this.adapterDir, signal });
  }
}

/** How many base models the catalog keeps in memory, and how each one's engine schedules. */
export interface CatalogLimits {
  baseModels: number;
  engine: Partial<EngineOptions>;
}

export const DEFAULT_CATALOG_LIMITS: CatalogLimits = { baseModels: 4, engine: DEFAULT_ENGINE_OPTIONS };

/** Get from a Map used as an LRU: a hit moves the entry to the most recent end. */
function touch<K, V>(map: Map<K, V>, key: K): V | undefined {
  const v = map.get(key);
  if (v !== undefined) {
    map.delete(key);
    map.set(key, v);
  }
  return v;
}

/**
 * Drops the least recently used entries of a Map used as an LRU beyond `limit`, except `current` and
 * those `keep` says must stay (a model whose engine is busy: dropping it would let the next request
 * load a second copy beside the one still running). The map stays over the limit until they finish.
 */
function trim<K, V>(map: Map<K, V>, limit: number, current: K, keep: (k: K) => boolean): void {
  for (const k of [...map.keys()]) {
    if (map.size <= Math.max(1, limit)) break;
    if (k !== current && !keep(k)) map.delete(k);
  }
}

export class ModelCatalog {
  private readonly loaded = new Map<string, Promise<ServedModel>>();
  /** The models of `loaded` whose load finished. */
  private readonly ready = new Map<string, ServedModel>();
  /** What to call when a loaded model is dropped (an engine runtime's memory, e.g. llama.cpp's). */
  private readonly disposers = new WeakMap<ServedModel, (() => Promise<void>) | undefined>();
  private readonly limits: CatalogLimits;

  private readonly load: ServingBackend;

  /**
   * `load`: a loader of tunekit's engine (tests wrap loadModel), or the backend of another engine;
   * `files`: where models registered through object storage are materialized.
   */
  constructor(
    readonly store: RegistrationStore,
    load: ((dir: string) => Promise<LoadedModel>) | { backend: ServingBackend } = loadModel,
    limits: Partial<CatalogLimits> = {},
    private readonly files?: BaseModelFiles,
  ) {
    this.load = typeof load === 'function' ? tunekitBackend(load) : load.backend;
    this.limits = { ...DEFAULT_CATALOG_LIMITS, ...limits };
  }

  /** The registration of publishers/{publisher}/models/{name}, or 404. */
  async registration(publisher: string, name: string): Promise<ModelRegistration> {
    const r = await this.store.get(publisher, name);
    if (!r) throw new NotFoundError(`Publisher Model \`publishers/${publisher}/models/${name}\` not found.`);
    return r;
  }

  /** The local directory of a registered model: its path, or its files materialized from the blob store. */
  async localDir(r: ModelRegistration): Promise<string> {
    if (r.blobs === undefined) return r.dir;
    if (!this.files) throw new Error(`publishers/${r.publisher}/models/${r.name} is stored in object storage, and this catalog has no blob store`);
    return await this.files.localDir(r.blobs, `publishers/${r.publisher}/models/${r.name}`);
  }

  /** The model loaded into memory, loading it on first use; a failed load is retried next time. */
  async served(publisher: string, name: string): Promise<ServedModel> {
    const r = await this.registration(publisher, name);
    const key = `${publisher}/${name}`;
    const source = r.blobs ?? r.dir;
    let p = touch(this.loaded, key);
    if (p) {
      this.trim(key);
      const m = await p;
      if (m.source === source) return m;
      this.loaded.delete(key); // re-registered from other files
    }
    p = this.localDir(r).then(async (dir) => {
      const servable = await this.load(dir);
      // The served registration's dir is the local one (the prompt tokenizer reads it).
      const served = new ServedModel({ ...r, dir }, servable.model, r.name, new EngineHolder(() => servable.engine(this.limits.engine)), undefined, source);
      this.disposers.set(served, servable.dispose);
      if (this.loaded.get(key) === p) this.ready.set(key, served);
      return served;
    });
    this.loaded.set(key, p);
    this.trim(key);
    p.catch(() => this.loaded.delete(key));
    return p;
  }

  /** Keeps at most `baseModels` models loaded, busy ones aside. */
  private trim(current: string): void {
    trim(this.loaded, this.limits.baseModels, current, (k) => this.ready.get(k)?.busy ?? false);
    for (const [k, served] of this.ready) {
      if (this.loaded.has(k)) continue;
      this.ready.delete(k);
      void this.disposers.get(served)?.();
    }
  }

  /**
   * A registered base model with a PEFT adapter (a tuned model behind an endpoint). Nothing is copied:
   * it runs in the base's engine, the adapter loaded there on first use.
   */
  async servedWithAdapter(publisher: string, name: string, adapterDir: string, modelVersion: string): Promise<ServedModel> {
    return (await this.served(publisher, name)).withAdapter(adapterDir, modelVersion);
  }
}
