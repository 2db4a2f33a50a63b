// The quickstart: Vertex AI's supervised-tuning workflow, end to end, against a tunekit server on this
// machine, driven by Google's own clients (@google/genai, @google-cloud/storage). Run it with `npm run quickstart`
// (or `node dist/examples/quickstart.js [WORK_DIR]`, default .cache/quickstart).
//
//  1. a base model the project builds itself (tiny Llama architecture, random weights: no download);
//  2. a Vertex-format dataset (examples/data: a sentence in, {"tone": "warm"|"cold"} out), validated;
//  3. `tunekit serve` in the background over WORK_DIR/data, with the base model registered;
//  4. the datasets uploaded with @google-cloud/storage, a tuning job created with ai.tunings.tune and
//     followed to SUCCEEDED;
//  5. the job's auto-deployed endpoint called with ai.models.generateContent, beside the base model;
//  6. base vs tuned on a held-out set with `tunekit eval`: exact match, JSON validity, a pairwise judge;
//  7. the server stopped.
// A second run reuses the base model, the data directory and its key, and the finished job when the
// data and settings are unchanged; it uploads and evaluates again. Delete WORK_DIR to start over.
// Ctrl-C stops the server cleanly; the job resumes from its last checkpoint and the next run follows it.
// A run killed outright (SIGKILL) leaves its server running: the next run stops that server first.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Storage } from '@google-cloud/storage';
import { AdapterSize, GoogleGenAI, JobState, type TuningJob } from '@google/genai';
import { OAuth2Client } from 'google-auth-library';

const root = fileURLToPath(new URL('../..', import.meta.url)); // the checkout (this file runs from dist/examples)
const work = path.resolve(process.argv[2] ?? path.join(root, '.cache/quickstart'));
const baseDir = path.join(work, 'base');
const dataDir = path.join(work, 'data');
const keyFile = path.join(work, 'api-key');
const pidFile = path.join(work, 'serve.pid'); // the server this script started, until it stops it
const data = (name: string) => path.join(root, 'examples/data', name);
const [TRAIN, VALIDATION, HELD_OUT] = [data('tone-train.jsonl'), data('tone-validation.jsonl'), data('tone-test.jsonl')];

const PROJECT = 'quickstart';
const LOCATION = 'us-central1';
const BUCKET = 'quickstart-tone';
const [TRAIN_URI, VALIDATION_URI] = [`gs://${BUCKET}/tone-train.jsonl`, `gs://${BUCKET}/tone-validation.jsonl`];
const BASE_MODEL = 'llama-tiny'; // publishers/google/models/llama-tiny once registered
const DISPLAY_NAME = 'tone-classifier';
const HYPER = { epochCount: 20, adapterSize: AdapterSize.ADAPTER_SIZE_EIGHT, learningRateMultiplier: 25 };

const ACTIVE = new Set<string>([JobState.JOB_STATE_QUEUED, JobState.JOB_STATE_PENDING, JobState.JOB_STATE_RUNNING]);
const started = performance.now();

/** Prints what a step does, runs it, prints how long it took. */
async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  console.log(`\n== ${what}`);
  const t0 = performance.now();
  const result = await fn();
  console.log(`   (${seconds(t0)})`);
  return result;
}
const seconds = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

/** Runs the tunekit CLI and prints its output, indented; resolves with the output. */
function tunekit(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [path.join(root, 'dist/src/cli/main.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const show = (d: Buffer) => {
    out += d.toString();
    process.stdout.write(d.toString().replace(/^(?=.)/gm, '   '));
  };
  child.stdout.on('data', show);
  child.stderr.on('data', show);
  return new Promise((resolve, reject) => child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`tunekit ${args.join(' ')} exited with ${code}: ${out.trim()}`)))));
}

/** `tunekit serve` in the background; resolves with its URL and, at the first start, its admin key. */
function serve(): Promise<{ url: string; adminKey?: string; stop: () => Promise<number | null> }> {
  const log = fs.openSync(path.join(work, 'serve.log'), 'a');
  // A process group of its own: Ctrl-C reaches only this script, which stops the server with one SIGTERM.
  const child = spawn(process.execPath, [path.join(root, 'dist/src/cli/main.js'), 'serve', '--port', '0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', log], detached: true });
  fs.writeFileSync(pidFile, `${child.pid}\n`);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { fs.rmSync(pidFile, { force: true }); resolve(code); }));
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM'); // in-flight work ends, job workers stop, the database closes
    return exited;
  };
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const url = / at (http:\/\/\S+)/.exec(out)?.[1];
      if (url) resolve({ url, adminKey: /keep it now:\n(\S+)\n/.exec(out)?.[1], stop });
    });
    void exited.then((code) => reject(new Error(`tunekit serve exited with ${code}; see ${path.join(work, 'serve.log')}`)));
  });
}

/**
 * The server an earlier run started and could not stop (that run was killed outright), if it still
 * serves this data directory: stopped with SIGTERM like any other, so its job goes back to PENDING.
 */
async function stopLeftoverServer(): Promise<void> {
  const pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8')) : NaN;
  fs.rmSync(pidFile, { force: true });
  const command = Number.isInteger(pid) && pid > 0 ? spawnSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim() : '';
  if (!command.includes(' serve ') || !command.includes(dataDir)) return; // gone, or the pid is someone else's now
  console.log(`   an earlier run's server (pid ${pid}) still serves ${dataDir}: stopping it`);
  process.kill(pid, 'SIGTERM');
  const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
  for (let waited = 0; alive(); waited += 100) {
    if (waited === 30_000) process.kill(pid, 'SIGKILL'); // past serve's own shutdown deadline
    await new Promise((r) => setTimeout(r, 100));
  }
}

console.log(`tunekit quickstart in ${work}`);
fs.mkdirSync(work, { recursive: true });
await stopLeftoverServer(); // before anything touches the data directory it serves

await step('Base model: a tiny Llama-architecture model with random weights (tunekit model init)', async () => {
  if (fs.existsSync(path.join(baseDir, 'config.json'))) return console.log(`   reusing ${baseDir}`);
  await tunekit(['model', 'init', '--arch', 'llama', '--size', 'tiny', '--seed', '1', '--out', baseDir]);
});

await step(`Dataset: validate ${path.relative(root, TRAIN)} and ${path.relative(root, VALIDATION)} with the base model's tokenizer`, () =>
  tunekit(['validate', TRAIN, '--validation', VALIDATION, '--model', baseDir]));

// What the job depends on: a finished job with the same fingerprint (a label) is reused.
const fingerprint = createHash('sha256').update(JSON.stringify([BASE_MODEL, HYPER]))
  .update(fs.readFileSync(TRAIN)).update(fs.readFileSync(VALIDATION)).update(fs.readFileSync(path.join(baseDir, 'model.safetensors')))
  .digest('hex').slice(0, 16);

const fresh = !fs.existsSync(keyFile); // no key yet: a new data directory (or a first run that stopped early)
if (fresh) {
  await step(`Platform: a new data directory ${dataDir}, the base model registered as ${BASE_MODEL}`, async () => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    await tunekit(['publisher-models', 'register', baseDir, '--name', BASE_MODEL, '--data-dir', dataDir]);
  });
}

const server = await step('Start `tunekit serve` in the background', async () => {
  const s = await serve();
  if (s.adminKey) fs.writeFileSync(keyFile, `${s.adminKey}\n`, { mode: 0o600 }); // printed once, at the first start
  console.log(`   serving ${dataDir} at ${s.url} (log: ${path.join(work, 'serve.log')})`);
  return s;
});
const apiKey = fs.readFileSync(keyFile, 'utf8').trim();
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) { // SIGHUP: the terminal was closed
  process.once(signal, () => {
    console.log(`\n${signal}: stopping the server (a running job resumes at the next run)`);
    void server.stop().then(() => process.exit(130));
  });
}

try {
  // The client Vertex AI users already have, pointed at tunekit.
  const ai = new GoogleGenAI({ vertexai: true, project: PROJECT, location: LOCATION, apiKey, httpOptions: { baseUrl: server.url } });

  // The loss curve is tunekit's GET .../tuningJobs/ID/metrics (Vertex shows it in its console).
  const lastLoss = async (job: string) => {
    const res = await fetch(`${server.url}/v1/${job}/metrics`, { headers: { 'x-goog-api-key': apiKey } });
    const { metrics } = (await res.json()) as { metrics: { name: string; points: { step: string; value: number }[] }[] };
    return metrics.find((m) => m.name === '/train_total_loss')?.points.at(-1);
  };

  await step(`Upload the datasets to gs://${BUCKET}/ (@google-cloud/storage)`, async () => {
    // Google's Cloud Storage client, pointed at tunekit, with the tunekit key as its OAuth access token
    // (`as never`: the client bundles google-auth-library 11, whose types differ from the 10 installed beside it).
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: apiKey });
    const gcs = new Storage({ apiEndpoint: server.url, projectId: PROJECT, useAuthWithCustomEndpoint: true, authClient: authClient as never });
    const bucket = gcs.bucket(BUCKET);
    if (!(await bucket.exists())[0]) await gcs.createBucket(BUCKET, { location: LOCATION });
    for (const file of [TRAIN, VALIDATION]) {
      // resumable: false, since @google-cloud/storage 8.4 sends no credentials on resumable uploads to a custom endpoint
      const [object] = await bucket.upload(file, { resumable: false }); // to gs://BUCKET/<the file's name>
      console.log(`   gs://${BUCKET}/${object.name}: ${object.metadata.size} bytes, md5 ${object.metadata.md5Hash}`);
    }
  });

  // Polls the job until it ends, printing its state, step and loss as they change.
  const follow = async (job: TuningJob): Promise<TuningJob> => {
    const steps = job.tuningDataStats?.supervisedTuningDataStats?.tuningStepCount;
    let shown = '';
    while (ACTIVE.has(job.state!)) {
      await new Promise((r) => setTimeout(r, 500));
      job = await ai.tunings.get({ name: job.name! });
      const loss = await lastLoss(job.name!);
      const line = `${job.state}${loss ? `  step ${loss.step}/${steps}  loss ${loss.value.toFixed(3)}` : ''}`;
      if (line !== shown) console.log(`   ${(shown = line)}`);
    }
    if (job.state !== JobState.JOB_STATE_SUCCEEDED) throw new Error(`${job.name} ended ${job.state}: ${JSON.stringify(job.error)}`);
    return job;
  };

  const job = await step(`Tuning job: LoRA on ${BASE_MODEL} (ai.tunings.tune), followed until it ends`, async () => {
    // A job of an earlier run on the same data and settings is reused once it has SUCCEEDED, and followed
    // while it runs (after Ctrl-C it resumes from its last checkpoint when the server starts again).
    for await (const earlier of await ai.tunings.list({ config: { filter: `tuned_model_display_name="${DISPLAY_NAME}"` } })) {
      if (earlier.labels?.fingerprint !== fingerprint) continue;
      if (earlier.state === JobState.JOB_STATE_SUCCEEDED) {
        console.log(`   reusing ${earlier.name}: it tuned on the same data and settings`);
        return earlier;
      }
      if (ACTIVE.has(earlier.state!)) {
        console.log(`   following ${earlier.name}, which an earlier run started`);
        return follow(earlier);
      }
    }
    let job: TuningJob = await ai.tunings.tune({
      baseModel: BASE_MODEL,
      trainingDataset: { gcsUri: TRAIN_URI },
      config: { tunedModelDisplayName: DISPLAY_NAME, validationDataset: { gcsUri: VALIDATION_URI }, ...HYPER, labels: { fingerprint } },
    });
    const stats = job.tuningDataStats?.supervisedTuningDataStats;
    console.log(`   created ${job.name}: ${stats?.tuningDatasetExampleCount} examples, ${stats?.tuningStepCount} steps`);
    return follow(job);
  });
  const endpoint = job.tunedModel!.endpoint!;
  console.log(`   tuned model ${job.tunedModel!.model}, deployed on ${endpoint}`);

  await step('Generate: the same held-out prompt to the base model and to the tuned endpoint', async () => {
    const contents = 'we saw a very orange house today';
    console.log(`   prompt: ${JSON.stringify(contents)}`);
    for (const [who, model] of [['base ', BASE_MODEL], ['tuned', endpoint]]) {
      const r = await ai.models.generateContent({ model, contents, config: { temperature: 0, maxOutputTokens: 16 } });
      console.log(`   ${who}: ${JSON.stringify(r.text ?? '')} (${r.candidates?.[0]?.finishReason})`);
    }
  });

  const report = path.join(work, 'eval');
  await step(`Evaluate base vs tuned on the held-out ${path.relative(root, HELD_OUT)} (tunekit eval over the OpenAI-compatible API)`, async () => {
    console.log('   judge: the base model itself, under the answer\'s JSON Schema; with random weights its verdicts mean nothing');
    await tunekit([
      'eval', '--dataset', HELD_OUT, '--metrics', 'exact_match,json_valid,pairwise_instruction_following',
      '--candidate', `${server.url}/v1`, '--candidate-model', endpoint, '--baseline', `${server.url}/v1`, '--baseline-model', BASE_MODEL,
      '--api-key', apiKey, '--judge', baseDir, '--judge-max-tokens', '64', '--max-tokens', '16', '--seed', '0', '--out', report,
    ]);
  });
  console.log(`\nReport: ${path.join(report, 'report.html')}`);
  console.log(`Console: ${server.url}/console (API key in ${keyFile}); after this run, start the server again with\n` +
    `  node dist/src/cli/main.js serve --data-dir ${dataDir}`);
} finally {
  await step('Stop the server', async () => console.log(`   tunekit serve exited with ${await server.stop()}`));
}
console.log(`\nquickstart done in ${seconds(started)}`);
