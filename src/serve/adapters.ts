// The LoRA adapters one serving engine runs beside its base model, unmerged (one copy of the base
// whatever the number of adapters). An adapter is loaded on first use, layer by layer with a turn of
// the event loop between layers, so requests already running keep decoding while it loads. Loaded
// adapters live in an LRU bounded by bytes (serve --adapter-memory); an adapter that running requests
// use is pinned and never evicted. Adapters are keyed by their directory; the engine's batches name
// them by a small integer id.

import * as path from 'node:path';
import { ResourceExhaustedError } from '../errors.js';
import type { ModelConfig } from '../models/config.js';
import type { AdapterEntry, AdapterLookup } from '../core/decoder.js';
import { openAdapter, readAdapterLayer } from '../lora/peft.js';
import type { LoraAdapter } from '../lora/lora.js';

interface Entry {
  key: string;
  id: number;
  bytes: number;
  /** null while loading. */
  adapter: LoraAdapter | null;
  error: unknown;
  /** Requests running with it. */
  pins: number;
}

export const MiB = 2 ** 20;

export class AdapterCache implements AdapterLookup {
  /** Least recently used first. */
  private readonly byKey = new Map<string, Entry>();
  private readonly byId = new Map<number, Entry>();
  private nextId = 0;
  private used = 0;

  /** `onChange` is called when a load finishes or fails, or pinned memory is freed. */
  constructor(private readonly config: ModelConfig, readonly budget: number, private readonly onChange: () => void) {}

  get(id: number): AdapterEntry | undefined {
    const e = this.byId.get(id);
    return e?.adapter ? { adapter: e.adapter } : undefined;
  }

  /**
   * For a request that runs the adapter in `dir`: its id, pinned until release() — or 'wait' while it
   * loads or while the memory it needs is held by adapters in use. Errors (unreadable adapter, one
   * larger than the whole budget) are thrown to every caller until dropFailed().
   */
  acquire(dir: string): number | 'wait' {
    const key = path.resolve(dir);
    const e = this.byKey.get(key);
    if (e) {
      if (e.error !== undefined) throw e.error;
      if (!e.adapter) return 'wait';
      this.byKey.delete(key);
      this.byKey.set(key, e);
      e.pins++;
      return e.id;
    }
    const opened = openAdapter(key, this.config);
    if (opened.bytes > this.budget) {
      throw new ResourceExhaustedError(`the adapter in ${key} needs ${(opened.bytes / MiB).toFixed(1)} MiB but serve --adapter-memory is ${(this.budget / MiB).toFixed(1)} MiB`);
    }
    for (const [k, old] of this.byKey) {
      if (this.used + opened.bytes <= this.budget) break;
      if (old.pins > 0 || !old.adapter) continue;
      this.evict(k, old);
    }
    if (this.used + opened.bytes > this.budget) return 'wait';
    const entry: Entry = { key, id: this.nextId++, bytes: opened.bytes, adapter: null, error: undefined, pins: 0 };
    this.byKey.set(key, entry);
    this.byId.set(entry.id, entry);
    this.used += entry.bytes;
    void this.load(entry, opened);
    return 'wait';
  }

  private async load(entry: Entry, opened: ReturnType<typeof openAdapter>): Promise<void> {
    try {
      const layers: LoraAdapter['layers'] = [];
      for (let l = 0; l < this.config.numLayers; l++) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        layers.push(readAdapterLayer(opened, l));
      }
      entry.adapter = { config: opened.config, layers, ...(opened.baseModel !== undefined ? { baseModel: opened.baseModel } : {}) };
    } catch (err) {
      entry.error = err;
      this.used -= entry.bytes;
    }
    this.onChange();
  }

  /** Unpins an adapter a request was running with. */
  release(id: number): void {
    const e = this.byId.get(id);
    if (!e || e.pins === 0) return;
    e.pins--;
    if (e.pins === 0) this.onChange();
  }

  /** Forgets adapters whose load failed, so the next request for one tries again. */
  dropFailed(): void {
    for (const [k, e] of this.byKey) if (e.error !== undefined) this.forget(k, e);
  }

  private evict(key: string, e: Entry): void {
    this.used -= e.bytes;
    this.forget(key, e);
  }

  private forget(key: string, e: Entry): void {
    this.byKey.delete(key);
    this.byId.delete(e.id);
  }

  /** Bytes of adapters loaded or loading. */
  get bytes(): number {
    return this.used;
  }

  /** Loaded adapters, least recently used first. */
  get loaded(): string[] {
    return [...this.byKey.values()].filter((e) => e.adapter).map((e) => e.key);
  }

  /** The largest rank among loaded adapters (workspaces are sized by it). */
  get maxRank(): number {
    let r = 0;
    for (const e of this.byKey.values()) if (e.adapter) r = Math.max(r, e.adapter.config.rank);
    return r;
  }
}
