// The Hugging Face Hub as a model source. resolveModelDir turns "org/name" or "org/name@revision" into a
// local snapshot directory holding only the files tunekit reads (model-files.ts), downloaded with
// @huggingface/hub into the cache huggingface_hub uses (cache.ts), so Python and tunekit share one copy.
// An existing local directory passes through untouched. With HF_HUB_OFFLINE=1, or when the endpoint
// cannot be reached, a complete cached snapshot of the revision is used instead.
// Rules: nothing here imports engine or model code (the result is a path); every failure is a
// TunekitError naming the repo, the endpoint or the cache and saying what to do.

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { downloadFileToCacheDir, listFiles, modelInfo } from '@huggingface/hub';
import { InvalidModelError, InvalidRequestError, NotFoundError, PermissionDeniedError, TunekitError, UnavailableError } from '../errors.js';
import {
  COMMIT_HASH,
  completeCachedSnapshot,
  defaultCacheDir,
  expandHome,
  repoStorageDir,
  snapshotDir,
  writeRef,
} from './cache.js';
import { createHubFetch, describeFailure, HubRequestError, type HubFailure, type HubFetch } from './http.js';
import { isSafeRelativePath, planDownload, shardNames } from './model-files.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

export interface ResolveOptions {
  /** Default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Branch, tag or commit; "org/name@revision" in the spec says the same. Default "main". */
  revision?: string;
  /** Default: $HF_TOKEN. Sent only to the endpoint's origin. */
  token?: string;
  /** Default: $HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  fetch?: typeof fetch;
  onProgress?: (msg: string) => void;
}

/** The Hub refused access (HTTP 401/403): the model is gated or private and needs a token that can read it. */
/** A gated or private repository without a (valid) token. */
export class HubAccessError extends PermissionDeniedError {}

/** A parsed "org/name[@revision]". */
export interface HubModelSpec {
  repo: string;
  revision: string;
}

/**
 * A local directory is returned as is; otherwise `spec` is "org/name" or "org/name@revision" on the Hub:
 * the files a model needs are downloaded into the cache and the local snapshot directory is returned.
 */
export async function resolveModelDir(spec: string, opts: ResolveOptions = {}): Promise<string> {
  const local = await localModelDir(spec);
  if (local !== undefined) return local;

  const { repo, revision } = parseHubSpec(spec, opts.revision);
  const endpoint = parseEndpoint(opts.endpoint || process.env.HF_ENDPOINT || DEFAULT_ENDPOINT);
  const token = opts.token || process.env.HF_TOKEN || undefined;
  const cacheDir = path.resolve(expandHome(opts.cacheDir ?? defaultCacheDir()));
  const ctx: Context = {
    repo,
    revision,
    endpoint,
    token,
    cacheDir,
    storage: repoStorageDir(cacheDir, repo),
    progress: opts.onProgress ?? (() => {}),
    hub: createHubFetch({ endpoint, token, base: opts.fetch }),
  };
  const where = `${repo}@${revision}`;

  if (isOfflineMode()) {
    const cached = await completeCachedSnapshot(ctx.storage, revision);
    if (cached !== undefined) return cached;
    throw new UnavailableError(
      `HF_HUB_OFFLINE is set and ${where} is not complete in the cache ${cacheDir}; unset HF_HUB_OFFLINE to download it from ${endpoint}`,
    );
  }
  // A commit never changes: when its snapshot is complete there is nothing to ask the Hub.
  if (COMMIT_HASH.test(revision)) {
    const cached = await completeCachedSnapshot(ctx.storage, revision);
    if (cached !== undefined) return cached;
  }

  try {
    return await withStorageLock(ctx.storage, () => quietLibrary(() => downloadSnapshot(ctx)));
  } catch (err) {
    const failure = err instanceof HubRequestError ? err.failure : ctx.hub.lastFailure();
    if (failure === undefined) throw err;
    if (isTransient(failure)) {
      const cached = await completeCachedSnapshot(ctx.storage, revision);
      if (cached !== undefined) {
        ctx.progress(`${endpoint}: ${describeFailure(failure)}; using the cached snapshot ${cached}`);
        return cached;
      }
    }
    throw failureError(failure, ctx);
  }
}

/**
 * Parses "org/name" or "org/name@revision" (the Hub's repo id rules: letters, digits, "_", "-", ".",
 * no "--" or "..", at most 96 characters). A revision in both the spec and `revision` must agree.
 */
export function parseHubSpec(spec: string, revision?: string): HubModelSpec {
  const at = spec.indexOf('@');
  const repo = at < 0 ? spec : spec.slice(0, at);
  const specRevision = at < 0 ? undefined : spec.slice(at + 1);
  if (!isRepoId(repo)) {
    throw new InvalidRequestError(
      `model "${spec}" is neither an existing directory nor a Hugging Face repo id like "org/name" or "org/name@revision"`,
    );
  }
  if (specRevision !== undefined && revision !== undefined && specRevision !== revision) {
    throw new InvalidRequestError(`model "${spec}" names revision "${specRevision}" but revision "${revision}" was also given`);
  }
  const rev = specRevision ?? revision ?? DEFAULT_REVISION;
  if (!isSafeRelativePath(rev) || /[\s\0-\x1f]/.test(rev)) {
    throw new InvalidRequestError(`model "${spec}": revision "${rev}" is not a branch, tag or commit name`);
  }
  return { repo, revision: rev };
}

interface Context {
  repo: string;
  revision: string;
  endpoint: string;
  token: string | undefined;
  cacheDir: string;
  storage: string;
  progress: (msg: string) => void;
  hub: HubFetch;
}

/** Resolves the revision to a commit, records the ref, and fetches the planned files into its snapshot. */
async function downloadSnapshot(ctx: Context): Promise<string> {
  const common = { hubUrl: ctx.endpoint, fetch: ctx.hub.fetch };
  ctx.progress(`resolving ${ctx.repo}@${ctx.revision} on ${ctx.endpoint}`);
  const info = await libraryCall(ctx, 'reading the model info', () =>
    modelInfo({ ...common, name: ctx.repo, revision: ctx.revision, additionalFields: ['sha'] }),
  );
  const commit = info.sha;
  if (typeof commit !== 'string' || !COMMIT_HASH.test(commit)) {
    throw new UnavailableError(`${ctx.endpoint} gave no commit for ${ctx.repo}@${ctx.revision} (sha = ${JSON.stringify(commit)})`);
  }
  await writeRef(ctx.storage, ctx.revision, commit);

  // path -> size in bytes (for an LFS file, of the content rather than the pointer)
  const sizes = await libraryCall(ctx, 'listing the files', async () => {
    const out = new Map<string, number>();
    for await (const entry of listFiles({ ...common, repo: { type: 'model', name: ctx.repo }, revision: commit, recursive: true })) {
      if (entry.type === 'file') out.set(entry.path, entry.lfs?.size ?? entry.size);
    }
    return out;
  });
  const plan = planDownload(new Set(sizes.keys()), `${ctx.repo}@${ctx.revision}`);
  const snapshot = snapshotDir(ctx.storage, commit);
  for (const file of plan.files) await fetchFile(ctx, commit, file, sizes.get(file)!);
  if (plan.index !== undefined) {
    const indexFile = path.join(snapshot, plan.index);
    const shards = shardNames(await fs.readFile(indexFile, 'utf8'), `${ctx.repo}@${ctx.revision}/${plan.index}`);
    const absent = shards.filter((s) => !sizes.has(s));
    if (absent.length > 0) {
      throw new InvalidModelError(
        `${ctx.repo}@${ctx.revision}: ${plan.index} names ${absent.join(', ')}, which the repo does not have`,
      );
    }
    for (const shard of shards) await fetchFile(ctx, commit, shard, sizes.get(shard)!);
  }
  return snapshot;
}

/**
 * Downloads one file into blobs/ with its snapshot link (a no-op when linked already) and checks its size.
 * A second attempt follows a wrong size (the blob is dropped first) or a local failure such as another
 * process renaming the same <blob>.incomplete first; an error answered by the Hub is not retried.
 */
async function fetchFile(ctx: Context, commit: string, file: string, size: number): Promise<void> {
  const link = path.join(snapshotDir(ctx.storage, commit), file);
  for (let attempt = 0; ; attempt++) {
    const last = attempt === 1;
    if ((await statSize(link)) === undefined) ctx.progress(`downloading ${ctx.repo}/${file} (${formatBytes(size)})`);
    try {
      await libraryCall(ctx, `downloading ${file}`, () =>
        downloadFileToCacheDir({
          repo: { type: 'model', name: ctx.repo },
          path: file,
          revision: commit,
          hubUrl: ctx.endpoint,
          fetch: ctx.hub.fetch,
          cacheDir: ctx.cacheDir,
        }),
      );
    } catch (err) {
      if (last || err instanceof HubRequestError || ctx.hub.lastFailure() !== undefined) throw err;
      continue;
    }
    const got = await statSize(link);
    if (got === size) return;
    const blob = await fs.realpath(link).catch(() => undefined);
    await fs.rm(link, { force: true });
    if (blob !== undefined) await fs.rm(blob, { force: true });
    if (last) {
      throw new UnavailableError(
        `${ctx.repo}/${file} from ${ctx.endpoint} has ${got ?? 'no'} bytes, expected ${size}; run again to retry the download`,
      );
    }
  }
}

/**
 * Runs one @huggingface/hub call. A HubRequestError passes through for resolveModelDir to map; any other
 * non-TunekitError (a stream cut mid-download, an answer the library could not parse, a cache it could
 * not write) becomes an UnavailableError naming the step.
 */
async function libraryCall<T>(ctx: Context, step: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof TunekitError || err instanceof HubRequestError || ctx.hub.lastFailure() !== undefined) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    throw new UnavailableError(`${step} of ${ctx.repo}@${ctx.revision} from ${ctx.endpoint} (cache ${ctx.cacheDir}) failed: ${msg}`);
  }
}

/** The typed error for a failed request, with the repo, endpoint and cache in the message. */
function failureError(f: HubFailure, ctx: Context): TunekitError {
  const { repo, revision, endpoint } = ctx;
  if (f.kind === 'unreachable') {
    return new UnavailableError(
      `cannot reach the Hugging Face Hub at ${endpoint} (${f.detail}) and ${repo}@${revision} is not complete in the cache ${ctx.cacheDir}; ` +
        `check the network or set HF_ENDPOINT to a reachable mirror`,
    );
  }
  const isInfoRequest = f.path.startsWith(`/api/models/${repo}/revision/`);
  if (f.errorCode === 'RevisionNotFound') {
    return new NotFoundError(`revision "${revision}" not found in ${repo} on ${endpoint} (${f.message})`);
  }
  if (f.errorCode === 'RepoNotFound' || (f.status === 404 && isInfoRequest && f.errorCode === undefined)) {
    const hint = ctx.token ? '' : '; if it is private, set HF_TOKEN to a token that can read it';
    return new NotFoundError(`model ${repo} not found on ${endpoint}${hint}`);
  }
  if (f.status === 401 || f.status === 403) {
    const page = `${endpoint}/${repo}`;
    return new HubAccessError(
      ctx.token
        ? `${endpoint} refused the token for ${repo} (HTTP ${f.status}: ${f.message}): the model is gated or private; ` +
            `accept its terms at ${page} with the account the token belongs to, or set HF_TOKEN to a token that can read it`
        : `${repo} is gated or private on ${endpoint} (HTTP ${f.status}: ${f.message}): set HF_TOKEN to a Hugging Face ` +
            `access token that can read it (for a gated model, first accept its terms at ${page})`,
    );
  }
  if (f.status === 404) return new NotFoundError(`${endpoint}: ${describeFailure(f)} (model ${repo}@${revision})`);
  return new UnavailableError(`${endpoint}: ${describeFailure(f)} (model ${repo}@${revision}); try again later`);
}

/** Failures after which a complete cached snapshot is used rather than reported: no answer, 429 or 5xx. */
function isTransient(f: HubFailure): boolean {
  return f.kind === 'unreachable' || f.status === 429 || f.status >= 500;
}

function isOfflineMode(): boolean {
  return ['1', 'on', 'yes', 'true'].includes((process.env.HF_HUB_OFFLINE ?? '').trim().toLowerCase());
}

/** An existing directory (returned as given), or undefined for a Hub spec; a path-like spec that is no directory throws. */
async function localModelDir(spec: string): Promise<string | undefined> {
  if (spec.trim() === '') {
    throw new InvalidRequestError('model is empty: give a model directory or a Hugging Face repo id like "org/name"');
  }
  const dir = expandHome(spec);
  const stat = await fs.stat(dir).catch(() => undefined);
  if (stat?.isDirectory()) return dir;
  const pathLike = /^([./~\\]|[a-zA-Z]:)/.test(spec) || spec.includes('\\');
  if (!pathLike) return undefined;
  const abs = path.resolve(dir);
  throw new InvalidRequestError(stat ? `model directory ${abs} is a file, not a directory` : `model directory ${abs} does not exist`);
}

function parseEndpoint(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidRequestError(`Hub endpoint "${value}" (HF_ENDPOINT or the endpoint option) is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InvalidRequestError(`Hub endpoint "${value}" must be an http(s) URL`);
  }
  return value.replace(/\/+$/, '');
}

function isRepoId(id: string): boolean {
  const parts = id.split('/');
  return (
    id.length <= 96 &&
    parts.length === 2 &&
    parts.every((p) => /^[A-Za-z0-9_.-]+$/.test(p) && !/^[.-]|[.-]$/.test(p)) &&
    !id.includes('--') &&
    !id.includes('..')
  );
}

async function statSize(p: string): Promise<number | undefined> {
  try {
    return (await fs.stat(p)).size;
  } catch {
    return undefined;
  }
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  for (; v >= 1024 && i < units.length - 1; i++) v /= 1024;
  return `${v.toFixed(1)} ${units[i]}`;
}

// @huggingface/hub takes no lock (huggingface_hub uses .locks/), so two downloads of one blob would write
// the same <blob>.incomplete. Calls for the same repo in this process run one after the other; the second
// then finds its files linked already. Separate processes are not coordinated.
const storageLocks = new Map<string, Promise<void>>();

async function withStorageLock<T>(storage: string, fn: () => Promise<T>): Promise<T> {
  const previous = storageLocks.get(storage) ?? Promise.resolve();
  let release!: () => void;
  const done = new Promise<void>((resolve) => (release = resolve));
  const mine = previous.then(() => done);
  storageLocks.set(storage, mine);
  await previous;
  try {
    return await fn();
  } finally {
    release();
    if (storageLocks.get(storage) === mine) storageLocks.delete(storage);
  }
}

// downloadFileToCacheDir prints "Downloading <file> to <blob>.incomplete" with console.debug, which is
// stdout in Node, for every file it fetches. While downloads run, exactly those lines are dropped (the
// onProgress messages above replace them); any other console.debug output passes through.
let quietDepth = 0;
let savedDebug: typeof console.debug | undefined;

async function quietLibrary<T>(fn: () => Promise<T>): Promise<T> {
  if (quietDepth++ === 0) {
    const original = console.debug;
    savedDebug = original;
    console.debug = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && /^Downloading .* to .*\.incomplete$/s.test(args[0])) return;
      original.apply(console, args);
    };
  }
  try {
    return await fn();
  } finally {
    if (--quietDepth === 0) {
      console.debug = savedDebug!;
      savedDebug = undefined;
    }
  }
}
