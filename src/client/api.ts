// The CLI's client of a running `tunekit serve`: the Vertex REST routes (/v1) over fetch, with the key
// as x-goog-api-key. Every failure is a TunekitError whose one-line message says what to do next: a
// server that cannot be reached names the URL and how to point at another; an answer with a
// google.rpc.Status keeps the server's message and status, plus a hint for 401, 403 and 404.

import { TunekitError, type ErrorCode } from '../errors.js';
import type { ClientSettings } from './config.js';
import { PROPERTY_ENV } from './config.js';
import type { Endpoint, ListResponse, Model, Operation, TuningJob, TuningJobMetrics } from './types.js';

/** An error answer of the server (or no answer), as one line. */
export class ApiCallError extends TunekitError {
  /** HTTP status; 0 when the server was not reached. */
  readonly httpStatus: number;
  readonly status: string;
  constructor(code: ErrorCode, httpStatus: number, status: string, message: string) {
    super(code, message);
    this.httpStatus = httpStatus;
    this.status = status;
  }
}

const CODES: readonly string[] = [
  'INVALID_ARGUMENT', 'NOT_FOUND', 'FAILED_PRECONDITION', 'UNIMPLEMENTED', 'OUT_OF_RANGE', 'UNAVAILABLE',
  'PERMISSION_DENIED', 'UNAUTHENTICATED', 'ALREADY_EXISTS', 'RESOURCE_EXHAUSTED', 'CANCELLED',
] satisfies readonly ErrorCode[];

const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();

/** The kinds of resources the client names: `ID`, or a full `projects/P/locations/L/KIND/ID` name. */
export type ResourceKind = 'tuningJobs' | 'models' | 'endpoints';

const LIST_COMMAND: Record<ResourceKind, string> = { tuningJobs: 'tunekit jobs list', models: 'tunekit models list', endpoints: 'tunekit endpoints list' };
const NOUN: Record<ResourceKind, string> = { tuningJobs: 'tuning job', models: 'model', endpoints: 'endpoint' };

export class ApiClient {
  constructor(readonly settings: ClientSettings) {}

  get parent(): string {
    return `projects/${this.settings.project}/locations/${this.settings.location}`;
  }

  /** The full name of `idOrName` (which may carry `@VERSION` for models). */
  name(kind: ResourceKind, idOrName: string): string {
    if (idOrName.startsWith('projects/')) {
      if (!new RegExp(`^projects/[^/]+/locations/[^/]+/${kind}/[^/]+$`).test(idOrName)) {
        throw new TunekitError('INVALID_ARGUMENT', `${JSON.stringify(idOrName)} is not a ${NOUN[kind]} name: give an ID or projects/P/locations/L/${kind}/ID`);
      }
      return idOrName;
    }
    if (idOrName === '' || idOrName.includes('/')) {
      throw new TunekitError('INVALID_ARGUMENT', `${JSON.stringify(idOrName)} is not a ${NOUN[kind]} ID: give an ID or projects/P/locations/L/${kind}/ID`);
    }
    return `${this.parent}/${kind}/${idOrName}`;
  }

  async request<T>(method: string, path: string, opts: { body?: unknown; query?: Record<string, string | undefined>; kind?: ResourceKind } = {}): Promise<T> {
    const url = new URL(`${this.settings.api.replace(/\/+$/, '')}/v1/${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, v);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (this.settings.key) headers['x-goog-api-key'] = this.settings.key;
    let res: Response;
    try {
      res = await fetch(url, { method, headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e as Error).message;
      throw new ApiCallError('UNAVAILABLE', 0, 'UNAVAILABLE',
        `cannot reach ${this.settings.api} (${why}): is \`tunekit serve\` running there? set --api or ${PROPERTY_ENV.api}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? {} : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.ok) {
      if (json === undefined || typeof json !== 'object') {
        throw new ApiCallError('UNAVAILABLE', res.status, 'UNKNOWN', `${url.origin} answered ${method} ${url.pathname} with something other than JSON: is --api a tunekit server?`);
      }
      return json as T;
    }
    throw this.errorOf(res.status, json, method, url, opts.kind);
  }

  private errorOf(http: number, json: unknown, method: string, url: URL, kind: ResourceKind | undefined): ApiCallError {
    const err = (json as { error?: { code?: number; message?: string; status?: string } } | undefined)?.error;
    if (!err || typeof err.message !== 'string') {
      return new ApiCallError(http >= 500 ? 'UNAVAILABLE' : 'INVALID_ARGUMENT', http, 'UNKNOWN',
        `${url.origin} answered ${method} ${url.pathname} with HTTP ${http} and no google.rpc.Status: is --api (${this.settings.api}) a tunekit server?`);
    }
    const status = err.status ?? 'UNKNOWN';
    let hint = '';
    if (http === 401) hint = `: give a key with --key or ${PROPERTY_ENV.key} (\`tunekit iam keys create\` makes one)`;
    else if (http === 403) hint = ': the key lacks this permission; an administrator can grant a role with `tunekit iam bind`';
    else if (http === 404 && kind) hint = `: \`${LIST_COMMAND[kind]}\` shows what exists in ${this.parent}`;
    const code = (CODES.includes(status) ? status : http >= 500 ? 'UNAVAILABLE' : 'INVALID_ARGUMENT') as ErrorCode;
    return new ApiCallError(code, http, status, `${oneLine(err.message).replace(/\.$/, '')} (${http} ${status})${hint}`);
  }

  /** Every item of a paged list, following nextPageToken. */
  private async listAll<T>(path: string, field: string, query: Record<string, string | undefined>, kind: ResourceKind): Promise<ListResponse<T>> {
    const items: T[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.request<Record<string, unknown>>('GET', path, { query: { ...query, pageToken }, kind });
      items.push(...((page[field] as T[] | undefined) ?? []));
      pageToken = page.nextPageToken as string | undefined;
    } while (pageToken);
    return { items };
  }

  listTuningJobs(filter?: string): Promise<ListResponse<TuningJob>> {
    return this.listAll<TuningJob>(`${this.parent}/tuningJobs`, 'tuningJobs', { filter }, 'tuningJobs');
  }

  getTuningJob(id: string): Promise<TuningJob> {
    return this.request('GET', this.name('tuningJobs', id), { kind: 'tuningJobs' });
  }

  tuningJobMetrics(id: string): Promise<TuningJobMetrics> {
    return this.request('GET', `${this.name('tuningJobs', id)}/metrics`, { kind: 'tuningJobs' });
  }

  async cancelTuningJob(id: string): Promise<void> {
    await this.request('POST', `${this.name('tuningJobs', id)}:cancel`, { body: {}, kind: 'tuningJobs' });
  }

  listModels(filter?: string): Promise<ListResponse<Model>> {
    return this.listAll<Model>(`${this.parent}/models`, 'models', { filter }, 'models');
  }

  getModel(id: string): Promise<Model> {
    return this.request('GET', this.name('models', id), { kind: 'models' });
  }

  async listModelVersions(id: string): Promise<Model[]> {
    return (await this.request<{ models?: Model[] }>('GET', `${this.name('models', id)}:listVersions`, { kind: 'models' })).models ?? [];
  }

  async deleteModel(id: string): Promise<Operation> {
    return done(await this.request<Operation>('DELETE', this.name('models', id), { kind: 'models' }));
  }

  listEndpoints(): Promise<ListResponse<Endpoint>> {
    return this.listAll<Endpoint>(`${this.parent}/endpoints`, 'endpoints', {}, 'endpoints');
  }

  getEndpoint(id: string): Promise<Endpoint> {
    return this.request('GET', this.name('endpoints', id), { kind: 'endpoints' });
  }

  async deployModel(endpoint: string, deployedModel: Record<string, unknown>, trafficSplit?: Record<string, number>): Promise<Operation> {
    const body = { deployedModel, ...(trafficSplit ? { trafficSplit } : {}) };
    return done(await this.request<Operation>('POST', `${this.name('endpoints', endpoint)}:deployModel`, { body, kind: 'endpoints' }));
  }

  async undeployModel(endpoint: string, deployedModelId: string, trafficSplit?: Record<string, number>): Promise<Operation> {
    const body = { deployedModelId, ...(trafficSplit ? { trafficSplit } : {}) };
    return done(await this.request<Operation>('POST', `${this.name('endpoints', endpoint)}:undeployModel`, { body, kind: 'endpoints' }));
  }
}

/** tunekit's operations are done when answered; one that failed is its error, in one line. */
function done(op: Operation): Operation {
  if (op.error) throw new ApiCallError('FAILED_PRECONDITION', 200, 'OPERATION_FAILED', `operation ${op.name} failed: ${oneLine(op.error.message ?? '')} (code ${op.error.code ?? '?'})`);
  return op;
}
