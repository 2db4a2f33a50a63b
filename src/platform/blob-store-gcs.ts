// The blob store (blob-store.ts) on a Google Cloud Storage bucket, through the official client
// @google-cloud/storage: real GCS, or any server speaking its JSON API (`--storage-endpoint`; a second
// tunekit node's storage API is the one the tests use). Keys live under `gs://BUCKET/PREFIX`.
// - Writes are single-request (multipart) uploads: the server commits an object only when all of it
//   has arrived, so an upload cut off midway leaves nothing. (Resumable uploads to a custom endpoint
//   go without credentials in @google-cloud/storage 8.4.) `ifAbsent` is ifGenerationMatch=0.
// - A failed request is tried again 3 times, with backoff (every request here is idempotent: blob writes
//   are create-only, a staged file is rewritten with the same bytes): reads, lists and deletes by the
//   client, writes of bytes in hand (a buffer, a file) here; a write streamed from elsewhere (a client's
//   upload) cannot be replayed and fails at once. Then the error is UNAVAILABLE naming the store.
// - Credentials: a Google credentials file (`--storage-key-file`), an API key sent as x-goog-api-key
//   (`--storage-api-key-file`: how a tunekit node authenticates), else Application Default
//   Credentials (on GCP), or none for a custom endpoint without them.

import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as fs from 'node:fs';
import { IdempotencyStrategy, Storage, type Bucket, type StorageOptions } from '@google-cloud/storage';
import { FailedPreconditionError, InvalidRequestError, NotFoundError, PermissionDeniedError, TunekitError, UnavailableError } from '../errors.js';
import { checkKey, chunksOf, downloadVia, STORAGE_FLAGS, type BlobInfo, type BlobSource, type BlobStore, type PutBlobOptions, type StorageConfig } from './blob-store.js';

type GcsConfig = Extract<StorageConfig, { kind: 'gcs' }>;

/** Writes of bytes in hand are tried again this many times after UNAVAILABLE (the client's own count). */
const WRITE_RETRIES = 3;

export class GcsBlobStore implements BlobStore {
  readonly kind: string;

  private constructor(private readonly bucket: Bucket, private readonly prefix: string, private readonly endpoint: string) {
    this.kind = `gs://${bucket.name}/${prefix}`;
  }

  /** Connects and checks that the bucket exists and the credentials may use it (errors name the flag to fix). */
  static async open(config: GcsConfig): Promise<GcsBlobStore> {
    const credentials = config.keyFile !== undefined || config.apiKey !== undefined;
    const options: StorageOptions = {
      ...(config.endpoint !== undefined ? { apiEndpoint: config.endpoint, useAuthWithCustomEndpoint: credentials } : {}),
      ...(config.keyFile !== undefined ? { keyFilename: config.keyFile } : {}),
      // (The client hands clientOptions, not a top-level apiKey, to google-auth-library's GoogleAuth.)
      ...(config.apiKey !== undefined ? { clientOptions: { apiKey: config.apiKey } } : {}),
      // Only bucket-scoped calls are made: a project id spares the client a GCE metadata lookup.
      projectId: '_',
      retryOptions: { autoRetry: true, maxRetries: WRITE_RETRIES, maxRetryDelay: 8, totalTimeout: 120, idempotencyStrategy: IdempotencyStrategy.RetryAlways },
    };
    const store = new GcsBlobStore(new Storage(options).bucket(config.bucket), config.prefix, config.endpoint ?? 'https://storage.googleapis.com');
    let exists: boolean;
    try {
      [exists] = await store.bucket.exists();
    } catch (err) {
      const e = store.error(err, `gs://${config.bucket}`);
      const F = STORAGE_FLAGS;
      if (e instanceof PermissionDeniedError) {
        throw new InvalidRequestError(`${F.storage} gs://${config.bucket}/${config.prefix}: the storage server refused the credentials (${config.keyFile !== undefined ? F.storageKeyFile : config.apiKey !== undefined ? F.storageApiKeyFile : 'none given'}): ${e.message}`);
      }
      if (e instanceof UnavailableError) throw new UnavailableError(`${F.storageEndpoint} ${store.endpoint}: ${e.message}`);
      throw e;
    }
    if (!exists) throw new InvalidRequestError(`${STORAGE_FLAGS.storage} gs://${config.bucket}/${config.prefix}: bucket ${config.bucket} does not exist at ${store.endpoint}; create it first`);
    return store;
  }

  where(key: string): string {
    return `gs://${this.bucket.name}/${this.prefix}${key}`;
  }

  async put(key: string, source: BlobSource, opts: PutBlobOptions = {}): Promise<BlobInfo> {
    checkKey(key);
    if (typeof source === 'string' || source instanceof Uint8Array) return await this.retried(() => this.upload(key, source, opts));
    return await this.upload(key, source, opts);
  }

  /** Runs a write again after UNAVAILABLE, up to WRITE_RETRIES times with backoff (1, 2, 4 s). */
  private async retried<T>(write: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await write();
      } catch (err) {
        if (!(err instanceof UnavailableError) || attempt === WRITE_RETRIES) throw err;
        await new Promise((r) => setTimeout(r, 1000 * 2 ** attempt));
      }
    }
  }

  private async upload(key: string, source: BlobSource, opts: PutBlobOptions): Promise<BlobInfo> {
    const file = this.bucket.file(this.prefix + key);
    const out = file.createWriteStream({
      resumable: false, contentType: opts.contentType ?? 'application/octet-stream',
      ...(opts.ifAbsent ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}),
    });
    try {
      await pipeline(chunksOf(source), out);
    } catch (err) {
      throw this.error(err, this.where(key));
    }
    const m = file.metadata;
    return { key, size: Number(m.size ?? 0), mtimeMs: Date.parse(String(m.updated ?? new Date().toISOString())) };
  }

  async putFile(key: string, file: string, opts: PutBlobOptions & { move?: boolean } = {}): Promise<BlobInfo> {
    checkKey(key);
    const info = await this.retried(() => this.upload(key, fs.createReadStream(file), opts));
    if (opts.move) fs.rmSync(file, { force: true });
    return info;
  }

  async read(key: string): Promise<Buffer> {
    checkKey(key);
    try {
      return (await this.bucket.file(this.prefix + key).download())[0];
    } catch (err) {
      throw this.error(err, this.where(key));
    }
  }

  async open(key: string, range?: { start: number; end: number }): Promise<Readable> {
    checkKey(key);
    const src = this.bucket.file(this.prefix + key).createReadStream(range ? { start: range.start, end: range.end, validation: false } : {});
    const out = new PassThrough();
    src.on('error', (err) => out.destroy(this.error(err, this.where(key))));
    out.on('close', () => src.destroy());
    return src.pipe(out);
  }

  async download(key: string, file: string): Promise<void> {
    await downloadVia(await this.open(key), file);
  }

  async stat(key: string): Promise<BlobInfo | undefined> {
    checkKey(key);
    try {
      const [m] = await this.bucket.file(this.prefix + key).getMetadata();
      return { key, size: Number(m.size ?? 0), mtimeMs: Date.parse(String(m.updated)) };
    } catch (err) {
      const e = this.error(err, this.where(key));
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    try {
      await this.bucket.file(this.prefix + key).delete({ ignoreNotFound: true });
    } catch (err) {
      throw this.error(err, this.where(key));
    }
  }

  async list(prefix: string, opts: { delimiter?: '/' } = {}): Promise<{ blobs: BlobInfo[]; prefixes: string[] }> {
    checkKey(prefix, { prefix: true });
    const blobs: BlobInfo[] = [];
    const prefixes: string[] = [];
    let pageToken: string | undefined;
    try {
      do {
        const [files, next, response] = await this.bucket.getFiles({
          prefix: this.prefix + prefix, autoPaginate: false, maxResults: 1000, ...(opts.delimiter ? { delimiter: opts.delimiter } : {}), ...(pageToken ? { pageToken } : {}),
        });
        for (const f of files) {
          blobs.push({ key: f.name.slice(this.prefix.length), size: Number(f.metadata.size ?? 0), mtimeMs: Date.parse(String(f.metadata.updated)) });
        }
        for (const p of (response as { prefixes?: string[] } | undefined)?.prefixes ?? []) prefixes.push(p.slice(this.prefix.length));
        pageToken = (next as { pageToken?: string } | null | undefined)?.pageToken;
      } while (pageToken);
    } catch (err) {
      throw this.error(err, this.where(prefix));
    }
    return { blobs, prefixes };
  }

  async deletePrefix(prefix: string): Promise<void> {
    if (!prefix.endsWith('/')) throw new Error(`blob store: deletePrefix needs a prefix ending in '/', got ${prefix}`);
    for (const b of (await this.list(prefix)).blobs) await this.delete(b.key);
  }

  /** Nothing to do: the server keeps no partial object of an interrupted upload. */
  async recover(): Promise<string[]> {
    return [];
  }

  /** The client's error as a TunekitError naming `what` and the store. */
  private error(err: unknown, what: string): Error {
    if (err instanceof TunekitError) return err;
    const e = err as { code?: unknown; message?: string };
    const status = typeof e.code === 'number' ? e.code : undefined;
    const msg = `object storage ${what}: ${e.message ?? String(err)}`;
    if (status === 404) return new NotFoundError(msg);
    if (status === 412) return new FailedPreconditionError(`${msg} (it already exists)`);
    if (status === 401 || status === 403) return new PermissionDeniedError(msg);
    if (status !== undefined && status >= 400 && status < 500) return new InvalidRequestError(msg);
    return new UnavailableError(`object storage at ${this.endpoint} failed or is unreachable (${what}): ${e.message ?? String(err)}${typeof e.code === 'string' ? ` [${e.code}]` : ''}`);
  }
}
