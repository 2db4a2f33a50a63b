// Base models that travel through the blob store (blob-store.ts), so that serve replicas and workers on
// other machines need no shared directory for them. With object storage (`--storage gs://`), a
// registration stores the model directory's files as create-only blobs under a content-addressed
// prefix `models/<id>/files/<name>` and writes `models/<id>/manifest.json` (each file's name, size
// and SHA-256) last; <id> is the SHA-256 of that file list, so identical files reuse the same blobs.
// A process that needs the model materializes it once into `<root>/cache/models/<id>/`: downloaded
// into a temporary directory named after its owner mark (swept when its process is gone, spec.ts),
// every size and hash checked against the manifest, and the id against the manifest, then renamed
// into place. A rename that finds the directory already there (another process won) keeps that one,
// so a damaged or partial download is never used. With the local store the registration keeps the
// directory's path, as before.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { FailedPreconditionError, InvalidRequestError, NotFoundError } from '../errors.js';
import { fsyncDir, type BlobStore } from './blob-store.js';

export const MODELS_PREFIX = 'models/';
export const MANIFEST_FILE = 'manifest.json';

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

  /** `root`: the machine's data or work directory (the cache is `<root>/cache/models`); `mark`: this process's owner mark (db.ts). */
  constructor(readonly blobs: BlobStore, readonly root: string, private readonly mark: number) {}

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

  /** The local directory of the model stored under `prefix` (`model` names it in errors), materialized on first use. */
  async localDir(prefix: string, model: string): Promise<string> {
    const id = PREFIX.exec(prefix)?.[1];
    if (!id) throw new Error(`base model ${model}: bad blob prefix ${JSON.stringify(prefix)}`);
    const dest = path.join(this.root, 'cache', 'models', id);
    if (fs.existsSync(dest)) return dest;
    let p = this.pending.get(id);
    if (!p) {
      p = this.materialize(prefix, id, dest, model).finally(() => this.pending.delete(id));
      this.pending.set(id, p);
    }
    return await p;
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
