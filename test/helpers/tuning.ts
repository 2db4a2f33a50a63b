// A tuning platform for the api-tuning-* and jobs-* tests: a Platform in a temporary data directory,
// tiny registered models, buckets in two locations holding small datasets, service accounts with keys
// (a trainer: aiplatform.user + storage.objectAdmin; a viewer: aiplatform.viewer + storage.objectViewer;
// a trainer who may not read the data), and the API app over them with the job runner started.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createApp } from '../../src/api/app.js';
import { ModelCatalog, registerPublisherModel } from '../../src/api/catalog.js';
import { DbRegistrationStore } from '../../src/api/db-store.js';
import { Platform } from '../../src/platform/platform.js';
import { TuningService } from '../../src/platform/jobs/service.js';
import { tinyModelDir } from './tiny-models.js';
import { formatTask, type FormatExample } from './format-task.js';
import { testDatabase } from './postgres.js';

export const PROJECT = 'p';
export const JOBS = `/v1/projects/${PROJECT}/locations/us-central1/tuningJobs`;

export function vertexJsonl(examples: FormatExample[]): string {
  return examples.map((e) => JSON.stringify({
    contents: [{ role: 'user', parts: [{ text: e.input }] }, { role: 'model', parts: [{ text: e.output }] }],
  })).join('\n') + '\n';
}

export interface Keys { trainer: string; viewer: string; noData: string }

/** Service accounts with keys in PROJECT. */
export async function makeKeys(platform: Platform): Promise<Keys> {
  const key = async (id: string, roles: string[]): Promise<string> => {
    const sa = await platform.iam.createServiceAccount(PROJECT, id);
    for (const r of roles) await platform.iam.addBinding(PROJECT, `serviceAccount:${sa.email}`, r);
    return (await platform.iam.createKey(sa.email)).key;
  };
  return {
    trainer: await key('trainer', ['roles/aiplatform.user', 'roles/storage.objectAdmin']),
    viewer: await key('viewer-sa', ['roles/aiplatform.viewer', 'roles/storage.objectViewer']),
    noData: await key('no-data-sa', ['roles/aiplatform.user']),
  };
}

/** Buckets us-data (us-central1) and eu-data (europe-west4) with train/validation sets. */
export async function seedData(platform: Platform, examples = 40): Promise<void> {
  await platform.storage.createBucket('us-data', { project: PROJECT, location: 'us-central1' });
  await platform.storage.createBucket('eu-data', { project: PROJECT, location: 'europe-west4' });
  for (const b of ['us-data', 'eu-data']) {
    await platform.storage.putObject(b, 'train.jsonl', vertexJsonl(formatTask(examples, 1)));
    await platform.storage.putObject(b, 'validation.jsonl', vertexJsonl(formatTask(8, 2)));
  }
}

/**
 * A data directory for a `tunekit serve` child: the tiny Gemma 3 registered as gemma3-tiny, the
 * datasets seeded, the keys made; closed again so that the server opens it alone.
 */
export async function prepareServeDataDir(dataDir: string, examples = 40): Promise<Keys> {
  const setup = await Platform.open({ dataDir });
  try {
    await registerPublisherModel(new DbRegistrationStore(setup.db), tinyModelDir('gemma3'), { name: 'gemma3-tiny' });
    await seedData(setup, examples);
    return await makeKeys(setup);
  } finally {
    await setup.close();
  }
}

export async function tuningPlatform(opts: { examples?: number } = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-tuning-'));
  const { database } = await testDatabase();
  const platform = await Platform.open({ dataDir, ...(database ? { database } : {}) });
  const store = new DbRegistrationStore(platform.db);
  await registerPublisherModel(store, tinyModelDir('gemma3'), { name: 'gemma3-tiny' });
  await seedData(platform, opts.examples);
  const keys = await makeKeys(platform);
  // On PostgreSQL (TUNEKIT_TEST_POSTGRES) jobs go through the queue, pulled by a worker in this process.
  const pgQueue = database ? await import('../../src/platform/postgres/queue.js') : undefined;
  const queue = database ? await pgQueue!.PostgresJobQueue.open(database, platform, { heartbeatSeconds: 10 }) : undefined;
  const worker = database ? await pgQueue!.PostgresWorker.start(platform, database, { log: () => undefined }) : undefined;
  const tuning = new TuningService(platform, queue ? { queue } : { pollMs: 100 });
  const catalog = new ModelCatalog(store);
  const errors: unknown[] = [];
  const app = createApp({ catalog, auth: platform.iam, assertLocation: (l) => platform.config.assertLocation(l), tuning, log: (e) => errors.push(e) });
  await tuning.runner.start();
  const call = async (method: string, url: string, key: string | undefined, body?: unknown): Promise<{ status: number; json: Record<string, any> }> => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (key) headers['x-goog-api-key'] = key;
    const res = await app.request(url, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, json: await res.json() as Record<string, any> };
  };
  const close = async () => {
    await tuning.runner.stop();
    await worker?.stop();
    await platform.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  return { dataDir, platform, tuning, catalog, app, keys, errors, call, close };
}

export function createBody(extra: { train?: string; validation?: string; epochs?: number; adapterSize?: string; lrm?: number; name?: string } = {}): Record<string, unknown> {
  return {
    baseModel: 'gemma3-tiny',
    supervisedTuningSpec: {
      trainingDatasetUri: extra.train ?? 'gs://us-data/train.jsonl',
      ...(extra.validation === '' ? {} : { validationDatasetUri: extra.validation ?? 'gs://us-data/validation.jsonl' }),
      hyperParameters: { epochCount: extra.epochs ?? 2, adapterSize: extra.adapterSize ?? 'ADAPTER_SIZE_FOUR', learningRateMultiplier: extra.lrm ?? 5 },
    },
    tunedModelDisplayName: extra.name ?? 'tone',
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `get` while the job is PENDING or RUNNING, as Google's samples do. */
export async function waitForJob(get: () => Promise<Record<string, any>>, timeoutMs = 60_000): Promise<Record<string, any>> {
  const t0 = Date.now();
  for (;;) {
    const job = await get();
    if (!['JOB_STATE_PENDING', 'JOB_STATE_RUNNING', 'JOB_STATE_QUEUED', 'JOB_STATE_CANCELLING'].includes(job.state)) return job;
    if (Date.now() - t0 > timeoutMs) throw new Error(`job still ${job.state} after ${timeoutMs} ms: ${JSON.stringify(job)}`);
    await sleep(100);
  }
}
