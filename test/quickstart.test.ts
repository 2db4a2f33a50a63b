// The quickstart (examples/quickstart.ts, what `npm run quickstart` and the README show) run as a user
// runs it, four times on one work directory: the first run builds the base model, starts `tunekit
// serve`, uploads and starts the tuning job through Google's clients, and is interrupted (SIGINT, as
// Ctrl-C sends it) while the job runs: it stops the server cleanly. The next is killed with SIGKILL once
// its server is up, which leaves that server running. The second full run stops that server, follows the same job
// (resumed by the server) to SUCCEEDED; the tuned endpoint answers the trained format where the base
// cannot, the evaluation says so, the report is written and the server stops cleanly. The third run
// reuses the base model, the data directory and the finished job (still one job) and evaluates again.
// The README's TypeScript block is the quickstart's code: each of its lines of code is a line of the script.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Platform } from '../src/platform/platform.js';

const SCRIPT = fileURLToPath(new URL('../examples/quickstart.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-quickstart-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

function quickstart(): string {
  const r = spawnSync(process.execPath, [SCRIPT, work], { encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

interface Summary { summary: { metric: string; candidate?: { mean: number }; baseline?: { mean: number }; candidateWinRate?: number }[] }
const summary = () => JSON.parse(fs.readFileSync(path.join(work, 'eval/summary.json'), 'utf8')) as Summary;
const metric = (name: string) => summary().summary.find((m) => m.metric === name)!;

async function jobs(): Promise<{ name: string; state: string }[]> {
  const p = await Platform.open({ dataDir: path.join(work, 'data') });
  try {
    const rows = await p.db.all<Record<string, string>>('SELECT project, location, id, state FROM tuning_jobs');
    return rows.map((r) => ({ name: `projects/${r.project}/locations/${r.location}/tuningJobs/${r.id}`, state: r.state }));
  } finally {
    await p.close();
  }
}

let jobName = '';

test('first run, interrupted while the job runs: base model, serve, upload, job created; the server stops cleanly', async () => {
  const child = spawn(process.execPath, [SCRIPT, work], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let interrupted = false;
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!interrupted && /JOB_STATE_RUNNING {2}step \d+\/\d+ {2}loss \d+\.\d{3}/.test(out)) interrupted = child.kill('SIGINT'); // once: a second one exits at once
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 130, out);
  // Uploaded through the Cloud Storage API intact: the md5 the server reports is the file's.
  for (const name of ['tone-train.jsonl', 'tone-validation.jsonl']) {
    const bytes = fs.readFileSync(path.join(ROOT, 'examples/data', name));
    assert.ok(out.includes(`gs://quickstart-tone/${name}: ${bytes.length} bytes, md5 ${createHash('md5').update(bytes).digest('base64')}`), name);
  }
  assert.match(out, /created projects\/quickstart\/locations\/us-central1\/tuningJobs\/\d+: 120 examples, \d+ steps/);
  assert.match(out, /SIGINT: stopping the server/);
  assert.match(fs.readFileSync(path.join(work, 'serve.log'), 'utf8'), /tunekit: stopped/);
  const all = (await jobs());
  assert.equal(all.length, 1);
  assert.equal(all[0]!.state, 'JOB_STATE_PENDING'); // put back for the next start
  jobName = all[0]!.name;
});

let leftover = 0;
const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

test('a run killed outright (SIGKILL) once its server is up leaves that server running', async () => {
  const child = spawn(process.execPath, [SCRIPT, work], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (/serving .* at http/.test(out)) child.kill('SIGKILL');
  });
  assert.equal(await new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal))), 'SIGKILL', out);
  leftover = Number(fs.readFileSync(path.join(work, 'serve.pid'), 'utf8'));
  assert.ok(alive(leftover), 'the server outlives the script that started it');
});

test('second run: stops the leftover server, follows that job to SUCCEEDED, endpoint, evaluation, clean stop', async () => {
  const out = quickstart();
  assert.ok(out.includes(`an earlier run's server (pid ${leftover}) still serves ${path.join(work, 'data')}: stopping it`), out);
  assert.equal(alive(leftover), false);
  // Every step says how long it took.
  assert.equal((out.match(/^== /gm) ?? []).length, (out.match(/^ {3}\(\d+\.\d s\)$/gm) ?? []).length);
  assert.match(out, /reusing .*base/);
  assert.doesNotMatch(out, /Platform: a new data directory/);
  assert.ok(out.includes(`following ${jobName}, which an earlier run started`), out);
  assert.match(out, /JOB_STATE_SUCCEEDED {2}step (\d+)\/\1 {2}loss/);
  // The endpoint answers the held-out prompt in the trained format and stops; the base cannot.
  assert.match(out, /tuned: "\{\\"tone\\": \\"warm\\"\}" \(STOP\)/);
  assert.doesNotMatch(out, /base : "\{\\"tone/);
  // Base vs tuned on the held-out set: the tuned model wins on both computed metrics.
  assert.ok(metric('exact_match').candidate!.mean >= 0.9, JSON.stringify(metric('exact_match')));
  assert.equal(metric('exact_match').baseline!.mean, 0);
  assert.ok(metric('json_valid').candidate!.mean > metric('json_valid').baseline!.mean);
  assert.ok(metric('pairwise_instruction_following').candidateWinRate !== undefined);
  const report = path.join(work, 'eval/report.html');
  assert.ok(out.includes(`Report: ${report}`) && fs.statSync(report).size > 0);
  assert.match(out, /Console: http:\/\/127\.0\.0\.1:\d+\/console/);
  assert.match(out, /tunekit serve exited with 0/);
  assert.deepEqual((await jobs()), [{ name: jobName, state: 'JOB_STATE_SUCCEEDED' }]);
});

test('third run: reuses the base model, the data directory and the finished job', async () => {
  const out = quickstart();
  assert.match(out, /reusing .*base/);
  assert.ok(out.includes(`reusing ${jobName}: it tuned on the same data and settings`), out);
  assert.match(out, /tuned: "\{\\"tone\\": \\"warm\\"\}" \(STOP\)/);
  assert.equal((await jobs()).length, 1);
  assert.ok(metric('exact_match').candidate!.mean >= 0.9);
  assert.match(out, /tunekit serve exited with 0/);
});

test("the README's TypeScript workflow is code of examples/quickstart.ts", () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /^```ts\n([\s\S]*?)^```$/m.exec(readme)?.[1];
  assert.ok(block, 'README.md has a ```ts block');
  const script = new Set(fs.readFileSync(path.join(ROOT, 'examples/quickstart.ts'), 'utf8').split('\n').map((l) => l.trim()));
  const code = block.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('//'));
  assert.ok(code.length >= 10);
  assert.deepEqual(code.filter((l) => !script.has(l)), []);
});
