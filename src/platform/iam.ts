// Identities and access: service accounts, their API keys, role bindings per project, and the two
// questions every request asks — who is calling (authenticate, 401) and may they do this here
// (authorize, 403). Rules it keeps:
// - A key is `tk1.<key id>.<43 base64url chars = 256 random bits>`; the database holds only the key id
//   and a SHA-256 of the whole key. The secret is returned once, by createKey.
// - A 403 names the permission and the resource the caller asked for, and says nothing about whether
//   it exists: a caller with no binding in a project learns nothing about it.
// - Bindings in project '*' hold in every project (the bootstrap admin's roles/owner).
// - The insecure principal (`--insecure-no-auth`) exists only when the Iam is built with that option.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  AlreadyExistsError, InvalidRequestError, NotFoundError, PermissionDeniedError, UnauthenticatedError,
} from '../errors.js';
import { now, type PlatformDb } from './db.js';
import { Projects, validateProjectId } from './projects.js';
import { isPermission, isRole, ROLES, type Permission } from './roles.js';

export interface Principal {
  /** The IAM member: `serviceAccount:<email>`, or `insecure-no-auth`. */
  readonly id: string;
  readonly kind: 'serviceAccount' | 'insecure';
  /** Service account email (serviceAccount principals). */
  readonly email?: string;
  /** Which key authenticated the call (serviceAccount principals). */
  readonly keyId?: string;
}

export interface ServiceAccount {
  email: string;
  project: string;
  accountId: string;
  displayName: string;
  createTime: string;
}

export interface KeyInfo {
  keyId: string;
  serviceAccount: string;
  createTime: string;
  lastUsedTime?: string;
}

export interface CreatedKey extends KeyInfo {
  /** The secret: shown once, never stored. */
  key: string;
}

export interface RoleBinding {
  project: string;
  member: string;
  role: string;
  createTime: string;
}

/** A plain object of header values (node's IncomingHttpHeaders) or a fetch Headers. */
export type HeaderSource = Headers | Record<string, string | string[] | undefined>;

export const INSECURE_PRINCIPAL: Principal = Object.freeze({ id: 'insecure-no-auth', kind: 'insecure' });
export const ADMIN_PROJECT = 'tunekit';
export const ADMIN_ACCOUNT_ID = 'tunekit-admin';
export const ADMIN_EMAIL = `${ADMIN_ACCOUNT_ID}@${ADMIN_PROJECT}.iam.gserviceaccount.com`;

const ACCOUNT_ID = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
const EMAIL = /^([a-z][a-z0-9-]{4,28}[a-z0-9])@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)\.iam\.gserviceaccount\.com$/;
const KEY = /^tk1\.([0-9a-f]{24})\.([A-Za-z0-9_-]{43})$/;
const LAST_USED_RESOLUTION_MS = 10 * 60_000;

const MISSING_CREDENTIALS =
  'Request is missing required authentication credential. Expected an API key in the x-goog-api-key header or "Authorization: Bearer <key>".';
const INVALID_KEY = 'API key not valid. Please pass a valid API key.';

export class Iam {
  readonly projects: Projects;
  readonly insecureNoAuth: boolean;

  constructor(private readonly db: PlatformDb, opts: { insecureNoAuth?: boolean } = {}) {
    this.projects = new Projects(db);
    this.insecureNoAuth = opts.insecureNoAuth ?? false;
  }

  // ---- service accounts ----

  /** Creates `<accountId>@<project>.iam.gserviceaccount.com` (the project is created if new). */
  async createServiceAccount(project: string, accountId: string, opts: { displayName?: string } = {}): Promise<ServiceAccount> {
    validateProjectId(project);
    if (!ACCOUNT_ID.test(accountId)) {
      throw new InvalidRequestError(
        `service account name ${JSON.stringify(accountId)} is not valid: use 6-30 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-'`,
      );
    }
    const sa: ServiceAccount = {
      email: `${accountId}@${project}.iam.gserviceaccount.com`, project, accountId, displayName: opts.displayName ?? '', createTime: now(),
    };
    await this.db.transaction(async () => {
      await this.projects.ensure(project);
      const r = (await this.db.run(`INSERT INTO service_accounts (email, project, account_id, display_name, create_time) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT DO NOTHING`, sa.email, sa.project, sa.accountId, sa.displayName, sa.createTime));
      if (r.changes === 0) throw new AlreadyExistsError(`service account ${sa.email} already exists`);
    });
    return sa;
  }

  /** Accepts an email or `serviceAccount:<email>`; NOT_FOUND if there is none. */
  async getServiceAccount(email: string): Promise<ServiceAccount> {
    const e = normaliseEmail(email);
    const row = (await this.db.get('SELECT email, project, account_id AS "accountId", display_name AS "displayName", create_time AS "createTime" FROM service_accounts WHERE email = ?', e)) as ServiceAccount | undefined;
    if (!row) throw new NotFoundError(`service account ${e} does not exist`);
    return row;
  }

  async listServiceAccounts(project: string): Promise<ServiceAccount[]> {
    return (await this.db.all('SELECT email, project, account_id AS "accountId", display_name AS "displayName", create_time AS "createTime" FROM service_accounts WHERE project = ? ORDER BY email', project)) as ServiceAccount[];
  }

  /** Deletes the account with its keys and its role bindings. */
  async deleteServiceAccount(email: string): Promise<void> {
    const sa = await this.getServiceAccount(email);
    await this.db.transaction(async () => {
      await this.db.run('DELETE FROM role_bindings WHERE member = ?', `serviceAccount:${sa.email}`);
      await this.db.run('DELETE FROM service_accounts WHERE email = ?', sa.email);
    });
  }

  // ---- keys ----

  /** A new key for the account. The returned `key` is the only copy of the secret. */
  async createKey(email: string): Promise<CreatedKey> {
    const sa = await this.getServiceAccount(email);
    const keyId = randomBytes(12).toString('hex');
    const key = `tk1.${keyId}.${randomBytes(32).toString('base64url')}`;
    const createTime = now();
    await this.db.run('INSERT INTO api_keys (key_id, service_account, key_hash, create_time) VALUES (?, ?, ?, ?)', keyId, sa.email, hashKey(key), createTime);
    return { keyId, serviceAccount: sa.email, createTime, key };
  }

  async listKeys(email: string): Promise<KeyInfo[]> {
    const sa = await this.getServiceAccount(email);
    const rows = (await this.db.all('SELECT key_id AS "keyId", service_account AS "serviceAccount", create_time AS "createTime", last_used_time AS "lastUsedTime" FROM api_keys WHERE service_account = ? ORDER BY create_time, key_id', sa.email)) as (KeyInfo & { lastUsedTime: string | null })[];
    return rows.map(({ lastUsedTime, ...k }) => (lastUsedTime ? { ...k, lastUsedTime } : k));
  }

  async deleteKey(email: string, keyId: string): Promise<void> {
    const sa = await this.getServiceAccount(email);
    const r = (await this.db.run('DELETE FROM api_keys WHERE key_id = ? AND service_account = ?', keyId, sa.email));
    if (r.changes === 0) throw new NotFoundError(`key ${JSON.stringify(keyId)} of service account ${sa.email} does not exist`);
  }

  // ---- role bindings ----

  /** Grants `role` to `member` (`serviceAccount:<email>`) in `project` ('*': every project). Idempotent. */
  async addBinding(project: string, member: string, role: string): Promise<RoleBinding> {
    if (project !== '*') validateProjectId(project);
    this.checkRole(role);
    const m = await this.checkMember(member);
    const createTime = now();
    await this.db.transaction(async () => {
      if (project !== '*') await this.projects.ensure(project);
      await this.db.run('INSERT INTO role_bindings (project, member, role, create_time) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', project, m, role, createTime);
    });
    return (await this.db.get('SELECT project, member, role, create_time AS "createTime" FROM role_bindings WHERE project = ? AND member = ? AND role = ?', project, m, role)) as RoleBinding;
  }

  async removeBinding(project: string, member: string, role: string): Promise<void> {
    const r = (await this.db.run('DELETE FROM role_bindings WHERE project = ? AND member = ? AND role = ?', project, member, role));
    if (r.changes === 0) throw new NotFoundError(`project ${project} has no binding of ${role} to ${member}`);
  }

  /** Bindings in `project` (including '*' bindings), or of every project when omitted. */
  async listBindings(project?: string): Promise<RoleBinding[]> {
    const sql = 'SELECT project, member, role, create_time AS "createTime" FROM role_bindings';
    return (project === undefined
      ? (await this.db.all(`${sql} ORDER BY project, member, role`))
      : (await this.db.all(`${sql} WHERE project IN (?, '*') ORDER BY project, member, role`, project))) as RoleBinding[];
  }

  // ---- requests ----

  /**
   * The caller of a request, from `x-goog-api-key: KEY` or `Authorization: Bearer KEY`.
   * UNAUTHENTICATED without credentials or with a key that matches none. With insecureNoAuth, every
   * request is INSECURE_PRINCIPAL whatever it carries.
   */
  async authenticate(headers: HeaderSource): Promise<Principal> {
    if (this.insecureNoAuth) return INSECURE_PRINCIPAL;
    const key = credentialOf(headers);
    if (key === undefined) throw new UnauthenticatedError(MISSING_CREDENTIALS);
    const m = KEY.exec(key);
    if (!m) throw new UnauthenticatedError(INVALID_KEY);
    const row = (await this.db.get('SELECT service_account AS email, key_hash AS hash, last_used_time AS "lastUsed" FROM api_keys WHERE key_id = ?', m[1])) as { email: string; hash: string; lastUsed: string | null } | undefined;
    const expected = Buffer.from(row?.hash ?? '0'.repeat(64), 'hex');
    const ok = timingSafeEqual(expected, Buffer.from(hashKey(key), 'hex'));
    if (!row || !ok) throw new UnauthenticatedError(INVALID_KEY);
    const t = now();
    if (!row.lastUsed || Date.parse(t) - Date.parse(row.lastUsed) >= LAST_USED_RESOLUTION_MS) {
      await this.db.run('UPDATE api_keys SET last_used_time = ? WHERE key_id = ?', t, m[1]);
    }
    return { id: `serviceAccount:${row.email}`, kind: 'serviceAccount', email: row.email, keyId: m[1] };
  }

  /** Whether `principal` holds `permission` in `project` through any role bound there or in '*'. */
  async hasPermission(principal: Principal, permission: string, project: string): Promise<boolean> {
    if (!isPermission(permission)) throw new Error(`authorize: unknown permission ${JSON.stringify(permission)} (add it to src/platform/roles.ts)`);
    if (principal.kind === 'insecure') {
      if (!this.insecureNoAuth) throw new Error('authorize: the insecure principal used on an Iam built without insecureNoAuth');
      return true;
    }
    const roles = (await this.db.all("SELECT DISTINCT role FROM role_bindings WHERE member = ? AND project IN (?, '*')", principal.id, project)) as { role: string }[];
    return roles.some((r) => (ROLES[r.role] ?? []).includes(permission as Permission));
  }

  /**
   * PERMISSION_DENIED unless the principal holds `permission` in `project`. `resource` (default
   * `projects/<project>`) only shapes the message, which is the same whether or not it exists.
   */
  async authorize(principal: Principal, permission: string, project: string, resource?: string): Promise<void> {
    if (await this.hasPermission(principal, permission, project)) return;
    throw new PermissionDeniedError(
      `Permission '${permission}' denied on resource '${resource ?? `projects/${project}`}' (or it may not exist).`,
    );
  }

  /**
   * At first start: creates the admin service account (roles/owner in every project) and returns its
   * key, once; afterwards returns undefined. Safe when several processes start together.
   */
  async bootstrap(): Promise<CreatedKey | undefined> {
    return await this.db.transaction(async () => {
      const done = (await this.db.get("SELECT value FROM config WHERE key = 'bootstrap'"));
      if (done) return undefined;
      if (!(await this.db.get('SELECT 1 FROM service_accounts WHERE email = ?', ADMIN_EMAIL))) {
        await this.createServiceAccount(ADMIN_PROJECT, ADMIN_ACCOUNT_ID, { displayName: 'tunekit administrator (bootstrap)' });
      }
      await this.addBinding('*', `serviceAccount:${ADMIN_EMAIL}`, 'roles/owner');
      const key = await this.createKey(ADMIN_EMAIL);
      await this.db.run("INSERT INTO config (key, value) VALUES ('bootstrap', ?)", JSON.stringify({ serviceAccount: ADMIN_EMAIL, keyId: key.keyId, time: key.createTime }));
      return key;
    });
  }

  private checkRole(role: string): void {
    if (!isRole(role)) {
      throw new InvalidRequestError(`role ${JSON.stringify(role)} is not supported: use one of ${Object.keys(ROLES).join(', ')}`);
    }
  }

  /** The normalised member; INVALID_ARGUMENT unless it is `serviceAccount:<email of an existing account>`. */
  private async checkMember(member: string): Promise<string> {
    if (!member.startsWith('serviceAccount:')) {
      throw new InvalidRequestError(`member ${JSON.stringify(member)} is not valid: expected serviceAccount:NAME@PROJECT.iam.gserviceaccount.com`);
    }
    const email = member.slice('serviceAccount:'.length);
    if (!(await this.db.get('SELECT 1 FROM service_accounts WHERE email = ?', email))) {
      throw new InvalidRequestError(`member ${JSON.stringify(member)} is not valid: service account ${email} does not exist`);
    }
    return member;
  }
}

/** SHA-256 (hex) of a whole key: what the database stores. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

function normaliseEmail(email: string): string {
  const e = email.startsWith('serviceAccount:') ? email.slice('serviceAccount:'.length) : email;
  if (!EMAIL.test(e)) {
    throw new InvalidRequestError(`${JSON.stringify(email)} is not a service account email: expected NAME@PROJECT.iam.gserviceaccount.com`);
  }
  return e;
}

/** The API key a request carries, or undefined when it carries none. */
function credentialOf(headers: HeaderSource): string | undefined {
  const get = (name: string): string | undefined => {
    if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
    const rec = headers as Record<string, string | string[] | undefined>;
    const v = rec[name] ?? Object.entries(rec).find(([k]) => k.toLowerCase() === name)?.[1];
    return Array.isArray(v) ? v[0] : v;
  };
  const apiKey = get('x-goog-api-key')?.trim();
  if (apiKey) return apiKey;
  const auth = get('authorization')?.trim();
  if (!auth) return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(auth);
  if (!m) throw new UnauthenticatedError('Authorization header must be "Bearer <key>"');
  return m[1];
}
