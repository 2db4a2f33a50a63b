// Base models that travel through the blob store (blob-store.ts), so that serve replicas and workers on
// other machines need no shared directory for them. With object storage (`--storage gs://`), a
// registration stores the model directory's files as create-only blobs under a content-addressed
// prefix `models/<id>/files/<name>` and writes `models/<id>/manifest.json` (each file's name, size
// and SHA-256) last; <id> is the SHA-256 of that file list, so identical files reuse the same blobs.
// A process that needs the model materializes it once into `<root>/cache/models/<id>/`: downloaded
// into a temporary directory named after its owner mark (swept when its process is gone, spec.ts),
// every size and hash checked against the manifest, and the id against the manifest, then renamed
// into place. A rename that finds the directory already there (another process won) keeps that one,
// so a damaged or partial download is never used. The cache holds at most `cacheBytes` (LIMITS.modelCacheBytes,
// `--model-cache-size`): a new copy first evicts the least recently used copies that no process holds
// (a hold lasts from localDir until release: serve holds what it has used, a worker its job's; another
// process's hold is the empty file `cache/model-holds/<id>-<mark>`, swept with its process, spec.ts); a model larger
// than the bound, or a bound full of held copies, is refused naming the flag. Two processes
// materializing at once may exceed the bound by a copy. With the local store the registration keeps the
// directory's path, as before.
// Removal (sweepModels, run by the periodic sweep, sweep.ts): a `models/<id>/` without a manifest whose
// newest blob is older than MODEL_UPLOAD_GRACE_MS (a registration that failed partway), and a complete
// model that neither a registration nor a job that may still run names. Both in a database transaction,
// as a registration's row is written with its model checked complete (DbRegistrationStore.put), so the
// one that takes the write lock second sees the other's effect: a registration never names a removed model.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { FailedPreconditionError, InvalidRequestError, NotFoundError } from '../errors.js';
import { fsyncDir, type BlobStore } from './blob-store.js';
import type { PlatformDb } from './db.js';
import { LIMITS } from './limits.js';

export const MODELS_PREFIX = 'models/';
export const MANIFEST_FILE = 'manifest.json';

/** How old the newest blob of a model without a manifest must be before a sweep removes it: an upload
 * writes each file as one blob, so one in progress has written a blob more recently than this. */
export const MODEL_UPLOAD_GRACE_MS = 24 * 60 * 60 * 1000;

export interface ModelManifest {
  files: { name: string; size: number; sha256: string }[];
}

const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
const PREFIX = /^models\/([0-9a-f]{64})\/$/;

/** The content id of a file list: SHA-256 of its canonical JSON. */
function manifestId(files: ModelManifest['files']): string {
  return createHash('sha256').update(JSON.stringify(files.map((f) => [f.name, f.size, f.sha256]))).digest('hex');
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export class BaseModelFiles {
  private readonly pending = new Map<string, Promise<string>>();
  /** Copies this process holds (model id -> holds), never evicted. */
  private readonly held = new Map<string, number>();

  /**
   * `root`: the machine's data or work directory (the cache is `<root>/cache/models`); `mark`: this
   * process's owner mark (db.ts); `cacheBytes`: the cache's bound (`--model-cache-size`).
   */
  constructor(readonly blobs: BlobStore, readonly root: string, private readonly mark: number, readonly cacheBytes: number = LIMITS.modelCacheBytes) {}

  /** Whether registrations go through the blob store (object storage), rather than by path (the local store). */
  get stored(): boolean {
    return this.blobs.kind !== 'local';
  }

  /**
   * Stores the files of model directory `dir` (its regular files at the top level, the ones the loader
   * reads from; dot files skipped), manifest last; returns the key prefix. Blobs already stored are kept.
   */
  async store(dir: string): Promise<string> {
    const names = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name).sort();
    const bad = names.find((n) => !FILE_NAME.test(n));
    if (bad !== undefined) throw new InvalidRequestError(`model directory ${dir}: file name ${JSON.stringify(bad)} cannot be stored (use A-Z, a-z, 0-9, '.', '_', '-')`);
    const files: ModelManifest['files'] = [];
    for (const name of names) {
      const file = path.join(dir, name);
      files.push({ name, size: fs.statSync(file).size, sha256: await sha256File(file) });
    }
    const prefix = `${MODELS_PREFIX}${manifestId(files)}/`;
    if (await this.stat(prefix + MANIFEST_FILE)) return prefix;
    for (const f of files) {
      if ((await this.stat(`${prefix}files/${f.name}`))?.size === f.size) continue;
      await this.putOnce(`${prefix}files/${f.name}`, () => this.blobs.putFile(`${prefix}files/${f.name}`, path.join(dir, f.name), { ifAbsent: true }));
    }
    await this.putOnce(prefix + MANIFEST_FILE, () => this.blobs.put(prefix + MANIFEST_FILE, JSON.stringify({ files } satisfies ModelManifest, null, 1) + '\n', { ifAbsent: true, contentType: 'application/json' }));
    return prefix;
  }

  /**
   * Throws FailedPreconditionError unless the model under `prefix` is complete: its manifest and every
   * file it lists, of its size. A registration checks this in the transaction that writes its row.
   */
  async checkComplete(prefix: string): Promise<void> {
    let manifest: ModelManifest;
    try {
      manifest = JSON.parse((await this.blobs.read(prefix + MANIFEST_FILE)).toString('utf8')) as ModelManifest;
    } catch (err) {
      if (err instanceof NotFoundError) throw new FailedPreconditionError(`base model ${this.blobs.where(prefix)}: its manifest was removed (by a sweep) while it was registered`);
      throw err;
    }
    for (const f of manifest.files) {
      if ((await this.stat(`${prefix}files/${f.name}`))?.size !== f.size) throw new FailedPreconditionError(`base model ${this.blobs.where(prefix)}: ${f.name} was removed (by a sweep) while it was registered`);
    }
  }

  /** The blob's info, undefined when there is none (a local store's missing directory included). */
  private async stat(key: string): Promise<{ size: number } | undefined> {
    try {
      return await this.blobs.stat(key);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /** A create-only write; one that finds the blob there already (a concurrent registration of the same files) is done. */
  private async putOnce(key: string, put: () => Promise<unknown>): Promise<void> {
    try {
      await put();
    } catch (err) {
      if (!(err instanceof FailedPreconditionError)) throw err;
    }
  }

  /**
   * The local directory of the model stored under `prefix` (`model` names it in errors), materialized on
   * first use; held (not evicted by this process) until as many `release(prefix)` calls.
   */
  async localDir(prefix: string, model: string): Promise<string> {
    const id = this.idOf(prefix, model);
    const dest = path.join(this.root, 'cache', 'models', id);
    this.hold(id);
    try {
      if (fs.existsSync(dest)) {
        const now = new Date();
        fs.utimesSync(dest, now, now); // its last use, for the eviction order
        return dest;
      }
      let p = this.pending.get(id);
      if (!p) {
        p = this.materialize(prefix, id, dest, model).finally(() => this.pending.delete(id));
        this.pending.set(id, p);
      }
      return await p;
    } catch (err) {
      this.release(prefix);
      throw err;
    }
  }

  /** Ends one hold localDir took on the model under `prefix`. */
  release(prefix: string): void {
    const id = this.idOf(prefix, prefix);
    const n = (this.held.get(id) ?? 0) - 1;
    if (n > 0) return void this.held.set(id, n);
    this.held.delete(id);
    fs.rmSync(this.holdMark(id), { force: true });
  }

  private hold(id: string): void {
    const n = this.held.get(id) ?? 0;
    if (n === 0) {
      fs.mkdirSync(path.dirname(this.holdMark(id)), { recursive: true, mode: 0o700 });
      fs.writeFileSync(this.holdMark(id), '');
    }
    this.held.set(id, n + 1);
  }

  private holdMark(id: string): string {
    return path.join(this.root, 'cache', 'model-holds', `${id}-${this.mark}`);
  }

  private idOf(prefix: string, model: string): string {
    const id = PREFIX.exec(prefix)?.[1];
    if (!id) throw new Error(`base model ${model}: bad blob prefix ${JSON.stringify(prefix)}`);
    return id;
  }

  /** Evicts least recently used copies this process does not hold until `need` more bytes fit the bound. */
  private makeRoom(need: number, model: string): void {
    const flag = '--model-cache-size';
    if (need > this.cacheBytes) throw new FailedPreconditionError(`base model ${model}: its files (${need} bytes) are larger than the model cache (${flag} ${this.cacheBytes} bytes); give ${flag} at least ${need}`);
    const cache = path.join(this.root, 'cache', 'models');
    const heldElsewhere = (id: string) => readdirOrNone(path.join(this.root, 'cache', 'model-holds')).some((e) => e.startsWith(`${id}-`));
    const copies = fs.readdirSync(cache).filter((e) => /^[0-9a-f]{64}$/.test(e)).map((id) => {
      const dir = path.join(cache, id);
      const size = fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
      return { id, dir, size, used: fs.statSync(dir).mtimeMs };
    }).sort((a, b) => a.used - b.used);
    let total = copies.reduce((n, c) => n + c.size, 0);
    for (const c of copies) {
      if (total + need <= this.cacheBytes) return;
      if (this.held.has(c.id) || heldElsewhere(c.id)) continue;
      // Renamed first, so no process finds a half-removed copy; then a hold taken meanwhile (its holder
      // marks, then looks for the copy) puts it back.
      const gone = `${c.dir}.tmp-${this.mark}-${randomBytes(8).toString('hex')}`;
      try {
        fs.renameSync(c.dir, gone);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') { total -= c.size; continue; } // another process evicted it
        throw err;
      }
      if (heldElsewhere(c.id)) {
        try {
          fs.renameSync(gone, c.dir);
          continue;
        } catch {
          // its holder has put a new copy in place already
        }
      }
      fs.rmSync(gone, { recursive: true, force: true });
      total -= c.size;
    }
    if (total + need > this.cacheBytes) {
      throw new FailedPreconditionError(`base model ${model}: the model cache (${flag} ${this.cacheBytes} bytes) is full of copies in use (${total} bytes), ${need} more bytes do not fit; give ${flag} more`);
    }
  }

  private async materialize(prefix: string, id: string, dest: string, model: string): Promise<string> {
    let manifest: ModelManifest;
    try {
      manifest = JSON.parse((await this.blobs.read(prefix + MANIFEST_FILE)).toString('utf8')) as ModelManifest;
    } catch (err) {
      if (err instanceof NotFoundError) throw new FailedPreconditionError(`base model ${model}: its manifest ${this.blobs.where(prefix + MANIFEST_FILE)} is missing`);
      if (err instanceof SyntaxError) throw new FailedPreconditionError(`base model ${model}: its manifest ${this.blobs.where(prefix + MANIFEST_FILE)} is not JSON`);
      throw err;
    }
    if (!Array.isArray(manifest.files) || manifest.files.some((f) => !FILE_NAME.test(String(f.name))) || manifestId(manifest.files) !== id) {
      throw new FailedPreconditionError(`base model ${model}: its manifest ${this.blobs.where(prefix + MANIFEST_FILE)} does not match its content id ${id}; refusing to load it`);
    }
    fs.mkdirSync(path.dirname(dest), { recursive: true, mode: 0o700 });
    this.makeRoom(manifest.files.reduce((n, f) => n + f.size, 0), model);
    const tmp = `${dest}.tmp-${this.mark}-${randomBytes(8).toString('hex')}`;
    fs.mkdirSync(tmp, { mode: 0o700 });
    try {
      for (const f of manifest.files) {
        const key = `${prefix}files/${f.name}`;
        const h = createHash('sha256');
        let size = 0;
        const count = new Transform({
          transform(chunk: Buffer, _enc, done) {
            h.update(chunk);
            size += chunk.length;
            done(null, chunk);
          },
        });
        try {
          await pipeline(await this.blobs.open(key), count, fs.createWriteStream(path.join(tmp, f.name), { flags: 'wx', mode: 0o600 }));
        } catch (err) {
          if (err instanceof NotFoundError) throw new FailedPreconditionError(`base model ${model}: ${f.name} is missing from the blob store (${this.blobs.where(key)})`);
          throw err;
        }
        const sha256 = h.digest('hex');
        if (size !== f.size || sha256 !== f.sha256) {
          throw new FailedPreconditionError(`base model ${model}: ${f.name} (${this.blobs.where(key)}) does not match its manifest: ${size} bytes with SHA-256 ${sha256}, expected ${f.size} bytes with ${f.sha256}; refusing to load it`);
        }
        const fd = fs.openSync(path.join(tmp, f.name), 'r');
        try {
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
      }
      fsyncDir(tmp);
      try {
        fs.renameSync(tmp, dest);
      } catch (err) {
        // Another process put the directory in place first (each checks the manifest before its rename).
        if (!['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '') || !fs.existsSync(dest)) throw err;
      }
      fsyncDir(path.dirname(dest));
      return dest;
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
}

/**
 * Removes what no one needs under `models/` (see the file comment): incomplete uploads older than
 * `graceMs`, and complete models that no registration names and no job in `liveJobs` (ids of jobs that
 * may still run) names; `jobModels` gives a job's model prefixes, undefined when its spec is not stored
 * yet (a create in progress: then no complete model is removed this time). Returns the prefixes removed.
 */
export async function sweepModels(
  db: PlatformDb, blobs: BlobStore, liveJobs: string[], jobModels: (jobId: string) => Promise<string[] | undefined>,
  graceMs = MODEL_UPLOAD_GRACE_MS,
): Promise<string[]> {
  const prefixes = (await blobs.list(MODELS_PREFIX, { delimiter: '/' })).prefixes.filter((p) => PREFIX.test(p));
  if (prefixes.length === 0) return [];
  const jobsKnown = await (async () => {
    const used = new Set<string>();
    for (const id of liveJobs) {
      const models = await jobModels(id);
      if (models === undefined) return undefined;
      for (const m of models) used.add(m);
    }
    return used;
  })();
  const removed: string[] = [];
  for (const prefix of prefixes) {
    // Decided and removed under the write lock: a registration of these files waits, then finds them gone and stores them again.
    const gone = await db.transaction(async () => {
      const listed = (await blobs.list(prefix)).blobs;
      if (listed.length === 0) return false;
      if (listed.some((b) => b.key === prefix + MANIFEST_FILE)) {
        if (jobsKnown === undefined || jobsKnown.has(prefix)) return false;
        if (await db.get('SELECT 1 AS one FROM base_models WHERE blobs = ?', prefix)) return false;
        await blobs.delete(prefix + MANIFEST_FILE); // first: what is left is an incomplete model
      } else if (Math.max(...listed.map((b) => b.mtimeMs)) > Date.now() - graceMs) {
        return false;
      }
      await blobs.deletePrefix(prefix);
      return true;
    });
    if (gone) removed.push(prefix);
  }
  return removed;
}

function readdirOrNone(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
