// The console's one way to the server: the same Vertex REST API the SDKs use, with the API key the
// user entered once (kept in localStorage) as x-goog-api-key. Errors are the server's google.rpc.Status
// messages.

export interface Settings { apiKey: string; project: string; location: string }

const STORE = 'tunekit.console.settings';

export function loadSettings(): Settings {
  try {
    const s = JSON.parse(localStorage.getItem(STORE) ?? '{}') as Partial<Settings>;
    return { apiKey: s.apiKey ?? '', project: s.project ?? '', location: s.location || 'us-central1' };
  } catch {
    return { apiKey: '', project: '', location: 'us-central1' };
  }
}

export function saveSettings(s: Settings): void {
  localStorage.setItem(STORE, JSON.stringify(s));
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** projects/P/locations/L of the settings. */
export function parent(): string {
  const s = loadSettings();
  return `projects/${encodeURIComponent(s.project)}/locations/${encodeURIComponent(s.location)}`;
}

function headers(json: boolean): Headers {
  const h = new Headers();
  const key = loadSettings().apiKey;
  if (key) h.set('x-goog-api-key', key);
  if (json) h.set('content-type', 'application/json');
  return h;
}

async function failure(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const e = (JSON.parse(text) as { error?: { message?: string; status?: string } }).error;
    if (e?.message) return new ApiError(res.status, e.status ?? String(res.status), e.message);
  } catch { /* not JSON */ }
  return new ApiError(res.status, String(res.status), text.slice(0, 300) || res.statusText);
}

/** A request to /v1beta1/PATH (PATH without a leading slash); resolves with the JSON answer. */
export async function api<T = Record<string, any>>(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const res = await fetch(`/v1beta1/${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: headers(init.body !== undefined),
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  if (!res.ok) throw await failure(res);
  return await res.json() as T;
}

/** The text of a URL on this server, sent with the key (e.g. an object's media). */
export async function fetchText(url: string): Promise<string> {
  const res = await fetch(url, { headers: headers(false) });
  if (!res.ok) throw await failure(res);
  return await res.text();
}

/** Every page of a list method: the items under `field`. */
export async function listAll<T = Record<string, any>>(path: string, field: string, signal?: AbortSignal): Promise<T[]> {
  const out: T[] = [];
  let token = '';
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api(`${path}${token ? `${sep}pageToken=${encodeURIComponent(token)}` : ''}`, signal ? { signal } : {});
    out.push(...((page[field] ?? []) as T[]));
    token = (page.nextPageToken as string | undefined) ?? '';
  } while (token);
  return out;
}

/**
 * POST .../M:streamGenerateContent?alt=sse: calls `onChunk` with each GenerateContentResponse as it
 * arrives (server-sent events, one JSON object per `data:` line).
 */
export async function streamGenerate(model: string, body: unknown, onChunk: (chunk: Record<string, any>) => void, signal: AbortSignal): Promise<void> {
  const res = await fetch(`/v1beta1/${model}:streamGenerateContent?alt=sse`, {
    method: 'POST', headers: headers(true), body: JSON.stringify(body), signal,
  });
  if (!res.ok || !res.body) throw await failure(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let end: number;
    while ((end = buffered.search(/\r?\n\r?\n/)) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end).replace(/^\r?\n\r?\n/, '');
      const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (!data) continue;
      const chunk = JSON.parse(data) as Record<string, any>;
      if (chunk.error) throw new ApiError(500, String(chunk.error.status ?? 'ERROR'), String(chunk.error.message ?? 'stream error'));
      onChunk(chunk);
    }
  }
}

/** The last path segment of a resource name. */
export const idOf = (name: string): string => name.slice(name.lastIndexOf('/') + 1);
