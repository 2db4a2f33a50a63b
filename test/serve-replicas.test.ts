// Serving replicas (issue 15): three `tunekit serve --database` processes on one PostgreSQL database
// and one shared directory, a `tunekit worker` beside them, driven with the official @google/genai SDK
// and the REST API. What one replica changes, every other honours on its next request (no replica
// caches endpoints, deployed models, traffic splits, keys, bindings or quotas: the bound is zero);
// operations made on one are read on another; the concurrent-jobs quota holds across replicas; the
// periodic work (sweeps of the shared directory, the queue's reconciliation) runs on one replica, and
// moves to another when that one is SIGKILLed in the middle of streaming an answer, leaving no lock,
// no stuck operation and no upload session behind (a chunk it was writing is taken over by another).
// Needs PostgreSQL's binaries (Debian's postgresql); skipped with a message without them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GoogleGenAI, JobState } from '@google/genai';
import { Platform } from '../src/platform/platform.js';
import { DbRegistrationStore } from '../src/api/db-store.js';
import { registerPublisherModel } from '../src/api/catalog.js';
import { createDatabase, postgresMissing, startPostgres } from './helpers/postgres.js';
import { cliMain } from './helpers/platform.js';
import { startServe, type ServeProcess } from './helpers/serve.js';
import { makeKeys, PROJECT, seedData } from './helpers/tuning.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import { sleep, until } from './helpers/until.js';

const LOC = `projects/${PROJECT}/locations/us-central1`;
const LEADS = /this replica runs the periodic work/;
const SWEPT = /swept the shared storage: (\d+) leftovers? of interrupted work removed/g;

test('three serve replicas on one database answer as one service', { skip: postgresMissing() }, async (t) => {
  const server = startPostgres();
  const database = await createDatabase(server.url);
  const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-replicas-'));
  const platform = await Platform.open({ dataDir: shared, database });
  const replicas: ServeProcess[] = [];
  let worker: ChildProcess | undefined;
  let workerLog = '';
  try {
    await registerPublisherModel(new DbRegistrationStore(platform.db), tinyModelDir('gemma3'), { name: 'gemma3-tiny' });
    await seedData(platform);
    const keys = await makeKeys(platform);

    // Leftovers in the shared directory: an upload's temporary file and a job create's staged datasets,
    // marked by a process that is gone; and a temporary file of a live process (this one's), which stays.
    const dead = 4242;
    assert.equal(await platform.db.ownerGone(dead, () => 0), true, 'no process holds that mark');
    const bucketDir = path.join(shared, 'objects', 'us-data');
    const deadTmp = path.join(bucketDir, `.tmp-${dead}-${'a'.repeat(32)}`);
    const liveTmp = path.join(bucketDir, `.tmp-${platform.db.owner}-${'b'.repeat(32)}`);
    const deadStage = path.join(shared, 'staging', 'uploads', `${dead}-0123456789abcdef`);
    fs.writeFileSync(deadTmp, 'left by a killed upload');
    fs.writeFileSync(liveTmp, 'an upload in progress on another machine');
    fs.mkdirSync(deadStage, { recursive: true });
    fs.writeFileSync(path.join(deadStage, 'train.jsonl'), '{}\n');
    // (Left an hour ago: a file touched in the last minute is kept, its process may be reconnecting.)
    const anHourAgo = Date.now() / 1000 - 3600;
    for (const f of [deadTmp, liveTmp, deadStage]) fs.utimesSync(f, anHourAgo, anHourAgo);

    const args = ['--database', database, '--job-heartbeat-seconds', '10'];
    replicas.push(...await Promise.all([0, 1, 2].map(() => startServe(shared, {}, args))));
    const [a, b, c] = replicas as [ServeProcess, ServeProcess, ServeProcess];
    assert.equal(replicas.filter((r) => /bootstrap admin key/.test(r.stdout)).length, 1, 'the first start of the deployment prints its admin key once');
    const leaders = (): ServeProcess[] => replicas.filter((r) => LEADS.test(r.stderr));
    const sweeps = (): number => replicas.reduce((n, r) => n + [...r.stderr.matchAll(SWEPT)].length, 0);
    const first = await until('a replica to take the periodic work', () => leaders().length > 0 ? leaders() : undefined);
    await until('its sweep', () => sweeps() > 0 || undefined);
    assert.equal(first.length, 1, 'one replica runs the periodic work');
    assert.match(first[0]!.stderr, /swept the shared storage: 2 leftovers of interrupted work removed/);
    assert.equal(fs.existsSync(deadTmp), false);
    assert.equal(fs.existsSync(deadStage), false);
    assert.equal(fs.existsSync(liveTmp), true, 'a live process\'s temporary file stays');
    fs.rmSync(liveTmp);

    worker = spawn(process.execPath, [cliMain, 'worker', '--database', database, '--storage', shared], { stdio: ['ignore', 'pipe', 'pipe'] });
    worker.stdout!.on('data', (d: Buffer) => { workerLog += d.toString(); });
    worker.stderr!.on('data', (d: Buffer) => { workerLog += d.toString(); });

    const ai = (r: ServeProcess, key = keys.trainer) =>
      new GoogleGenAI({ vertexai: true, project: PROJECT, location: 'us-central1', apiKey: key, httpOptions: { baseUrl: r.url } });
    const rest = async (r: ServeProcess, method: string, url: string, body?: unknown, key = keys.trainer) => {
      const res = await fetch(`${r.url}/v1/${url}`, {
        method, headers: { 'content-type': 'application/json', 'x-goog-api-key': key }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, json: await res.json() as Record<string, any> };
    };
    const config = { temperature: 0, maxOutputTokens: 12 };
    const say = async (r: ServeProcess, model: string) => (await ai(r).models.generateContent({ model, contents: 'Format: 12', config })).text;

    // A tuning job created through A, followed through B: it ends deployed on an endpoint of its own.
    let job = await ai(a).tunings.tune({
      baseModel: 'gemma3-tiny', trainingDataset: { gcsUri: 'gs://us-data/train.jsonl' },
      config: { tunedModelDisplayName: 'replicas', epochCount: 2, learningRateMultiplier: 5 },
    });
    for (const t0 = Date.now(); [JobState.JOB_STATE_PENDING, JobState.JOB_STATE_RUNNING, JobState.JOB_STATE_QUEUED].includes(job.state!);) {
      assert.ok(Date.now() - t0 < 90_000, `the job ends: ${JSON.stringify(job)}\n${workerLog}`);
      await sleep(200);
      job = await ai(b).tunings.get({ name: job.name! });
    }
    assert.equal(job.state, JobState.JOB_STATE_SUCCEEDED, `${JSON.stringify(job.error)}\n${workerLog}`);
    const endpoint1 = job.tunedModel!.endpoint!;
    const model = job.tunedModel!.model!;
    // Generated through B and C: the same model, the same answer.
    const answer = await say(b, endpoint1);
    assert.ok(answer, 'the tuned model answers');
    assert.equal(await say(c, endpoint1), answer);

    // A deploy made through A is served at once by C; its operation is read through B.
    const created = await rest(a, 'POST', `${LOC}/endpoints`, { displayName: 'second' });
    assert.equal(created.status, 200, JSON.stringify(created.json));
    const endpoint2 = created.json.response.name as string;
    const deploy = await rest(a, 'POST', `${endpoint2}:deployModel`, { deployedModel: { model } });
    assert.equal(deploy.status, 200, JSON.stringify(deploy.json));
    const op = await rest(b, 'GET', deploy.json.name);
    assert.equal(op.status, 200, JSON.stringify(op.json));
    assert.equal(op.json.done, true);
    assert.deepEqual(op.json.response, deploy.json.response);
    const deployedId = deploy.json.response.deployedModel.id as string;
    assert.equal(await say(c, endpoint2), answer, 'served by C right after A deployed it');
    // A traffic split set through C (the second endpoint's only model at 100%) is read through A.
    const patched = await rest(c, 'PATCH', `${endpoint2}?updateMask=traffic_split`, { trafficSplit: { [deployedId]: 100 } });
    assert.equal(patched.status, 200, JSON.stringify(patched.json));
    assert.deepEqual((await rest(a, 'GET', endpoint2)).json.trafficSplit, { [deployedId]: 100 });

    // Undeployed through B: A and C refuse the endpoint on their next request.
    const undeploy = await rest(b, 'POST', `${endpoint2}:undeployModel`, { deployedModelId: deployedId });
    assert.equal(undeploy.status, 200, JSON.stringify(undeploy.json));
    for (const r of [a, c]) {
      await assert.rejects(say(r, endpoint2), (err: Error) => /has no deployed model/.test(err.message) && /400/.test(err.message));
    }

    // A binding removed (the `tunekit iam` CLI writes the database): every replica refuses the key at once.
    const trainer = `serviceAccount:trainer@${PROJECT}.iam.gserviceaccount.com`;
    await platform.iam.removeBinding(PROJECT, trainer, 'roles/aiplatform.user');
    for (const r of replicas) assert.equal((await rest(r, 'GET', `${LOC}/endpoints`)).status, 403);
    await platform.iam.addBinding(PROJECT, trainer, 'roles/aiplatform.user');
    for (const r of replicas) assert.equal((await rest(r, 'GET', `${LOC}/endpoints`)).status, 200);

    // The concurrent-jobs quota across replicas (the worker stopped, so created jobs stay PENDING):
    // limit 1, one create through each replica at once: one job. Limit raised to 2: one more, then none.
    worker.kill('SIGTERM');
    await new Promise((r) => worker!.once('exit', r));
    const createJob = (r: ServeProcess) => rest(r, 'POST', `${LOC}/tuningJobs`, {
      baseModel: 'gemma3-tiny', supervisedTuningSpec: { trainingDatasetUri: 'gs://us-data/train.jsonl', hyperParameters: { epochCount: 1 } },
    });
    const round1 = await Promise.all(replicas.map(createJob));
    assert.deepEqual(round1.map((x) => x.status).sort(), [200, 429, 429], JSON.stringify(round1.map((x) => x.json)));
    assert.match(round1.find((x) => x.status === 429)!.json.error.message, /Quota exceeded for quota "concurrent tuning jobs".*limit 1, 1 in use/);
    await platform.config.setQuotaLimit('concurrent_tuning_jobs', 2);
    const round2 = await Promise.all(replicas.map(createJob));
    assert.deepEqual(round2.map((x) => x.status).sort(), [200, 429, 429], JSON.stringify(round2.map((x) => x.json)));
    // Cancelled through another replica than the one that created them.
    for (const x of [...round1, ...round2].filter((y) => y.status === 200)) {
      const cancel = await rest(c, 'POST', `${x.json.name}:cancel`, {});
      assert.equal(cancel.status, 200, JSON.stringify(cancel.json));
      assert.equal((await rest(a, 'GET', x.json.name)).json.state, 'JOB_STATE_CANCELLED');
    }

    // The replica running the periodic work is SIGKILLed while it streams an answer and holds half of a
    // resumable upload.
    const victim = first[0]!;
    const survivors = replicas.filter((r) => r !== victim);
    const upload = await fetch(`${victim.url}/upload/storage/v1/b/us-data/o?uploadType=resumable&name=half.bin`, {
      method: 'POST', headers: { 'x-goog-api-key': keys.trainer, 'content-type': 'application/json' }, body: '{}',
    });
    assert.equal(upload.status, 200);
    const session = new URL(upload.headers.get('location')!);
    const bytes = Buffer.alloc(512 * 1024, 7);
    const sessionAt = (r: ServeProcess) => `${r.url}${session.pathname}${session.search}`;
    const half = await fetch(sessionAt(victim), {
      method: 'PUT', headers: { 'content-range': `bytes 0-${256 * 1024 - 1}/*` }, body: bytes.subarray(0, 256 * 1024),
    });
    assert.equal(half.status, 308);
    // The next chunk is being written on the victim (64 KiB sent, the rest never comes): another
    // replica refuses a chunk of the same session meanwhile, rather than interleave the two.
    const uploadId = session.searchParams.get('upload_id')!;
    const hanging = fetch(sessionAt(victim), {
      method: 'PUT', headers: { 'content-range': `bytes ${256 * 1024}-${bytes.length - 1}/*` }, duplex: 'half',
      body: new ReadableStream({ start: (ctl) => ctl.enqueue(bytes.subarray(256 * 1024, 320 * 1024)) }),
    } as RequestInit).catch((err: unknown) => err);
    await until('the victim to write the chunk', async () =>
      (await platform.db.get<{ writer: number | null }>('SELECT writer FROM resumable_uploads WHERE id = ?', uploadId))?.writer ?? undefined);
    const busy = await fetch(sessionAt(survivors[0]!), {
      method: 'PUT', headers: { 'content-range': `bytes ${256 * 1024}-${bytes.length - 1}/${bytes.length}` }, body: bytes.subarray(256 * 1024),
    });
    assert.equal(busy.status, 503);
    assert.match(((await busy.json()) as { error: { message: string } }).error.message, /another request is writing a chunk of resumable upload/);
    // (Its body is read and dropped before the answer: the next request to that replica, below, goes
    // over the same connection instead of failing with "other side closed".)
    const stream = await ai(victim).models.generateContentStream({
      model: 'publishers/google/models/gemma3-tiny', contents: 'Tell me a long story', config: { temperature: 1, seed: 1, maxOutputTokens: 1500 },
    });
    let chunks = 0;
    let killedAt = 0;
    await assert.rejects(async () => {
      for await (const _ of stream) {
        if (++chunks > 1) continue;
        killedAt = Date.now();
        await victim.kill('SIGKILL');
      }
    }, 'the stream breaks off: the replica died in the middle of it');
    assert.equal(chunks >= 1, true);

    // The others answer; the periodic work moves to one of them; a deploy (the write lock) goes through;
    // the upload continues on another replica from the bytes the dead one had received.
    for (const r of survivors) assert.equal(await say(r, endpoint1), answer);
    const next = await until('another replica to take the periodic work', () => {
      const l = survivors.filter((r) => LEADS.test(r.stderr));
      return l.length ? l : undefined;
    }, 30_000);
    assert.equal(next.length, 1);
    t.diagnostic(`periodic work taken over by another replica ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the SIGKILL (bound: 10 s)`);
    const redeploy = await rest(next[0]!, 'POST', `${endpoint2}:deployModel`, { deployedModel: { model } });
    assert.equal(redeploy.status, 200, JSON.stringify(redeploy.json));
    assert.equal(redeploy.json.done, true);
    const other = survivors.find((r) => r !== next[0])!;
    assert.equal(await say(other, endpoint2), answer);
    assert.ok(await hanging instanceof Error, 'the chunk in flight died with the victim');
    const status = await fetch(sessionAt(other), { method: 'PUT', headers: { 'content-range': 'bytes */*' } });
    assert.equal(status.status, 308);
    assert.equal(status.headers.get('range'), `bytes=0-${256 * 1024 - 1}`, 'the unsynced bytes of the killed chunk do not count');
    const rest2 = await fetch(sessionAt(other), {
      method: 'PUT', headers: { 'content-range': `bytes ${256 * 1024}-${bytes.length - 1}/${bytes.length}` }, body: bytes.subarray(256 * 1024),
    });
    assert.equal(rest2.status, 200, await rest2.text());
    assert.deepEqual(await platform.storage.readObject('us-data', 'half.bin'), bytes);

    // What the database holds afterwards: no operation left undone, one holder of the maintenance lock,
    // no advisory lock waited for, and one sweep per replica that took the periodic work.
    assert.deepEqual(await platform.db.all('SELECT id FROM operations WHERE done = 0'), []);
    const locks = await platform.db.all<{ objid: number; granted: boolean }>(
      "SELECT objid, granted FROM pg_locks WHERE locktype = 'advisory' AND classid = 29803 AND objsubid = 2 AND objid = 0");
    assert.deepEqual(locks, [{ objid: 0, granted: true }]);
    assert.deepEqual(await platform.db.all("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"), []);
    assert.equal(sweeps(), 2, replicas.map((r) => r.stderr).join('\n---\n'));
  } finally {
    worker?.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
    await platform.close();
    server.stop();
    fs.rmSync(shared, { recursive: true, force: true });
  }
});
