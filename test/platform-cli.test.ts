// `tunekit storage` and `tunekit iam` as a user runs them: round trips through a data dir, and every
// user error as one line with exit code 1.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Platform } from '../src/platform/platform.js';
import { cliMain, tempDirs } from './helpers/platform.js';

const freshDir = tempDirs('platform-cli');

function cli(dataDir: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [cliMain, ...args, '--data-dir', dataDir], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function userError(r: { code: number | null; out: string; err: string }, message: RegExp): void {
  assert.equal(r.code, 1, `${r.out}${r.err}`);
  assert.match(r.err, /^tunekit: error: [^\n]+\n$/);
  assert.match(r.err, message);
}

test('storage: mb, cp in and out and between buckets, ls, rm', async () => {
  const d = freshDir();
  const local = path.join(freshDir());
  fs.mkdirSync(local, { recursive: true });
  const src = path.join(local, 'train.jsonl');
  fs.writeFileSync(src, '{"contents":[]}\n'.repeat(100));

  let r = cli(d, 'storage', 'mb', 'gs://ds-bucket', '--location', 'us-central1', '--project', 'proj');
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, 'created gs://ds-bucket in us-central1 (project proj)\n');
  r = cli(d, 'storage', 'cp', src, 'gs://ds-bucket/data/');
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, 'copied ' + src + ' to gs://ds-bucket/data/train.jsonl (1600 bytes)\n');
  assert.equal(cli(d, 'storage', 'cp', src, 'gs://ds-bucket/data/sub/val.jsonl').code, 0);
  assert.equal(cli(d, 'storage', 'cp', 'gs://ds-bucket/data/train.jsonl', 'gs://ds-bucket/copy.jsonl').code, 0);

  assert.equal(cli(d, 'storage', 'ls').out, 'gs://ds-bucket/\n');
  assert.equal(cli(d, 'storage', 'ls', 'gs://ds-bucket').out, 'gs://ds-bucket/data/\ngs://ds-bucket/copy.jsonl\n');
  assert.equal(cli(d, 'storage', 'ls', 'gs://ds-bucket/data/').out, 'gs://ds-bucket/data/sub/\ngs://ds-bucket/data/train.jsonl\n');
  // -l: an aligned table; --json: the store's records.
  const long = cli(d, 'storage', 'ls', '-l', 'gs://ds-bucket/data/').out.split('\n');
  assert.match(long[0]!, /^SIZE +UPDATED +GENERATION +URI$/);
  assert.match(long[1]!, /^ +gs:\/\/ds-bucket\/data\/sub\/$/);
  assert.match(long[2]!, /^1600 +\d{4}-\d\d-\d\dT[\d:.]+Z +\d+ +gs:\/\/ds-bucket\/data\/train\.jsonl$/);
  assert.equal(long[1]!.indexOf('gs://'), long[0]!.indexOf('URI'), 'columns aligned');
  assert.equal(long[2]!.indexOf('gs://'), long[0]!.indexOf('URI'));
  const listed = JSON.parse(cli(d, 'storage', 'ls', '--json', 'gs://ds-bucket/data/').out) as { prefixes: string[]; objects: Record<string, unknown>[] };
  assert.deepEqual(listed.prefixes, ['data/sub/']);
  assert.deepEqual(listed.objects.map((x) => [x.bucket, x.name, x.size]), [['ds-bucket', 'data/train.jsonl', 1600]]);
  const store = await Platform.open({ dataDir: d });
  assert.deepEqual(listed.objects, (await store.storage.listObjects('ds-bucket', { prefix: 'data/', delimiter: '/' })).objects);
  assert.deepEqual(JSON.parse(cli(d, 'storage', 'ls', '--json').out), await store.storage.listBuckets());
  await store.close();
  const buckets = cli(d, 'storage', 'ls', '-l').out.split('\n');
  assert.match(buckets[0]!, /^BUCKET +LOCATION +PROJECT +CREATED$/);
  assert.match(buckets[1]!, /^gs:\/\/ds-bucket\/ +us-central1 +proj +\d{4}-/);
  assert.equal(buckets[1]!.indexOf('proj'), buckets[0]!.indexOf('PROJECT'));

  const back = path.join(local, 'back.jsonl');
  r = cli(d, 'storage', 'cp', 'gs://ds-bucket/copy.jsonl', back);
  assert.equal(r.code, 0, r.err);
  assert.ok(fs.readFileSync(back).equals(fs.readFileSync(src)));
  r = cli(d, 'storage', 'cp', 'gs://ds-bucket/data/sub/val.jsonl', local);
  assert.equal(r.code, 0, r.err);
  assert.ok(fs.existsSync(path.join(local, 'val.jsonl')));

  assert.equal(cli(d, 'storage', 'rm', 'gs://ds-bucket/copy.jsonl').code, 0);
  assert.equal(cli(d, 'storage', 'ls', 'gs://ds-bucket').out, 'gs://ds-bucket/data/\n');

  const p = await Platform.open({ dataDir: d });
  assert.equal((await p.storage.getBucket('ds-bucket')).project, 'proj');
  assert.equal((await p.storage.readObject('ds-bucket', 'data/train.jsonl')).toString(), fs.readFileSync(src, 'utf8'));
  await p.close();
});

test('storage: user errors are one line, exit code 1', () => {
  const d = freshDir();
  fs.mkdirSync(d, { recursive: true });
  const src = path.join(d, 'x.jsonl');
  fs.writeFileSync(src, '{}\n');
  assert.equal(cli(d, 'storage', 'mb', 'gs://ok-bucket', '--location', 'europe-west4').code, 0);
  userError(cli(d, 'storage', 'mb', 'gs://ok-bucket', '--location', 'europe-west4'), /bucket gs:\/\/ok-bucket already exists/);
  userError(cli(d, 'storage', 'mb', 'gs://new-bucket', '--location', 'mars-north1'), /"mars-north1" is not supported.*us-central1, europe-west4/);
  userError(cli(d, 'storage', 'mb', 'gs://Bad_Bucket', '--location', 'us-central1'), /bucket name "Bad_Bucket" is not valid/);
  userError(cli(d, 'storage', 'cp', src, 'gs://ok-bucket/../../escape'), /"\." and "\.\." segments are not allowed/);
  userError(cli(d, 'storage', 'cp', src, 'gs://ok-bucket/%2e%2e/escape'), /segments are not allowed/);
  userError(cli(d, 'storage', 'cp', src, 'gs://missing-bucket/x'), /bucket gs:\/\/missing-bucket does not exist/);
  userError(cli(d, 'storage', 'cp', path.join(d, 'nope.jsonl'), 'gs://ok-bucket/x'), /local file .*nope\.jsonl does not exist/);
  userError(cli(d, 'storage', 'cp', 'gs://ok-bucket/absent', path.join(d, 'out')), /object gs:\/\/ok-bucket\/absent does not exist/);
  userError(cli(d, 'storage', 'cp', src, path.join(d, 'y')), /one of source and destination must be a gs:\/\/ URI/);
  assert.equal(cli(d, 'storage', 'cp', src, 'gs://ok-bucket/x.jsonl').code, 0);
  userError(cli(d, 'storage', 'cp', 'gs://ok-bucket/x.jsonl', path.join(d, 'no-dir', 'x.jsonl')), /local directory .*no-dir does not exist/);
  userError(cli(d, 'storage', 'cp', d, 'gs://ok-bucket/dir'), /is not a regular file/);
  userError(cli(d, 'storage', 'ls', 'gs://missing-bucket'), /bucket gs:\/\/missing-bucket does not exist/);
  userError(cli(d, 'storage', 'rm', 'gs://ok-bucket/absent'), /does not exist/);
  assert.ok(!fs.existsSync(path.join(path.dirname(d), 'escape')));
});

test('iam: sa create, keys create/list/delete, bind, bindings; the printed key authenticates and is not stored', async () => {
  const d = freshDir();
  let r = cli(d, 'iam', 'sa', 'create', 'trainer', '--project', 'proj', '--display-name', 'the trainer');
  assert.equal(r.code, 0, r.err);
  const email = 'trainer@proj.iam.gserviceaccount.com';
  assert.equal(r.out, `${email}\n`);
  assert.match(cli(d, 'iam', 'sa', 'list', '--project', 'proj').out, /^EMAIL +CREATED +DISPLAY NAME\ntrainer@proj\.iam\.gserviceaccount\.com +\S+ +the trainer\n$/);
  const accounts = JSON.parse(cli(d, 'iam', 'sa', 'list', '--project', 'proj', '--json').out) as Record<string, unknown>[];
  assert.deepEqual(accounts.map((a) => [a.email, a.project, a.accountId, a.displayName]), [[email, 'proj', 'trainer', 'the trainer']]);
  assert.equal(cli(d, 'iam', 'sa', 'list', '--project', 'nobody').out, 'no service accounts in project nobody\n');
  r = cli(d, 'iam', 'keys', 'create', email);
  assert.equal(r.code, 0, r.err);
  const key = r.out.trim();
  assert.match(key, /^tk1\.[0-9a-f]{24}\.[A-Za-z0-9_-]{43}$/);
  assert.match(r.err, /will not be shown again/);
  const keyId = key.split('.')[1]!;
  assert.match(cli(d, 'iam', 'keys', 'list', email).out, new RegExp(`^KEY ID +CREATED +LAST USED\\n${keyId} +\\S+ +never used\\n$`));
  const keyRecords = JSON.parse(cli(d, 'iam', 'keys', 'list', email, '--json').out) as Record<string, unknown>[];
  assert.deepEqual(keyRecords.map((k) => [k.keyId, k.serviceAccount]), [[keyId, email]]);
  assert.ok(!JSON.stringify(keyRecords).includes(key.split('.')[2]!), 'never the secret');
  r = cli(d, 'iam', 'bind', '--project', 'proj', '--member', `serviceAccount:${email}`, '--role', 'roles/aiplatform.user');
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, `bound roles/aiplatform.user to serviceAccount:${email} in project proj\n`);
  const bound = cli(d, 'iam', 'bindings', '--project', 'proj').out.split('\n');
  assert.match(bound[0]!, /^PROJECT +MEMBER +ROLE +CREATED$/);
  assert.match(bound[1]!, new RegExp(`^proj +serviceAccount:${email.replace(/\./g, '\\.')} +roles/aiplatform\\.user +\\d{4}-`));
  assert.equal(bound[1]!.indexOf('roles/'), bound[0]!.indexOf('ROLE'));
  assert.deepEqual((JSON.parse(cli(d, 'iam', 'bindings', '--project', 'proj', '--json').out) as Record<string, unknown>[]).map((b) => [b.project, b.member, b.role]),
    [['proj', `serviceAccount:${email}`, 'roles/aiplatform.user']]);

  const p = await Platform.open({ dataDir: d });
  const principal = await p.iam.authenticate({ 'x-goog-api-key': key });
  await p.iam.authorize(principal, 'aiplatform.tuningJobs.create', 'proj');
  await p.close();
  for (const f of fs.readdirSync(d).filter((x) => x.startsWith('tunekit.db'))) {
    assert.equal(fs.readFileSync(path.join(d, f)).indexOf(key.split('.')[2]!), -1);
  }

  assert.equal(cli(d, 'iam', 'keys', 'delete', email, keyId).code, 0);
  assert.equal(cli(d, 'iam', 'keys', 'list', email).out, `no keys for ${email}\n`);
  assert.equal(cli(d, 'iam', 'keys', 'list', email, '--json').out, '[]\n');
  userError(cli(d, 'iam', 'sa', 'create', 'trainer', '--project', 'proj'), /already exists/);
  userError(cli(d, 'iam', 'sa', 'create', 'x', '--project', 'proj'), /service account name "x" is not valid/);
  userError(cli(d, 'iam', 'keys', 'create', 'ghosts@proj.iam.gserviceaccount.com'), /service account ghosts@proj\.iam\.gserviceaccount\.com does not exist/);
  userError(cli(d, 'iam', 'keys', 'list', 'not-an-email'), /not a service account email/);
  userError(cli(d, 'iam', 'bind', '--project', 'proj', '--member', `serviceAccount:${email}`, '--role', 'roles/editor'), /role "roles\/editor" is not supported/);
  userError(cli(d, 'iam', 'bind', '--project', 'proj', '--member', email, '--role', 'roles/owner'), /expected serviceAccount:/);
  userError(cli(d, 'iam', 'keys', 'delete', email, 'abc'), /key "abc" of service account .* does not exist/);
});
