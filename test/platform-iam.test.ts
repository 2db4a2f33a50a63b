// Identities and access: service accounts, keys stored only as hashes, authentication from either
// header (401 paths), authorization per project with the role table (403 paths naming the permission,
// revealing nothing about other projects), the bootstrap admin key, the insecure principal.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Platform } from '../src/platform/platform.js';
import { ADMIN_EMAIL, INSECURE_PRINCIPAL, hashKey, type Principal } from '../src/platform/iam.js';
import { PERMISSIONS, ROLES } from '../src/platform/roles.js';
import { platformDir, runScript, tempDirs, throwsCode } from './helpers/platform.js';

const freshDir = tempDirs('platform-iam');
const TRAINER = 'trainer@proj-a.iam.gserviceaccount.com';

function setup(): { p: Platform; key: string } {
  const p = Platform.open({ dataDir: freshDir() });
  p.iam.createServiceAccount('proj-a', 'trainer', { displayName: 'trains' });
  p.iam.addBinding('proj-a', `serviceAccount:${TRAINER}`, 'roles/aiplatform.user');
  return { p, key: p.iam.createKey(TRAINER).key };
}

test('service accounts: created with an email id, listed, validated, unique, deleted with keys and bindings', () => {
  const { p } = setup();
  const sa = p.iam.getServiceAccount(TRAINER);
  assert.deepEqual({ ...sa, createTime: undefined }, { email: TRAINER, project: 'proj-a', accountId: 'trainer', displayName: 'trains', createTime: undefined });
  assert.deepEqual(p.iam.getServiceAccount(`serviceAccount:${TRAINER}`), sa);
  assert.deepEqual(p.iam.listServiceAccounts('proj-a').map((a) => a.email), [TRAINER]);
  assert.ok(p.projects.find('proj-a'));
  throwsCode(() => p.iam.createServiceAccount('proj-a', 'trainer'), 'ALREADY_EXISTS', /service account trainer@proj-a\.iam\.gserviceaccount\.com already exists/);
  for (const bad of ['sa', 'Trainer', '1trainer', 'trainer-', 'a'.repeat(31), 'train/er', '../x']) {
    throwsCode(() => p.iam.createServiceAccount('proj-a', bad), 'INVALID_ARGUMENT', /service account name .* is not valid: use 6-30 characters/);
  }
  throwsCode(() => p.iam.createServiceAccount('Bad_Project', 'trainer'), 'INVALID_ARGUMENT', /project id "Bad_Project" is not valid/);
  throwsCode(() => p.iam.getServiceAccount('nobody@proj-a.iam.gserviceaccount.com'), 'NOT_FOUND', /service account nobody@proj-a\.iam\.gserviceaccount\.com does not exist/);
  throwsCode(() => p.iam.getServiceAccount('trainer'), 'INVALID_ARGUMENT', /not a service account email/);
  p.iam.createKey(TRAINER);
  p.iam.deleteServiceAccount(TRAINER);
  assert.equal((p.db.sqlite.prepare('SELECT COUNT(*) AS n FROM api_keys').get() as { n: number }).n, 0);
  assert.deepEqual(p.iam.listBindings('proj-a'), []);
  p.close();
});

test('keys: the secret is returned once; the database and its files never hold it, only a SHA-256 and the key id', () => {
  const { p, key } = setup();
  const second = p.iam.createKey(TRAINER);
  assert.match(key, /^tk1\.[0-9a-f]{24}\.[A-Za-z0-9_-]{43}$/);
  assert.notEqual(key, second.key);
  const listed = p.iam.listKeys(TRAINER);
  assert.deepEqual(listed.map((k) => k.keyId).sort(), [key.split('.')[1], second.keyId].sort());
  for (const k of listed) assert.deepEqual(Object.keys(k).sort(), ['createTime', 'keyId', 'serviceAccount']);
  const rows = p.db.sqlite.prepare('SELECT * FROM api_keys').all() as Record<string, unknown>[];
  assert.ok(rows.some((r) => r.key_hash === hashKey(key)));
  p.db.sqlite.pragma('wal_checkpoint(TRUNCATE)');
  const secret = key.split('.')[2]!;
  for (const f of fs.readdirSync(p.dataDir).filter((x) => x.startsWith('tunekit.db'))) {
    const bytes = fs.readFileSync(path.join(p.dataDir, f));
    assert.equal(bytes.indexOf(secret), -1, `${f} holds the secret`);
    assert.equal(bytes.indexOf(Buffer.from(secret, 'base64url')), -1, `${f} holds the secret's bytes`);
  }
  p.iam.deleteKey(TRAINER, second.keyId);
  assert.equal(p.iam.listKeys(TRAINER).length, 1);
  throwsCode(() => p.iam.deleteKey(TRAINER, second.keyId), 'NOT_FOUND', /key ".*" of service account .* does not exist/);
  p.close();
});

test('authenticate: x-goog-api-key or Authorization: Bearer, from fetch Headers or node header objects', () => {
  const { p, key } = setup();
  const expected: Principal = { id: `serviceAccount:${TRAINER}`, kind: 'serviceAccount', email: TRAINER, keyId: key.split('.')[1] };
  assert.deepEqual(p.iam.authenticate({ 'x-goog-api-key': key }), expected);
  assert.deepEqual(p.iam.authenticate({ authorization: `Bearer ${key}` }), expected);
  assert.deepEqual(p.iam.authenticate({ Authorization: `bearer  ${key}` }), expected);
  assert.deepEqual(p.iam.authenticate(new Headers({ 'X-Goog-Api-Key': key })), expected);
  assert.deepEqual(p.iam.authenticate(new Headers({ Authorization: `Bearer ${key}` })), expected);
  assert.deepEqual(p.iam.authenticate({ 'x-goog-api-key': [key] }), expected);
  assert.ok(p.iam.listKeys(TRAINER)[0]!.lastUsedTime, 'use is recorded');
  p.close();
});

test('authenticate: 401 UNAUTHENTICATED without credentials, with a malformed, unknown, tampered or deleted key', () => {
  const { p, key } = setup();
  const missing = /^Request is missing required authentication credential\. Expected an API key in the x-goog-api-key header or "Authorization: Bearer <key>"\.$/;
  throwsCode(() => p.iam.authenticate({}), 'UNAUTHENTICATED', missing);
  throwsCode(() => p.iam.authenticate(new Headers()), 'UNAUTHENTICATED', missing);
  throwsCode(() => p.iam.authenticate({ 'x-goog-api-key': '  ' }), 'UNAUTHENTICATED', missing);
  const invalid = /^API key not valid\. Please pass a valid API key\.$/;
  const [, keyId, secret] = key.split('.');
  const tampered = `tk1.${keyId}.${secret!.slice(0, -1)}${secret!.endsWith('A') ? 'B' : 'A'}`;
  const unknown = `tk1.${'0'.repeat(24)}.${secret}`;
  for (const bad of ['any', 'AIzaSyFakeGoogleKey', tampered, unknown, `${key}x`, key.toUpperCase()]) {
    throwsCode(() => p.iam.authenticate({ 'x-goog-api-key': bad }), 'UNAUTHENTICATED', invalid);
    throwsCode(() => p.iam.authenticate({ authorization: `Bearer ${bad}` }), 'UNAUTHENTICATED', invalid);
  }
  throwsCode(() => p.iam.authenticate({ authorization: `Basic ${key}` }), 'UNAUTHENTICATED', /must be "Bearer <key>"/);
  throwsCode(() => p.iam.authenticate({ authorization: 'Bearer' }), 'UNAUTHENTICATED', /must be "Bearer <key>"/);
  p.iam.deleteKey(TRAINER, keyId!);
  throwsCode(() => p.iam.authenticate({ 'x-goog-api-key': key }), 'UNAUTHENTICATED', invalid);
  p.close();
});

test('authorize: roles grant their permissions in their project only; 403 names the permission and reveals nothing', () => {
  const { p, key } = setup();
  const trainer = p.iam.authenticate({ 'x-goog-api-key': key });
  for (const perm of ['aiplatform.tuningJobs.create', 'aiplatform.tuningJobs.cancel', 'aiplatform.endpoints.predict', 'aiplatform.models.list']) {
    p.iam.authorize(trainer, perm, 'proj-a');
  }
  throwsCode(() => p.iam.authorize(trainer, 'storage.objects.get', 'proj-a', 'projects/_/buckets/b/objects/x'), 'PERMISSION_DENIED',
    /^Permission 'storage\.objects\.get' denied on resource 'projects\/_\/buckets\/b\/objects\/x' \(or it may not exist\)\.$/);
  // Another project: the same answer whether or not the project exists.
  p.projects.create('proj-b');
  const existing = captureMessage(() => p.iam.authorize(trainer, 'aiplatform.tuningJobs.get', 'proj-b'));
  const absent = captureMessage(() => p.iam.authorize(trainer, 'aiplatform.tuningJobs.get', 'proj-zzz'));
  assert.equal(existing, "Permission 'aiplatform.tuningJobs.get' denied on resource 'projects/proj-b' (or it may not exist).");
  assert.equal(absent, existing.replace('proj-b', 'proj-zzz'));

  p.iam.createServiceAccount('proj-a', 'watcher');
  p.iam.addBinding('proj-a', 'serviceAccount:watcher@proj-a.iam.gserviceaccount.com', 'roles/aiplatform.viewer');
  const viewer = p.iam.authenticate({ 'x-goog-api-key': p.iam.createKey('watcher@proj-a.iam.gserviceaccount.com').key });
  p.iam.authorize(viewer, 'aiplatform.tuningJobs.get', 'proj-a');
  p.iam.authorize(viewer, 'aiplatform.tuningJobs.list', 'proj-a');
  throwsCode(() => p.iam.authorize(viewer, 'aiplatform.tuningJobs.create', 'proj-a'), 'PERMISSION_DENIED', /'aiplatform\.tuningJobs\.create' denied/);
  throwsCode(() => p.iam.authorize(viewer, 'aiplatform.endpoints.predict', 'proj-a'), 'PERMISSION_DENIED', /'aiplatform\.endpoints\.predict' denied/);

  // A cross-project binding works; removing it takes the access away again.
  p.iam.addBinding('proj-b', `serviceAccount:${TRAINER}`, 'roles/storage.objectViewer');
  p.iam.authorize(trainer, 'storage.objects.get', 'proj-b');
  throwsCode(() => p.iam.authorize(trainer, 'storage.objects.create', 'proj-b'), 'PERMISSION_DENIED', /storage\.objects\.create/);
  p.iam.removeBinding('proj-b', `serviceAccount:${TRAINER}`, 'roles/storage.objectViewer');
  throwsCode(() => p.iam.authorize(trainer, 'storage.objects.get', 'proj-b'), 'PERMISSION_DENIED', /storage\.objects\.get/);
  // A typo in a route's permission is a bug, not a 403.
  assert.throws(() => p.iam.authorize(trainer, 'aiplatform.tuningJob.create', 'proj-a'), (e: unknown) => !(e as { code?: string }).code && /unknown permission/.test(String(e)));
  p.close();
});

test('bindings: roles and members validated, idempotent, listed per project', () => {
  const { p } = setup();
  const member = `serviceAccount:${TRAINER}`;
  throwsCode(() => p.iam.addBinding('proj-a', member, 'roles/aiplatform.admin'), 'INVALID_ARGUMENT', /role "roles\/aiplatform\.admin" is not supported: use one of roles\/owner, /);
  throwsCode(() => p.iam.addBinding('proj-a', TRAINER, 'roles/owner'), 'INVALID_ARGUMENT', /expected serviceAccount:NAME@PROJECT/);
  throwsCode(() => p.iam.addBinding('proj-a', 'user:bob@example.com', 'roles/owner'), 'INVALID_ARGUMENT', /member "user:bob@example\.com" is not valid/);
  throwsCode(() => p.iam.addBinding('proj-a', 'serviceAccount:ghost@proj-a.iam.gserviceaccount.com', 'roles/owner'), 'INVALID_ARGUMENT', /ghost@proj-a\.iam\.gserviceaccount\.com does not exist/);
  throwsCode(() => p.iam.addBinding('../x', member, 'roles/owner'), 'INVALID_ARGUMENT', /project id "\.\.\/x" is not valid/);
  throwsCode(() => p.iam.removeBinding('proj-a', member, 'roles/owner'), 'NOT_FOUND', /no binding of roles\/owner/);
  p.iam.addBinding('proj-a', member, 'roles/aiplatform.user');
  assert.deepEqual(p.iam.listBindings('proj-a').map((b) => [b.project, b.member, b.role]), [['proj-a', member, 'roles/aiplatform.user']]);
  // The table is closed under its own names.
  for (const perms of Object.values(ROLES)) for (const perm of perms) assert.ok((PERMISSIONS as readonly string[]).includes(perm));
  assert.deepEqual([...ROLES['roles/owner']!].sort(), [...PERMISSIONS].sort());
  for (const r of ['roles/aiplatform.user', 'roles/aiplatform.viewer', 'roles/storage.objectAdmin', 'roles/storage.objectViewer', 'roles/serviceusage.serviceUsageConsumer', 'roles/owner']) {
    assert.ok(ROLES[r], r);
  }
  p.close();
});

test('bootstrap: an owner-everywhere admin key, returned once, also when two instances race', () => {
  const dir = freshDir();
  const a = Platform.open({ dataDir: dir });
  const b = Platform.open({ dataDir: dir });
  const results = [a.iam.bootstrap(), b.iam.bootstrap(), a.iam.bootstrap()];
  const keys = results.filter((k) => k !== undefined);
  assert.equal(keys.length, 1);
  const admin = a.iam.authenticate({ 'x-goog-api-key': keys[0]!.key });
  assert.equal(admin.email, ADMIN_EMAIL);
  for (const perm of PERMISSIONS) a.iam.authorize(admin, perm, 'any-project');
  b.close();
  a.close();
  const c = Platform.open({ dataDir: dir });
  assert.equal(c.iam.bootstrap(), undefined, 'not again after a restart');
  c.close();
});

test('bootstrap from six processes starting together on a fresh data dir: one key in all', async () => {
  const dir = freshDir();
  const start = Date.now() + 1000;
  const script = `import { Platform } from ${JSON.stringify(path.join(platformDir, 'platform.js'))};
    while (Date.now() < ${start}) {}
    const p = Platform.open({ dataDir: process.argv[process.argv.length - 1] });
    const k = p.iam.bootstrap();
    p.close();
    process.stdout.write(k ? k.key : '-');`;
  const runs = await Promise.all(Array.from({ length: 6 }, () => runScript(script, [dir])));
  for (const r of runs) assert.equal(r.code, 0, r.err);
  const keys = runs.map((r) => r.out).filter((o) => o !== '-');
  assert.equal(keys.length, 1);
  const p = Platform.open({ dataDir: dir });
  assert.equal(p.iam.authenticate({ authorization: `Bearer ${keys[0]}` }).email, ADMIN_EMAIL);
  assert.equal(p.iam.listKeys(ADMIN_EMAIL).length, 1);
  p.close();
});

test('insecure no-auth: everything allowed, whatever the headers; the principal is refused by a secure Iam', () => {
  const insecure = Platform.open({ dataDir: freshDir(), insecureNoAuth: true });
  assert.equal(insecure.iam.authenticate({}), INSECURE_PRINCIPAL);
  assert.equal(insecure.iam.authenticate({ 'x-goog-api-key': 'any' }), INSECURE_PRINCIPAL);
  insecure.iam.authorize(INSECURE_PRINCIPAL, 'aiplatform.tuningJobs.create', 'whatever');
  insecure.close();
  const { p } = setup();
  assert.throws(() => p.iam.authorize(INSECURE_PRINCIPAL, 'aiplatform.tuningJobs.get', 'proj-a'), /without insecureNoAuth/);
  p.close();
});

test('resolveForCaller: 404 for a missing bucket, 403 before any object lookup, then 404 for a missing object', async () => {
  const { p, key } = setup();
  p.storage.createBucket('ds-bkt', { location: 'us-central1', project: 'proj-a' });
  p.storage.putObjectSync('ds-bkt', 'train.jsonl', '{}\n');
  const trainer = p.iam.authenticate({ 'x-goog-api-key': key });
  throwsCode(() => p.resolveForCaller(trainer, 'gs://nope-bkt/train.jsonl'), 'NOT_FOUND', /bucket gs:\/\/nope-bkt does not exist/);
  throwsCode(() => p.resolveForCaller(trainer, 'gs://ds-bkt/train.jsonl'), 'PERMISSION_DENIED', /'storage\.objects\.get' denied on resource 'projects\/_\/buckets\/ds-bkt\/objects\/train\.jsonl'/);
  throwsCode(() => p.resolveForCaller(trainer, 'gs://ds-bkt/missing.jsonl'), 'PERMISSION_DENIED', /storage\.objects\.get/);
  p.iam.addBinding('proj-a', `serviceAccount:${TRAINER}`, 'roles/storage.objectViewer');
  assert.equal(fs.readFileSync(p.resolveForCaller(trainer, 'gs://ds-bkt/train.jsonl').filePath, 'utf8'), '{}\n');
  throwsCode(() => p.resolveForCaller(trainer, 'gs://ds-bkt/missing.jsonl'), 'NOT_FOUND', /object gs:\/\/ds-bkt\/missing\.jsonl does not exist/);
  p.close();
});

function captureMessage(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail('expected a throw');
}
