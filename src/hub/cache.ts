// The local Hugging Face cache, in huggingface_hub's layout so a Python user's cache is shared:
//   <cache>/models--<org>--<name>/blobs/<etag>                  file contents (etag = sha256 for LFS, git oid otherwise)
//   <cache>/models--<org>--<name>/snapshots/<commit>/<file>     symlink -> ../../blobs/<etag>
//   <cache>/models--<org>--<name>/refs/<revision>               the commit a branch or tag resolved to
// @huggingface/hub writes blobs and snapshot links; this file locates the cache, reads and writes refs,
// and finds a complete cached snapshot for offline use.

import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { isCompleteModelDir } from './model-files.js';

export const COMMIT_HASH = /^[0-9a-f]{40}$/;

/** $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (as huggingface_hub). */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return expandHome(env.HF_HUB_CACHE);
  if (env.HF_HOME) return path.join(expandHome(env.HF_HOME), 'hub');
  const xdg = env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(xdg, 'huggingface', 'hub');
}

export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

/** <cache>/models--org--name for the model repo "org/name". */
export function repoStorageDir(cacheDir: string, repo: string): string {
  return path.join(cacheDir, ['models', ...repo.split('/')].join('--'));
}

export function snapshotDir(storage: string, commit: string): string {
  return path.join(storage, 'snapshots', commit);
}

/** The commit `revision` names in the cache: itself when it is a commit hash, else what refs/<revision> holds. */
export async function readRef(storage: string, revision: string): Promise<string | undefined> {
  if (COMMIT_HASH.test(revision)) return revision;
  try {
    const commit = (await fs.readFile(path.join(storage, 'refs', revision), 'utf8')).trim();
    return COMMIT_HASH.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/** Records that `revision` resolved to `commit` (huggingface_hub writes the hash with no newline). */
export async function writeRef(storage: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const refFile = path.join(storage, 'refs', revision);
  await fs.mkdir(path.dirname(refFile), { recursive: true });
  await fs.writeFile(refFile, commit);
}

/** The snapshot directory for `revision` when the cache holds every file tunekit needs from it. */
export async function completeCachedSnapshot(storage: string, revision: string): Promise<string | undefined> {
  const commit = await readRef(storage, revision);
  if (commit === undefined) return undefined;
  const dir = snapshotDir(storage, commit);
  return (await isCompleteModelDir(dir)) ? dir : undefined;
}
