// The one fetch every @huggingface/hub call made by hub.ts goes through. For requests to the endpoint's
// own origin it adds the token, gives metadata requests a timeout, and turns every failure into a
// HubFailure the caller maps to a typed error. It exists because the library keeps only the status of a
// failed response (not the Hub's X-Error-Code header, which is what tells a missing repo from a missing
// revision or a gated one) and, while streaming a download, only an error's message.
// Requests to any other origin (the CDN or Xet storage a download is sent to) pass through untouched:
// no token, and the library sees their 403/429 answers and network errors itself, which it retries.

export const METADATA_TIMEOUT_MS = 10_000;

export type HubFailure =
  | { kind: 'unreachable'; detail: string }
  | { kind: 'http'; status: number; errorCode?: string; message: string; path: string };

/** Thrown by the fetch below; hub.ts maps `failure` to a TunekitError with the repo and cache in context. */
export class HubRequestError extends Error {
  readonly failure: HubFailure;
  constructor(failure: HubFailure) {
    super(describeFailure(failure));
    this.failure = failure;
  }
}

export interface HubFetch {
  fetch: typeof fetch;
  /** The last failure seen, also when the library reduced the thrown error to its message. */
  lastFailure(): HubFailure | undefined;
}

export function createHubFetch(opts: { endpoint: string; token?: string; base?: typeof fetch }): HubFetch {
  const base = opts.base ?? fetch;
  const origin = new URL(opts.endpoint).origin;
  let last: HubFailure | undefined;
  const fail = (failure: HubFailure): never => {
    last = failure;
    throw new HubRequestError(failure);
  };

  const hubFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    if (url.origin !== origin) return base(input, init);
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    if (opts.token && !headers.has('authorization')) headers.set('authorization', `Bearer ${opts.token}`);
    // API calls and the 1-byte range probe before a download; the download itself may take hours.
    const metadata = url.pathname.startsWith('/api/') || headers.get('range') === 'bytes=0-0';
    const signal = init?.signal ?? (metadata ? AbortSignal.timeout(METADATA_TIMEOUT_MS) : undefined);
    let res: Response;
    try {
      res = await base(input, { ...init, headers, ...(signal ? { signal } : {}) });
    } catch (err) {
      return fail({ kind: 'unreachable', detail: networkDetail(err) });
    }
    // A redirect to another origin (an LFS file's CDN) leaves that origin's error for the library.
    const answeredBy = res.url ? new URL(res.url).origin : origin;
    if (!res.ok && answeredBy === origin) {
      return fail({
        kind: 'http',
        status: res.status,
        errorCode: res.headers.get('x-error-code') ?? undefined,
        message: await errorMessage(res),
        path: url.pathname,
      });
    }
    return res;
  };
  return { fetch: hubFetch, lastFailure: () => last };
}

export function describeFailure(f: HubFailure): string {
  return f.kind === 'unreachable' ? f.detail : `HTTP ${f.status}${f.errorCode ? ` ${f.errorCode}` : ''} for ${f.path}: ${f.message}`;
}

function networkDetail(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return `no answer within ${METADATA_TIMEOUT_MS / 1000} s`;
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

/** The Hub answers errors as {"error": "..."} JSON; anything else is cut to one short line. */
async function errorMessage(res: Response): Promise<string> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    return res.statusText;
  }
  try {
    const json = JSON.parse(text) as { error?: unknown; message?: unknown };
    const msg = json.error ?? json.message;
    if (typeof msg === 'string') return msg;
  } catch {
    // not JSON
  }
  return text.replace(/\s+/g, ' ').trim().slice(0, 200) || res.statusText;
}
