// The Cloud Storage JSON API, the subset its clients use, over the object store (src/platform/storage.ts),
// so that `@google-cloud/storage` (or gsutil, or any client of that API) pointed at tunekit
// (`apiEndpoint: "http://HOST:PORT"`) uploads datasets and downloads adapters:
//   GET/POST   /storage/v1/b?project=P                 buckets list / insert
//   GET/DELETE /storage/v1/b/B                         buckets get / delete (409 unless empty)
//   GET        /storage/v1/b/B/o                       objects list: prefix, delimiter, pageToken, maxResults
//   GET/DELETE /storage/v1/b/B/o/NAME                  objects get (metadata; alt=media with Range) / delete
//   GET        /download/storage/v1/b/B/o/NAME         the same as alt=media
//   POST       /upload/storage/v1/b/B/o?uploadType=media|multipart|resumable
//   PUT/DELETE the resumable session URI               chunks (Content-Range), status (bytes */N), cancel
// Credentials and IAM are the API's (x-goog-api-key, ?key=, or Authorization: Bearer KEY): storage.buckets.*
// and storage.objects.* on the bucket's project, as `tunekit storage` data is governed. A resumable
// session URI is itself the credential for its chunks (its id is 128 random bits), as Cloud Storage's
// is. Objects carry md5Hash and crc32c (base64) as Cloud Storage reports them, so the client's
// validation passes; `x-goog-hash` on downloads. Size limit: LIMITS.objectBytes (413 as bytes arrive).
// Preconditions: ifGenerationMatch on writes and deletes (412). Resource fields tunekit does not keep
// (ACLs, cacheControl, contentEncoding, custom metadata, storage classes but STANDARD, ...) are refused
// with 400 naming them. Errors are Cloud Storage's JSON shape: {"error": {code, message, errors: [{domain,
// reason, message}]}}.

import { Readable } from 'node:stream';
import { Hono, type Context } from 'hono';
import { guard } from '../auth.js';
import { requestSignal, type ApiContext } from '../context.js';
import { toStatus } from '../errors.js';
import { CancelledError, InvalidRequestError, NotFoundError, TunekitError, UnavailableError } from '../../errors.js';
import {
  ObjectTooLargeError, PreconditionFailedError, type Bucket, type ExpectedHashes, type ObjectInfo, type ObjectStore,
} from '../../platform/storage.js';
import { LIMITS } from '../../platform/limits.js';

export interface StorageApiOptions {
  /** Most bytes of one object (default LIMITS.objectBytes). */
  maxObjectBytes?: number;
}

/** Thrown for statuses google.rpc has no code for (416). */
class GcsError extends Error {
  constructor(readonly httpStatus: number, readonly reason: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

const REASONS: Record<number, string> = {
  400: 'invalid', 401: 'required', 403: 'forbidden', 404: 'notFound', 409: 'conflict', 412: 'conditionNotMet',
  413: 'uploadTooLarge', 429: 'rateLimitExceeded', 499: 'cancelled', 500: 'backendError', 501: 'notImplemented', 503: 'backendError',
};

export function storageApi(api: ApiContext, store: ObjectStore, opts: StorageApiOptions = {}): Hono {
  const maxBytes = opts.maxObjectBytes ?? LIMITS.objectBytes;
  const app = new Hono();
  app.onError((err) => gcsError(api, err));

  const authorize = (c: Context, permission: string, project: string) => guard(api.auth, c.req.raw.headers, permission, project);
  /** The bucket, after the caller's permission on its project (a missing bucket is 404 only to those who may list). */
  const bucketFor = async (c: Context, permission: string): Promise<Bucket> => {
    const name = c.req.param('bucket')!;
    const b = await store.findBucket(name);
    if (!b) {
      await api.auth.authenticate(c.req.raw.headers);
      throw new NotFoundError(`The specified bucket does not exist: ${name}`);
    }
    await authorize(c, permission, b.project);
    return b;
  };

  // ---- buckets ----
  app.get('/storage/v1/b', async (c) => {
    refuseQuery(c, ['project', 'prefix', 'maxResults', 'pageToken', 'key']);
    const project = requiredQuery(c, 'project');
    await authorize(c, 'storage.buckets.list', project);
    const prefix = c.req.query('prefix') ?? '';
    const pageSize = maxResultsOf(c);
    const token = c.req.query('pageToken');
    const after = token ? Buffer.from(token, 'base64url').toString('utf8') : '';
    if (token && Buffer.from(after, 'utf8').toString('base64url') !== token) throw new InvalidRequestError(`Invalid pageToken ${JSON.stringify(token)}.`);
    const all = (await store.listBuckets({ project })).filter((b) => b.name.startsWith(prefix) && b.name > after);
    const page = all.slice(0, pageSize ?? LIMITS.pageSize.objects);
    const items = page.map((b) => bucketJson(c, b));
    const nextPageToken = all.length > page.length ? Buffer.from(page[page.length - 1]!.name, 'utf8').toString('base64url') : undefined;
    return c.json({ kind: 'storage#buckets', ...(nextPageToken ? { nextPageToken } : {}), ...(items.length ? { items } : {}) });
  });

  app.post('/storage/v1/b', async (c) => {
    refuseQuery(c, ['project', 'key']);
    const project = requiredQuery(c, 'project');
    await authorize(c, 'storage.buckets.create', project);
    const meta = await jsonBody(c, api.bodyLimit);
    refuseFields(meta, ['name', 'location', 'storageClass', 'kind'], 'bucket');
    const name = meta.name;
    if (typeof name !== 'string' || !name) throw new InvalidRequestError("'name' is required: the bucket's name.");
    if (meta.storageClass !== undefined && String(meta.storageClass).toUpperCase() !== 'STANDARD') {
      throw new InvalidRequestError(`'storageClass' ${JSON.stringify(meta.storageClass)} is not supported: tunekit keeps STANDARD storage only.`);
    }
    if (typeof meta.location !== 'string' || !meta.location) {
      throw new InvalidRequestError("'location' is required: the region the bucket's data lives in (a tuning job reads only buckets of its own location), e.g. us-central1.");
    }
    const b = await store.createBucket(name, { project, location: meta.location.toLowerCase() });
    return c.json(bucketJson(c, b));
  });

  app.get('/storage/v1/b/:bucket', async (c) => {
    refuseQuery(c, ['key']);
    return c.json(bucketJson(c, await bucketFor(c, 'storage.buckets.get')));
  });

  app.delete('/storage/v1/b/:bucket', async (c) => {
    refuseQuery(c, ['key']);
    const b = await bucketFor(c, 'storage.buckets.delete');
    if ((await store.listObjects(b.name, { pageSize: 1 })).objects.length) throw new GcsError(409, 'conflict', `The bucket you tried to delete is not empty: ${b.name}`);
    await store.deleteBucket(b.name);
    return c.body(null, 204);
  });

  // ---- objects ----
  app.get('/storage/v1/b/:bucket/o', async (c) => {
    refuseQuery(c, ['prefix', 'delimiter', 'pageToken', 'maxResults', 'key']);
    const b = await bucketFor(c, 'storage.objects.list');
    const pageSize = maxResultsOf(c);
    const page = await store.listObjects(b.name, {
      prefix: c.req.query('prefix'), delimiter: c.req.query('delimiter'), pageSize, pageToken: c.req.query('pageToken') || undefined,
    });
    return c.json({
      kind: 'storage#objects',
      ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
      ...(page.prefixes.length ? { prefixes: page.prefixes } : {}),
      ...(page.objects.length ? { items: page.objects.map((o) => objectJson(c, o)) } : {}),
    });
  });

  const getObject = async (c: Context, media: boolean): Promise<Response> => {
    const b = await bucketFor(c, 'storage.objects.get');
    const name = c.req.param('object')!;
    const generation = c.req.query('generation');
    if (!media) {
      const info = await store.statObject(b.name, name);
      checkReadGeneration(info, generation);
      return c.json(objectJson(c, info));
    }
    const size = (await store.statObject(b.name, name)).size;
    const range = parseRange(c.req.header('range'), size);
    const { info, stream } = await store.openObject(b.name, name, range && { start: range.start, end: range.end });
    try {
      checkReadGeneration(info, generation);
      if (range && info.size !== size) throw new GcsError(503, 'backendError', 'The object changed while it was read; retry.');
    } catch (err) {
      stream.destroy();
      throw err;
    }
    const headers: Record<string, string> = {
      'content-type': info.contentType,
      'x-goog-hash': `crc32c=${info.crc32c},md5=${info.md5Hash}`,
      'x-goog-generation': info.generation,
      'x-goog-metageneration': '1',
      'x-goog-stored-content-encoding': 'identity',
      'x-goog-stored-content-length': String(info.size),
      'accept-ranges': 'bytes',
      etag: etagOf(info),
      'last-modified': new Date(info.updateTime).toUTCString(),
    };
    const body = Readable.toWeb(stream) as ReadableStream<Uint8Array>;
    if (!range) return new Response(body, { status: 200, headers: { ...headers, 'content-length': String(info.size) } });
    return new Response(body, {
      status: 206,
      headers: { ...headers, 'content-length': String(range.end - range.start + 1), 'content-range': `bytes ${range.start}-${range.end}/${info.size}` },
    });
  };
  app.get('/storage/v1/b/:bucket/o/:object{.+}', (c) => {
    refuseQuery(c, ['alt', 'generation', 'key']);
    const alt = c.req.query('alt') ?? 'json';
    if (alt !== 'json' && alt !== 'media') throw new InvalidRequestError(`Invalid value for 'alt': ${JSON.stringify(alt)} (json or media).`);
    return getObject(c, alt === 'media');
  });
  app.get('/download/storage/v1/b/:bucket/o/:object{.+}', (c) => {
    refuseQuery(c, ['alt', 'generation', 'key']);
    if ((c.req.query('alt') ?? 'media') !== 'media') throw new InvalidRequestError("Invalid value for 'alt' on a download: media.");
    return getObject(c, true);
  });

  app.delete('/storage/v1/b/:bucket/o/:object{.+}', async (c) => {
    refuseQuery(c, ['ifGenerationMatch', 'key']);
    const b = await bucketFor(c, 'storage.objects.delete');
    await store.deleteObject(b.name, c.req.param('object')!, generationMatch(c));
    return c.body(null, 204);
  });

  // Compose: the destination is the sources' bytes in order (at most 32 objects of the same bucket).
  app.post('/storage/v1/b/:bucket/o/:object{.+}', async (c) => {
    const raw = new URL(c.req.url).pathname;
    const m = /\/o\/([^/]+)\/compose$/.exec(raw);
    if (!m) throw new NotFoundError(`The requested URL ${raw} was not found on this server (objects take POST only for .../o/NAME/compose).`);
    const b = await bucketFor(c, 'storage.objects.create');
    await authorize(c, 'storage.objects.get', b.project);
    refuseQuery(c, ['ifGenerationMatch', 'key']);
    const name = decodeURIComponent(m[1]!);
    const body = await jsonBody(c, api.bodyLimit);
    refuseFields(body, ['sourceObjects', 'destination', 'kind'], 'compose request');
    const destination = (body.destination ?? {}) as Record<string, unknown>;
    if (typeof destination !== 'object' || Array.isArray(destination)) throw new InvalidRequestError("'destination' must be an object resource.");
    const dest = objectMetadata(destination, name, b.name);
    if (dest.expect.md5Hash || dest.expect.crc32c) throw new InvalidRequestError("'destination' hashes are computed by the server on compose; leave md5Hash and crc32c unset.");
    const sources = body.sourceObjects;
    if (!Array.isArray(sources) || sources.length === 0 || sources.length > 32) throw new InvalidRequestError("'sourceObjects' must list 1 to 32 objects of the bucket.");
    const infos: Awaited<ReturnType<typeof store.statObject>>[] = [];
    for (const [i, src] of (sources as unknown[]).entries()) {
      if (src === null || typeof src !== 'object' || Array.isArray(src)) throw new InvalidRequestError(`'sourceObjects[${i}]' must be an object.`);
      const o = src as Record<string, unknown>;
      refuseFields(o, ['name', 'generation', 'objectPreconditions'], `sourceObjects[${i}]`);
      if (typeof o.name !== 'string' || !o.name) throw new InvalidRequestError(`'sourceObjects[${i}].name' is required.`);
      const info = await store.statObject(b.name, o.name);
      const want = (o.objectPreconditions as { ifGenerationMatch?: unknown } | undefined)?.ifGenerationMatch ?? o.generation;
      if (want !== undefined && String(want) !== info.generation) {
        throw new PreconditionFailedError(`sourceObjects[${i}] ${b.name}/${o.name} is at generation ${info.generation}, not ${String(want)}.`);
      }
      infos.push(info);
    }
    async function* concatenated(): AsyncIterable<Buffer> {
      for (const info of infos) {
        const { info: now, stream } = await store.openObject(b.name, info.name);
        if (now.generation !== info.generation) {
          stream.destroy();
          throw new PreconditionFailedError(`${b.name}/${info.name} changed during the compose; retry.`);
        }
        for await (const chunk of stream) yield chunk as Buffer;
      }
    }
    const info = await store.putObject(b.name, dest.name, concatenated(), {
      ...(dest.contentType ? { contentType: dest.contentType } : {}), ...generationMatch(c), maxBytes, signal: requestSignal(api, c),
    });
    return c.json({ ...objectJson(c, info), componentCount: infos.length });
  });

  // ---- uploads ----
  app.post('/upload/storage/v1/b/:bucket/o', async (c) => {
    const uploadType = c.req.query('uploadType');
    const b = await bucketFor(c, 'storage.objects.create');
    const signal = requestSignal(api, c);
    refuseQuery(c, ['uploadType', 'name', 'ifGenerationMatch', 'key']);
    const declared = Number(c.req.header('content-length') ?? NaN);
    if (uploadType === 'media') {
      if (declared > maxBytes) throw new ObjectTooLargeError(maxBytes);
      const name = requiredQuery(c, 'name');
      const contentType = c.req.header('content-type') || undefined;
      const info = await store.putObject(b.name, name, bodyChunks(c), { ...(contentType ? { contentType } : {}), ...generationMatch(c), maxBytes, signal });
      return c.json(objectJson(c, info));
    }
    if (uploadType === 'multipart') {
      if (declared > maxBytes + api.bodyLimit) throw new ObjectTooLargeError(maxBytes);
      const boundary = /^multipart\/related;.*\bboundary="?([^";]+)"?/i.exec(c.req.header('content-type') ?? '')?.[1];
      if (!boundary) throw new InvalidRequestError('uploadType=multipart takes a multipart/related body with a boundary (the metadata part, then the media part).');
      const parts = new MultipartReader(bodyChunks(c), boundary);
      const meta = parseJson(await parts.metadata(api.bodyLimit), 'the metadata part');
      const media = await parts.mediaHeaders();
      const m = objectMetadata(meta, c.req.query('name'), b.name);
      const contentType = m.contentType ?? media['content-type'];
      const info = await store.putObject(b.name, m.name, parts.media(), {
        ...(contentType ? { contentType } : {}), ...generationMatch(c), expect: m.expect, maxBytes, signal,
      });
      return c.json(objectJson(c, info));
    }
    if (uploadType === 'resumable') {
      const meta = await jsonBody(c, api.bodyLimit);
      const m = objectMetadata(meta, c.req.query('name'), b.name);
      const lengthHeader = c.req.header('x-upload-content-length');
      const total = lengthHeader === undefined ? undefined : Number(lengthHeader);
      if (total !== undefined && !(Number.isSafeInteger(total) && total >= 0)) throw new InvalidRequestError(`Invalid X-Upload-Content-Length: ${JSON.stringify(lengthHeader)}`);
      const contentType = m.contentType ?? c.req.header('x-upload-content-type');
      const session = await store.startUpload(b.name, m.name, {
        ...(contentType ? { contentType } : {}), ...(total !== undefined ? { total } : {}), ...generationMatch(c), expect: m.expect, maxBytes,
      });
      const uri = `${location(c)}/upload/storage/v1/b/${encodeURIComponent(b.name)}/o?uploadType=resumable&name=${encodeURIComponent(m.name)}&upload_id=${session.id}`;
      return c.body(null, 200, { location: uri, 'x-guploader-uploadid': session.id });
    }
    throw new InvalidRequestError(`Invalid value for 'uploadType': ${JSON.stringify(uploadType ?? '')} (media, multipart or resumable).`);
  });

  // Chunks and status queries of a resumable upload: the session id is the credential.
  app.put('/upload/storage/v1/b/:bucket/o', async (c) => {
    refuseQuery(c, ['uploadType', 'name', 'upload_id', 'key']);
    const id = requiredQuery(c, 'upload_id');
    const session = await store.getUpload(id);
    if (session.bucket !== c.req.param('bucket')) throw new NotFoundError(`resumable upload session ${JSON.stringify(id)} does not exist`);
    if (session.done) return c.json(objectJson(c, await store.statObject(session.bucket, session.name)));
    const cr = parseContentRange(c.req.header('content-range'));
    const expect = hashesOf(c.req.header('x-goog-hash'));
    let result;
    if (cr.kind === 'status') {
      await c.req.raw.body?.cancel().catch(() => undefined);
      // bytes */N with all N bytes in completes the upload.
      result = cr.total !== undefined && cr.total === session.persisted
        ? await store.writeUpload(id, session.persisted, emptyChunks(), { total: cr.total, expect, maxBytes })
        : { session };
    } else {
      const declared = Number(c.req.header('content-length') ?? NaN);
      if (cr.end !== undefined && Number.isFinite(declared) && declared !== cr.end - cr.start + 1) {
        throw new InvalidRequestError(`Content-Range bytes ${cr.start}-${cr.end} is ${cr.end - cr.start + 1} bytes but Content-Length is ${declared}.`);
      }
      if (cr.start + (Number.isFinite(declared) ? declared : 0) > maxBytes) {
        await c.req.raw.body?.cancel().catch(() => undefined);
        throw new ObjectTooLargeError(maxBytes);
      }
      // A chunk running to the end of the body ("bytes N-*/*", or no Content-Range) ends the object.
      const toEnd = cr.end === undefined;
      let received = 0;
      const counted = async function* (src: AsyncIterable<Uint8Array>) {
        for await (const chunk of src) {
          received += chunk.byteLength;
          yield chunk;
        }
      };
      try {
        result = await store.writeUpload(id, cr.start, counted(bodyChunks(c)), { ...(cr.total !== undefined ? { total: cr.total } : {}), expect, maxBytes });
      } catch (err) {
        // Another request is writing this session (on another replica): its chunk is read to the end and
        // dropped before the 503, so the connection stays usable (an unread body left the socket to be
        // cut under the client's next request).
        if (err instanceof UnavailableError) for await (const _ of bodyChunks(c)) { /* dropped */ }
        throw err;
      }
      if (toEnd && cr.total === undefined && !result.object) {
        result = await store.writeUpload(id, cr.start + received, emptyChunks(), { total: cr.start + received, expect, maxBytes });
      }
    }
    if (result.object) return c.json(objectJson(c, result.object));
    const persisted = result.session.persisted;
    return c.body(null, 308, persisted > 0 ? { range: `bytes=0-${persisted - 1}` } : {});
  });

  app.delete('/upload/storage/v1/b/:bucket/o', async (c) => {
    refuseQuery(c, ['uploadType', 'name', 'upload_id', 'key']);
    const id = requiredQuery(c, 'upload_id');
    if ((await store.getUpload(id)).bucket !== c.req.param('bucket')) throw new NotFoundError(`resumable upload session ${JSON.stringify(id)} does not exist`);
    await store.cancelUpload(id);
    return c.body(null, 499 as 200);
  });

  return app;
}

// ---- request parsing ----

function requiredQuery(c: Context, name: string): string {
  const v = c.req.query(name);
  if (!v) throw new InvalidRequestError(`Required parameter '${name}' is missing.`);
  return v;
}

/** maxResults (at most LIMITS.pageSize.objects: more is that many, as Cloud Storage caps it). */
function maxResultsOf(c: Context): number | undefined {
  const raw = c.req.query('maxResults');
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1) throw new InvalidRequestError(`Invalid value for 'maxResults': ${JSON.stringify(raw)} (a positive integer).`);
  return Math.min(n, LIMITS.pageSize.objects);
}

/** Query parameters outside `known` are refused by name (never ignored). */
function refuseQuery(c: Context, known: string[]): void {
  for (const k of Object.keys(c.req.queries())) {
    if (!known.includes(k)) throw new InvalidRequestError(`Query parameter '${k}' is not supported by tunekit's storage API.`);
  }
}

function generationMatch(c: Context): { ifGenerationMatch?: number } {
  const v = c.req.query('ifGenerationMatch');
  if (v === undefined) return {};
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new InvalidRequestError(`Invalid value for 'ifGenerationMatch': ${JSON.stringify(v)}`);
  return { ifGenerationMatch: n };
}

function checkReadGeneration(info: ObjectInfo, generation: string | undefined): void {
  if (generation !== undefined && generation !== info.generation) {
    throw new NotFoundError(`No such object: ${info.bucket}/${info.name} at generation ${generation} (tunekit keeps only the live generation, ${info.generation}).`);
  }
}

async function* bodyChunks(c: Context): AsyncIterable<Uint8Array> {
  const body = c.req.raw.body;
  if (!body) return;
  try {
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) yield chunk;
  } catch {
    throw new CancelledError('The client closed the connection while sending the upload.');
  }
}

async function* emptyChunks(): AsyncIterable<Uint8Array> {}

async function jsonBody(c: Context, limit: number): Promise<Record<string, unknown>> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of bodyChunks(c)) {
    size += chunk.byteLength;
    if (size > limit) throw new InvalidRequestError(`The metadata (JSON body) exceeds ${limit} bytes.`);
    chunks.push(chunk);
  }
  return parseJson(Buffer.concat(chunks), 'the request body');
}

function parseJson(bytes: Buffer, what: string): Record<string, unknown> {
  const text = bytes.toString('utf8').trim();
  if (text === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InvalidRequestError(`Invalid JSON in ${what}: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InvalidRequestError(`${what} must be a JSON object (the resource's metadata).`);
  return v as Record<string, unknown>;
}

/** Fields of a resource body outside `honoured` are refused by name (output-only ones sent back are fine). */
function refuseFields(meta: Record<string, unknown>, honoured: string[], what: string): void {
  for (const k of Object.keys(meta)) {
    if (!honoured.includes(k)) throw new InvalidRequestError(`'${k}' (${what} resource) is not supported by tunekit's storage API: it keeps ${honoured.filter((h) => h !== 'kind').join(', ')}.`);
  }
}

/** An object resource in an upload: its name (the query's, or the body's), content type, expected hashes. */
function objectMetadata(meta: Record<string, unknown>, queryName: string | undefined, bucket: string): { name: string; contentType?: string; expect: ExpectedHashes } {
  refuseFields(meta, ['name', 'bucket', 'contentType', 'md5Hash', 'crc32c', 'kind'], 'object');
  if (meta.bucket !== undefined && meta.bucket !== bucket) throw new InvalidRequestError(`'bucket' ${JSON.stringify(meta.bucket)} differs from the bucket of the URL, ${bucket}.`);
  const name = queryName ?? meta.name;
  if (typeof name !== 'string' || !name) throw new InvalidRequestError("Required parameter 'name' is missing (the query's name, or the metadata's).");
  if (meta.name !== undefined && queryName !== undefined && meta.name !== queryName) throw new InvalidRequestError(`'name' ${JSON.stringify(meta.name)} differs from the query's ${JSON.stringify(queryName)}.`);
  for (const k of ['contentType', 'md5Hash', 'crc32c'] as const) {
    if (meta[k] !== undefined && typeof meta[k] !== 'string') throw new InvalidRequestError(`'${k}' must be a string.`);
  }
  return {
    name,
    ...(meta.contentType ? { contentType: meta.contentType as string } : {}),
    expect: { ...(meta.md5Hash ? { md5Hash: meta.md5Hash as string } : {}), ...(meta.crc32c ? { crc32c: meta.crc32c as string } : {}) },
  };
}

/** X-Goog-Hash: crc32c=BASE64,md5=BASE64. */
function hashesOf(header: string | undefined): ExpectedHashes | undefined {
  if (!header) return undefined;
  const out: ExpectedHashes = {};
  for (const pair of header.split(',')) {
    const eq = pair.indexOf('=');
    const [k, v] = [pair.slice(0, eq).trim().toLowerCase(), pair.slice(eq + 1).trim()];
    if (k === 'md5') out.md5Hash = v;
    else if (k === 'crc32c') out.crc32c = v;
    else throw new InvalidRequestError(`X-Goog-Hash: unknown hash ${JSON.stringify(k)} (crc32c, md5).`);
  }
  return out;
}

type ContentRange = { kind: 'status'; total?: number } | { kind: 'chunk'; start: number; end?: number; total?: number };

// Content-Range of a resumable PUT: "bytes */N" or "bytes */*" (a status query), "bytes A-B/N", "bytes A-B/*",
// "bytes A-*/N" or "bytes A-*/*" (the rest of the object is this body); absent: the whole object.
function parseContentRange(h: string | undefined): ContentRange {
  if (h === undefined) return { kind: 'chunk', start: 0 };
  const m = /^bytes (?:\*|(\d+)-(\d+|\*))\/(\d+|\*)$/.exec(h.trim());
  const total = m?.[3] === '*' ? undefined : Number(m?.[3]);
  if (!m) throw new InvalidRequestError(`Invalid Content-Range ${JSON.stringify(h)}: "bytes START-END/TOTAL", "bytes START-END/*" or "bytes */TOTAL".`);
  if (m[1] === undefined) return { kind: 'status', ...(total !== undefined ? { total } : {}) };
  const start = Number(m[1]);
  const end = m[2] === '*' ? undefined : Number(m[2]);
  if (end !== undefined && end < start) throw new InvalidRequestError(`Invalid Content-Range ${JSON.stringify(h)}: the end is before the start.`);
  if (end !== undefined && total !== undefined && end >= total) throw new InvalidRequestError(`Invalid Content-Range ${JSON.stringify(h)}: the end is past the size.`);
  return { kind: 'chunk', start, ...(end !== undefined ? { end } : {}), ...(total !== undefined ? { total } : {}) };
}

/** A download's Range header (one range); 416 when it selects nothing. */
function parseRange(h: string | undefined, size: number): { start: number; end: number } | undefined {
  if (!h) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m || (m[1] === '' && m[2] === '')) throw new InvalidRequestError(`Invalid Range ${JSON.stringify(h)}: one range, "bytes=START-END", "bytes=START-" or "bytes=-SUFFIX".`);
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    start = Math.max(0, size - n);
    end = size - 1;
    if (n === 0) start = size;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) throw new InvalidRequestError(`Invalid Range ${JSON.stringify(h)}: the end is before the start.`);
  }
  if (start >= size || start > end) {
    throw new GcsError(416, 'requestedRangeNotSatisfiable', `The requested range ${h} cannot be satisfied: the object has ${size} bytes.`, { 'content-range': `bytes */${size}` });
  }
  return { start, end };
}

/**
 * A multipart/related upload body read as a stream: the metadata part (JSON, into memory, bounded), then
 * the media part's headers, then the media bytes streamed up to the closing delimiter.
 */
class MultipartReader {
  private buf = Buffer.alloc(0);
  private readonly it: AsyncIterator<Uint8Array>;
  private ended = false;
  private readonly delimiter: Buffer;

  constructor(body: AsyncIterable<Uint8Array>, boundary: string) {
    this.it = body[Symbol.asyncIterator]();
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
  }

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    this.buf = Buffer.concat([this.buf, r.value]);
    return true;
  }

  /** Bytes up to `needle` (consumed with it); at most `limit` bytes are held. */
  private async until(needle: Buffer, limit: number, what: string): Promise<Buffer> {
    for (;;) {
      const i = this.buf.indexOf(needle);
      if (i >= 0) {
        const out = this.buf.subarray(0, i);
        this.buf = this.buf.subarray(i + needle.length);
        return out;
      }
      if (this.buf.length > limit + needle.length) throw new InvalidRequestError(`${what} exceeds ${limit} bytes.`);
      if (!(await this.more())) throw new InvalidRequestError(`The multipart body ends inside ${what}.`);
    }
  }

  private async headers(): Promise<Record<string, string>> {
    const raw = (await this.until(Buffer.from('\r\n\r\n'), 16 * 1024, 'the part headers')).toString('latin1');
    const out: Record<string, string> = {};
    for (const line of raw.split('\r\n')) {
      if (line === '') continue;
      const colon = line.indexOf(':');
      if (colon < 0) throw new InvalidRequestError(`Malformed part header ${JSON.stringify(line)}.`);
      out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    return out;
  }

  async metadata(limit: number): Promise<Buffer> {
    // The body starts with the first delimiter (without its leading CRLF).
    this.buf = Buffer.concat([Buffer.from('\r\n'), this.buf]);
    await this.until(this.delimiter, 1024, 'the multipart preamble');
    await this.until(Buffer.from('\r\n'), 1024, 'the delimiter line');
    const h = await this.headers();
    if (h['content-type'] !== undefined && !/^application\/json\b/i.test(h['content-type'])) {
      throw new InvalidRequestError(`The first part of a multipart upload is the metadata, as application/json; got ${h['content-type']}.`);
    }
    return this.until(this.delimiter, limit, 'the metadata part');
  }

  async mediaHeaders(): Promise<Record<string, string>> {
    while (this.buf.length < 2 && (await this.more()));
    if (this.buf.subarray(0, 2).toString() === '--') throw new InvalidRequestError('The multipart upload has no media part (the second part).');
    await this.until(Buffer.from('\r\n'), 1024, 'the delimiter line');
    return this.headers();
  }

  /** The media bytes; the body must end with the closing delimiter right after them. */
  async *media(): AsyncIterable<Buffer> {
    const keep = this.delimiter.length;
    for (;;) {
      const i = this.buf.indexOf(this.delimiter);
      if (i >= 0) {
        if (i > 0) yield this.buf.subarray(0, i);
        this.buf = this.buf.subarray(i + this.delimiter.length);
        while ((await this.more()) && this.buf.length <= 1024);
        const tail = this.buf.toString('latin1');
        if (this.buf.length > 1024 || !/^--(\r\n|$)/.test(tail)) {
          throw new InvalidRequestError('A multipart upload has exactly two parts: the metadata, then the media.');
        }
        return;
      }
      if (this.buf.length > keep) {
        yield this.buf.subarray(0, this.buf.length - keep);
        this.buf = this.buf.subarray(this.buf.length - keep);
      }
      if (!(await this.more())) throw new InvalidRequestError('The multipart body ends without its closing delimiter.');
    }
  }
}

// ---- resources ----

function location(c: Context): string {
  return new URL(c.req.url).origin;
}

function bucketJson(c: Context, b: Bucket): Record<string, unknown> {
  return {
    kind: 'storage#bucket', id: b.name, selfLink: `${location(c)}/storage/v1/b/${b.name}`, name: b.name,
    location: b.location.toUpperCase(), locationType: 'region', storageClass: 'STANDARD', metageneration: '1',
    timeCreated: b.createTime, updated: b.createTime, etag: 'CAE=',
    labels: { 'tunekit-project': b.project },
  };
}

function etagOf(o: ObjectInfo): string {
  return Buffer.from(`${o.generation}/${o.md5Hash}`).toString('base64url');
}

function objectJson(c: Context, o: ObjectInfo): Record<string, unknown> {
  const path = `b/${encodeURIComponent(o.bucket)}/o/${encodeURIComponent(o.name)}`;
  return {
    kind: 'storage#object', id: `${o.bucket}/${o.name}/${o.generation}`,
    selfLink: `${location(c)}/storage/v1/${path}`, mediaLink: `${location(c)}/download/storage/v1/${path}?generation=${o.generation}&alt=media`,
    name: o.name, bucket: o.bucket, generation: o.generation, metageneration: '1', contentType: o.contentType,
    storageClass: 'STANDARD', size: String(o.size), md5Hash: o.md5Hash, crc32c: o.crc32c, etag: etagOf(o),
    timeCreated: o.createTime, updated: o.updateTime, timeStorageClassUpdated: o.createTime,
  };
}

/** Cloud Storage's error body; 413, 412 and 416 where google.rpc has no code of their own. */
function gcsError(api: ApiContext, err: unknown): Response {
  let status: number;
  let message: string;
  let reason: string;
  let headers: Record<string, string> = {};
  if (err instanceof GcsError) {
    ({ httpStatus: status, reason, message, headers } = err);
  } else if (err instanceof ObjectTooLargeError) {
    [status, reason, message] = [413, 'uploadTooLarge', err.message];
  } else if (err instanceof PreconditionFailedError) {
    [status, reason, message] = [412, 'conditionNotMet', err.message];
  } else if (err instanceof CancelledError && api.shutdown.aborted) {
    [status, reason, message] = [503, 'backendError', 'The server is shutting down; retry the request (a resumable upload continues from its session URI).'];
  } else {
    const { httpStatus, body } = toStatus(err, api.log);
    [status, message] = [httpStatus, body.error.message];
    reason = REASONS[status] ?? 'backendError';
    if (err instanceof TunekitError && err.code === 'FAILED_PRECONDITION' && /not empty/.test(err.message)) [status, reason] = [409, 'conflict'];
  }
  return Response.json({ error: { code: status, message, errors: [{ message, domain: 'global', reason }] } }, { status, headers });
}
