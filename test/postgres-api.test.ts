// The platform and the API on PostgreSQL: a representative subset of the existing tests run again, as
// they are, with TUNEKIT_TEST_POSTGRES naming a real server this test starts (test/helpers/postgres.ts;
// every platform they open gets a fresh database, and tuning jobs go through the PostgreSQL queue to a
// worker in the test's process). Chosen to cover every store: IAM and keys (api-auth), tuning jobs,
// the registry, long-running operations and deploys (api-operations: jobs run to SUCCEEDED), tuning
// job fields and limits (api-tuning-fields), cancels (api-tuning-cancel), and proto3 JSON of every
// resource (api-proto-json). Also the DB layer itself: transactions, savepoints and isolation.
// Needs PostgreSQL's binaries (Debian's postgresql); skipped with a message without them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createDatabase, postgresMissing, startPostgres } from './helpers/postgres.js';
import { cliMain, runNode } from './helpers/platform.js';
import { PlatformDb, appliedMigrations } from '../src/platform/db.js';
import { MIGRATIONS } from '../src/platform/migrations.js';
import { Platform } from '../src/platform/platform.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SUBSET = ['api-auth', 'api-operations', 'api-tuning-fields', 'api-tuning-cancel', 'api-proto-json'];
const skip = postgresMissing();

test('the database layer on PostgreSQL: one schema migrated once by concurrent openers, transactions, savepoints, isolation', { skip }, async () => {
  const server = startPostgres();
  const dirs = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-pgdb-'));
  try {
    const database = await createDatabase(server.url);
    const dbs = await Promise.all(Array.from({ length: 4 }, () => PlatformDb.open({ dataDir: dirs, database })));
    const db = dbs[0]!;
    assert.deepEqual((await appliedMigrations(db)).map((m) => m.version), MIGRATIONS.map((m) => m.version));
    for (const d of dbs.slice(1)) await d.close();
    const tables = (await db.all<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    )).map((r) => r.table_name);
    assert.ok(['tuning_jobs', 'models', 'objects', 'api_keys', 'schema_migrations'].every((t) => tables.includes(t)), tables.join(', '));

    await assert.rejects(db.transaction(async () => {
      await db.run("INSERT INTO projects (id, create_time) VALUES ('gone', 't')");
      throw new Error('boom');
    }), /boom/);
    await db.transaction(async () => {
      await db.run("INSERT INTO projects (id, create_time) VALUES ('outer', 't')");
      await assert.rejects(db.transaction(async () => {
        await db.run("INSERT INTO projects (id, create_time) VALUES ('inner', 't')");
        throw new Error('inner');
      }), /inner/);
    });
    assert.deepEqual(await db.all("SELECT id FROM projects WHERE id IN ('gone', 'outer', 'inner')"), [{ id: 'outer' }]);

    // Read-then-write transactions exclude each other (the quota rule): ten concurrent creates against a
    // limit of three make exactly three jobs.
    const p = await Platform.open({ dataDir: dirs, database });
    await p.config.setQuotaLimit('concurrent_tuning_jobs', 3);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => p.jobs.create({ project: 'q', location: 'us-central1', baseModel: 'm', request: {} })));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 3);
    assert.equal((await p.quotas.tuningJobUsage('q', 'us-central1')).used, 3);
    // Bytewise text order, as SQLite's, for object listings and their page tokens.
    await p.storage.createBucket('order', { project: 'q', location: 'us-central1' });
    for (const name of ['b', 'B', 'a/x', 'a-y', 'é', 'Z']) await p.storage.putObject('order', name, name);
    assert.deepEqual((await p.storage.listObjects('order')).objects.map((o) => o.name), ['B', 'Z', 'a-y', 'a/x', 'b', 'é']);
    await p.close();
    await db.close();
  } finally {
    server.stop();
    fs.rmSync(dirs, { recursive: true, force: true });
  }
});

test(`API tests on PostgreSQL: ${SUBSET.join(', ')}`, { skip }, async (t) => {
  const server = startPostgres();
  try {
    const files = SUBSET.map((f) => path.join(here, `${f}.test.js`));
    // A test runner of its own (not a child of this one: NODE_TEST_CONTEXT would make it report to us).
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const r = await runNode(['--test', '--test-reporter=tap', '--test-concurrency=1', ...files], undefined, { ...env, TUNEKIT_TEST_POSTGRES: server.url });
    const summary = /# pass (\d+)[\s\S]*# fail (\d+)/.exec(r.out);
    assert.equal(r.code, 0, `${r.out.slice(-6000)}\n${r.err.slice(-2000)}`);
    assert.ok(summary && Number(summary[1]) > 0 && summary[2] === '0', r.out.slice(-2000));
    t.diagnostic(`${summary[1]} tests passed on PostgreSQL`);
  } finally {
    server.stop();
  }
});

test('serve: --database must be a postgres:// URL, and --job-heartbeat-seconds needs --database (one-line errors)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-pgflags-'));
  try {
    const bad = await runNode([cliMain, 'serve', '--data-dir', dir, '--database', 'mysql://u:secret@h/db']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^tunekit: error: --database must be a postgres:\/\/USER:PASSWORD@HOST:PORT\/DATABASE URL, got "mysql:\/\/\.\.\.@h\/db"\n$/);
    const beat = await runNode([cliMain, 'serve', '--data-dir', dir, '--job-heartbeat-seconds', '20']);
    assert.equal(beat.code, 1);
    assert.match(beat.err, /--job-heartbeat-seconds applies to jobs queued in PostgreSQL: give --database too/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
