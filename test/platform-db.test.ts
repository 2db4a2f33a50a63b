// The platform database: WAL, migrations applied once and in order (also when several processes open a
// fresh data dir together), a newer schema refused, settings and quota limits, location checks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PlatformDb, appliedMigrations, newNumericId } from '../src/platform/db.js';
import { MIGRATIONS } from '../src/platform/migrations.js';
import { PlatformConfig, assertLocation, DEFAULT_LOCATIONS } from '../src/platform/config.js';
import { platformDir, runScript, tempDirs, throwsCode } from './helpers/platform.js';

const freshDir = tempDirs('platform-db');

const TABLES = [
  'api_keys', 'base_models', 'buckets', 'config', 'deployed_models', 'endpoints', 'job_metrics', 'model_versions', 'models',
  'objects', 'operations', 'projects', 'quotas', 'resumable_uploads', 'role_bindings', 'schema_migrations', 'service_accounts', 'tuning_jobs',
];

test('a fresh data dir gets every table, WAL mode, foreign keys and one schema_migrations row per migration', () => {
  const db = PlatformDb.open(freshDir());
  try {
    const tables = (db.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    assert.deepEqual(tables, TABLES);
    assert.equal(db.sqlite.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.sqlite.pragma('foreign_keys', { simple: true }), 1);
    assert.ok((db.sqlite.pragma('busy_timeout', { simple: true }) as number) >= 1000);
    assert.deepEqual(appliedMigrations(db).map((m) => m.version), MIGRATIONS.map((m) => m.version));
    assert.equal(fs.statSync(path.join(db.dataDir, 'tunekit.db')).mode & 0o777, 0o600);
  } finally {
    db.close();
  }
});

test('reopening applies nothing twice and keeps the data; a later migration is applied on the next open', () => {
  const dir = freshDir();
  const first = PlatformDb.open(dir, { migrations: MIGRATIONS.slice(0, 1) });
  first.sqlite.prepare("INSERT INTO projects (id, create_time) VALUES ('p1', '2026-01-01T00:00:00.000Z')").run();
  const firstApplied = appliedMigrations(first);
  first.close();
  assert.deepEqual(firstApplied.map((m) => m.version), [1]);

  for (let i = 0; i < 3; i++) {
    const db = PlatformDb.open(dir);
    const applied = appliedMigrations(db);
    assert.deepEqual(applied.map((m) => m.version), MIGRATIONS.map((m) => m.version));
    assert.equal(applied[0]!.appliedTime, firstApplied[0]!.appliedTime, 'migration 1 is not re-run');
    assert.equal((db.sqlite.prepare('SELECT COUNT(*) AS n FROM projects').get() as { n: number }).n, 1);
    db.close();
  }
});

test('a data dir written by a newer tunekit is refused (FAILED_PRECONDITION), and a failed migration rolls back', () => {
  const dir = freshDir();
  PlatformDb.open(dir).close();
  throwsCode(() => PlatformDb.open(dir, { migrations: MIGRATIONS.slice(0, 1) }), 'FAILED_PRECONDITION', new RegExp(`schema version ${MIGRATIONS.length}, newer than this tunekit knows \\(1\\)`));

  const broken = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'broken', sql: 'CREATE TABLE t3 (x); INSERT INTO nowhere VALUES (1);' }];
  assert.throws(() => PlatformDb.open(dir, { migrations: broken }), /no such table: nowhere/);
  const db = PlatformDb.open(dir);
  assert.deepEqual(appliedMigrations(db).map((m) => m.version), MIGRATIONS.map((m) => m.version));
  assert.equal(db.sqlite.prepare("SELECT name FROM sqlite_master WHERE name = 't3'").get(), undefined);
  db.close();
});

test('migration versions must be 1, 2, 3, ... without gaps', () => {
  assert.throws(() => PlatformDb.open(freshDir(), { migrations: [{ version: 2, name: 'x', sql: '' }] }), /expected 1/);
});

test('six processes opening one fresh data dir at once migrate it exactly once', async () => {
  const dir = freshDir();
  const script = `import { PlatformDb, appliedMigrations } from ${JSON.stringify(path.join(platformDir, 'db.js'))};
    const db = PlatformDb.open(process.argv[process.argv.length - 1]);
    process.stdout.write(JSON.stringify(appliedMigrations(db).map((m) => m.version)));
    db.close();`;
  const results = await Promise.all(Array.from({ length: 6 }, () => runScript(script, [dir])));
  for (const r of results) {
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out), MIGRATIONS.map((m) => m.version));
  }
  const db = PlatformDb.open(dir);
  assert.equal((db.sqlite.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get() as { n: number }).n, MIGRATIONS.length);
  db.close();
});

test('immediate rolls back on throw and commits on return', () => {
  const db = PlatformDb.open(freshDir());
  assert.throws(() => db.immediate(() => {
    db.sqlite.prepare("INSERT INTO projects (id, create_time) VALUES ('gone', 't')").run();
    throw new Error('boom');
  }), /boom/);
  assert.equal(db.sqlite.prepare("SELECT 1 FROM projects WHERE id = 'gone'").get(), undefined);
  assert.equal(db.immediate(() => db.sqlite.prepare("INSERT INTO projects (id, create_time) VALUES ('kept', 't')").run().changes), 1);
  assert.ok(db.sqlite.prepare("SELECT 1 FROM projects WHERE id = 'kept'").get());
  db.close();
});

test('numeric ids are 19 digits without a leading zero, and distinct', () => {
  const ids = new Set(Array.from({ length: 1000 }, newNumericId));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.match(id, /^[1-9]\d{18}$/);
});

test('locations: defaults, stored list, per-process override; unsupported ones are INVALID_ARGUMENT naming the supported', () => {
  assert.deepEqual(DEFAULT_LOCATIONS, ['us-central1', 'europe-west4']);
  assertLocation('us-central1');
  throwsCode(() => assertLocation('asia-east1'), 'INVALID_ARGUMENT', /"asia-east1" is not supported.*Supported locations: us-central1, europe-west4\./);

  const db = PlatformDb.open(freshDir());
  const config = new PlatformConfig(db);
  assert.deepEqual(config.locations(), ['us-central1', 'europe-west4']);
  config.setLocations(['us-central1', 'asia-east1']);
  config.assertLocation('asia-east1');
  throwsCode(() => config.assertLocation('europe-west4'), 'INVALID_ARGUMENT', /Supported locations: us-central1, asia-east1\./);
  throwsCode(() => config.setLocations([]), 'INVALID_ARGUMENT', /at least one location/);
  throwsCode(() => config.setLocations(['../etc']), 'INVALID_ARGUMENT', /not a valid location name/);
  const override = new PlatformConfig(db, { locations: ['europe-west4'] });
  assert.deepEqual(override.locations(), ['europe-west4']);
  assert.deepEqual(new PlatformConfig(db).locations(), ['us-central1', 'asia-east1'], 'the override is not stored');
  db.close();
});

test('quota limits: built-in default 1, then the most specific stored row wins', () => {
  const db = PlatformDb.open(freshDir());
  const config = new PlatformConfig(db);
  const limit = (p: string, l: string) => config.quotaLimit('concurrent_tuning_jobs', p, l);
  assert.equal(limit('p', 'us-central1'), 1);
  config.setQuotaLimit('concurrent_tuning_jobs', 4);
  assert.equal(limit('p', 'us-central1'), 4);
  config.setQuotaLimit('concurrent_tuning_jobs', 3, { location: 'us-central1' });
  config.setQuotaLimit('concurrent_tuning_jobs', 2, { project: 'p' });
  config.setQuotaLimit('concurrent_tuning_jobs', 0, { project: 'p', location: 'europe-west4' });
  assert.equal(limit('p', 'europe-west4'), 0);
  assert.equal(limit('p', 'us-central1'), 2);
  assert.equal(limit('q', 'us-central1'), 3);
  assert.equal(limit('q', 'europe-west4'), 4);
  throwsCode(() => config.setQuotaLimit('concurrent_tuning_jobs', -1), 'INVALID_ARGUMENT', /integer >= 0/);
  throwsCode(() => config.setQuotaLimit('gpus' as 'concurrent_tuning_jobs', 1), 'INVALID_ARGUMENT', /unknown quota "gpus"/);
  db.close();
});
