// The SQLite dialect of the platform database (db.ts): one file `tunekit.db` in the data directory,
// better-sqlite3 (the only file that imports it), in WAL mode so readers never block the writer, with
// a busy timeout so that several processes (the server, job workers, the CLI) share it.
// better-sqlite3 is synchronous and this process has one connection, so a transaction whose callback
// awaits would let other statements of this process run inside it: a lock keeps them out until it ends
// (statements of the transaction itself, found through AsyncLocalStorage, pass).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomInt } from 'node:crypto';
import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.js';
import { Mutex, PlatformDb, type OpenOptions, type RunResult, type SqlValue } from './db.js';

export type Sqlite = Database.Database;

export class SqliteDb extends PlatformDb {
  readonly dialect = 'sqlite' as const;
  private readonly lock = new Mutex();
  private readonly tx = new AsyncLocalStorage<{ depth: number }>();

  private constructor(readonly sqlite: Sqlite, dataDir: string) {
    super(dataDir);
  }

  /** Opens (creating if needed) `DIR/tunekit.db` and brings its schema up to date. */
  static async openFile(dir: string, opts: OpenOptions = {}): Promise<SqliteDb> {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, 'tunekit.db');
    const sqlite = new Database(file, { timeout: opts.busyTimeoutMs ?? 10_000 });
    fs.chmodSync(file, 0o600);
    try {
      walMode(sqlite, opts.busyTimeoutMs ?? 10_000);
      sqlite.pragma('synchronous = FULL');
      sqlite.pragma('foreign_keys = ON');
      const db = new SqliteDb(sqlite, dir);
      await db.migrate(opts.migrations ?? MIGRATIONS);
      return db;
    } catch (err) {
      sqlite.close();
      throw err;
    }
  }

  get isOpen(): boolean {
    return this.sqlite.open;
  }

  get owner(): number {
    return process.pid;
  }

  async ownerGone(owner: number, mtimeMs: () => number): Promise<boolean> {
    return isLeftover(owner, mtimeMs);
  }

  describe(): string {
    return `the data directory ${this.dataDir}`;
  }

  async get<T>(sql: string, ...params: SqlValue[]): Promise<T | undefined> {
    return this.statement(() => this.sqlite.prepare(sql).get(...bind(params)) as T | undefined);
  }

  async all<T>(sql: string, ...params: SqlValue[]): Promise<T[]> {
    return this.statement(() => this.sqlite.prepare(sql).all(...bind(params)) as T[]);
  }

  async run(sql: string, ...params: SqlValue[]): Promise<RunResult> {
    return this.statement(() => ({ changes: this.sqlite.prepare(sql).run(...bind(params)).changes }));
  }

  async exec(sql: string): Promise<void> {
    return this.statement(() => void this.sqlite.exec(sql));
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    const outer = this.tx.getStore();
    if (outer) {
      const name = `sp${++outer.depth}`;
      this.sqlite.exec(`SAVEPOINT ${name}`);
      try {
        const result = await fn();
        this.sqlite.exec(`RELEASE ${name}`);
        return result;
      } catch (err) {
        if (this.sqlite.inTransaction) this.sqlite.exec(`ROLLBACK TO ${name}; RELEASE ${name}`);
        throw err;
      } finally {
        outer.depth--;
      }
    }
    await this.lock.acquire();
    try {
      this.sqlite.exec('BEGIN IMMEDIATE');
      try {
        const result = await this.tx.run({ depth: 0 }, fn);
        this.sqlite.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.sqlite.inTransaction) this.sqlite.exec('ROLLBACK');
        throw err;
      }
    } finally {
      this.lock.release();
    }
  }

  jsonField(column: string): { sql: string; arg: (key: string) => string } {
    return { sql: `json_extract(${column}, ?)`, arg: (key) => `$."${key}"` };
  }

  migrationSql(sql: string): string {
    return sql;
  }

  async close(): Promise<void> {
    if (this.sqlite.open) this.sqlite.close();
  }

  /** Runs a statement now if it belongs to the open transaction or none is open, else after it. */
  private async statement<T>(fn: () => T): Promise<T> {
    if (this.tx.getStore() || !this.lock.locked) return fn();
    await this.lock.acquire();
    try {
      return fn();
    } finally {
      this.lock.release();
    }
  }
}

/** When this process started (less a margin for coarse file timestamps). */
const PROCESS_START_MS = Date.now() - process.uptime() * 1000 - 2000;

/**
 * Whether a temporary file or directory named after process `pid` was left by a process that is gone:
 * `pid` is not alive, or it is this process but the file predates it (pid reuse across a restart).
 */
function isLeftover(pid: number, mtimeMs: () => number): boolean {
  if (pid === process.pid) {
    try {
      return mtimeMs() < PROCESS_START_MS;
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'EPERM';
  }
}

function bind(params: SqlValue[]): (string | number | null)[] {
  return params.map((p) => (p === undefined ? null : p));
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
