// A second tunekit node as the object-storage backend of the tests (issue 15 allows it: no maintained
// S3 server ships in Debian or npm, and this node serves the Cloud Storage JSON API that
// test/api-storage-client.test.ts checks with @google-cloud/storage): `tunekit serve` on its own data
// directory, its bootstrap admin key in a file (for --storage-api-key-file), and one bucket created
// through the official client. kill() stops it (SIGKILL: unreachable mid-request); restart() starts it
// again on the same port and directory.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Storage } from '@google-cloud/storage';
import { startServe, type ServeProcess } from './serve.js';
import type { StorageConfig } from '../../src/platform/blob-store.js';

export interface StorageNode {
  url: string;
  bucket: string;
  keyFile: string;
  /** The flags that point serve or a worker at this node, under `prefix`. */
  flags(prefix: string): string[];
  config(prefix: string): Extract<StorageConfig, { kind: 'gcs' }>;
  /** The official client, authenticated with the node's key. */
  client(): Storage;
  kill(): Promise<void>;
  restart(): Promise<void>;
}

/** `serveArgs`: more flags for the node's `tunekit serve` (e.g. --max-object-size). */
export async function startStorageNode(dir: string, bucket = 'tk-backend', serveArgs: string[] = []): Promise<StorageNode> {
  fs.mkdirSync(dir, { recursive: true });
  let proc: ServeProcess = await startServe(dir, {}, serveArgs);
  const key = proc.stdout.split('\n').map((l) => l.trim()).find((l) => /^tk1\.\S+$/.test(l));
  if (!key) throw new Error(`no bootstrap key in ${proc.stdout}`);
  const keyFile = path.join(dir, 'api-key');
  fs.writeFileSync(keyFile, `${key}\n`);
  const port = new URL(proc.url).port;
  const node: StorageNode = {
    url: proc.url, bucket, keyFile,
    flags: (prefix) => ['--storage', `gs://${bucket}/${prefix}`, '--storage-endpoint', node.url, '--storage-api-key-file', keyFile],
    config: (prefix) => ({ kind: 'gcs', bucket, prefix: prefix.endsWith('/') ? prefix : `${prefix}/`, endpoint: node.url, apiKey: key }),
    client: () => new Storage({ apiEndpoint: node.url, projectId: 'backend', useAuthWithCustomEndpoint: true, clientOptions: { apiKey: key }, retryOptions: { maxRetries: 0 } }),
    kill: () => proc.kill('SIGKILL'),
    restart: async () => {
      proc = await startServe(dir, {}, [...serveArgs, '--port', port]);
    },
  };
  await node.client().createBucket(bucket, { location: 'us-central1' });
  return node;
}

/** Object names in the node's bucket under `prefix`. */
export async function backendNames(node: StorageNode, prefix: string): Promise<string[]> {
  const [files] = await node.client().bucket(node.bucket).getFiles({ prefix });
  return files.map((f) => f.name).sort();
}
