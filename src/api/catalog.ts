// The publisher-model catalog: base models registered from Hugging Face directories, served as
// `publishers/{publisher}/models/{name}`. Registrations live in a RegistrationStore; models are
// loaded on first use and cached, one in memory per name, and each has a lock so that generation on
// one model runs one request at a time (it is CPU-bound; requests on other models interleave between
// tokens because generation yields to the event loop after each one).

import * as path from 'node:path';
import { CancelledError, InvalidRequestError, NotFoundError, throwIfAborted } from '../errors.js';
import { applyAdapterForInference } from '../lora/apply.js';
import { loadModel, type LoadedModel } from '../models/model.js';
import { loadModelConfig } from '../models/loader.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';

export interface ModelRegistration {
  publisher: string;
  name: string;
  /** Absolute path of the Hugging Face model directory. */
  dir: string;
  /** RFC 3339. */
  createTime: string;
}

export interface RegistrationStore {
  get(publisher: string, name: string): ModelRegistration | undefined;
  list(publisher?: string): ModelRegistration[];
  /** Adds or replaces the registration of (publisher, name). */
  put(registration: ModelRegistration): void;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;

export function checkModelId(kind: 'publisher' | 'model', id: string): void {
  if (!NAME.test(id) || id.includes('..')) {
    throw new InvalidRequestError(`${kind} name ${JSON.stringify(id)} is not valid: use 1-128 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit`);
  }
}

/** Checks that `dir` holds a model this code can load (config and tokenizer), then stores it. */
export function registerPublisherModel(
  store: RegistrationStore, dir: string, opts: { name: string; publisher?: string },
): ModelRegistration {
  const publisher = opts.publisher ?? 'google';
  checkModelId('publisher', publisher);
  checkModelId('model', opts.name);
  const abs = path.resolve(dir);
  const config = loadModelConfig(abs);
  Tokenizer.loadSync(abs, { vocabSize: config.vocabSize });
  const registration = { publisher, name: opts.name, dir: abs, createTime: new Date().toISOString() };
  store.put(registration);
  return registration;
}

/** A model in memory with its one-request-at-a-time lock. */
export class ServedModel {
  private tail: Promise<void> = Promise.resolve();

  /** `modelVersion` is what responses report: the publisher model's name, or the tuned model's. */
  constructor(readonly registration: ModelRegistration, readonly model: LoadedModel, readonly modelVersion: string = registration.name) {}

  /**
   * Waits for the model to be free; the returned function frees it (idempotent). When `signal` fires
   * while waiting, the wait ends with CancelledError and the turn passes straight to the next waiter,
   * so a client that gives up in the queue never holds the model.
   */
  async lock(signal?: AbortSignal): Promise<() => void> {
    throwIfAborted(signal);
    let release!: () => void;
    const next = new Promise<void>((resolve) => { release = resolve; });
    const previous = this.tail;
    this.tail = previous.then(() => next);
    let released = false;
    const free = (): void => {
      if (!released) {
        released = true;
        release();
      }
    };
    if (signal) {
      let onAbort!: () => void;
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => {
          free();
          reject(new CancelledError(typeof signal.reason === 'string' ? signal.reason : undefined));
        };
        signal.addEventListener('abort', onAbort, { once: true });
      });
      aborted.catch(() => undefined);
      try {
        await Promise.race([previous, aborted]);
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    } else {
      await previous;
    }
    return free;
  }
}

/** How many models the catalog keeps in memory; the least recently used beyond these are dropped. */
export interface CatalogLimits {
  baseModels: number;
  /** Base models with an adapter merged in (each a copy of the weights the adapter changes). */
  tunedModels: number;
}

export const DEFAULT_CATALOG_LIMITS: CatalogLimits = { baseModels: 4, tunedModels: 8 };

/** Get from a Map used as an LRU: a hit moves the entry to the most recent end. */
function touch<K, V>(map: Map<K, V>, key: K): V | undefined {
  const v = map.get(key);
  if (v !== undefined) {
    map.delete(key);
    map.set(key, v);
  }
  return v;
}

function insertBounded<K, V>(map: Map<K, V>, key: K, value: V, limit: number): void {
  map.set(key, value);
  // Requests already holding an evicted model finish with it; it is freed when they let go.
  while (map.size > Math.max(1, limit)) map.delete(map.keys().next().value as K);
}

export class ModelCatalog {
  private readonly loaded = new Map<string, Promise<ServedModel>>();
  private readonly tuned = new Map<string, Promise<ServedModel>>();

  constructor(
    readonly store: RegistrationStore,
    private readonly load: (dir: string) => Promise<LoadedModel> = loadModel,
    private readonly limits: CatalogLimits = DEFAULT_CATALOG_LIMITS,
  ) {}

  /** The registration of publishers/{publisher}/models/{name}, or 404. */
  registration(publisher: string, name: string): ModelRegistration {
    const r = this.store.get(publisher, name);
    if (!r) throw new NotFoundError(`Publisher Model \`publishers/${publisher}/models/${name}\` not found.`);
    return r;
  }

  /** The model loaded into memory, loading it on first use; a failed load is retried next time. */
  async served(publisher: string, name: string): Promise<ServedModel> {
    const r = this.registration(publisher, name);
    const key = `${publisher}/${name}`;
    let p = touch(this.loaded, key);
    if (p) {
      const m = await p;
      if (m.registration.dir === r.dir) return m;
      this.loaded.delete(key); // re-registered from another directory
    }
    p = this.load(r.dir).then((model) => new ServedModel(r, model));
    insertBounded(this.loaded, key, p, this.limits.baseModels);
    p.catch(() => this.loaded.delete(key));
    return p;
  }

  /**
   * A registered base model with a PEFT adapter applied (a tuned model behind an endpoint), cached by
   * adapter directory; the base stays loaded and usable on its own.
   */
  async servedWithAdapter(publisher: string, name: string, adapterDir: string, modelVersion: string): Promise<ServedModel> {
    const key = `${publisher}/${name}\u0000${path.resolve(adapterDir)}\u0000${modelVersion}`;
    let p = touch(this.tuned, key);
    if (!p) {
      p = this.served(publisher, name).then((base) => new ServedModel(base.registration, applyAdapterForInference(base.model, adapterDir), modelVersion));
      insertBounded(this.tuned, key, p, this.limits.tunedModels);
      p.catch(() => this.tuned.delete(key));
    }
    return p;
  }
}
