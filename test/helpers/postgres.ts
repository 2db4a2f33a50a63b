// A real PostgreSQL server for the tests, started from Debian's binaries (/usr/lib/postgresql/N/bin,
// installed here and by .ci/run): initdb into a temporary directory, start on a Unix socket in it (no
// TCP port to collide on), stop and remove at the end. PostgreSQL refuses to run as root, so when the
// tests run as root the server runs as the `postgres` OS user, in a directory it owns.
// `testDatabase()` is how the existing platform and API tests run on PostgreSQL (test/postgres-api.test.ts
// reruns a subset of them with TUNEKIT_TEST_POSTGRES set): each platform they open gets a fresh database.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface PgServer {
  /** postgres://tunekit@localhost/postgres?host=SOCKET_DIR (the socket wins): the maintenance database. */
  url: string;
  stop(): void;
}

/** The directory of the newest installed PostgreSQL's binaries, or undefined. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return undefined;
  const versions = fs.readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = path.join(root, v, 'bin');
    if (fs.existsSync(path.join(bin, 'initdb')) && fs.existsSync(path.join(bin, 'pg_ctl'))) return bin;
  }
  return undefined;
}

/** Why PostgreSQL tests cannot run here (a skip message), or undefined when they can. */
export function postgresMissing(): string | undefined {
  return postgresBin() ? undefined : 'PostgreSQL is not installed (no /usr/lib/postgresql/N/bin/initdb; apt-get install postgresql)';
}

/** Initialises and starts a server; stop() stops it and removes its directory. */
export function startPostgres(): PgServer {
  const bin = postgresBin();
  if (!bin) throw new Error(postgresMissing());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-pg-'));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  const run = (cmd: string, args: string[]): void => {
    const argv = asRoot ? ['-u', 'postgres', '--', path.join(bin, cmd), ...args] : args;
    execFileSync(asRoot ? 'runuser' : path.join(bin, cmd), argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  };
  const data = path.join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'tunekit', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  // fsync off: a test server's data does not have to survive a power cut.
  run('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-o', `-k ${dir} -c listen_addresses= -c fsync=off -c max_connections=200`, 'start']);
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  process.on('exit', stop);
  return { url: `postgres://tunekit@localhost/postgres?host=${encodeURIComponent(dir)}`, stop };
}

/** A new, empty database on the server at `url`; returns its URL. */
export async function createDatabase(url: string): Promise<string> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * `{ database }` naming a fresh database when TUNEKIT_TEST_POSTGRES (a server's URL) is set, else `{}`
 * (SQLite in the data directory, the default).
 */
export async function testDatabase(): Promise<{ database?: string }> {
  const server = process.env.TUNEKIT_TEST_POSTGRES;
  return server ? { database: await createDatabase(server) } : {};
}
