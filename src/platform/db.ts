// The platform's metadata database: one SQLite file (better-sqlite3, the only file that imports it) in
// the data directory, in WAL mode so readers never block the writer, with a busy timeout so that
// several processes (the server, job workers, the CLI) share it. Writes that read-then-write (quota
// checks, migrations) go through `immediate`, which takes the write lock before the first read.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomInt } from 'node:crypto';
import Database from 'better-sqlite3';
import { FailedPreconditionError } from '../errors.js';
import { MIGRATIONS, type Migration } from './migrations.js';

export type Sqlite = Database.Database;

/** `$TUNEKIT_DATA_DIR`, else `~/.tunekit`. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.TUNEKIT_DATA_DIR;
  if (dir) return dir === '~' || dir.startsWith('~/') ? path.join(os.homedir(), dir.slice(1)) : dir;
  return path.join(os.homedir(), '.tunekit');
}

export interface OpenOptions {
  /** Milliseconds a statement waits for another process's write lock before SQLITE_BUSY (default 10 s). */
  busyTimeoutMs?: number;
  /** Migrations to apply (tests pass their own lists); default MIGRATIONS. */
  migrations?: readonly Migration[];
}

export class PlatformDb {
  private constructor(readonly sqlite: Sqlite, readonly dataDir: string) {}

  /** Opens (creating if needed) `DIR/tunekit.db` and brings its schema up to date. */
  static open(dataDir: string, opts: OpenOptions = {}): PlatformDb {
    const dir = path.resolve(dataDir);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, 'tunekit.db');
    const sqlite = new Database(file, { timeout: opts.busyTimeoutMs ?? 10_000 });
    fs.chmodSync(file, 0o600);
    try {
      walMode(sqlite, opts.busyTimeoutMs ?? 10_000);
      sqlite.pragma('synchronous = FULL');
      sqlite.pragma('foreign_keys = ON');
      const db = new PlatformDb(sqlite, dir);
      migrate(db, opts.migrations ?? MIGRATIONS);
      return db;
    } catch (err) {
      sqlite.close();
      throw err;
    }
  }

  /**
   * Runs `fn` in a transaction that holds the write lock from its start (BEGIN IMMEDIATE), so what it
   * reads cannot change before it writes. Commits on return, rolls back on throw. Nested calls become
   * savepoints of the outer transaction. `fn` must be synchronous.
   */
  immediate<T>(fn: () => T): T {
    return this.sqlite.transaction(fn).immediate();
  }

  close(): void {
    if (this.sqlite.open) this.sqlite.close();
  }
}

/**
 * Switches the file to WAL. SQLite answers SQLITE_BUSY at once, without the busy handler, while another
 * process that opened a fresh file at the same moment is switching it or migrating it (seen with six
 * processes starting together), so this one retries with a short random pause until the timeout.
 */
function walMode(sqlite: Sqlite, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      sqlite.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
      Atomics.wait(pause, 0, 0, 5 + randomInt(20));
    }
  }
}

/** Versions recorded in schema_migrations, ascending. */
export function appliedMigrations(db: PlatformDb): { version: number; name: string; appliedTime: string }[] {
  return db.sqlite
    .prepare('SELECT version, name, applied_time AS appliedTime FROM schema_migrations ORDER BY version')
    .all() as { version: number; name: string; appliedTime: string }[];
}

function migrate(db: PlatformDb, migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${i} has version ${m.version}, expected ${i + 1}`);
  });
  db.sqlite.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_time TEXT NOT NULL)`);
  db.immediate(() => {
    const row = db.sqlite.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
    const current = row.v ?? 0;
    if (current > migrations.length) {
      throw new FailedPreconditionError(
        `the data directory ${db.dataDir} has schema version ${current}, newer than this tunekit knows (${migrations.length}): upgrade tunekit`,
      );
    }
    const record = db.sqlite.prepare('INSERT INTO schema_migrations (version, name, applied_time) VALUES (?, ?, ?)');
    for (const m of migrations.slice(current)) {
      db.sqlite.exec(m.sql);
      record.run(m.version, m.name, now());
    }
  });
}

/** RFC 3339 with milliseconds and `Z`, as every time column holds. */
export function now(): string {
  return new Date().toISOString();
}

/** A 19-digit decimal id (no leading zero), as Google gives tuning jobs, models and endpoints. */
export function newNumericId(): string {
  let s = String(randomInt(1, 10));
  for (let i = 0; i < 3; i++) s += String(randomInt(0, 1_000_000)).padStart(6, '0');
  return s;
}
