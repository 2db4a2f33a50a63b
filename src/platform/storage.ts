// The object store behind gs:// URIs. Metadata (bucket, name, size, md5, generation) is a row in the
// database; the bytes are a blob `objects/<bucket>/<32 hex>` of the deployment's blob store
// (blob-store.ts: `<data-dir>/objects/...` by default, or a GCS bucket), whose name is random, so no
// object name ever becomes part of a path. Rules it keeps:
// - An upload writes its blob completely (the blob store's put is all or nothing, and create-only:
//   ifGenerationMatch=0 on GCS), and only then commits the row. A crash at any point leaves the old
//   object (or none) visible, never a partial one; `recover` removes the leftovers.
// - An overwrite gets a new blob and a higher generation; the old blob is removed after the commit
//   (a local reader that already opened it keeps reading the old bytes).
// - Local directories must be real directories inside the root (no symlinks), checked on each use.
// - Resumable uploads (the Cloud Storage JSON API's) keep their state in a row and their bytes in the
//   blob store as parts `uploads/<id>/<offset>` (so any serve replica can take the next chunk, with no
//   shared directory); a chunk's bytes count as received once their part is stored (every MiB and at
//   the chunk's end, also when the client goes away mid-chunk). The last byte commits the object as any
//   upload does: the parts, in order, become its blob. Every write checks the size limit (limits.ts
//   objectBytes) as bytes arrive.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { AlreadyExistsError, CancelledError, FailedPreconditionError, InvalidRequestError, NotFoundError, TunekitError, UnavailableError } from '../errors.js';
import { chunksOf, downloadVia, LocalBlobStore, type BlobStore } from './blob-store.js';
import { Crc32c } from './crc32c.js';
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
  /** Base64 of the big-endian CRC-32C of the content, as GCS's crc32c. */
  crc32c: string;
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
  /** Write only if the object's generation is this one (0: only if it does not exist); 412 otherwise. */
  ifGenerationMatch?: number;
  /** Hashes the client computed (base64): the write is refused, and nothing stored, if the content's differ. */
  expect?: ExpectedHashes;
  /** Most bytes the object may have (default LIMITS.objectBytes). */
  maxBytes?: number;
  /** Stops the write (CancelledError) when it fires; nothing is stored. */
  signal?: AbortSignal;
}

export interface ExpectedHashes {
  md5Hash?: string;
  crc32c?: string;
}

/** A resumable upload in progress (or finished: `done`). */
export interface UploadSession {
  id: string;
  bucket: string;
  name: string;
  contentType?: string;
  /** The object's size, once the client has said it. */
  total?: number;
  /** Bytes received and synced: the next chunk starts here. */
  persisted: number;
  done: boolean;
}

/** A write that would pass the size limit (HTTP 413 on the storage API). */
export class ObjectTooLargeError extends TunekitError {
  constructor(readonly limit: number) {
    super('OUT_OF_RANGE', `The object exceeds the maximum object size of ${limit} bytes (tunekit's limit, src/platform/limits.ts objectBytes).`);
  }
}

/** An ifGenerationMatch precondition that does not hold (HTTP 412 on the storage API). */
export class PreconditionFailedError extends TunekitError {
  constructor(message: string) {
    super('FAILED_PRECONDITION', message);
  }
}

interface ObjectRow {
  bucket: string;
  name: string;
  blob: string;
  size: number;
  md5: string;
  crc32c: string | null;
  content_type: string;
  generation: number;
  create_time: string;
  update_time: string;
}

const BLOB = /^[0-9a-f]{32}$/;
/** Where a resumable upload's parts are: `uploads/<id>/<offset, 16 digits>`. */
const UPLOADS = 'uploads/';
const partKey = (id: string, offset: number): string => `${UPLOADS}${id}/${String(offset).padStart(16, '0')}`;
/** Cloud Storage's resumable sessions live a week. */
const UPLOAD_TTL_MS = 7 * 24 * 3600 * 1000;
/** A resumable chunk's bytes are synced (and count as received) at least this often. */
const SYNC_EVERY = 1 << 20;
const MAX_PAGE = LIMITS.pageSize.objects;
/** Rows read per query by listObjects. */
const LIST_BATCH = 1000;

/** The blob store key of a blob of `bucket`. */
function blobKey(bucket: string, blob: string): string {
  if (!BLOB.test(blob)) throw new Error(`object store: bad blob id ${JSON.stringify(blob)} in gs://${bucket}`);
  return `objects/${bucket}/${blob}`;
}

export class ObjectStore {
  /** Real path of `<data-dir>/objects`: with the default (local) blob store, where the objects' blobs are. */
  readonly root: string;
  /** Where the bytes are (default: the data directory). */
  readonly blobs: BlobStore;
  private readonly projects: Projects;

  constructor(private readonly db: PlatformDb, private readonly config: PlatformConfig, opts: { blobs?: BlobStore } = {}) {
    this.blobs = opts.blobs ?? new LocalBlobStore(db.dataDir, db.owner);
    const root = path.join(db.dataDir, 'objects');
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    this.root = fs.realpathSync(root);
    this.projects = new Projects(db);
  }

  // ---- buckets ----

  /** Creates `name` (or `gs://name`) in `location` for `project` (created if new). */
  async createBucket(name: string, opts: { location: string; project: string }): Promise<Bucket> {
    const bucketName = bucketNameOf(name);
    await this.config.assertLocation(opts.location);
    await this.projects.ensure(opts.project);
    const bucket: Bucket = { name: bucketName, project: opts.project, location: opts.location, createTime: now() };
    await this.db.transaction(async () => {
      const r = (await this.db.run('INSERT INTO buckets (name, project, location, create_time) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', bucket.name, bucket.project, bucket.location, bucket.createTime));
      if (r.changes === 0) throw new AlreadyExistsError(`bucket gs://${bucketName} already exists`);
    });
    return bucket;
  }

  async findBucket(name: string): Promise<Bucket | undefined> {
    return (await this.db.get('SELECT name, project, location, create_time AS "createTime" FROM buckets WHERE name = ?', name)) as Bucket | undefined;
  }

  /** The bucket, or NOT_FOUND naming it. Accepts `b` or `gs://b`. */
  async getBucket(name: string): Promise<Bucket> {
    const bucketName = bucketNameOf(name);
    const b = await this.findBucket(bucketName);
    if (!b) throw new NotFoundError(`bucket gs://${bucketName} does not exist`);
    return b;
  }

  async listBuckets(opts: { project?: string } = {}): Promise<Bucket[]> {
    const sql = 'SELECT name, project, location, create_time AS "createTime" FROM buckets';
    return (opts.project === undefined
      ? (await this.db.all(`${sql} ORDER BY name`))
      : (await this.db.all(`${sql} WHERE project = ? ORDER BY name`, opts.project))) as Bucket[];
  }

  /** Deletes an empty bucket; FAILED_PRECONDITION if it still holds objects. */
  async deleteBucket(name: string): Promise<void> {
    const bucket = await this.getBucket(name);
    await this.db.transaction(async () => {
      const n = (await this.db.get('SELECT COUNT(*) AS n FROM objects WHERE bucket = ?', bucket.name)) as { n: number };
      if (n.n > 0) throw new FailedPreconditionError(`bucket gs://${bucket.name} is not empty (${n.n} objects): delete them first`);
      await this.db.run('DELETE FROM buckets WHERE name = ?', bucket.name);
    });
    await this.blobs.deletePrefix(`objects/${bucket.name}/`);
  }

  // ---- objects ----

  /** Writes an object atomically from bytes, a string or a stream of chunks. */
  async putObject(bucketName: string, name: string, source: ObjectSource, opts: PutOptions = {}): Promise<ObjectInfo> {
    validateObjectName(name);
    const bucket = (await this.getBucket(bucketName)).name;
    const blob = randomBytes(16).toString('hex');
    const md5 = createHash('md5');
    const crc = new Crc32c();
    const maxBytes = opts.maxBytes ?? LIMITS.objectBytes;
    let size = 0;
    const take = (chunk: Buffer): Buffer => {
      if (opts.signal?.aborted) throw new CancelledError('The client closed the connection during the upload; nothing was stored.');
      size += chunk.length;
      if (size > maxBytes) throw new ObjectTooLargeError(maxBytes);
      md5.update(chunk);
      crc.update(chunk);
      return chunk;
    };
    async function* checked(): AsyncIterable<Buffer> {
      for await (const chunk of chunksOf(source)) yield take(chunk);
    }
    // Bytes in hand go as they are (a blob store may then send them again after a failure); a stream once.
    const inHand = typeof source === 'string' || source instanceof Uint8Array;
    if (inHand) take(typeof source === 'string' ? Buffer.from(source, 'utf8') : Buffer.from(source.buffer, source.byteOffset, source.byteLength));
    await this.blobs.put(blobKey(bucket, blob), inHand ? source : checked(), { ifAbsent: true });
    return await this.commit(bucket, name, blob, { size, md5: md5.digest('base64'), crc32c: crc.base64() }, opts);
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
    return this.putObject(bucketName, name, await fs.createReadStream(localPath), opts);
  }

  /**
   * Commits the row of the stored blob `blob`, after the preconditions and expected hashes are checked;
   * on any failure the blob is removed and nothing changes. `after` runs in the same transaction (a
   * resumable session marks itself done).
   */
  private async commit(
    bucketName: string, name: string, blob: string,
    content: { size: number; md5: string; crc32c: string }, opts: PutOptions, after?: () => Promise<unknown>,
  ): Promise<ObjectInfo> {
    const { size, md5, crc32c } = content;
    let old: string | undefined;
    let info: ObjectInfo;
    try {
      if (opts.expect?.md5Hash !== undefined && opts.expect.md5Hash !== md5) {
        throw new InvalidRequestError(`Provided MD5 hash "${opts.expect.md5Hash}" doesn't match calculated MD5 hash "${md5}"; nothing was stored.`);
      }
      if (opts.expect?.crc32c !== undefined && opts.expect.crc32c !== crc32c) {
        throw new InvalidRequestError(`Provided CRC32C "${opts.expect.crc32c}" doesn't match calculated CRC32C "${crc32c}"; nothing was stored.`);
      }
      info = await this.db.transaction(async () => {
        if (!await this.findBucket(bucketName)) throw new NotFoundError(`bucket gs://${bucketName} does not exist`);
        const prev = await this.row(bucketName, name);
        checkGeneration(bucketName, name, prev, opts.ifGenerationMatch);
        old = prev?.blob;
        const t = now();
        const generation = Math.max((prev?.generation ?? 0) + 1, Date.now() * 1000);
        const row: ObjectRow = {
          bucket: bucketName, name, blob, size, md5, crc32c, content_type: opts.contentType ?? prev?.content_type ?? guessContentType(name),
          generation, create_time: prev?.create_time ?? t, update_time: t,
        };
        await this.db.run(
          `INSERT INTO objects (bucket, name, blob, size, md5, crc32c, content_type, generation, create_time, update_time)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (bucket, name) DO UPDATE SET blob = excluded.blob, size = excluded.size, md5 = excluded.md5,
             crc32c = excluded.crc32c, content_type = excluded.content_type, generation = excluded.generation, update_time = excluded.update_time`,
          row.bucket, row.name, row.blob, row.size, row.md5, row.crc32c, row.content_type, row.generation, row.create_time, row.update_time,
        );
        await after?.();
        return toInfo(row);
      });
    } catch (err) {
      await this.blobs.delete(blobKey(bucketName, blob)).catch(() => undefined);
      throw err;
    }
    if (old !== undefined) await this.removeBlob(bucketName, old);
    return info;
  }

  async statObject(bucketName: string, name: string): Promise<ObjectInfo> {
    return toInfo(await this.withCrc(await this.requireRow(bucketName, name)));
  }

  async readObject(bucketName: string, name: string): Promise<Buffer> {
    const row = await this.requireRow(bucketName, name);
    return await this.blobs.read(blobKey(row.bucket, row.blob));
  }

  /** A stream of the object's bytes as of now (later overwrites do not affect it); `range` is inclusive. */
  async createReadStream(bucketName: string, name: string, range?: { start: number; end: number }): Promise<Readable> {
    return (await this.openObject(bucketName, name, range)).stream;
  }

  /** The object's metadata and a stream of its bytes (of `range`, inclusive), from one consistent read. */
  async openObject(bucketName: string, name: string, range?: { start: number; end: number }): Promise<{ info: ObjectInfo; stream: Readable }> {
    const row = await this.withCrc(await this.requireRow(bucketName, name));
    return { info: toInfo(row), stream: await this.blobs.open(blobKey(row.bucket, row.blob), range) };
  }

  /** Copies an object to a local file (written atomically there too). */
  async copyToFile(bucketName: string, name: string, localPath: string): Promise<ObjectInfo> {
    const dest = path.resolve(localPath);
    if (!fs.existsSync(path.dirname(dest))) throw new NotFoundError(`local directory ${path.dirname(dest)} does not exist`);
    const { info, stream } = await this.openObject(bucketName, name);
    await downloadVia(stream, dest);
    return info;
  }

  async deleteObject(bucketName: string, name: string, opts: { ifGenerationMatch?: number } = {}): Promise<void> {
    const row = await this.requireRow(bucketName, name);
    checkGeneration(bucketName, name, row, opts.ifGenerationMatch);
    await this.db.run('DELETE FROM objects WHERE bucket = ? AND name = ? AND blob = ?', row.bucket, row.name, row.blob);
    await this.removeBlob(row.bucket, row.blob);
  }

  /** Objects in name order; with a delimiter, names that hold it after the prefix roll up into prefixes. */
  async listObjects(bucketName: string, opts: ListOptions = {}): Promise<ListResult> {
    const bucket = await this.getBucket(bucketName);
    const prefix = opts.prefix ?? '';
    const delimiter = opts.delimiter ?? '';
    const pageSize = opts.pageSize ?? MAX_PAGE;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE) {
      throw new InvalidRequestError(`pageSize must be an integer in [1, ${MAX_PAGE}], got ${pageSize}`);
    }
    const after = opts.pageToken ? decodePageToken(opts.pageToken) : '';
    const found: ObjectRow[] = [];
    const prefixes: string[] = [];
    let last = '';
    const infos = async (): Promise<ObjectInfo[]> => {
      const out: ObjectInfo[] = [];
      for (const r of found) out.push(toInfo(await this.withCrc(r)));
      return out;
    };
    // Rows in batches (a prefix may roll up many of them), each after the previous batch's last name.
    for (let from = after; ;) {
      const rows = await this.db.all<ObjectRow>(
        'SELECT * FROM objects WHERE bucket = ? AND name > ? AND substr(name, 1, length(CAST(? AS TEXT))) = CAST(? AS TEXT) ORDER BY name LIMIT ?',
        bucket.name, from, prefix, prefix, LIST_BATCH,
      );
      for (const row of rows) {
        const cut = delimiter ? row.name.indexOf(delimiter, prefix.length) : -1;
        const p = cut >= 0 ? row.name.slice(0, cut + delimiter.length) : undefined;
        if (p !== undefined && p === prefixes[prefixes.length - 1]) continue;
        if (found.length + prefixes.length === pageSize) return { objects: await infos(), prefixes, nextPageToken: encodePageToken(last) };
        if (p !== undefined) {
          prefixes.push(p);
          last = `${p}\u{10FFFF}`;
        } else {
          found.push(row);
          last = row.name;
        }
      }
      if (rows.length < LIST_BATCH) return { objects: await infos(), prefixes };
      from = rows[rows.length - 1]!.name;
    }
  }

  // ---- resumable uploads ----

  /** Starts a resumable upload of `name` (the object is written when its last byte arrives). */
  async startUpload(bucketName: string, name: string, opts: PutOptions & { total?: number } = {}): Promise<UploadSession> {
    validateObjectName(name);
    const bucket = await this.getBucket(bucketName);
    const maxBytes = opts.maxBytes ?? LIMITS.objectBytes;
    if (opts.total !== undefined && opts.total > maxBytes) throw new ObjectTooLargeError(maxBytes);
    if (opts.ifGenerationMatch !== undefined) checkGeneration(bucket.name, name, await this.row(bucket.name, name), opts.ifGenerationMatch);
    const id = randomBytes(16).toString('hex');
    await this.db.run(
      `INSERT INTO resumable_uploads (id, bucket, name, content_type, total, if_generation_match, expect_md5, expect_crc32c, create_time)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      id, bucket.name, name, opts.contentType ?? null, opts.total ?? null, opts.ifGenerationMatch ?? null,
      opts.expect?.md5Hash ?? null, opts.expect?.crc32c ?? null, now(),
    );
    return await this.getUpload(id);
  }

  /** The session `id`; NOT_FOUND when it does not exist, was cancelled or expired. */
  async getUpload(id: string): Promise<UploadSession> {
    const r = /^[0-9a-f]{32}$/.test(id) ? await this.uploadRow(id) : undefined;
    if (!r || Date.now() - Date.parse(r.create_time) > UPLOAD_TTL_MS) {
      throw new NotFoundError(`resumable upload session ${JSON.stringify(id)} does not exist (cancelled, or older than a week)`);
    }
    return {
      id: r.id, bucket: r.bucket, name: r.name, ...(r.content_type !== null ? { contentType: r.content_type } : {}),
      ...(r.total !== null ? { total: r.total } : {}), persisted: r.persisted, done: r.done === 1,
    };
  }

  /**
   * Writes a chunk of session `id` that starts at byte `start` of the object. Bytes the session already
   * has are skipped; a start past them is refused (it would leave a gap). `total`, when given, is the
   * object's size: once that many bytes are in, the object is committed and returned. The chunk's bytes
   * count as received once synced (every MiB and at its end, also when the stream fails: the client can
   * resume from there). Chunks of one session are written one at a time, across processes too.
   */
  async writeUpload(id: string, start: number, source: AsyncIterable<Uint8Array>, opts: { total?: number; expect?: ExpectedHashes; maxBytes?: number } = {}): Promise<{ session: UploadSession; object?: ObjectInfo }> {
    return this.serialized(id, async () => {
      await this.getUpload(id);
      await this.claimUpload(id);
      try {
        return await this.writeChunk(id, start, source, opts);
      } finally {
        await this.db.run('UPDATE resumable_uploads SET writer = NULL WHERE id = ? AND writer = ?', id, this.db.owner).catch(() => undefined);
      }
    });
  }

  /**
   * Takes session `id` for a chunk of this process: chunks of one session are written one at a time
   * across processes too (serve replicas), so two cannot interleave their writes. A session held by a
   * process that is gone (db.ownerGone) is taken over; one held by a live process is UNAVAILABLE
   * (the client queries the upload's status and sends from there).
   */
  private async claimUpload(id: string): Promise<void> {
    const me = this.db.owner;
    if ((await this.db.run('UPDATE resumable_uploads SET writer = ? WHERE id = ? AND (writer IS NULL OR writer = ?)', me, id, me)).changes === 1) return;
    const writer = (await this.uploadRow(id))?.writer;
    // (No grace for recent writes here: a client resuming after its replica died must not wait.)
    if (writer !== undefined && writer !== null && await this.db.ownerGone(writer, () => 0)
      && (await this.db.run('UPDATE resumable_uploads SET writer = ? WHERE id = ? AND writer = ?', me, id, writer)).changes === 1) return;
    throw new UnavailableError(`another request is writing a chunk of resumable upload ${id}: query the upload's status (Content-Range: bytes */*) and send from the byte it reports once that request ends`);
  }

  private async writeChunk(id: string, start: number, source: AsyncIterable<Uint8Array>, opts: { total?: number; expect?: ExpectedHashes; maxBytes?: number }): Promise<{ session: UploadSession; object?: ObjectInfo }> {
    const session = await this.getUpload(id);
    if (session.done) throw new FailedPreconditionError(`resumable upload ${id} is already complete: gs://${session.bucket}/${session.name} was written`);
    const maxBytes = opts.maxBytes ?? LIMITS.objectBytes;
    let total = session.total;
    if (opts.total !== undefined) {
      if (total !== undefined && total !== opts.total) throw new InvalidRequestError(`the upload's size was given as ${total} bytes, this chunk says ${opts.total}`);
      if (opts.total < session.persisted) throw new InvalidRequestError(`the upload's size ${opts.total} is less than the ${session.persisted} bytes already received`);
      if (opts.total > maxBytes) throw new ObjectTooLargeError(maxBytes);
      total = opts.total;
    }
    if (start > session.persisted) {
      throw new InvalidRequestError(`the chunk starts at byte ${start} but the upload has ${session.persisted} bytes: send from byte ${session.persisted} (query the upload's status)`);
    }
    let persisted = session.persisted;
    let pos = persisted;
    let skip = persisted - start;
    // Bytes since the last stored part (at most SYNC_EVERY plus one chunk of the request).
    let pending: Buffer[] = [];
    const save = async (): Promise<void> => {
      // A part left by a store whose row update was lost starts at `persisted` too: it is overwritten.
      if (pos > persisted) await this.blobs.put(partKey(id, persisted), Buffer.concat(pending));
      pending = [];
      persisted = pos;
      await this.db.run('UPDATE resumable_uploads SET persisted = ?, total = ? WHERE id = ?', persisted, total ?? null, id);
    };
    try {
      for await (const raw of source) {
        let chunk = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
        if (skip > 0) {
          const n = Math.min(skip, chunk.length);
          skip -= n;
          chunk = chunk.subarray(n);
        }
        if (chunk.length === 0) continue;
        if (pos + chunk.length > maxBytes) throw new ObjectTooLargeError(maxBytes);
        if (total !== undefined && pos + chunk.length > total) throw new InvalidRequestError(`the chunk goes past the upload's size of ${total} bytes`);
        pending.push(Buffer.from(chunk)); // (a copy: the stream may reuse its buffer)
        pos += chunk.length;
        if (pos - persisted >= SYNC_EVERY) await save();
      }
      if (pos > persisted || (opts.total !== undefined && session.total === undefined)) await save();
    } catch (err) {
      // Keep what arrived (the client resumes from it), unless the chunk was refused outright.
      if (!(err instanceof ObjectTooLargeError || err instanceof InvalidRequestError)) await save().catch(() => undefined);
      throw err;
    }
    if (total === undefined || persisted < total) return { session: await this.getUpload(id) };
    return { session: await this.getUpload(id), object: await this.finishUpload(session, total, opts.expect) };
  }

  /** Cancels an upload: its bytes are removed and its URI answers 404. */
  async cancelUpload(id: string): Promise<void> {
    await this.getUpload(id);
    await this.db.run('DELETE FROM resumable_uploads WHERE id = ?', id);
    await this.blobs.deletePrefix(`${UPLOADS}${id}/`);
  }

  /** Stores the parts of a complete upload (`total` bytes), in order, as the object's blob and commits it. */
  private async finishUpload(session: UploadSession, total: number, expect: ExpectedHashes | undefined): Promise<ObjectInfo> {
    const r = (await this.uploadRow(session.id))!;
    const md5 = createHash('md5');
    const crc = new Crc32c();
    let size = 0;
    const prefix = `${UPLOADS}${session.id}/`;
    const sizes = new Map((await this.blobs.list(prefix)).blobs.map((b) => [b.key, b.size]));
    const blobs = this.blobs;
    async function* parts(): AsyncIterable<Buffer> {
      while (size < total) {
        const key = partKey(session.id, size);
        if (!sizes.get(key)) throw new Error(`object store: resumable upload ${session.id} has no part at byte ${size} (${blobs.where(key)})`);
        for await (const chunk of await blobs.open(key) as AsyncIterable<Buffer>) {
          md5.update(chunk);
          crc.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      }
    }
    const blob = randomBytes(16).toString('hex');
    const opts: PutOptions = {
      ...(r.content_type !== null ? { contentType: r.content_type } : {}),
      ...(r.if_generation_match !== null ? { ifGenerationMatch: r.if_generation_match } : {}),
      expect: { md5Hash: expect?.md5Hash ?? r.expect_md5 ?? undefined, crc32c: expect?.crc32c ?? r.expect_crc32c ?? undefined },
    };
    try {
      await this.blobs.put(blobKey(session.bucket, blob), parts(), { ifAbsent: true });
      const object = await this.commit(session.bucket, session.name, blob, { size, md5: md5.digest('base64'), crc32c: crc.base64() }, opts,
        () => this.db.run('UPDATE resumable_uploads SET done = 1 WHERE id = ?', session.id));
      await this.blobs.deletePrefix(prefix).catch(() => undefined); // (else recover removes them)
      return object;
    } catch (err) {
      // The bytes failed a check (hashes, precondition): the session cannot complete any more.
      await this.db.run('DELETE FROM resumable_uploads WHERE id = ?', session.id);
      throw err;
    }
  }

  private async uploadRow(id: string): Promise<UploadRow | undefined> {
    return (await this.db.get('SELECT * FROM resumable_uploads WHERE id = ?', id)) as UploadRow | undefined;
  }

  private readonly queues = new Map<string, Promise<unknown>>();

  /** Runs `fn` after every earlier call for `key` has settled. */
  private serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return next;
  }

  /** Resolves gs://bucket/object to its metadata; NOT_FOUND naming the bucket or object. */
  async resolveGsUri(uri: string): Promise<ResolvedObject> {
    const { bucket: bucketName, object } = parseGsUri(uri);
    const bucket = await this.findBucket(bucketName);
    if (!bucket) throw new NotFoundError(`bucket gs://${bucketName} does not exist (from ${uri})`);
    const row = await this.row(bucketName, object);
    if (!row) throw new NotFoundError(`object ${gsUri(bucketName, object)} does not exist`);
    return { ...toInfo(await this.withCrc(row)), uri: gsUri(bucketName, object), project: bucket.project, location: bucket.location };
  }

  /**
   * Removes what crashed uploads left: temporary files of processes that are gone (db.ts ownerGone), the parts of resumable sessions
   * that are gone, and blobs no row points to that are older than `minAgeMs` (younger ones may belong to
   * an upload about to commit: it stores the blob, then commits the row). An upload in progress in a
   * live process (a concurrent `storage cp`) keeps its temporary file. `tunekit serve` calls this at
   * start and hourly (src/platform/sweep.ts).
   */
  async recover(opts: { minAgeMs?: number } = {}): Promise<{ removed: string[] }> {
    const minAgeMs = opts.minAgeMs ?? 60_000;
    const removed: string[] = [];
    // Resumable sessions older than a week go, with their parts; so do parts of sessions that are gone or done.
    await this.db.run('DELETE FROM resumable_uploads WHERE create_time < ?', new Date(Date.now() - UPLOAD_TTL_MS).toISOString());
    const live = new Set((await this.db.all<{ id: string }>('SELECT id FROM resumable_uploads WHERE done = 0')).map((r) => r.id));
    for (const p of (await this.blobs.list(UPLOADS, { delimiter: '/' })).prefixes) {
      if (live.has(p.slice(UPLOADS.length, -1))) continue;
      await this.blobs.deletePrefix(p);
      removed.push(this.blobs.where(p));
    }
    for (const bucket of await this.listBuckets()) {
      const referenced = new Set(
        ((await this.db.all('SELECT blob FROM objects WHERE bucket = ?', bucket.name)) as { blob: string }[]).map((r) => r.blob),
      );
      const prefix = `objects/${bucket.name}/`;
      try {
        removed.push(...await this.blobs.recover(prefix, (mark, mtimeMs) => this.db.ownerGone(mark, mtimeMs)));
        for (const b of (await this.blobs.list(prefix, { delimiter: '/' })).blobs) {
          const id = b.key.slice(prefix.length);
          // (A blob may vanish meanwhile: an overwrite removing the old one.)
          if (BLOB.test(id) && !referenced.has(id) && Date.now() - b.mtimeMs >= minAgeMs) {
            await this.blobs.delete(b.key);
            removed.push(this.blobs.where(b.key));
          }
        }
      } catch (err) {
        if (!(err instanceof Error && /not a plain directory/.test(err.message))) throw err;
      }
    }
    return { removed };
  }

  // ---- internals ----

  private async row(bucket: string, name: string): Promise<ObjectRow | undefined> {
    return (await this.db.get('SELECT * FROM objects WHERE bucket = ? AND name = ?', bucket, name)) as ObjectRow | undefined;
  }

  /** The row with its crc32c (objects written before crc32c was stored get it computed once, here). */
  private async withCrc(row: ObjectRow): Promise<ObjectRow & { crc32c: string }> {
    if (row.crc32c !== null) return row as ObjectRow & { crc32c: string };
    const crc = new Crc32c();
    for await (const chunk of await this.blobs.open(blobKey(row.bucket, row.blob)) as AsyncIterable<Buffer>) crc.update(chunk);
    const crc32c = crc.base64();
    await this.db.run('UPDATE objects SET crc32c = ? WHERE bucket = ? AND name = ? AND blob = ?', crc32c, row.bucket, row.name, row.blob);
    return { ...row, crc32c };
  }

  private async requireRow(bucketName: string, name: string): Promise<ObjectRow> {
    validateObjectName(name);
    const bucket = await this.getBucket(bucketName);
    const row = await this.row(bucket.name, name);
    if (!row) throw new NotFoundError(`object ${gsUri(bucket.name, name)} does not exist`);
    return row;
  }

  /** Removes a blob no row points to any more (a failure leaves it to `recover`). */
  private async removeBlob(bucket: string, blob: string): Promise<void> {
    await this.blobs.delete(blobKey(bucket, blob)).catch(() => undefined);
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

interface UploadRow {
  id: string;
  bucket: string;
  name: string;
  content_type: string | null;
  total: number | null;
  writer: number | null;
  persisted: number;
  if_generation_match: number | null;
  expect_md5: string | null;
  expect_crc32c: string | null;
  done: number;
  create_time: string;
}

/** PreconditionFailedError unless the object's generation is `want` (0: the object must not exist). */
function checkGeneration(bucket: string, name: string, row: { generation: number } | undefined, want: number | undefined): void {
  if (want === undefined) return;
  const have = row?.generation ?? 0;
  if (have !== want) {
    throw new PreconditionFailedError(
      `At least one of the pre-conditions you specified did not hold: ifGenerationMatch=${want}, but gs://${bucket}/${name} ${row ? `is at generation ${have}` : 'does not exist'}.`,
    );
  }
}

function toInfo(row: ObjectRow): ObjectInfo {
  return {
    bucket: row.bucket, name: row.name, size: row.size, md5Hash: row.md5, crc32c: row.crc32c ?? '', contentType: row.content_type,
    generation: String(row.generation), createTime: row.create_time, updateTime: row.update_time,
  };
}

function guessContentType(name: string): string {
  if (name.endsWith('.jsonl')) return 'application/jsonl';
  if (name.endsWith('.json')) return 'application/json';
  if (name.endsWith('.txt')) return 'text/plain';
  return 'application/octet-stream';
}

function encodePageToken(after: string): string {
  return Buffer.from(after, 'utf8').toString('base64url');
}

function decodePageToken(token: string): string {
  const s = Buffer.from(token, 'base64url').toString('utf8');
  if (encodePageToken(s) !== token) throw new InvalidRequestError(`pageToken ${JSON.stringify(token)} is not valid`);
  return s;
}
