// Where a deployment keeps its bytes: one flat key -> bytes interface with two implementations, a local
// directory (the default: `<data-dir>`) and a Google Cloud Storage bucket/prefix (blob-store-gcs.ts),
// chosen by configuration (`--storage`). Everything `serve` and the workers exchange goes through it:
// the object store's blobs (`objects/<bucket>/<blob id>`, storage.ts) and the tuning jobs' staged files
// (`staging/tuning-jobs/<id>/...`: job.json, datasets, epoch checkpoints, the evaluation's run.json;
// spec.ts JobStaging). Rules every implementation keeps:
// - A put is all or nothing: a reader sees the old bytes (or none) until the new ones are complete.
//   Locally: a `.tmp-<mark>-<id>` file beside the key (mark: the writing process's owner mark, db.ts),
//   fsynced, renamed, the directory fsynced. GCS: one
//   upload request, which the server commits only when complete.
// - `ifAbsent` writes only when nothing is stored under the key (GCS: ifGenerationMatch=0), so a blob
//   is never overwritten by a second writer.
// - Keys are relative, '/'-separated, of [A-Za-z0-9._-] segments (no '.' or '..'), so a key never leaves
//   the root; listings skip names starting with '.' (temporary files).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { FailedPreconditionError, InvalidRequestError, NotFoundError } from '../errors.js';
import { validateBucketName } from './gcs-names.js';

export interface BlobInfo {
  key: string;
  size: number;
  /** When the blob was written (ms since the epoch). */
  mtimeMs: number;
}

export type BlobSource = string | Uint8Array | AsyncIterable<string | Uint8Array>;

export interface PutBlobOptions {
  /** Write only if nothing is stored under the key (FailedPreconditionError otherwise). */
  ifAbsent?: boolean;
  contentType?: string;
}

export interface BlobStore {
  /** What this store is, for messages and the deployment record: `local` or `gs://BUCKET/PREFIX`. */
  readonly kind: string;
  /** Where `key` is stored, for messages (a file path or a gs:// URI). */
  where(key: string): string;
  put(key: string, source: BlobSource, opts?: PutBlobOptions): Promise<BlobInfo>;
  /** Stores a local file (streamed); `move: true` lets the store take the file over (it is gone after). */
  putFile(key: string, file: string, opts?: PutBlobOptions & { move?: boolean }): Promise<BlobInfo>;
  /** The blob's bytes; NotFoundError when there is none. */
  read(key: string): Promise<Buffer>;
  /** A stream of the blob's bytes (`range` inclusive); NotFoundError when there is none. */
  open(key: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Copies the blob to a local file, atomically (a temporary file renamed into place). */
  download(key: string, file: string): Promise<void>;
  stat(key: string): Promise<BlobInfo | undefined>;
  /** Removes the blob; nothing happens when there is none. */
  delete(key: string): Promise<void>;
  /** Blobs under `prefix` in key order; with delimiter '/', keys with a '/' after the prefix roll up into `prefixes`. */
  list(prefix: string, opts?: { delimiter?: '/' }): Promise<{ blobs: BlobInfo[]; prefixes: string[] }>;
  /** Removes every blob under `prefix` (which ends with '/'). */
  deletePrefix(prefix: string): Promise<void>;
  /** Removes what interrupted writes of processes that are gone (`gone`: db.ts ownerGone) left behind; returns where. */
  recover(prefix: string, gone: (mark: number, mtimeMs: () => number) => Promise<boolean>): Promise<string[]>;
}

const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** Throws unless `key` is a valid blob key (a bug otherwise: keys are built by tunekit, never by users). */
export function checkKey(key: string, opts: { prefix?: boolean } = {}): void {
  const body = opts.prefix && key.endsWith('/') ? key.slice(0, -1) : key;
  if (opts.prefix && body === '') return;
  if (!body.split('/').every((s) => SEGMENT.test(s) && s !== '.' && s !== '..')) throw new Error(`blob store: bad key ${JSON.stringify(key)}`);
}

export async function* chunksOf(source: BlobSource): AsyncIterable<Buffer> {
  if (typeof source === 'string') {
    yield Buffer.from(source, 'utf8');
  } else if (source instanceof Uint8Array) {
    yield Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  } else {
    for await (const c of source) yield typeof c === 'string' ? Buffer.from(c, 'utf8') : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  }
}

const TMP = /^\.tmp-(\d+)-[0-9a-f]{32}$/;

/** The local directory store (the default). Directories on a key's path must be real directories (no symlinks). */
export class LocalBlobStore implements BlobStore {
  readonly kind = 'local';
  readonly root: string;

  /** `mark`: this process's owner mark (db.ts), in its temporary files' names. */
  constructor(root: string, private readonly mark: number = process.pid) {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    this.root = fs.realpathSync(root);
  }

  where(key: string): string {
    return path.join(this.root, key);
  }

  async put(key: string, source: BlobSource, opts: PutBlobOptions = {}): Promise<BlobInfo> {
    checkKey(key);
    const dir = this.dirOf(key, true);
    const tmp = path.join(dir, `.tmp-${this.mark}-${randomBytes(16).toString('hex')}`);
    const fh = await fs.promises.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      for await (const chunk of chunksOf(source)) {
        for (let off = 0; off < chunk.length;) off += (await fh.write(chunk, off)).bytesWritten;
      }
      await fh.sync();
      await fh.close();
    } catch (err) {
      await fh.close().catch(() => undefined);
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    return this.place(key, dir, tmp, opts);
  }

  async putFile(key: string, file: string, opts: PutBlobOptions & { move?: boolean } = {}): Promise<BlobInfo> {
    checkKey(key);
    if (!opts.move) return this.put(key, fs.createReadStream(file), opts);
    const dir = this.dirOf(key, true);
    const tmp = path.join(dir, `.tmp-${this.mark}-${randomBytes(16).toString('hex')}`);
    try {
      fs.renameSync(file, tmp);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      const info = await this.put(key, fs.createReadStream(file), opts); // another filesystem: copy
      fs.rmSync(file, { force: true });
      return info;
    }
    const fd = fs.openSync(tmp, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return this.place(key, dir, tmp, opts);
  }

  /** Moves the synced `tmp` to `key` (if absent, with ifAbsent: a link fails when the key exists). */
  private place(key: string, dir: string, tmp: string, opts: PutBlobOptions): BlobInfo {
    const dest = path.join(dir, path.basename(key));
    try {
      if (opts.ifAbsent) {
        try {
          fs.linkSync(tmp, dest);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new FailedPreconditionError(`${dest} already exists`);
          throw err;
        }
        fs.rmSync(tmp, { force: true });
      } else {
        fs.renameSync(tmp, dest);
      }
      fsyncDir(dir);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    const st = fs.statSync(dest);
    return { key, size: st.size, mtimeMs: st.mtimeMs };
  }

  async read(key: string): Promise<Buffer> {
    const fd = this.openFd(key);
    try {
      return fs.readFileSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  async open(key: string, range?: { start: number; end: number }): Promise<Readable> {
    return fs.createReadStream('', { fd: this.openFd(key), ...(range ? { start: range.start, end: range.end } : {}) });
  }

  async download(key: string, file: string): Promise<void> {
    await downloadVia(await this.open(key), file);
  }

  async stat(key: string): Promise<BlobInfo | undefined> {
    checkKey(key);
    const st = fs.lstatSync(path.join(this.dirOf(key, false), path.basename(key)), { throwIfNoEntry: false });
    return st?.isFile() ? { key, size: st.size, mtimeMs: st.mtimeMs } : undefined;
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    fs.rmSync(path.join(this.dirOf(key, false), path.basename(key)), { force: true });
  }

  async list(prefix: string, opts: { delimiter?: '/' } = {}): Promise<{ blobs: BlobInfo[]; prefixes: string[] }> {
    checkKey(prefix, { prefix: true });
    const blobs: BlobInfo[] = [];
    const prefixes: string[] = [];
    // Every key under `prefix` lies in the directory of its last '/' (or below it).
    const walk = (rel: string, deep: boolean): void => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(this.dirOf(`${rel}-`, false), { withFileTypes: true });
      } catch (err) {
        if (err instanceof NotFoundError || (err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        const key = rel + e.name;
        if (e.name.startsWith('.') || !key.startsWith(prefix.slice(0, key.length))) continue;
        if (e.isDirectory()) {
          if (deep) walk(`${key}/`, true);
          else if (`${key}/`.startsWith(prefix)) prefixes.push(`${key}/`);
        } else if (e.isFile() && key.startsWith(prefix)) {
          const st = fs.statSync(path.join(this.root, key));
          blobs.push({ key, size: st.size, mtimeMs: st.mtimeMs });
        }
      }
    };
    walk(prefix.slice(0, prefix.lastIndexOf('/') + 1), opts.delimiter === undefined);
    blobs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    prefixes.sort();
    return { blobs, prefixes };
  }

  async deletePrefix(prefix: string): Promise<void> {
    checkKey(prefix, { prefix: true });
    if (!prefix.endsWith('/')) throw new Error(`blob store: deletePrefix needs a prefix ending in '/', got ${prefix}`);
    let dir: string;
    try {
      dir = this.dirOf(`${prefix}-`, false);
    } catch (err) {
      if (err instanceof NotFoundError) return;
      throw err;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }

  async recover(prefix: string, gone: (mark: number, mtimeMs: () => number) => Promise<boolean>): Promise<string[]> {
    const removed: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const file = path.join(dir, e.name);
        const tmp = TMP.exec(e.name);
        if (e.isDirectory()) await walk(file);
        else if (tmp && await gone(Number(tmp[1]), () => fs.lstatSync(file, { throwIfNoEntry: false })?.mtimeMs ?? Date.now())) {
          fs.rmSync(file, { force: true });
          removed.push(file);
        }
      }
    };
    await walk(path.join(this.root, prefix));
    return removed;
  }

  /**
   * The directory holding `key`, each level checked to be a real directory (no symbolic link) inside the
   * root; created with `create`, else NotFoundError when missing.
   */
  private dirOf(key: string, create: boolean): string {
    let dir = this.root;
    for (const seg of key.split('/').slice(0, -1)) {
      dir = path.join(dir, seg);
      let st = fs.lstatSync(dir, { throwIfNoEntry: false });
      if (!st) {
        if (!create) throw new NotFoundError(`${dir} does not exist`);
        try {
          fs.mkdirSync(dir, { mode: 0o700 });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        st = fs.lstatSync(dir);
      }
      if (!st.isDirectory()) {
        throw new Error(`blob store: ${dir} is not a plain directory inside ${this.root} (a symbolic link?); refusing to use it`);
      }
    }
    return dir;
  }

  private openFd(key: string): number {
    checkKey(key);
    const file = path.join(this.dirOf(key, false), path.basename(key));
    try {
      return fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${file} does not exist`);
      throw err;
    }
  }
}

/** Writes `stream` to `file` through a temporary file renamed into place. */
export async function downloadVia(stream: Readable, file: string): Promise<void> {
  const dest = path.resolve(file);
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await fs.promises.writeFile(tmp, stream);
    fs.renameSync(tmp, dest);
  } catch (err) {
    stream.destroy();
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

// ---- configuration ----

/** The storage flags of `tunekit serve` and `tunekit worker`, as given. */
export interface StorageFlags {
  /** A directory (or file://DIR), or gs://BUCKET[/PREFIX]. */
  storage?: string;
  storageEndpoint?: string;
  storageKeyFile?: string;
  storageApiKeyFile?: string;
}

export type StorageConfig =
  | { kind: 'local'; dir: string }
  | { kind: 'gcs'; bucket: string; prefix: string; endpoint?: string; keyFile?: string; apiKey?: string };

/** The flags' names, as error messages name them. */
export const STORAGE_FLAGS = {
  storage: '--storage', storageEndpoint: '--storage-endpoint', storageKeyFile: '--storage-key-file', storageApiKeyFile: '--storage-api-key-file',
} as const;

/**
 * The storage configuration the flags describe; `defaultDir` when --storage is not given. Refused with
 * INVALID_ARGUMENT naming the flag: an unknown scheme (s3:// is not supported yet), a bad bucket or
 * prefix, a bad endpoint URL, unreadable credentials, GCS flags without a gs:// --storage, or both kinds
 * of credentials.
 */
export function storageConfig(flags: StorageFlags, defaultDir: string): StorageConfig {
  const F = STORAGE_FLAGS;
  const s = flags.storage;
  const gcsOnly = (['storageEndpoint', 'storageKeyFile', 'storageApiKeyFile'] as const).filter((k) => flags[k] !== undefined);
  if (s === undefined || !/^[a-z][a-z0-9+.-]*:\/\//i.test(s) || /^file:\/\//i.test(s)) {
    if (gcsOnly.length) throw new InvalidRequestError(`${gcsOnly.map((k) => F[k]).join(', ')} configure${gcsOnly.length === 1 ? 's' : ''} a gs:// storage backend: give ${F.storage} gs://BUCKET[/PREFIX] too`);
    const dir = s === undefined ? defaultDir : s.replace(/^file:\/\//i, '');
    if (dir === '') throw new InvalidRequestError(`${F.storage} file:// needs a directory`);
    return { kind: 'local', dir: path.resolve(dir) };
  }
  const scheme = s.slice(0, s.indexOf('://')).toLowerCase();
  if (scheme === 's3') {
    throw new InvalidRequestError(`${F.storage} ${s}: S3-compatible storage is not supported yet (no maintained S3 server to test against); use gs:// (Google Cloud Storage, or any server speaking its JSON API) or a directory`);
  }
  if (scheme !== 'gs') throw new InvalidRequestError(`${F.storage} ${s}: unknown storage scheme ${scheme}://; use a directory or gs://BUCKET[/PREFIX]`);
  const rest = s.slice(5);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  let prefix = slash < 0 ? '' : rest.slice(slash + 1);
  try {
    validateBucketName(bucket);
  } catch (err) {
    throw new InvalidRequestError(`${F.storage} ${s}: ${(err as Error).message}`);
  }
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
  if (prefix !== '' && !prefix.slice(0, -1).split('/').every((seg) => SEGMENT.test(seg))) {
    throw new InvalidRequestError(`${F.storage} ${s}: the prefix ${JSON.stringify(prefix)} must be '/'-separated segments of A-Z, a-z, 0-9, '.', '_' and '-'`);
  }
  const config: StorageConfig = { kind: 'gcs', bucket, prefix };
  if (flags.storageEndpoint !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(flags.storageEndpoint);
    } catch {
      u = undefined;
    }
    if (!u || !['http:', 'https:'].includes(u.protocol) || u.search || u.hash) {
      throw new InvalidRequestError(`${F.storageEndpoint} ${JSON.stringify(flags.storageEndpoint)} is not an http(s) URL (e.g. https://storage.googleapis.com)`);
    }
    config.endpoint = flags.storageEndpoint.replace(/\/+$/, '');
  }
  if (flags.storageKeyFile !== undefined && flags.storageApiKeyFile !== undefined) {
    throw new InvalidRequestError(`give one of ${F.storageKeyFile} (Google credentials JSON) and ${F.storageApiKeyFile} (an API key), not both`);
  }
  if (flags.storageKeyFile !== undefined) {
    let json: { type?: unknown };
    try {
      json = JSON.parse(fs.readFileSync(flags.storageKeyFile, 'utf8')) as { type?: unknown };
    } catch (err) {
      throw new InvalidRequestError(`${F.storageKeyFile} ${flags.storageKeyFile}: not a readable JSON credentials file (${(err as Error).message})`);
    }
    if (typeof json.type !== 'string') throw new InvalidRequestError(`${F.storageKeyFile} ${flags.storageKeyFile}: not a Google credentials file (it has no "type")`);
    config.keyFile = path.resolve(flags.storageKeyFile);
  }
  if (flags.storageApiKeyFile !== undefined) {
    let key: string;
    try {
      key = fs.readFileSync(flags.storageApiKeyFile, 'utf8').trim();
    } catch (err) {
      throw new InvalidRequestError(`${F.storageApiKeyFile} ${flags.storageApiKeyFile}: not readable (${(err as Error).message})`);
    }
    if (!/^[\x21-\x7e]+$/.test(key)) throw new InvalidRequestError(`${F.storageApiKeyFile} ${flags.storageApiKeyFile}: the file must hold one API key (printable characters, no spaces)`);
    config.apiKey = key;
  }
  return config;
}

/** Opens the configured store; a GCS one is checked (its bucket reachable with the credentials) first. */
/** The store `config` names; `mark`: this process's owner mark (db.ts), for a local store's temporary files. */
export async function openBlobStore(config: StorageConfig, mark?: number): Promise<BlobStore> {
  if (config.kind === 'local') return new LocalBlobStore(config.dir, mark);
  const { GcsBlobStore } = await import('./blob-store-gcs.js');
  return await GcsBlobStore.open(config);
}
