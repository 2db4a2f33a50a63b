// The platform's metadata database, behind one asynchronous interface with two dialects:
// - SQLite (the default, db-sqlite.ts): one file `tunekit.db` in the data directory, better-sqlite3;
// - PostgreSQL (`--database postgres://...`, db-postgres.ts): one schema that serve and every worker
//   machine share, through `pg`.
// Queries are written once, with `?` placeholders, in the SQL both dialects read; the few differences
// (a JSON field, a column type in migrations) are methods of the dialect. Writes that read-then-write
// (quota checks, migrations, registry commits) go through `transaction`, which holds the database's one
// write lock from its first statement (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped
// advisory lock), so what it reads cannot change before it writes. Statements a transaction's callback
// runs (found through AsyncLocalStorage) belong to it; nested transactions are savepoints.

import * as os from 'node:os';
import * as path from 'node:path';
import { randomInt } from 'node:crypto';
import { FailedPreconditionError } from '../errors.js';
import { MIGRATIONS, type Migration } from './migrations.js';

export type Dialect = 'sqlite' | 'postgres';
export type SqlValue = string | number | null | undefined;

export interface RunResult {
  /** Rows inserted, updated or deleted. */
  changes: number;
}

/** `$TUNEKIT_DATA_DIR`, else `~/.tunekit`. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.TUNEKIT_DATA_DIR;
  if (dir) return dir === '~' || dir.startsWith('~/') ? path.join(os.homedir(), dir.slice(1)) : dir;
  return path.join(os.homedir(), '.tunekit');
}

export interface OpenOptions {
  /** Milliseconds a statement waits for another process's write lock (default 10 s). */
  busyTimeoutMs?: number;
  /** Migrations to apply (tests pass their own lists); default MIGRATIONS. */
  migrations?: readonly Migration[];
}

export interface DatabaseOptions extends OpenOptions {
  /**
   * The data directory: the SQLite file (without `database`), the object store's blobs and the jobs'
   * staging copies. With PostgreSQL it is the directory every machine shares (`--storage`).
   */
  dataDir: string;
  /** A postgres:// URL; absent: SQLite in the data directory. */
  database?: string;
}

export abstract class PlatformDb {
  abstract readonly dialect: Dialect;

  protected constructor(readonly dataDir: string) {}

  /** Opens the platform database (SQLite in `dataDir`, or PostgreSQL at `database`) and migrates it. */
  static async open(opts: DatabaseOptions): Promise<PlatformDb> {
    const dataDir = path.resolve(opts.dataDir);
    if (opts.database === undefined) {
      const { SqliteDb } = await import('./db-sqlite.js');
      return SqliteDb.openFile(dataDir, opts);
    }
    const { PostgresDb } = await import('./db-postgres.js');
    return PostgresDb.connect(opts.database, dataDir, opts);
  }

  /** The first row, or undefined. */
  abstract get<T>(sql: string, ...params: SqlValue[]): Promise<T | undefined>;
  abstract all<T>(sql: string, ...params: SqlValue[]): Promise<T[]>;
  abstract run(sql: string, ...params: SqlValue[]): Promise<RunResult>;
  /** Runs a script of several statements (no parameters). */
  abstract exec(sql: string): Promise<void>;

  /**
   * Runs `fn` holding the write lock from its start (see the file comment). Commits on return, rolls
   * back on throw. Nested calls become savepoints of the outer transaction. `fn` runs its statements
   * one after another (never two at once).
   */
  abstract transaction<T>(fn: () => Promise<T>): Promise<T>;

  abstract close(): Promise<void>;

  /** Whether close() has not been called. */
  abstract get isOpen(): boolean;

  /**
   * This process's mark in the names of the temporary files it writes in the data directory
   * (`.tmp-<owner>-...`): its pid with SQLite (one machine), a number it holds an advisory lock on with
   * PostgreSQL (a pid means nothing on a directory other machines share).
   */
  abstract readonly owner: number;

  /**
   * Whether the process that marked a temporary file `owner` is gone, so the file is a leftover to
   * remove. `mtimeMs` is the file's: with SQLite a pid reused after a restart is this process's own,
   * and only files older than this process are leftovers; with PostgreSQL a file touched in the last
   * minute is kept (its process may be reconnecting after its session was cut).
   */
  abstract ownerGone(owner: number, mtimeMs: () => number): Promise<boolean>;

  /**
   * A text field of a JSON-object column, as an SQL expression with one `?` bound to `arg(key)`:
   * `json_extract(col, '$."key"')` in SQLite, `col::jsonb ->> 'key'` in PostgreSQL.
   */
  abstract jsonField(column: string): { sql: string; arg: (key: string) => string };

  /** A migration's SQL in this dialect (migrations are written once, in SQLite's types). */
  abstract migrationSql(sql: string): string;

  /** Applies the migrations not yet recorded, each in the transaction that records it. */
  protected async migrate(migrations: readonly Migration[]): Promise<void> {
    migrations.forEach((m, i) => {
      if (m.version !== i + 1) throw new Error(`migration ${i} has version ${m.version}, expected ${i + 1}`);
    });
    await this.transaction(async () => {
      await this.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_time TEXT NOT NULL)`);
      const row = await this.get<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
      const current = row?.v ?? 0;
      if (current > migrations.length) {
        throw new FailedPreconditionError(
          `${this.describe()} has schema version ${current}, newer than this tunekit knows (${migrations.length}): upgrade tunekit`,
        );
      }
      for (const m of migrations.slice(current)) {
        await this.exec(this.migrationSql(m.sql));
        await this.run('INSERT INTO schema_migrations (version, name, applied_time) VALUES (?, ?, ?)', m.version, m.name, now());
      }
    });
  }

  /** Where the database is, for messages: "the data directory D" or "the database postgres://host/db" (no credentials). */
  abstract describe(): string;
}

/** Versions recorded in schema_migrations, ascending. */
export function appliedMigrations(db: PlatformDb): Promise<{ version: number; name: string; appliedTime: string }[]> {
  return db.all('SELECT version, name, applied_time AS "appliedTime" FROM schema_migrations ORDER BY version');
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

/** A simple FIFO lock (one holder at a time). */
export class Mutex {
  private held = false;
  private readonly waiters: (() => void)[] = [];

  get locked(): boolean {
    return this.held;
  }

  async acquire(): Promise<void> {
    if (!this.held) {
      this.held = true;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.held = false;
  }
}
