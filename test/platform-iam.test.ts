// Identities and access: service accounts, keys stored only as hashes, authentication from either
// header (401 paths), authorization per project with the role table (403 paths naming the permission,
// revealing nothing about other projects), the bootstrap admin key, the insecure principal.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Platform } from '../src/platform/platform.js';
import { SqliteDb } from '../src/platform/db-sqlite.js';
import { ADMIN_EMAIL, INSECURE_PRINCIPAL, hashKey, type Principal } from '../src/platform/iam.js';
import { PERMISSIONS, ROLES } from '../src/platform/roles.js';
import { platformDir, runScript, tempDirs, throwsCode, rejectsCode } from './helpers/platform.js';

const freshDir = tempDirs('platform-iam');
const TRAINER = 'trainer@proj-a.iam.gserviceaccount.com';

async function setup(): Promise<{ p: Platform; key: string }> {
  const p = await Platform.open({ dataDir: freshDir() });
  await p.iam.createServiceAccount('proj-a', 'trainer', { displayName: 'trains' });
  await p.iam.addBinding('proj-a', `serviceAccount:${TRAINER}`, 'roles/aiplatform.user');
  return { p, key: (await p.iam.createKey(TRAINER)).key };
}

test('service accounts: created with an email id, listed, validated, unique, deleted with keys and bindings', async () => {
  const { p } = await setup();
  const sa = await p.iam.getServiceAccount(TRAINER);
  assert.deepEqual({ ...sa, createTime: undefined }, { email: TRAINER, project: 'proj-a', accountId: 'trainer', displayName: 'trains', createTime: undefined });
  assert.deepEqual(await p.iam.getServiceAccount(`serviceAccount:${TRAINER}`), sa);
  assert.deepEqual((await p.iam.listServiceAccounts('proj-a')).map((a) => a.email), [TRAINER]);
  assert.ok(await p.projects.find('proj-a'));
  await rejectsCode(p.iam.createServiceAccount('proj-a', 'trainer'), 'ALREADY_EXISTS', /service account trainer@proj-a\.iam\.gserviceaccount\.com already exists/);
  for (const bad of ['sa', 'Trainer', '1trainer', 'trainer-', 'a'.repeat(31), 'train/er', '../x']) {
    await rejectsCode(p.iam.createServiceAccount('proj-a', bad), 'INVALID_ARGUMENT', /service account name .* is not valid: use 6-30 characters/);
  }
  await rejectsCode(p.iam.createServiceAccount('Bad_Project', 'trainer'), 'INVALID_ARGUMENT', /project id "Bad_Project" is not valid/);
  await rejectsCode(p.iam.getServiceAccount('nobody@proj-a.iam.gserviceaccount.com'), 'NOT_FOUND', /service account nobody@proj-a\.iam\.gserviceaccount\.com does not exist/);
  await rejectsCode(p.iam.getServiceAccount('trainer'), 'INVALID_ARGUMENT', /not a service account email/);
  await p.iam.createKey(TRAINER);
  await p.iam.deleteServiceAccount(TRAINER);
  assert.equal((await p.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM api_keys'))!.n, 0);
  assert.deepEqual(await p.iam.listBindings('proj-a'), []);
  await p.close();
});

test('keys: the secret is returned once; the database and its files never hold it, only a SHA-256 and the key id', async () => {
  const { p, key } = await setup();
  const second = await p.iam.createKey(TRAINER);
  assert.match(key, /^tk1\.[0-9a-f]{24}\.[A-Za-z0-9_-]{43}$/);
  assert.notEqual(key, second.key);
  const listed = await p.iam.listKeys(TRAINER);
  assert.deepEqual(listed.map((k) => k.keyId).sort(), [key.split('.')[1], second.keyId].sort());
  for (const k of listed) assert.deepEqual(Object.keys(k).sort(), ['createTime', 'keyId', 'serviceAccount']);
  const rows = await p.db.all<Record<string, unknown>>('SELECT * FROM api_keys');
  assert.ok(rows.some((r) => r.key_hash === hashKey(key)));
  (p.db as SqliteDb).sqlite.pragma('wal_checkpoint(TRUNCATE)');
  const secret = key.split('.')[2]!;
  for (const f of fs.readdirSync(p.dataDir).filter((x) => x.startsWith('tunekit.db'))) {
    const bytes = fs.readFileSync(path.join(p.dataDir, f));
    assert.equal(bytes.indexOf(secret), -1, `${f} holds the secret`);
    assert.equal(bytes.indexOf(Buffer.from(secret, 'base64url')), -1, `${f} holds the secret's bytes`);
  }
  await p.iam.deleteKey(TRAINER, second.keyId);
  assert.equal((await p.iam.listKeys(TRAINER)).length, 1);
  await rejectsCode(p.iam.deleteKey(TRAINER, second.keyId), 'NOT_FOUND', /key ".*" of service account .* does not exist/);
  await p.close();
});

test('authenticate: x-goog-api-key or Authorization: Bearer, from fetch Headers or node header objects', async () => {
  const { p, key } = await setup();
  const expected: Principal = { id: `serviceAccount:${TRAINER}`, kind: 'serviceAccount', email: TRAINER, keyId: key.split('.')[1] };
  assert.deepEqual(await p.iam.authenticate({ 'x-goog-api-key': key }), expected);
  assert.deepEqual(await p.iam.authenticate({ authorization: `Bearer ${key}` }), expected);
  assert.deepEqual(await p.iam.authenticate({ Authorization: `bearer  ${key}` }), expected);
  assert.deepEqual(await p.iam.authenticate(new Headers({ 'X-Goog-Api-Key': key })), expected);
  assert.deepEqual(await p.iam.authenticate(new Headers({ Authorization: `Bearer ${key}` })), expected);
  assert.deepEqual(await p.iam.authenticate({ 'x-goog-api-key': [key] }), expected);
  assert.ok((await p.iam.listKeys(TRAINER))[0]!.lastUsedTime, 'use is recorded');
  await p.close();
});

test('authenticate: 401 UNAUTHENTICATED without credentials, with a malformed, unknown, tampered or deleted key', async () => {
  const { p, key } = await setup();
  const missing = /^Request is missing required authentication credential\. Expected an API key in the x-goog-api-key header or "Authorization: Bearer <key>"\.$/;
  await rejectsCode(p.iam.authenticate({}), 'UNAUTHENTICATED', missing);
  await rejectsCode(p.iam.authenticate(new Headers()), 'UNAUTHENTICATED', missing);
  await rejectsCode(p.iam.authenticate({ 'x-goog-api-key': '  ' }), 'UNAUTHENTICATED', missing);
  const invalid = /^API key not valid\. Please pass a valid API key\.$/;
  const [, keyId, secret] = key.split('.');
  const tampered = `tk1.${keyId}.${secret!.slice(0, -1)}${secret!.endsWith('A') ? 'B' : 'A'}`;
  const unknown = `tk1.${'0'.repeat(24)}.${secret}`;
  for (const bad of ['any', 'AIzaSyFakeGoogleKey', tampered, unknown, `${key}x`, key.toUpperCase()]) {
    await rejectsCode(p.iam.authenticate({ 'x-goog-api-key': bad }), 'UNAUTHENTICATED', invalid);
    await rejectsCode(p.iam.authenticate({ authorization: `Bearer ${bad}` }), 'UNAUTHENTICATED', invalid);
  }
  await rejectsCode(p.iam.authenticate({ authorization: `Basic ${key}` }), 'UNAUTHENTICATED', /must be "Bearer <key>"/);
  await rejectsCode(p.iam.authenticate({ authorization: 'Bearer' }), 'UNAUTHENTICATED', /must be "Bearer <key>"/);
  await p.iam.deleteKey(TRAINER, keyId!);
  await rejectsCode(p.iam.authenticate({ 'x-goog-api-key': key }), 'UNAUTHENTICATED', invalid);
  await p.close();
});

test('authorize: roles grant their permissions in their project only; 403 names the permission and reveals nothing', async () => {
  const { p, key } = await setup();
  const trainer = await p.iam.authenticate({ 'x-goog-api-key': key });
  for (const perm of ['aiplatform.tuningJobs.create', 'aiplatform.tuningJobs.cancel', 'aiplatform.endpoints.predict', 'aiplatform.models.list']) {
    await p.iam.authorize(trainer, perm, 'proj-a');
  }
  await rejectsCode(p.iam.authorize(trainer, 'storage.objects.get', 'proj-a', 'projects/_/buckets/b/objects/x'), 'PERMISSION_DENIED',
    /^Permission 'storage\.objects\.get' denied on resource 'projects\/_\/buckets\/b\/objects\/x' \(or it may not exist\)\.$/);
  // Another project: the same answer whether or not the project exists.
  await p.projects.create('proj-b');
  const existing = await captureMessage(async () => await p.iam.authorize(trainer, 'aiplatform.tuningJobs.get', 'proj-b'));
  const absent = await captureMessage(async () => await p.iam.authorize(trainer, 'aiplatform.tuningJobs.get', 'proj-zzz'));
  assert.equal(existing, "Permission 'aiplatform.tuningJobs.get' denied on resource 'projects/proj-b' (or it may not exist).");
  assert.equal(absent, existing.replace('proj-b', 'proj-zzz'));

  await p.iam.createServiceAccount('proj-a', 'watcher');
  await p.iam.addBinding('proj-a', 'serviceAccount:watcher@proj-a.iam.gserviceaccount.com', 'roles/aiplatform.viewer');
  const viewer = await p.iam.authenticate({ 'x-goog-api-key': (await p.iam.createKey('watcher@proj-a.iam.gserviceaccount.com')).key });
  await p.iam.authorize(viewer, 'aiplatform.tuningJobs.get', 'proj-a');
  await p.iam.authorize(viewer, 'aiplatform.tuningJobs.list', 'proj-a');
  await rejectsCode(p.iam.authorize(viewer, 'aiplatform.tuningJobs.create', 'proj-a'), 'PERMISSION_DENIED', /'aiplatform\.tuningJobs\.create' denied/);
  await rejectsCode(p.iam.authorize(viewer, 'aiplatform.endpoints.predict', 'proj-a'), 'PERMISSION_DENIED', /'aiplatform\.endpoints\.predict' denied/);

  // A cross-project binding works; removing it takes the access away again.
  await p.iam.addBinding('proj-b', `serviceAccount:${TRAINER}`, 'roles/storage.objectViewer');
  await p.iam.authorize(trainer, 'storage.objects.get', 'proj-b');
  await rejectsCode(p.iam.authorize(trainer, 'storage.objects.create', 'proj-b'), 'PERMISSION_DENIED', /storage\.objects\.create/);
  await p.iam.removeBinding('proj-b', `serviceAccount:${TRAINER}`, 'roles/storage.objectViewer');
  await rejectsCode(p.iam.authorize(trainer, 'storage.objects.get', 'proj-b'), 'PERMISSION_DENIED', /storage\.objects\.get/);
  // A typo in a route's permission is a bug, not a 403.
  await assert.rejects(p.iam.authorize(trainer, 'aiplatform.tuningJob.create', 'proj-a'), (e: unknown) => !(e as { code?: string }).code && /unknown permission/.test(String(e)));
  await p.close();
});

test('bindings: roles and members validated, idempotent, listed per project', async () => {
  const { p } = await setup();
  const member = `serviceAccount:${TRAINER}`;
  await rejectsCode(p.iam.addBinding('proj-a', member, 'roles/aiplatform.admin'), 'INVALID_ARGUMENT', /role "roles\/aiplatform\.admin" is not supported: use one of roles\/owner, /);
  await rejectsCode(p.iam.addBinding('proj-a', TRAINER, 'roles/owner'), 'INVALID_ARGUMENT', /expected serviceAccount:NAME@PROJECT/);
  await rejectsCode(p.iam.addBinding('proj-a', 'user:bob@example.com', 'roles/owner'), 'INVALID_ARGUMENT', /member "user:bob@example\.com" is not valid/);
  await rejectsCode(p.iam.addBinding('proj-a', 'serviceAccount:ghost@proj-a.iam.gserviceaccount.com', 'roles/owner'), 'INVALID_ARGUMENT', /ghost@proj-a\.iam\.gserviceaccount\.com does not exist/);
  await rejectsCode(p.iam.addBinding('../x', member, 'roles/owner'), 'INVALID_ARGUMENT', /project id "\.\.\/x" is not valid/);
  await rejectsCode(p.iam.removeBinding('proj-a', member, 'roles/owner'), 'NOT_FOUND', /no binding of roles\/owner/);
  await p.iam.addBinding('proj-a', member, 'roles/aiplatform.user');
  assert.deepEqual((await p.iam.listBindings('proj-a')).map((b) => [b.project, b.member, b.role]), [['proj-a', member, 'roles/aiplatform.user']]);
  // The table is closed under its own names.
  for (const perms of Object.values(ROLES)) for (const perm of perms) assert.ok((PERMISSIONS as readonly string[]).includes(perm));
  assert.deepEqual([...ROLES['roles/owner']!].sort(), [...PERMISSIONS].sort());
  for (const r of ['roles/aiplatform.user', 'roles/aiplatform.viewer', 'roles/storage.objectAdmin', 'roles/storage.objectViewer', 'roles/serviceusage.serviceUsageConsumer', 'roles/owner']) {
    assert.ok(ROLES[r], r);
  }
  await p.close();
});

test('bootstrap: an owner-everywhere admin key, returned once, also when two instances race', async () => {
  const dir = freshDir();
  const a = await Platform.open({ dataDir: dir });
  const b = await Platform.open({ dataDir: dir });
  const results = [await a.iam.bootstrap(), await b.iam.bootstrap(), await a.iam.bootstrap()];
  const keys = results.filter((k) => k !== undefined);
  assert.equal(keys.length, 1);
  const admin = await a.iam.authenticate({ 'x-goog-api-key': keys[0]!.key });
  assert.equal(admin.email, ADMIN_EMAIL);
  for (const perm of PERMISSIONS) await a.iam.authorize(admin, perm, 'any-project');
  await b.close();
  await a.close();
  const c = await Platform.open({ dataDir: dir });
  assert.equal(await c.iam.bootstrap(), undefined, 'not again after a restart');
  await c.close();
});

test('bootstrap from six processes starting together on a fresh data dir: one key in all', async () => {
  const dir = freshDir();
  const start = Date.now() + 1000;
  const script = `import { Platform } from ${JSON.stringify(path.join(platformDir, 'platform.js'))};
    while (Date.now() < ${start}) {}
    const p = await Platform.open({ dataDir: process.argv[process.argv.length - 1] });
    const k = await p.iam.bootstrap();
    p.close();
    process.stdout.write(k ? k.key : '-');`;
  const runs = await Promise.all(Array.from({ length: 6 }, () => runScript(script, [dir])));
  for (const r of runs) assert.equal(r.code, 0, r.err);
  const keys = runs.map((r) => r.out).filter((o) => o !== '-');
  assert.equal(keys.length, 1);
  const p = await Platform.open({ dataDir: dir });
  assert.equal((await p.iam.authenticate({ authorization: `Bearer ${keys[0]}` })).email, ADMIN_EMAIL);
  assert.equal((await p.iam.listKeys(ADMIN_EMAIL)).length, 1);
  await p.close();
});

test('insecure no-auth: everything allowed, whatever the headers; the principal is refused by a secure Iam', async () => {
  const insecure = await Platform.open({ dataDir: freshDir(), insecureNoAuth: true });
  assert.equal(await insecure.iam.authenticate({}), INSECURE_PRINCIPAL);
  assert.equal(await insecure.iam.authenticate({ 'x-goog-api-key': 'any' }), INSECURE_PRINCIPAL);
  await insecure.iam.authorize(INSECURE_PRINCIPAL, 'aiplatform.tuningJobs.create', 'whatever');
  await insecure.close();
  const { p } = await setup();
  await assert.rejects(p.iam.authorize(INSECURE_PRINCIPAL, 'aiplatform.tuningJobs.get', 'proj-a'), /without insecureNoAuth/);
  await p.close();
});

test('resolveForCaller: 404 for a missing bucket, 403 before any object lookup, then 404 for a missing object', async () => {
  const { p, key } = await setup();
  await p.storage.createBucket('ds-bkt', { location: 'us-central1', project: 'proj-a' });
  await p.storage.putObject('ds-bkt', 'train.jsonl', '{}\n');
  const trainer = await p.iam.authenticate({ 'x-goog-api-key': key });
  await rejectsCode(p.resolveForCaller(trainer, 'gs://nope-bkt/train.jsonl'), 'NOT_FOUND', /bucket gs:\/\/nope-bkt does not exist/);
  await rejectsCode(p.resolveForCaller(trainer, 'gs://ds-bkt/train.jsonl'), 'PERMISSION_DENIED', /'storage\.objects\.get' denied on resource 'projects\/_\/buckets\/ds-bkt\/objects\/train\.jsonl'/);
  await rejectsCode(p.resolveForCaller(trainer, 'gs://ds-bkt/missing.jsonl'), 'PERMISSION_DENIED', /storage\.objects\.get/);
  await p.iam.addBinding('proj-a', `serviceAccount:${TRAINER}`, 'roles/storage.objectViewer');
  const resolved = await p.resolveForCaller(trainer, 'gs://ds-bkt/train.jsonl');
  assert.equal((await p.storage.readObject(resolved.bucket, resolved.name)).toString('utf8'), '{}\n');
  await rejectsCode(p.resolveForCaller(trainer, 'gs://ds-bkt/missing.jsonl'), 'NOT_FOUND', /object gs:\/\/ds-bkt\/missing\.jsonl does not exist/);
  await p.close();
});

async function captureMessage(fn: () => Promise<void>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail('expected a throw');
}
