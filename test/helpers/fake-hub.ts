// A local stand-in for the Hugging Face Hub's HTTP API, covering what @huggingface/hub calls to download
// a model: GET /api/models/{repo}/revision/{rev} (info with the commit sha), GET /api/models/{repo}/tree/{rev}
// (listing with oid, size and lfs), POST /api/models/{repo}/paths-info/{rev}, and GET|HEAD
// /{repo}/resolve/{rev}/{path} with Range support, X-Repo-Commit and ETag headers. As on the Hub, an LFS
// file's resolve answers 302 with X-Linked-Etag (its sha256) and X-Linked-Size and redirects to a CDN on
// another origin (a second listener serving /__lfs/{sha256}), and errors carry X-Error-Code (RepoNotFound, RevisionNotFound,
// EntryNotFound, GatedRepo) with a {"error": ...} body.
// Repos are file maps keyed "org/name" (revision main) or "org/name@rev" (another revision).

import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeHubOptions {
  /** repo -> the token that may download its files; /resolve answers 401 without a token, 403 with another (GatedRepo). */
  gated?: Record<string, string>;
}

export interface FakeHub {
  url: string;
  close(): Promise<void>;
  /** "METHOD /path?query" of every request, in order; the CDN's are "METHOD cdn:/__lfs/...". */
  requests: string[];
  /** How many requests to the CDN carried an Authorization header (a token must not leave the Hub's origin). */
  cdnAuthorized(): number;
}

interface FakeFile {
  path: string;
  bytes: Buffer;
  /** git blob oid: of the content, or for an LFS file of its pointer file */
  oid: string;
  lfs?: { oid: string; size: number; pointerSize: number };
}

interface FakeRevision {
  commit: string;
  files: Map<string, FakeFile>;
}

const LFS_FILE = /\.(safetensors|bin|gguf|onnx|pt|pth|h5|msgpack)$/;
const LAST_MODIFIED = '2024-01-01T00:00:00.000Z';

export function gitBlobOid(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function makeFile(path: string, bytes: Buffer): FakeFile {
  if (!LFS_FILE.test(path)) return { path, bytes, oid: gitBlobOid(bytes) };
  const oid = sha256(bytes);
  const pointer = Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${bytes.length}\n`);
  return { path, bytes, oid: gitBlobOid(pointer), lfs: { oid, size: bytes.length, pointerSize: pointer.length } };
}

export async function startFakeHub(repos: Record<string, Record<string, Buffer>>, opts: FakeHubOptions = {}): Promise<FakeHub> {
  // repo -> revision name or commit -> files
  const store = new Map<string, Map<string, FakeRevision>>();
  const lfsBlobs = new Map<string, Buffer>();
  for (const [key, files] of Object.entries(repos)) {
    const at = key.indexOf('@');
    const repo = at < 0 ? key : key.slice(0, at);
    const rev = at < 0 ? 'main' : key.slice(at + 1);
    const fileMap = new Map(Object.entries(files).map(([p, b]) => [p, makeFile(p, b)]));
    const commitHash = createHash('sha1').update(`commit ${repo}@${rev}\n`);
    for (const f of [...fileMap.values()].sort((a, b) => (a.path < b.path ? -1 : 1))) commitHash.update(`${f.path} ${f.oid}\n`);
    const revision = { commit: commitHash.digest('hex'), files: fileMap };
    for (const f of fileMap.values()) if (f.lfs) lfsBlobs.set(f.lfs.oid, f.bytes);
    if (!store.has(repo)) store.set(repo, new Map());
    store.get(repo)!.set(rev, revision).set(revision.commit, revision);
  }

  const requests: string[] = [];
  let cdnAuthorized = 0;
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) sendJson(res, 500, { error: err.message });
      else res.destroy();
    });
  });
  const cdn = http.createServer((req, res) => {
    requests.push(`${req.method} cdn:${req.url}`);
    if (req.headers.authorization !== undefined) cdnAuthorized++;
    const m = /^\/__lfs\/([0-9a-f]{64})$/.exec(new URL(req.url!, cdnBase).pathname);
    const bytes = m ? lfsBlobs.get(m[1]) : undefined;
    if (!bytes) return sendJson(res, 404, { error: 'Not found' });
    sendBytes(req, res, bytes, { ETag: `"${m![1]}"` });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url!, base);
    const segs = url.pathname.split('/').slice(1).map(decodeURIComponent);

    const api = segs[0] === 'api' && segs[1] === 'models';
    const [org, name, op, rev, ...rest] = api ? segs.slice(2) : segs;
    const repo = `${org}/${name}`;
    const revisions = store.get(repo);
    if (!revisions) return sendError(res, 404, 'RepoNotFound', 'Repository not found');
    const revision = rev === undefined ? undefined : revisions.get(rev);
    if (!revision) return sendError(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
    const gatedToken = opts.gated?.[repo];

    if (api && op === 'revision' && req.method === 'GET') {
      return sendJson(res, 200, {
        _id: createHash('sha1').update(repo).digest('hex').slice(0, 24),
        id: repo,
        modelId: repo,
        sha: revision.commit,
        private: false,
        gated: gatedToken ? 'manual' : false,
        disabled: false,
        downloads: 0,
        likes: 0,
        lastModified: LAST_MODIFIED,
        pipeline_tag: 'text-generation',
        tags: [],
        siblings: [...revision.files.keys()].map((rfilename) => ({ rfilename })),
      });
    }
    if (api && op === 'tree' && req.method === 'GET') {
      return sendJson(res, 200, treeEntries(revision, rest.join('/'), url.searchParams.get('recursive') === 'true'));
    }
    if (api && op === 'paths-info' && req.method === 'POST') {
      const body = JSON.parse(await readBody(req)) as { paths?: string[]; expand?: boolean };
      const found = (body.paths ?? []).flatMap((p) => {
        const f = revision.files.get(p);
        if (!f) return [];
        const extra = body.expand
          ? { lastCommit: { id: revision.commit, title: 'Upload model', date: LAST_MODIFIED }, securityFileStatus: { status: 'safe' } }
          : {};
        return [{ ...fileEntry(f), ...extra }];
      });
      return sendJson(res, 200, found);
    }
    if (!api && op === 'resolve' && (req.method === 'GET' || req.method === 'HEAD')) {
      if (gatedToken) {
        const auth = req.headers.authorization;
        if (auth !== `Bearer ${gatedToken}`) {
          return auth === undefined
            ? sendError(res, 401, 'GatedRepo', `Access to model ${repo} is restricted. You must have access to it and be authenticated to access it. Please log in.`)
            : sendError(res, 403, 'GatedRepo', `Access to model ${repo} is restricted and you are not in the authorized list. Visit ${base}/${repo} to ask for access.`);
        }
      }
      const file = revision.files.get(rest.join('/'));
      if (!file) return sendError(res, 404, 'EntryNotFound', 'Entry not found');
      const common = { 'X-Repo-Commit': revision.commit };
      if (file.lfs) {
        res.writeHead(302, {
          ...common,
          Location: `${cdnBase}/__lfs/${file.lfs.oid}`,
          ETag: `"${file.oid}"`,
          'X-Linked-Etag': `"${file.lfs.oid}"`,
          'X-Linked-Size': String(file.lfs.size),
          'Content-Length': '0',
        });
        return void res.end();
      }
      return sendBytes(req, res, file.bytes, { ...common, ETag: `"${file.oid}"` });
    }
    sendJson(res, 404, { error: `fake hub: no route for ${req.method} ${url.pathname}` });
  }

  const listen = (s: http.Server) =>
    new Promise<string>((resolve) => s.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
  const base = await listen(server);
  const cdnBase = await listen(cdn);
  const stop = (s: http.Server) =>
    new Promise<void>((resolve, reject) => {
      s.close((err) => (err ? reject(err) : resolve()));
      s.closeAllConnections();
    });
  return {
    url: base,
    requests,
    cdnAuthorized: () => cdnAuthorized,
    close: async () => {
      await Promise.all([stop(server), stop(cdn)]);
    },
  };
}

function fileEntry(f: FakeFile): Record<string, unknown> {
  return { type: 'file', oid: f.oid, size: f.bytes.length, path: f.path, ...(f.lfs ? { lfs: f.lfs } : {}) };
}

/** The Hub's tree listing: files and directories under `dir`, children only unless recursive. */
function treeEntries(revision: FakeRevision, dir: string, recursive: boolean): Record<string, unknown>[] {
  const prefix = dir === '' ? '' : `${dir}/`;
  const dirs = new Set<string>();
  const files: Record<string, unknown>[] = [];
  for (const f of revision.files.values()) {
    if (!f.path.startsWith(prefix)) continue;
    const parts = f.path.slice(prefix.length).split('/');
    for (let i = 1; i < parts.length && (recursive || i === 1); i++) dirs.add(prefix + parts.slice(0, i).join('/'));
    if (recursive || parts.length === 1) files.push(fileEntry(f));
  }
  const dirEntries = [...dirs].sort().map((p) => ({ type: 'directory', oid: gitBlobOid(Buffer.from(p)), size: 0, path: p }));
  return [...dirEntries, ...files];
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: http.ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { error: message }, { 'X-Error-Code': code, 'X-Error-Message': message });
}

/** 200 with the whole file, or 206 for a satisfiable "Range: bytes=a-b" (b optional). */
function sendBytes(req: http.IncomingMessage, res: http.ServerResponse, bytes: Buffer, headers: Record<string, string>): void {
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  let body = bytes;
  let status = 200;
  const out: Record<string, string> = { ...headers, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
  if (range) {
    const start = Number(range[1]);
    const end = Math.min(range[2] === '' ? bytes.length - 1 : Number(range[2]), bytes.length - 1);
    if (start > end) {
      res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` });
      return void res.end();
    }
    body = bytes.subarray(start, end + 1);
    status = 206;
    out['Content-Range'] = `bytes ${start}-${end}/${bytes.length}`;
  }
  out['Content-Length'] = String(body.length);
  res.writeHead(status, out);
  res.end(req.method === 'HEAD' ? undefined : body);
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
