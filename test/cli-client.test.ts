// The CLI client as a user runs it against a real `tunekit serve` (child process) with a real tuning job
// on a tiny model: jobs list/get/watch/cancel, models get/delete, endpoints deploy/undeploy, `--json`
// equal to what the API answers, config precedence (flag > environment > properties file), and every
// failure as one line that says what to do next (server down, bad key, missing permission, unknown job).
// `jobs watch` is run with stdout a pipe (one line per change), on a pseudo-terminal (`script`), and
// while its server is killed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createBody, prepareServeDataDir, JOBS, PROJECT, type Keys } from './helpers/tuning.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import { childPids, startServe, type ServeProcess } from './helpers/serve.js';
import { cliMain } from './helpers/platform.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-cli-client-'));
const dataDir = path.join(root, 'data');
const configDir = path.join(root, 'config');
let server: ServeProcess;
let keys: Keys;
let jobA: Record<string, any>;
/** A local port nothing listens on. */
let down: string;
let unreachable: RegExp;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

before(async () => {
  keys = await prepareServeDataDir(dataDir, 24);
  server = await startServe(dataDir);
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  down = `http://127.0.0.1:${(probe.address() as net.AddressInfo).port}`;
  probe.close();
  unreachable = new RegExp(`^tunekit: error: cannot reach ${esc(down)} \\(ECONNREFUSED\\): is \`tunekit serve\` running there\\? set --api or TUNEKIT_API\n$`);
  jobA = await api('POST', JOBS, createBody({ epochs: 2, name: 'cli-a' }));
  assert.equal(jobA.state, 'JOB_STATE_PENDING', JSON.stringify(jobA));
});

after(async () => {
  await server.kill();
  fs.rmSync(root, { recursive: true, force: true });
});

async function api(method: string, url: string, body?: unknown, key = keys.trainer): Promise<Record<string, any>> {
  const res = await fetch(`${server.url}${url}`, {
    method, headers: { 'content-type': 'application/json', 'x-goog-api-key': key }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return await res.json() as Record<string, any>;
}

/** The environment of a user who configured nothing but what `env` gives. */
function userEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env, TUNEKIT_CONFIG_DIR: configDir };
  for (const k of ['TUNEKIT_API', 'TUNEKIT_API_KEY', 'TUNEKIT_PROJECT', 'TUNEKIT_LOCATION']) delete base[k];
  return { ...base, ...env };
}

const connected = () => userEnv({ TUNEKIT_API: server.url, TUNEKIT_API_KEY: keys.trainer, TUNEKIT_PROJECT: PROJECT });

function tk(args: string[], env = connected()): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [cliMain, ...args], { encoding: 'utf8', env });
}

function ok(args: string[], env?: NodeJS.ProcessEnv): string {
  const r = tk(args, env);
  assert.equal(r.status, 0, `tunekit ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function oneLineError(r: SpawnSyncReturns<string>, message: RegExp): void {
  assert.equal(r.status, 1, `${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /^tunekit: error: [^\n]+\n$/);
  assert.match(r.stderr, message);
}

const idOf = (name: string) => name.slice(name.lastIndexOf('/') + 1);

test('jobs watch with stdout a pipe: one line per change, then the outcome; exit 0 on SUCCEEDED', async () => {
  const out = ok(['jobs', 'watch', idOf(jobA.name), '--interval', '0.2']);
  const lines = out.trimEnd().split('\n');
  const progress = lines.slice(0, -1);
  for (const l of progress) assert.match(l, /^JOB_STATE_(PENDING|RUNNING|SUCCEEDED) step \d+\/\d+( epoch \d+)?( loss \d+\.\d{4})?$/);
  for (let i = 1; i < progress.length; i++) assert.notEqual(progress[i], progress[i - 1], 'a line only when something changed');
  jobA = { ...jobA, ...tkJson(['jobs', 'get', idOf(jobA.name), '--json']) };
  const steps = jobA.tuningDataStats.supervisedTuningDataStats.tuningStepCount;
  const metrics = await api('GET', `${JOBS}/${idOf(jobA.name)}/metrics`);
  const losses = metrics.metrics.find((s: any) => s.name === '/train_total_loss').points;
  const last = losses[losses.length - 1];
  assert.equal(progress[progress.length - 1], `JOB_STATE_SUCCEEDED step ${steps}/${steps} epoch ${last.epoch} loss ${last.value.toFixed(4)}`);
  assert.equal(lines[lines.length - 1], `${jobA.name} SUCCEEDED: model ${jobA.tunedModel.model}, endpoint ${jobA.tunedModel.endpoint}`);
});

function tkJson(args: string[]): Record<string, any> {
  return JSON.parse(ok(args)) as Record<string, any>;
}

test('--json of every read command equals the API\'s answer; tables otherwise', async () => {
  const base = `/v1/projects/${PROJECT}/locations/us-central1`;
  const model = jobA.tunedModel.model.replace(/@\d+$/, '');
  const endpoint = jobA.tunedModel.endpoint;
  assert.deepEqual(tkJson(['jobs', 'list', '--json']), await api('GET', JOBS));
  assert.deepEqual(tkJson(['jobs', 'get', jobA.name, '--json']), await api('GET', `/v1/${jobA.name}`));
  assert.deepEqual(tkJson(['models', 'list', '--json']), await api('GET', `${base}/models`));
  assert.deepEqual(tkJson(['models', 'get', idOf(model), '--json']), await api('GET', `/v1/${model}`));
  assert.deepEqual(tkJson(['models', 'get', `${idOf(model)}@1`, '--json']), await api('GET', `/v1/${model}@1`));
  assert.deepEqual(tkJson(['endpoints', 'list', '--json']), await api('GET', `${base}/endpoints`));
  assert.deepEqual(tkJson(['endpoints', 'get', idOf(endpoint), '--json']), await api('GET', `/v1/${endpoint}`));
  assert.deepEqual(tkJson(['jobs', 'list', '--filter', 'state="JOB_STATE_FAILED"', '--json']), {});

  const list = ok(['jobs', 'list']).split('\n');
  assert.match(list[0]!, /^JOB +STATE +DISPLAY NAME +BASE MODEL +CREATED +ENDED$/);
  assert.match(list[1]!, new RegExp(`^${idOf(jobA.name)} +SUCCEEDED +cli-a +publishers/google/models/gemma3-tiny +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +\\d{4}-`));
  assert.equal(list[0]!.indexOf('STATE'), list[1]!.indexOf('SUCCEEDED'), 'columns aligned');
  const get = ok(['jobs', 'get', idOf(jobA.name)]);
  assert.match(get, new RegExp(`^name: +${jobA.name}$`, 'm'));
  assert.match(get, /^state: +SUCCEEDED$/m);
  assert.match(get, /^CHECKPOINT +EPOCH +STEP\n1 +1 +\d+\n2 +2 +\d+$/m);
  assert.match(ok(['models', 'list']), new RegExp(`^${idOf(model)} +1 +cli-a +publishers/google/models/gemma3-tiny +1 +`, 'm'));
  assert.match(ok(['models', 'get', idOf(model)]), /^VERSION +ALIASES +CREATED +DEPLOYED\n1 +default +\S+ \S+ +1$/m);
  assert.match(ok(['endpoints', 'list']), new RegExp(`^${idOf(endpoint)} +cli-a +${idOf(model)}@1 \\(100%\\)`, 'm'));
});

test('tunekit eval with an endpoint side: --api/--key (here from the environment) and the OpenAI routes', async () => {
  const dataset = path.join(root, 'heldout.jsonl');
  const prompts = ['the sky is red today', 'I love this song', 'meh'];
  fs.writeFileSync(dataset, prompts.map((p) => JSON.stringify({ prompt: p, reference: '{"tone": "warm"}' })).join('\n') + '\n');
  const out = path.join(root, 'eval');
  const endpoint = idOf(jobA.tunedModel.endpoint);
  ok(['eval', '--dataset', dataset, '--candidate', `endpoints/${endpoint}`, '--metrics', 'exact_match', '--max-tokens', '4', '--seed', '3', '--out', out]);
  const results = fs.readFileSync(path.join(out, 'results.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
  assert.equal(results.length, 3);
  for (const [i, r] of results.entries()) {
    // The same request straight to the server's OpenAI route gives the same (greedy) answer.
    const direct = await api('POST', '/v1/chat/completions', { model: jobA.tunedModel.endpoint, messages: [{ role: 'user', content: prompts[i] }], temperature: 0, seed: 3 + i, max_tokens: 4 });
    assert.equal(r.candidate.response, direct.choices[0].message.content);
  }
  assert.match(JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')).config.candidate, new RegExp(`${esc(jobA.tunedModel.endpoint)} at ${esc(server.url)}/v1`));
  oneLineError(tk(['eval', '--dataset', dataset, '--candidate', tinyModelDir('gemma3'), '--metrics', 'exact_match', '--out', out, '--api', server.url]),
    /--api: these apply to tunekit endpoint sides \(endpoints\/ID\), and no side is one/);
});

test('endpoints deploy and undeploy a checkpoint; models delete refused while deployed, then done', async () => {
  const model = jobA.tunedModel.model.replace(/@\d+$/, '');
  const endpoint = idOf(jobA.tunedModel.endpoint);
  const before = await api('GET', `/v1/${jobA.tunedModel.endpoint}`);
  const first = before.deployedModels[0].id as string;

  const out = ok(['endpoints', 'deploy', endpoint, '--model', `${idOf(model)}@1`, '--checkpoint', '1', '--display-name', 'epoch one']);
  const m = /^deployed (\S+) checkpoint 1 on (\S+) as deployed model (\S+)\n$/.exec(out);
  assert.ok(m, out);
  assert.equal(m[1], `${model}@1`);
  assert.equal(m[2], jobA.tunedModel.endpoint);
  const after = await api('GET', `/v1/${jobA.tunedModel.endpoint}`);
  const added = after.deployedModels.find((d: any) => d.id === m[3]);
  assert.deepEqual({ checkpointId: added.checkpointId, traffic: after.trafficSplit[m[3]!] ?? 0 }, { checkpointId: '1', traffic: 0 });
  assert.match(ok(['endpoints', 'get', endpoint]), new RegExp(`^${m[3]} +${model} +1 +1 +0%$`, 'm'));

  oneLineError(tk(['models', 'delete', idOf(model)]), /deployed.*\(400 FAILED_PRECONDITION\)/);

  // The deployed model with all the traffic cannot leave first without a split that gives it away.
  oneLineError(tk(['endpoints', 'undeploy', endpoint, first]), /has 100% of .*traffic.*\(400 FAILED_PRECONDITION\)/);
  assert.equal(ok(['endpoints', 'undeploy', endpoint, first, '--traffic-split', `${m[3]}=100`]), `undeployed ${first} from ${jobA.tunedModel.endpoint}\n`);
  assert.deepEqual((await api('GET', `/v1/${jobA.tunedModel.endpoint}`)).trafficSplit, { [m[3]!]: 100 });
  ok(['endpoints', 'undeploy', endpoint, m[3]!]);
  assert.equal((await api('GET', `/v1/${jobA.tunedModel.endpoint}`)).deployedModels, undefined);

  assert.equal(ok(['models', 'delete', idOf(model)]), `deleted ${model}\n`);
  assert.equal((await api('GET', `/v1/${model}`)).error.code, 404);
  oneLineError(tk(['models', 'get', idOf(model)]), /\(404 NOT_FOUND\): `tunekit models list` shows what exists in projects\/p\/locations\/us-central1$/m);
});

test('jobs cancel while jobs watch follows the job: watch ends with one error line, exit 1', async () => {
  const jobB = await api('POST', JOBS, createBody({ epochs: 100, name: 'cli-b' }));
  assert.equal(jobB.state, 'JOB_STATE_PENDING', JSON.stringify(jobB));
  const watch = spawn(process.execPath, [cliMain, 'jobs', 'watch', idOf(jobB.name), '--interval', '0.1'], { env: connected() });
  let out = '';
  let err = '';
  watch.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((r) => watch.on('close', (code) => r(code)));
  await new Promise<void>((resolve) => watch.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (/JOB_STATE_RUNNING step [1-9]/.test(out)) resolve(); // training has begun
  }));
  assert.equal(ok(['jobs', 'cancel', idOf(jobB.name)]), `cancelling ${jobB.name}\n`);
  assert.equal(await exited, 1, out + err);
  assert.match(out.trimEnd().split('\n').at(-1)!, /^JOB_STATE_CANCELLED step \d+\/\d+/);
  assert.equal(err, `tunekit: error: tuning job ${jobB.name} ended JOB_STATE_CANCELLED: ${(await api('GET', `/v1/${jobB.name}`)).error.message}\n`);
});

test('jobs watch on a terminal draws a progress bar and a loss sparkline (script(1) pseudo-terminal)', (t) => {
  if (spawnSync('script', ['--version']).status !== 0) return t.skip('script(1) is not installed');
  const cmd = [process.execPath, cliMain, 'jobs', 'watch', idOf(jobA.name)].map((a) => `'${a}'`).join(' ');
  const r = spawnSync('script', ['-q', '-e', '-c', cmd, '/dev/null'], { encoding: 'utf8', env: connected() });
  assert.equal(r.status, 0, r.stdout);
  const screen = r.stdout.replace(/\r\n/g, '\n');
  const steps = jobA.tuningDataStats.supervisedTuningDataStats.tuningStepCount;
  // 80 columns (script's pseudo-terminal has no size here): the bar shrinks to leave room for the text.
  assert.match(screen, new RegExp(`\\rjob █{8,24} 100% ${steps}/${steps} SUCCEEDED loss \\d+\\.\\d{4} [▁▂▃▄▅▆▇█]{${Math.min(16, Number(steps))}} in \\d+s\\x1b\\[K`));
  assert.match(screen, new RegExp(`\\n${jobA.name} SUCCEEDED: model `));
  assert.doesNotMatch(screen, /JOB_STATE_SUCCEEDED step/, 'no plain lines on a terminal');
});

test('config precedence: --flag over environment over `tunekit config set`', () => {
  const env = userEnv();
  oneLineError(tk(['jobs', 'list'], env), /no project: give --project NAME, set TUNEKIT_PROJECT, or run `tunekit config set project NAME`/);
  assert.equal(ok(['config', 'set', 'project', PROJECT], env), `set project = ${PROJECT} in ${path.join(configDir, 'properties')}\n`);
  ok(['config', 'set', 'api', down], env);
  ok(['config', 'set', 'core/key', keys.viewer], env);
  assert.equal(fs.statSync(path.join(configDir, 'properties')).mode & 0o777, 0o600);
  assert.equal(fs.readFileSync(path.join(configDir, 'properties'), 'utf8'), `[core]\nproject = ${PROJECT}\napi = ${down}\nkey = ${keys.viewer}\n`);
  // Characters INI reads as comments round-trip (escaped by ini).
  const odd = 'http://127.0.0.1:1/a;b#c';
  ok(['config', 'set', 'api', odd], env);
  assert.equal(ok(['config', 'get', 'api'], env), `${odd}\n`);
  ok(['config', 'set', 'api', down], env);
  assert.equal(ok(['config', 'get', 'key'], env), `${keys.viewer}\n`);
  assert.match(ok(['config', 'list'], env), new RegExp(`^api +${esc(down)} +${esc(configDir)}/properties$`, 'm'));
  assert.match(ok(['config', 'list'], env), /^location +us-central1 +default$/m);
  assert.match(ok(['config', 'list'], env), /^key +tk1\.[0-9a-f]+\.… +/m);

  // The file's api is unreachable; the environment's wins over it, and a flag over both.
  oneLineError(tk(['jobs', 'list'], env), unreachable);
  const withEnv = userEnv({ TUNEKIT_API: server.url });
  assert.match(ok(['jobs', 'list'], withEnv), new RegExp(idOf(jobA.name)));
  assert.match(ok(['config', 'list'], withEnv), new RegExp(`^api +${server.url.replace(/\./g, '\\.')} +\\$TUNEKIT_API$`, 'm'));
  oneLineError(tk(['jobs', 'list', '--api', down], withEnv), unreachable);
  // The viewer key from the file may read but not cancel; the trainer key by flag may.
  oneLineError(tk(['jobs', 'cancel', idOf(jobA.name)], withEnv), /aiplatform\.tuningJobs\.cancel.*\(403 PERMISSION_DENIED\): the key lacks this permission; an administrator can grant a role with `tunekit iam bind`$/m);
  // A project and a key by flag: the file's are not used.
  oneLineError(tk(['jobs', 'list', '--project', 'other'], withEnv), /denied on resource 'projects\/other'/);
  oneLineError(tk(['jobs', 'list', '--key', 'tk1.000000000000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'], withEnv), /\(401 UNAUTHENTICATED\)/);

  ok(['config', 'unset', 'project'], env);
  oneLineError(tk(['jobs', 'list'], withEnv), /no project/);
  assert.equal(ok(['jobs', 'list', '--json'], userEnv({ TUNEKIT_API: server.url, TUNEKIT_PROJECT: PROJECT })).length > 2, true);

  oneLineError(tk(['config', 'set', 'zone', 'x'], env), /unknown property "zone": tunekit config holds project, location, api, key/);
  oneLineError(tk(['config', 'set', 'api', 'localhost:8080'], env), /api must be an http\(s\) URL/);
  fs.appendFileSync(path.join(configDir, 'properties'), 'region = us\n');
  oneLineError(tk(['jobs', 'list'], env), /properties: unknown property "region" in \[core\]/);
  fs.rmSync(path.join(configDir, 'properties'));
});

test('one-line errors: server down, bad key, unknown job, malformed name', () => {
  oneLineError(tk(['jobs', 'get', '1', '--api', down]),
    unreachable);
  oneLineError(tk(['jobs', 'list', '--key', 'tk1.000000000000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']),
    /API key not valid.*\(401 UNAUTHENTICATED\): give a key with --key or TUNEKIT_API_KEY \(`tunekit iam keys create` makes one\)$/m);
  oneLineError(tk(['jobs', 'get', '424242']), /424242.*\(404 NOT_FOUND\): `tunekit jobs list` shows what exists in projects\/p\/locations\/us-central1$/m);
  oneLineError(tk(['jobs', 'watch', '424242']), /\(404 NOT_FOUND\)/);
  oneLineError(tk(['endpoints', 'get', 'nope/x']), /"nope\/x" is not an? endpoint ID: give an ID or projects\/P\/locations\/L\/endpoints\/ID$/m);
  oneLineError(tk(['jobs', 'list', '--location', 'mars-north1']), /mars-north1.*\(400 INVALID_ARGUMENT\)/);
  const usage = tk(['endpoints', 'deploy', '1', '--model', '2', '--traffic-split', '0=150']);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--traffic-split must be ID=PERCENT/);
});

test('jobs watch when the server is killed: one line saying it cannot reach the server, exit 1', async () => {
  const dir = path.join(root, 'data2');
  const key = (await prepareServeDataDir(dir, 24)).trainer;
  const doomed = await startServe(dir);
  const res = await fetch(`${doomed.url}${JOBS}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-goog-api-key': key }, body: JSON.stringify(createBody({ epochs: 100 })) });
  const job = await res.json() as Record<string, any>;
  const watch = spawn(process.execPath, [cliMain, 'jobs', 'watch', idOf(job.name), '--interval', '0.1'],
    { env: userEnv({ TUNEKIT_API: doomed.url, TUNEKIT_API_KEY: key, TUNEKIT_PROJECT: PROJECT }) });
  let out = '';
  let err = '';
  watch.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((r) => watch.on('close', (code) => r(code)));
  await new Promise<void>((resolve) => watch.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    resolve();
  }));
  const workers = childPids(doomed.pid);
  await doomed.kill('SIGKILL');
  for (const pid of workers) process.kill(pid, 'SIGKILL'); // its job worker would stop by itself at its next step
  assert.equal(await exited, 1, out + err);
  assert.match(err, new RegExp(`^tunekit: error: cannot reach ${esc(doomed.url)} \\((ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET|other side closed)\\): is \`tunekit serve\` running there\\? set --api or TUNEKIT_API\\n$`));
});
