// The PostgreSQL dialect of the platform database (db.ts), through `pg`: `tunekit serve --database
// postgres://...` and every `tunekit worker` share one schema (the URL's database; its search_path).
// - Statements are the shared SQL with `?` rewritten to `$1, $2, ...` (no statement has a `?` in a
//   string literal); int8 values (COUNT(*), BIGINT columns) come back as numbers (every one tunekit
//   stores is below 2^53: object generations are microseconds since 1970).
// - A transaction takes one transaction-scoped advisory lock first: writers are serialised as SQLite's
//   BEGIN IMMEDIATE serialises them, so the read-then-write rules (quota slots, registry commits,
//   claims) hold across machines without serialization failures to retry. Plain statements take no lock.
// - Migrations are the SQLite ones with types mapped (INTEGER -> BIGINT, REAL -> DOUBLE PRECISION,
//   WITHOUT ROWID dropped, TEXT compared bytewise as SQLite compares it: COLLATE "C", which object
//   listings and page tokens rely on), applied under the same lock, so machines starting together
//   migrate once.

import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { InvalidRequestError } from '../errors.js';
import { MIGRATIONS } from './migrations.js';
import { PlatformDb, type OpenOptions, type RunResult, type SqlValue } from './db.js';

/** The advisory lock every transaction holds (an arbitrary constant: "tunekit" in ASCII). */
const WRITE_LOCK = 0x74756e656b6974;
const INT8_OID = 20;

export class PostgresDb extends PlatformDb {
  readonly dialect = 'postgres' as const;
  private readonly tx = new AsyncLocalStorage<{ client: pg.PoolClient; depth: number }>();
  private readonly texts = new Map<string, string>();
  private closed = false;

  private constructor(readonly pool: pg.Pool, private readonly where: string, dataDir: string) {
    super(dataDir);
  }

  static async connect(url: string, dataDir: string, opts: OpenOptions = {}): Promise<PostgresDb> {
    let where: string;
    try {
      const u = new URL(url);
      if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error();
      where = `postgres://${u.host}${u.pathname}`;
    } catch {
      throw new InvalidRequestError(`--database must be a postgres://USER:PASSWORD@HOST:PORT/DATABASE URL, got ${JSON.stringify(url.replace(/\/\/[^@/]*@/, '//...@'))}`);
    }
    const pool = new pg.Pool({
      connectionString: url,
      max: 8,
      connectionTimeoutMillis: opts.busyTimeoutMs ?? 10_000,
      types: { getTypeParser: (oid, format) => (oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) } as pg.CustomTypesConfig,
    });
    // An idle client's connection error (the server restarted) must not crash the process; the next
    // statement gets a new connection.
    pool.on('error', () => undefined);
    const db = new PostgresDb(pool, where, dataDir);
    try {
      await db.migrate(opts.migrations ?? MIGRATIONS);
      return db;
    } catch (err) {
      await pool.end();
      throw err;
    }
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  describe(): string {
    return `the database ${this.where}`;
  }

  async get<T>(sql: string, ...params: SqlValue[]): Promise<T | undefined> {
    return (await this.query(sql, params)).rows[0] as T | undefined;
  }

  async all<T>(sql: string, ...params: SqlValue[]): Promise<T[]> {
    return (await this.query(sql, params)).rows as T[];
  }

  async run(sql: string, ...params: SqlValue[]): Promise<RunResult> {
    return { changes: (await this.query(sql, params)).rowCount ?? 0 };
  }

  async exec(sql: string): Promise<void> {
    await (this.tx.getStore()?.client ?? this.pool).query(sql);
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    const outer = this.tx.getStore();
    if (outer) {
      const name = `sp${++outer.depth}`;
      await outer.client.query(`SAVEPOINT ${name}`);
      try {
        const result = await fn();
        await outer.client.query(`RELEASE SAVEPOINT ${name}`);
        return result;
      } catch (err) {
        await outer.client.query(`ROLLBACK TO SAVEPOINT ${name}`);
        throw err;
      } finally {
        outer.depth--;
      }
    }
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      try {
        await client.query(`SELECT pg_advisory_xact_lock(${WRITE_LOCK})`);
        const result = await this.tx.run({ client, depth: 0 }, fn);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw err;
      }
    } finally {
      client.release(broken);
    }
  }

  jsonField(column: string): { sql: string; arg: (key: string) => string } {
    return { sql: `(${column}::jsonb ->> CAST(? AS TEXT))`, arg: (key) => key };
  }

  migrationSql(sql: string): string {
    return sql
      .replace(/\bWITHOUT ROWID\b/g, '')
      .replace(/\bINTEGER\b/g, 'BIGINT')
      .replace(/\bREAL\b/g, 'DOUBLE PRECISION')
      .replace(/\bTEXT\b/g, 'TEXT COLLATE "C"');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private query(sql: string, params: SqlValue[]): Promise<pg.QueryResult> {
    let text = this.texts.get(sql);
    if (text === undefined) {
      if (this.texts.size >= 1000) this.texts.clear(); // statements built with variable IN lists
      let n = 0;
      text = sql.replace(/\?/g, () => `$${++n}`);
      this.texts.set(sql, text);
    }
    const values = params.map((p) => (p === undefined ? null : p));
    return (this.tx.getStore()?.client ?? this.pool).query(text, values);
  }
}
