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
// - Each process keeps one more connection, its session, holding a session-level advisory lock on its
//   `owner` number (the mark in its temporary files' names, db.ts): PostgreSQL releases it when the
//   process dies or its connection is cut, so `ownerGone` asks whether that lock is free. The session
//   also holds the maintenance lock of the one serve replica that runs the periodic work (`lead`).

import { AsyncLocalStorage } from 'node:async_hooks';
import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import pg from 'pg';
import { InvalidRequestError } from '../errors.js';
import { MIGRATIONS } from './migrations.js';
import { PlatformDb, type OpenOptions, type RunResult, type SqlValue } from './db.js';

/** The advisory lock every transaction holds (an arbitrary constant: "tunekit" in ASCII). */
const WRITE_LOCK = 0x74756e656b6974;
/** The two-key advisory lock space (first key) of process marks: (OWNER_LOCKS, owner), owner >= 1. */
const OWNER_LOCKS = 0x746b;
/** The maintenance lock: its holder runs the sweeps and the queue's reconciliation. */
const LEAD_LOCK = `${OWNER_LOCKS}, 0`;
/** After the session connection is lost, how long until it is opened again. */
const SESSION_RETRY_MS = 1000;
/** A file younger than this is never a leftover (ownerGone). */
const OWNER_GRACE_MS = 60_000;
const INT8_OID = 20;

export class PostgresDb extends PlatformDb {
  readonly dialect = 'postgres' as const;
  private readonly tx = new AsyncLocalStorage<{ client: pg.PoolClient; depth: number }>();
  private readonly texts = new Map<string, string>();
  private closed = false;
  private session: pg.Client | undefined;
  private sessionRetry: NodeJS.Timeout | undefined;
  private leading = false;
  private ownerKey = 0;

  private constructor(readonly pool: pg.Pool, private readonly where: string, dataDir: string, private readonly url: string) {
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
    const db = new PostgresDb(pool, where, dataDir, url);
    try {
      await db.migrate(opts.migrations ?? MIGRATIONS);
      await db.openSession();
      return db;
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  get owner(): number {
    return this.ownerKey;
  }

  async ownerGone(owner: number, mtimeMs: () => number): Promise<boolean> {
    if (owner === this.ownerKey || !Number.isInteger(owner) || owner < 1 || owner > 0x7fffffff) return owner !== this.ownerKey;
    // A process whose session was cut (the server restarted) holds no lock until it reconnects, within
    // SESSION_RETRY_MS: a file it touched in the last OWNER_GRACE_MS is not taken for a leftover.
    if (Date.now() - mtimeMs() < OWNER_GRACE_MS) return false;
    // Free (taken and at once released with the statement's transaction): no process holds that mark.
    const row = await this.get<{ free: boolean }>(`SELECT pg_try_advisory_xact_lock_shared(${OWNER_LOCKS}, CAST(? AS INTEGER)) AS free`, owner);
    return row!.free;
  }

  /**
   * Whether this process holds the maintenance lock, taking it if it is free: one process at a time
   * (the first to ask), until it stops or loses its session connection; then the next to ask gets it.
   */
  async lead(): Promise<boolean> {
    const session = this.session;
    if (!session) return false;
    if (!this.leading) {
      const r = await session.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${LEAD_LOCK}) AS ok`);
      // (A session lost meanwhile holds nothing.)
      this.leading = r.rows[0]!.ok && this.session === session;
    }
    return this.leading;
  }

  /** Opens the session connection and takes a free owner mark on it (see the file comment). */
  private async openSession(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, keepAlive: true });
    client.on('error', () => this.sessionLost(client));
    client.on('end', () => this.sessionLost(client));
    await client.connect();
    // The session lives as long as the process and must not keep it alive (a CLI command, a test).
    (client.connection.stream as Partial<Socket>).unref?.();
    try {
      for (let key = this.ownerKey || randomInt(1, 0x7fffffff); ; key = randomInt(1, 0x7fffffff)) {
        const r = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${OWNER_LOCKS}, $1::int) AS ok`, [key]);
        if (r.rows[0]!.ok) {
          this.ownerKey = key;
          break;
        }
        // Held by another live process: a new number (after a lost session, this process's files keep
        // the old mark, which that process's lock keeps alive too).
      }
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await client.end();
      return;
    }
    this.session = client;
  }

  private sessionLost(client: pg.Client): void {
    if (this.session !== client) return;
    this.session = undefined;
    this.leading = false;
    client.end().catch(() => undefined);
    if (this.closed || this.sessionRetry) return;
    const retry = (): void => {
      this.sessionRetry = setTimeout(() => {
        this.sessionRetry = undefined;
        if (!this.closed) this.openSession().catch(retry);
      }, SESSION_RETRY_MS);
      this.sessionRetry.unref();
    };
    retry();
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
    clearTimeout(this.sessionRetry);
    const session = this.session;
    this.session = undefined;
    this.leading = false;
    await session?.end().catch(() => undefined);
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
