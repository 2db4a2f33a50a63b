// How routes ask "who is calling, and may they do this?". Every route names the permission it needs
// (aiplatform.endpoints.predict, ...) and calls `guard` once before touching any resource. The
// implementation behind it is the platform's IAM; `insecureNoAuth` lets everyone do everything
// (`tunekit serve --insecure-no-auth`, for local play only).

export interface Principal {
  /** e.g. "serviceAccount:trainer@p.iam.tunekit" or "anonymous". */
  readonly id: string;
  /** The service account's email (NAME@PROJECT.iam.gserviceaccount.com), when the caller is one. */
  readonly email?: string;
}

export interface Authenticator {
  /** The caller, from x-goog-api-key or Authorization: Bearer; throws 401 UNAUTHENTICATED. */
  authenticate(headers: Headers): Promise<Principal> | Principal;
  /** Throws 403 PERMISSION_DENIED naming `permission` when the principal lacks it on `project`. */
  authorize(principal: Principal, permission: string, project: string): Promise<void> | void;
}

export const insecureNoAuth: Authenticator = {
  authenticate: () => ({ id: 'anonymous' }),
  authorize: () => undefined,
};

/** Permissions named by the routes. */
export const PERMISSIONS = {
  predict: 'aiplatform.endpoints.predict',
  publisherModelsGet: 'aiplatform.publisherModels.get',
} as const;

export async function guard(auth: Authenticator, headers: Headers, permission: string, project: string): Promise<Principal> {
  const principal = await auth.authenticate(headers);
  await auth.authorize(principal, permission, project);
  return principal;
}

/**
 * `?key=API_KEY` as Google's APIs accept it (the Gemini API, Vertex express mode): when a request
 * carries no x-goog-api-key and no Authorization header, its `key` query parameter becomes its
 * x-goog-api-key, so every route authenticates it the same way. A key in a header wins over one in
 * the URL. Called once per request by the app (app.ts) before any route.
 */
export function acceptQueryKey(req: Request): void {
  if (req.headers.has('x-goog-api-key') || req.headers.has('authorization')) return;
  const q = req.url.indexOf('?');
  if (q < 0) return;
  const key = new URLSearchParams(req.url.slice(q + 1)).get('key');
  if (!key) return;
  // A header holds printable ASCII only: any other key is one that matches no key (401), never a 500.
  req.headers.set('x-goog-api-key', /^[\x21-\x7e]+$/.test(key) ? key : 'invalid-key');
}
