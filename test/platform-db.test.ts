// The platform database: WAL, migrations applied once and in order (also when several processes open a
// fresh data dir together), a newer schema refused, settings and quota limits, location checks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PlatformDb, appliedMigrations, newNumericId } from '../src/platform/db.js';
import type { SqliteDb } from '../src/platform/db-sqlite.js';
import { MIGRATIONS } from '../src/platform/migrations.js';
import { PlatformConfig, assertLocation, DEFAULT_LOCATIONS } from '../src/platform/config.js';
import { platformDir, runScript, tempDirs, throwsCode, rejectsCode } from './helpers/platform.js';

const freshDir = tempDirs('platform-db');

const TABLES = [
  'api_keys', 'base_models', 'buckets', 'config', 'deployed_models', 'endpoints', 'job_metrics', 'model_versions', 'models',
  'objects', 'operations', 'projects', 'quotas', 'resumable_uploads', 'role_bindings', 'schema_migrations', 'service_accounts', 'tuning_jobs',
];

test('a fresh data dir gets every table, WAL mode, foreign keys and one schema_migrations row per migration', async () => {
  const db = await PlatformDb.open({ dataDir: freshDir() }) as SqliteDb;
  try {
    const tables = (db.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    assert.deepEqual(tables, TABLES);
    assert.equal(db.sqlite.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.sqlite.pragma('foreign_keys', { simple: true }), 1);
    assert.ok((db.sqlite.pragma('busy_timeout', { simple: true }) as number) >= 1000);
    assert.deepEqual((await appliedMigrations(db)).map((m) => m.version), MIGRATIONS.map((m) => m.version));
    assert.equal(fs.statSync(path.join(db.dataDir, 'tunekit.db')).mode & 0o777, 0o600);
  } finally {
    await db.close();
  }
});

test('reopening applies nothing twice and keeps the data; a later migration is applied on the next open', async () => {
  const dir = freshDir();
  const first = await PlatformDb.open({ dataDir: dir, migrations: MIGRATIONS.slice(0, 1) });
  await first.run("INSERT INTO projects (id, create_time) VALUES ('p1', '2026-01-01T00:00:00.000Z')");
  const firstApplied = await appliedMigrations(first);
  await first.close();
  assert.deepEqual(firstApplied.map((m) => m.version), [1]);

  for (let i = 0; i < 3; i++) {
    const db = await PlatformDb.open({ dataDir: dir });
    const applied = await appliedMigrations(db);
    assert.deepEqual(applied.map((m) => m.version), MIGRATIONS.map((m) => m.version));
    assert.equal(applied[0]!.appliedTime, firstApplied[0]!.appliedTime, 'migration 1 is not re-run');
    assert.equal((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM projects'))!.n, 1);
    await db.close();
  }
});

test('a data dir written by a newer tunekit is refused (FAILED_PRECONDITION), and a failed migration rolls back', async () => {
  const dir = freshDir();
  await (await PlatformDb.open({ dataDir: dir })).close();
  await rejectsCode(PlatformDb.open({ dataDir: dir, migrations: MIGRATIONS.slice(0, 1) }), 'FAILED_PRECONDITION', new RegExp(`schema version ${MIGRATIONS.length}, newer than this tunekit knows \\(1\\)`));

  const broken = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'broken', sql: 'CREATE TABLE t3 (x); INSERT INTO nowhere VALUES (1);' }];
  await assert.rejects(PlatformDb.open({ dataDir: dir, migrations: broken }), /no such table: nowhere/);
  const db = await PlatformDb.open({ dataDir: dir });
  assert.deepEqual((await appliedMigrations(db)).map((m) => m.version), MIGRATIONS.map((m) => m.version));
  assert.equal(await db.get("SELECT name FROM sqlite_master WHERE name = 't3'"), undefined);
  await db.close();
});

test('migration versions must be 1, 2, 3, ... without gaps', async () => {
  await assert.rejects(PlatformDb.open({ dataDir: freshDir(), migrations: [{ version: 2, name: 'x', sql: '' }] }), /expected 1/);
});

test('six processes opening one fresh data dir at once migrate it exactly once', async () => {
  const dir = freshDir();
  const script = `import { PlatformDb, appliedMigrations } from ${JSON.stringify(path.join(platformDir, 'db.js'))};
    const db = await PlatformDb.open({ dataDir: process.argv[process.argv.length - 1] });
    process.stdout.write(JSON.stringify((await appliedMigrations(db)).map((m) => m.version)));
    await db.close();`;
  const results = await Promise.all(Array.from({ length: 6 }, () => runScript(script, [dir])));
  for (const r of results) {
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out), MIGRATIONS.map((m) => m.version));
  }
  const db = await PlatformDb.open({ dataDir: dir });
  assert.equal((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM schema_migrations'))!.n, MIGRATIONS.length);
  await db.close();
});

test('a transaction rolls back on throw and commits on return; a nested one is a savepoint', async () => {
  const db = await PlatformDb.open({ dataDir: freshDir() });
  await assert.rejects(db.transaction(async () => {
    await db.run("INSERT INTO projects (id, create_time) VALUES ('gone', 't')");
    throw new Error('boom');
  }), /boom/);
  assert.equal(await db.get("SELECT 1 FROM projects WHERE id = 'gone'"), undefined);
  assert.equal(await db.transaction(async () => (await db.run("INSERT INTO projects (id, create_time) VALUES ('kept', 't')")).changes), 1);
  assert.ok(await db.get("SELECT 1 FROM projects WHERE id = 'kept'"));
  await db.transaction(async () => {
    await db.run("INSERT INTO projects (id, create_time) VALUES ('outer', 't')");
    await assert.rejects(db.transaction(async () => {
      await db.run("INSERT INTO projects (id, create_time) VALUES ('inner', 't')");
      throw new Error('inner');
    }), /inner/);
  });
  assert.deepEqual(await db.all("SELECT id FROM projects WHERE id IN ('outer', 'inner')"), [{ id: 'outer' }]);
  await db.close();
});

test('statements of other work wait for an open transaction instead of joining it', async () => {
  const db = await PlatformDb.open({ dataDir: freshDir() });
  let release!: () => void;
  const held = new Promise<void>((r) => { release = r; });
  const tx = db.transaction(async () => {
    await db.run("INSERT INTO projects (id, create_time) VALUES ('in-tx', 't')");
    await held;
    throw new Error('rolled back');
  });
  // Issued while the transaction is open: it must neither see its row nor be rolled back with it.
  const outside = db.run("INSERT INTO projects (id, create_time) VALUES ('outside', 't')");
  const seen = db.all('SELECT id FROM projects ORDER BY id');
  release();
  await assert.rejects(tx, /rolled back/);
  await outside;
  assert.deepEqual(await seen, [{ id: 'outside' }]);
  assert.deepEqual(await db.all('SELECT id FROM projects ORDER BY id'), [{ id: 'outside' }]);
  await db.close();
});

test('numeric ids are 19 digits without a leading zero, and distinct', () => {
  const ids = new Set(Array.from({ length: 1000 }, newNumericId));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.match(id, /^[1-9]\d{18}$/);
});

test('locations: defaults, stored list, per-process override; unsupported ones are INVALID_ARGUMENT naming the supported', async () => {
  assert.deepEqual(DEFAULT_LOCATIONS, ['us-central1', 'europe-west4']);
  assertLocation('us-central1');
  throwsCode(() => assertLocation('asia-east1'), 'INVALID_ARGUMENT', /"asia-east1" is not supported.*Supported locations: us-central1, europe-west4\./);

  const db = await PlatformDb.open({ dataDir: freshDir() });
  const config = new PlatformConfig(db);
  assert.deepEqual(await config.locations(), ['us-central1', 'europe-west4']);
  await config.setLocations(['us-central1', 'asia-east1']);
  await config.assertLocation('asia-east1');
  await rejectsCode(config.assertLocation('europe-west4'), 'INVALID_ARGUMENT', /Supported locations: us-central1, asia-east1\./);
  await rejectsCode(config.setLocations([]), 'INVALID_ARGUMENT', /at least one location/);
  await rejectsCode(config.setLocations(['../etc']), 'INVALID_ARGUMENT', /not a valid location name/);
  const override = new PlatformConfig(db, { locations: ['europe-west4'] });
  assert.deepEqual(await override.locations(), ['europe-west4']);
  assert.deepEqual(await new PlatformConfig(db).locations(), ['us-central1', 'asia-east1'], 'the override is not stored');
  await db.close();
});

test('quota limits: built-in default 1, then the most specific stored row wins', async () => {
  const db = await PlatformDb.open({ dataDir: freshDir() });
  const config = new PlatformConfig(db);
  const limit = async (p: string, l: string) => await config.quotaLimit('concurrent_tuning_jobs', p, l);
  assert.equal(await limit('p', 'us-central1'), 1);
  await config.setQuotaLimit('concurrent_tuning_jobs', 4);
  assert.equal(await limit('p', 'us-central1'), 4);
  await config.setQuotaLimit('concurrent_tuning_jobs', 3, { location: 'us-central1' });
  await config.setQuotaLimit('concurrent_tuning_jobs', 2, { project: 'p' });
  await config.setQuotaLimit('concurrent_tuning_jobs', 0, { project: 'p', location: 'europe-west4' });
  assert.equal(await limit('p', 'europe-west4'), 0);
  assert.equal(await limit('p', 'us-central1'), 2);
  assert.equal(await limit('q', 'us-central1'), 3);
  assert.equal(await limit('q', 'europe-west4'), 4);
  await rejectsCode(config.setQuotaLimit('concurrent_tuning_jobs', -1), 'INVALID_ARGUMENT', /integer >= 0/);
  await rejectsCode(config.setQuotaLimit('gpus' as 'concurrent_tuning_jobs', 1), 'INVALID_ARGUMENT', /unknown quota "gpus"/);
  await db.close();
});
