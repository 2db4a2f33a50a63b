// The object store behind gs:// URIs. Metadata (bucket, name, size, md5, generation) is a row in the
// database; the bytes are a blob file `<root>/<bucket>/<32 hex>` whose name is random, so no object
// name ever becomes part of a path. Rules it keeps:
// - An upload writes `.tmp-<pid>-<id>` in the bucket's directory, fsyncs it, renames it to its blob
//   name, fsyncs the directory, and only then commits the row. A crash at any point leaves the old
//   object (or none) visible, never a partial one; `recover` removes the leftovers.
// - An overwrite gets a new blob and a higher generation; the old blob is unlinked after the commit
//   (a reader that already opened it keeps reading the old bytes).
// - Bucket directories must be real directories inside the root (no symlinks), checked on each use.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { AlreadyExistsError, FailedPreconditionError, InvalidRequestError, NotFoundError } from '../errors.js';
import { now, type PlatformDb } from './db.js';
import type { PlatformConfig } from './config.js';
import { gsUri, parseGsUri, validateBucketName, validateObjectName } from './gcs-names.js';
import { Projects } from './projects.js';
import { LIMITS } from './limits.js';

export interface Bucket {
  name: string;
  project: string;
  location: string;
  createTime: string;
}

export interface ObjectInfo {
  bucket: string;
  name: string;
  size: number;
  /** Base64 MD5 of the content, as GCS's md5Hash. */
  md5Hash: string;
  contentType: string;
  /** Increases with every write of this name (int64, as a string). */
  generation: string;
  createTime: string;
  updateTime: string;
}

export interface ResolvedObject extends ObjectInfo {
  uri: string;
  project: string;
  location: string;
  /** The blob holding the bytes: read it, never write it. */
  filePath: string;
}

export interface ListOptions {
  prefix?: string;
  /** Usually '/': names with it after the prefix are rolled up into `prefixes`. */
  delimiter?: string;
  pageSize?: number;
  pageToken?: string;
}

export interface ListResult {
  objects: ObjectInfo[];
  prefixes: string[];
  nextPageToken?: string;
}

export type ObjectSource = string | Uint8Array | AsyncIterable<string | Uint8Array>;

export interface PutOptions {
  contentType?: string;
}

interface ObjectRow {
  bucket: string;
  name: string;
  blob: string;
  size: number;
  md5: string;
  content_type: string;
  generation: number;
  create_time: string;
  update_time: string;
}

const BLOB = /^[0-9a-f]{32}$/;
const TMP = /^\.tmp-(\d+)-[0-9a-f]{32}$/;
const MAX_PAGE = LIMITS.pageSize.objects;

export class ObjectStore {
  /** Real path of the store's root directory (`<data-dir>/objects` by default). */
  readonly root: string;
  private readonly projects: Projects;

  constructor(private readonly db: PlatformDb, private readonly config: PlatformConfig, opts: { root?: string } = {}) {
    const root = opts.root ?? path.join(db.dataDir, 'objects');
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    this.root = fs.realpathSync(root);
    this.projects = new Projects(db);
  }

  // ---- buckets ----

  /** Creates `name` (or `gs://name`) in `location` for `project` (created if new). */
  createBucket(name: string, opts: { location: string; project: string }): Bucket {
    const bucketName = bucketNameOf(name);
    this.config.assertLocation(opts.location);
    this.projects.ensure(opts.project);
    const bucket: Bucket = { name: bucketName, project: opts.project, location: opts.location, createTime: now() };
    this.db.immediate(() => {
      const r = this.db.sqlite
        .prepare('INSERT INTO buckets (name, project, location, create_time) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING')
        .run(bucket.name, bucket.project, bucket.location, bucket.createTime);
      if (r.changes === 0) throw new AlreadyExistsError(`bucket gs://${bucketName} already exists`);
      fs.mkdirSync(path.join(this.root, bucketName), { recursive: true, mode: 0o700 });
      this.bucketDir(bucketName);
    });
    return bucket;
  }

  findBucket(name: string): Bucket | undefined {
    return this.db.sqlite
      .prepare('SELECT name, project, location, create_time AS createTime FROM buckets WHERE name = ?')
      .get(name) as Bucket | undefined;
  }

  /** The bucket, or NOT_FOUND naming it. Accepts `b` or `gs://b`. */
  getBucket(name: string): Bucket {
    const bucketName = bucketNameOf(name);
    const b = this.findBucket(bucketName);
    if (!b) throw new NotFoundError(`bucket gs://${bucketName} does not exist`);
    return b;
  }

  listBuckets(opts: { project?: string } = {}): Bucket[] {
    const sql = 'SELECT name, project, location, create_time AS createTime FROM buckets';
    return (opts.project === undefined
      ? this.db.sqlite.prepare(`${sql} ORDER BY name`).all()
      : this.db.sqlite.prepare(`${sql} WHERE project = ? ORDER BY name`).all(opts.project)) as Bucket[];
  }

  /** Deletes an empty bucket; FAILED_PRECONDITION if it still holds objects. */
  deleteBucket(name: string): void {
    const bucket = this.getBucket(name);
    this.db.immediate(() => {
      const n = this.db.sqlite.prepare('SELECT COUNT(*) AS n FROM objects WHERE bucket = ?').get(bucket.name) as { n: number };
      if (n.n > 0) throw new FailedPreconditionError(`bucket gs://${bucket.name} is not empty (${n.n} objects): delete them first`);
      this.db.sqlite.prepare('DELETE FROM buckets WHERE name = ?').run(bucket.name);
    });
    fs.rmSync(path.join(this.root, bucket.name), { recursive: true, force: true });
  }

  // ---- objects ----

  /** Writes an object atomically from bytes, a string or a stream of chunks. */
  async putObject(bucketName: string, name: string, source: ObjectSource, opts: PutOptions = {}): Promise<ObjectInfo> {
    validateObjectName(name);
    const dir = this.bucketDir(this.getBucket(bucketName).name);
    const blob = randomBytes(16).toString('hex');
    const tmp = path.join(dir, `.tmp-${process.pid}-${blob}`);
    const md5 = createHash('md5');
    let size = 0;
    const fh = await fs.promises.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      for await (const chunk of chunksOf(source)) {
        md5.update(chunk);
        size += chunk.length;
        for (let off = 0; off < chunk.length;) off += (await fh.write(chunk, off)).bytesWritten;
      }
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    await fh.close();
    return this.commit(bucketName, name, dir, tmp, blob, size, md5.digest('base64'), opts);
  }

  /** putObject for bytes already in memory, synchronously. */
  putObjectSync(bucketName: string, name: string, data: string | Uint8Array, opts: PutOptions = {}): ObjectInfo {
    validateObjectName(name);
    const dir = this.bucketDir(this.getBucket(bucketName).name);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const blob = randomBytes(16).toString('hex');
    const tmp = path.join(dir, `.tmp-${process.pid}-${blob}`);
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      for (let off = 0; off < bytes.length;) off += fs.writeSync(fd, bytes, off);
      fs.fsyncSync(fd);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    fs.closeSync(fd);
    return this.commit(bucketName, name, dir, tmp, blob, bytes.length, createHash('md5').update(bytes).digest('base64'), opts);
  }

  /** Copies a local file into the store (streamed); NOT_FOUND if the file does not exist. */
  async putObjectFromFile(bucketName: string, name: string, localPath: string, opts: PutOptions = {}): Promise<ObjectInfo> {
    let st: fs.Stats;
    try {
      st = fs.statSync(localPath);
    } catch {
      throw new NotFoundError(`local file ${localPath} does not exist`);
    }
    if (!st.isFile()) throw new InvalidRequestError(`${localPath} is not a regular file`);
    return this.putObject(bucketName, name, fs.createReadStream(localPath), opts);
  }

  private commit(
    bucketName: string, name: string, dir: string, tmp: string, blob: string, size: number, md5: string, opts: PutOptions,
  ): ObjectInfo {
    const blobPath = path.join(dir, blob);
    let old: string | undefined;
    let info: ObjectInfo;
    try {
      fs.renameSync(tmp, blobPath);
      fsyncDir(dir);
      info = this.db.immediate(() => {
        if (!this.findBucket(bucketName)) throw new NotFoundError(`bucket gs://${bucketName} does not exist`);
        const prev = this.row(bucketName, name);
        old = prev?.blob;
        const t = now();
        const generation = Math.max((prev?.generation ?? 0) + 1, Date.now() * 1000);
        const row: ObjectRow = {
          bucket: bucketName, name, blob, size, md5, content_type: opts.contentType ?? prev?.content_type ?? guessContentType(name),
          generation, create_time: prev?.create_time ?? t, update_time: t,
        };
        this.db.sqlite
          .prepare(
            `INSERT INTO objects (bucket, name, blob, size, md5, content_type, generation, create_time, update_time)
             VALUES (@bucket, @name, @blob, @size, @md5, @content_type, @generation, @create_time, @update_time)
             ON CONFLICT (bucket, name) DO UPDATE SET blob = excluded.blob, size = excluded.size, md5 = excluded.md5,
               content_type = excluded.content_type, generation = excluded.generation, update_time = excluded.update_time`,
          )
          .run(row);
        return toInfo(row);
      });
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      fs.rmSync(blobPath, { force: true });
      throw err;
    }
    if (old !== undefined) this.unlinkBlob(dir, old);
    return info;
  }

  statObject(bucketName: string, name: string): ObjectInfo {
    return toInfo(this.requireRow(bucketName, name));
  }

  readObject(bucketName: string, name: string): Buffer {
    return fs.readFileSync(this.blobPath(this.requireRow(bucketName, name)));
  }

  /** A stream of the object's bytes as of now (later overwrites do not affect it). */
  createReadStream(bucketName: string, name: string): fs.ReadStream {
    const fd = fs.openSync(this.blobPath(this.requireRow(bucketName, name)), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    return fs.createReadStream('', { fd });
  }

  /** Copies an object to a local file (written atomically there too). */
  async copyToFile(bucketName: string, name: string, localPath: string): Promise<ObjectInfo> {
    const info = this.statObject(bucketName, name);
    const dest = path.resolve(localPath);
    if (!fs.existsSync(path.dirname(dest))) throw new NotFoundError(`local directory ${path.dirname(dest)} does not exist`);
    const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await fs.promises.writeFile(tmp, this.createReadStream(bucketName, name));
      fs.renameSync(tmp, dest);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    return info;
  }

  deleteObject(bucketName: string, name: string): void {
    const row = this.requireRow(bucketName, name);
    this.db.sqlite.prepare('DELETE FROM objects WHERE bucket = ? AND name = ? AND blob = ?').run(row.bucket, row.name, row.blob);
    this.unlinkBlob(this.bucketDir(row.bucket), row.blob);
  }

  /** Objects in name order; with a delimiter, names that hold it after the prefix roll up into prefixes. */
  listObjects(bucketName: string, opts: ListOptions = {}): ListResult {
    const bucket = this.getBucket(bucketName);
    const prefix = opts.prefix ?? '';
    const delimiter = opts.delimiter ?? '';
    const pageSize = opts.pageSize ?? MAX_PAGE;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE) {
      throw new InvalidRequestError(`pageSize must be an integer in [1, ${MAX_PAGE}], got ${pageSize}`);
    }
    const after = opts.pageToken ? decodePageToken(opts.pageToken) : '';
    const rows = this.db.sqlite
      .prepare(
        `SELECT * FROM objects WHERE bucket = ? AND name > ? AND substr(name, 1, length(?)) = ? ORDER BY name`,
      )
      .iterate(bucket.name, after, prefix, prefix) as IterableIterator<ObjectRow>;
    const objects: ObjectInfo[] = [];
    const prefixes: string[] = [];
    let last = '';
    for (const row of rows) {
      const cut = delimiter ? row.name.indexOf(delimiter, prefix.length) : -1;
      const p = cut >= 0 ? row.name.slice(0, cut + delimiter.length) : undefined;
      if (p !== undefined && p === prefixes[prefixes.length - 1]) continue;
      if (objects.length + prefixes.length === pageSize) {
        rows.return?.();
        return { objects, prefixes, nextPageToken: encodePageToken(last) };
      }
      if (p !== undefined) {
        prefixes.push(p);
        last = `${p}\u{10FFFF}`;
      } else {
        objects.push(toInfo(row));
        last = row.name;
      }
    }
    return { objects, prefixes };
  }

  /** Resolves gs://bucket/object to its metadata and blob path; NOT_FOUND naming the bucket or object. */
  resolveGsUri(uri: string): ResolvedObject {
    const { bucket: bucketName, object } = parseGsUri(uri);
    const bucket = this.findBucket(bucketName);
    if (!bucket) throw new NotFoundError(`bucket gs://${bucketName} does not exist (from ${uri})`);
    const row = this.row(bucketName, object);
    if (!row) throw new NotFoundError(`object ${gsUri(bucketName, object)} does not exist`);
    return { ...toInfo(row), uri: gsUri(bucketName, object), project: bucket.project, location: bucket.location, filePath: this.blobPath(row) };
  }

  /**
   * Removes what crashed uploads left: temporary files of processes that are gone (or of this process's
   * pid from before it started: a restarted container reuses pids), and blobs no row points to that are
   * older than `minAgeMs` (younger ones may belong to an upload about to commit: it renames the blob into
   * place, then commits the row). An upload in progress in a live process (a concurrent `storage cp`)
   * keeps its temporary file. `tunekit serve` calls this at start and hourly (jobs/runner.ts).
   */
  recover(opts: { minAgeMs?: number } = {}): { removed: string[] } {
    const minAgeMs = opts.minAgeMs ?? 60_000;
    const removed: string[] = [];
    for (const bucket of this.listBuckets()) {
      let dir: string;
      try {
        dir = this.bucketDir(bucket.name);
      } catch {
        continue;
      }
      const referenced = new Set(
        (this.db.sqlite.prepare('SELECT blob FROM objects WHERE bucket = ?').all(bucket.name) as { blob: string }[]).map((r) => r.blob),
      );
      for (const entry of fs.readdirSync(dir)) {
        const file = path.join(dir, entry);
        const tmp = TMP.exec(entry);
        // (A file may vanish meanwhile: an upload renaming its temporary file, an overwrite unlinking a blob.)
        const mtime = (): number => fs.lstatSync(file, { throwIfNoEntry: false })?.mtimeMs ?? Date.now();
        const stale = tmp
          ? isLeftover(Number(tmp[1]), mtime)
          : BLOB.test(entry) && !referenced.has(entry) && Date.now() - mtime() >= minAgeMs;
        if (stale) {
          fs.rmSync(file, { force: true });
          removed.push(file);
        }
      }
    }
    return { removed };
  }

  // ---- internals ----

  private row(bucket: string, name: string): ObjectRow | undefined {
    return this.db.sqlite.prepare('SELECT * FROM objects WHERE bucket = ? AND name = ?').get(bucket, name) as ObjectRow | undefined;
  }

  private requireRow(bucketName: string, name: string): ObjectRow {
    validateObjectName(name);
    const bucket = this.getBucket(bucketName);
    const row = this.row(bucket.name, name);
    if (!row) throw new NotFoundError(`object ${gsUri(bucket.name, name)} does not exist`);
    return row;
  }

  /** The bucket's directory, checked to be a real directory directly under the root. */
  private bucketDir(bucketName: string): string {
    validateBucketName(bucketName);
    const dir = path.join(this.root, bucketName);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(dir);
    } catch {
      fs.mkdirSync(dir, { mode: 0o700 });
      st = fs.lstatSync(dir);
    }
    if (!st.isDirectory() || fs.realpathSync(dir) !== dir) {
      throw new Error(`object store: ${dir} is not a plain directory inside ${this.root} (a symbolic link?); refusing to use it`);
    }
    return dir;
  }

  private blobPath(row: ObjectRow): string {
    if (!BLOB.test(row.blob)) throw new Error(`object store: bad blob id ${JSON.stringify(row.blob)} for gs://${row.bucket}/${row.name}`);
    return path.join(this.bucketDir(row.bucket), row.blob);
  }

  private unlinkBlob(dir: string, blob: string): void {
    if (BLOB.test(blob)) fs.rmSync(path.join(dir, blob), { force: true });
  }
}

/** Data sovereignty: a job may only read data held in its own location. */
export function assertSameLocation(bucketLocation: string, jobLocation: string, uri?: string): void {
  if (bucketLocation === jobLocation) return;
  const what = uri ? `${uri} is stored in` : 'the bucket is in';
  throw new FailedPreconditionError(
    `data sovereignty: ${what} ${bucketLocation}, but the job runs in ${jobLocation}; a job may only read data from buckets in its own location`,
  );
}

function bucketNameOf(name: string): string {
  const bare = name.startsWith('gs://') ? name.slice(5).replace(/\/$/, '') : name;
  validateBucketName(bare);
  return bare;
}

async function* chunksOf(source: ObjectSource): AsyncIterable<Buffer> {
  if (typeof source === 'string') {
    yield Buffer.from(source, 'utf8');
  } else if (source instanceof Uint8Array) {
    yield Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  } else {
    for await (const c of source) yield typeof c === 'string' ? Buffer.from(c, 'utf8') : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  }
}

function toInfo(row: ObjectRow): ObjectInfo {
  return {
    bucket: row.bucket, name: row.name, size: row.size, md5Hash: row.md5, contentType: row.content_type,
    generation: String(row.generation), createTime: row.create_time, updateTime: row.update_time,
  };
}

function guessContentType(name: string): string {
  if (name.endsWith('.jsonl')) return 'application/jsonl';
  if (name.endsWith('.json')) return 'application/json';
  if (name.endsWith('.txt')) return 'text/plain';
  return 'application/octet-stream';
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** When this process started (less a margin for coarse file timestamps). */
const PROCESS_START_MS = Date.now() - process.uptime() * 1000 - 2000;

/**
 * Whether a temporary file or directory named after process `pid` was left by a process that is gone:
 * `pid` is not alive, or it is this process but the file predates it (pid reuse across a restart).
 */
export function isLeftover(pid: number, mtimeMs: () => number): boolean {
  if (pid === process.pid) {
    try {
      return mtimeMs() < PROCESS_START_MS;
    } catch {
      return false;
    }
  }
  return !processAlive(pid);
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function encodePageToken(after: string): string {
  return Buffer.from(after, 'utf8').toString('base64url');
}

function decodePageToken(token: string): string {
  const s = Buffer.from(token, 'base64url').toString('utf8');
  if (encodePageToken(s) !== token) throw new InvalidRequestError(`pageToken ${JSON.stringify(token)} is not valid`);
  return s;
}
