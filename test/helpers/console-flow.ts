// The console's end-to-end flow, shared by test/console.test.ts and tools/console-screenshot.ts: a
// tuning platform (tiny Gemma 3, small datasets, keys) behind a real socket, a tuning job created
// through the API, and a browser page signed in to the console with the trainer's key.

import type { Page } from 'playwright-core';
import { listen, type RunningServer } from '../../src/api/server.js';
import { JOBS, PROJECT, tuningPlatform, vertexJsonl } from './tuning.js';
import { formatTask } from './format-task.js';

export interface ConsoleServer {
  url: string;
  key: string;
  platform: Awaited<ReturnType<typeof tuningPlatform>>;
  /** Vertex REST call through the socket with the trainer's key. */
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, any> }>;
  close(): Promise<void>;
}

export async function startConsoleServer(opts: { examples?: number } = {}): Promise<ConsoleServer> {
  const platform = await tuningPlatform(opts);
  const server: RunningServer = await listen(platform.app, { port: 0, host: '127.0.0.1' });
  const key = platform.keys.trainer;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method, headers: { 'x-goog-api-key': key, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, json: await res.json() as Record<string, any> };
  };
  return {
    url: server.url, key, platform, call,
    close: async () => {
      await server.close();
      await platform.close();
    },
  };
}

/**
 * Creates a tuning job on the tone-classification task (test/helpers/format-task.ts) with enough data
 * and steps for the tiny model to learn it (as test/train-learning.test.ts does), evaluated against its
 * base after tuning; its resource name.
 */
export async function createJob(s: ConsoleServer, name = 'tone'): Promise<string> {
  await s.platform.platform.storage.putObject('us-data', 'tone-train.jsonl', vertexJsonl(formatTask(120, 11)));
  await s.platform.platform.storage.putObject('us-data', 'tone-validation.jsonl', vertexJsonl(formatTask(16, 2)));
  const r = await s.call('POST', JOBS.replace('/v1/', '/v1beta1/'), {
    baseModel: 'gemma3-tiny', tunedModelDisplayName: name,
    supervisedTuningSpec: {
      trainingDatasetUri: 'gs://us-data/tone-train.jsonl', validationDatasetUri: 'gs://us-data/tone-validation.jsonl',
      hyperParameters: { epochCount: 10, adapterSize: 'ADAPTER_SIZE_EIGHT', learningRate: 0.01 },
      // After tuning, the tuned model against its base on the validation set (report.html in the bucket).
      evaluationConfig: {
        metrics: [{ exactMatchSpec: {} }, { predefinedMetricSpec: { metricSpecName: 'json_valid' } }, { rougeSpec: { rougeType: 'rougeL' } }],
        inferenceGenerationConfig: { maxOutputTokens: 12, temperature: 0 },
      },
    },
  });
  if (r.status !== 200) throw new Error(`tuning job create: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json.name as string;
}

/** Opens the console and saves the settings (key, project) in its form, as a user does once. */
export async function signIn(page: Page, s: ConsoleServer): Promise<void> {
  await page.goto(`${s.url}/console`);
  await page.getByRole('heading', { name: 'Settings' }).waitFor();
  await page.fill('input[name=apiKey]', s.key);
  await page.fill('input[name=project]', PROJECT);
  await page.click('button[type=submit]');
  await page.getByText('The server accepts these settings').waitFor();
}

/** Opens a job's page from the jobs list and waits until the console shows it SUCCEEDED. */
export async function watchJob(page: Page, jobName: string): Promise<void> {
  const id = jobName.split('/').pop()!;
  await page.click('#nav a[href="#/jobs"]');
  await page.click(`a[href="#/jobs/${id}"]`);
  await page.locator('.badge.state-succeeded').waitFor({ timeout: 120_000 });
}
