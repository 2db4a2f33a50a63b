// Where the API keeps its state: the data directory and the registration store in it.

import * as os from 'node:os';
import * as path from 'node:path';
import type { RegistrationStore } from './catalog.js';
import { JsonRegistrationStore } from './json-store.js';

/** --data-dir, else $TUNEKIT_DATA_DIR, else ~/.tunekit. */
export function resolveDataDir(flag?: string): string {
  const dir = flag ?? process.env.TUNEKIT_DATA_DIR ?? path.join(os.homedir(), '.tunekit');
  return path.resolve(dir === '~' || dir.startsWith('~/') ? path.join(os.homedir(), dir.slice(1)) : dir);
}

export function openRegistrationStore(dataDir: string): RegistrationStore & { close?(): void } {
  return new JsonRegistrationStore(dataDir);
}
