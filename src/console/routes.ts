// The web console's files under /console: the page (src/console/web/index.html), its stylesheet, the
// browser modules tsc compiles from src/console/web into dist/console (src/console/web/tsconfig.json),
// the report viewer page, the create form's options (options.json), and uPlot from node_modules. The
// files are a fixed table read once, at the first request: a URL names an entry of the table or is
// 404 (google.rpc.Status, like the API's errors), so no path reaches anything else.
// Every answer carries its content type, an ETag (a conditional GET is 304) and `cache-control:
// no-cache` (the browser revalidates, so a rebuilt console is seen at once). The console page's
// Content-Security-Policy allows only this server (scripts: its own files and the import map, by
// hash); the report viewer runs a report's inline script in a sandboxed, opaque-origin frame that may
// reach nothing.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';
import { HttpError, notFound } from '../api/errors.js';
import { ADAPTER_SIZES, adapterSizeName } from '../platform/jobs/spec.js';
import { DEFAULT_TUNE_OPTIONS } from '../train/trainer.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const WEB_SRC = path.join(ROOT, 'src', 'console', 'web');
const WEB_DIST = path.join(ROOT, 'dist', 'console');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

interface Served { body: Uint8Array<ArrayBuffer>; type: string; etag: string; csp?: string }

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('base64');

/** The import map of index.html (the one inline script of the console page, allowed by its hash). */
function importMapHash(html: string): string {
  const m = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('src/console/web/index.html has no import map');
  return `'sha256-${sha256(m[1]!)}'`;
}

function load(): Map<string, Served> {
  const files = new Map<string, Served>();
  const add = (url: string, file: string, csp?: string) => {
    const body = new Uint8Array(fs.readFileSync(file));
    files.set(url, { body, type: TYPES[path.extname(file)] ?? 'application/octet-stream', etag: `"${sha256(body).slice(0, 27)}"`, ...(csp ? { csp } : {}) });
  };
  if (!fs.existsSync(path.join(WEB_DIST, 'main.js'))) {
    throw new Error(`the console is not built (${WEB_DIST} has no main.js): run \`npm run build\``);
  }
  const html = fs.readFileSync(path.join(WEB_SRC, 'index.html'), 'utf8');
  const pageCsp = [
    "default-src 'self'", `script-src 'self' ${importMapHash(html)}`, "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:", "connect-src 'self'", "frame-src 'self'", "object-src 'none'", "base-uri 'none'",
    "form-action 'none'", "frame-ancestors 'none'",
  ].join('; ');
  add('', path.join(WEB_SRC, 'index.html'), pageCsp);
  add('console.css', path.join(WEB_SRC, 'console.css'));
  // The viewer shows a report (inline script and styles: the report is one self-contained page) in a
  // sandbox of its own: no origin, no network, no forms, no top navigation.
  add('viewer.html', path.join(WEB_SRC, 'viewer.html'),
    "sandbox allow-scripts; default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'");
  for (const name of fs.readdirSync(WEB_DIST)) {
    if (/\.js(\.map)?$/.test(name)) add(name, path.join(WEB_DIST, name));
  }
  // What the create form offers: Vertex's adapter sizes and tunekit's defaults, from their one definition.
  const options = new TextEncoder().encode(JSON.stringify({
    adapterSizes: ADAPTER_SIZES,
    defaults: { epochCount: DEFAULT_TUNE_OPTIONS.epochs, adapterSize: adapterSizeName(DEFAULT_TUNE_OPTIONS.adapterSize), learningRateMultiplier: DEFAULT_TUNE_OPTIONS.learningRateMultiplier },
  }));
  files.set('options.json', { body: options, type: 'application/json; charset=utf-8', etag: `"${sha256(options).slice(0, 27)}"` });
  const uplot = path.dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.esm.js'));
  add('vendor/uPlot.esm.js', path.join(uplot, 'uPlot.esm.js'));
  add('vendor/uPlot.min.css', path.join(uplot, 'uPlot.min.css'));
  return files;
}

/** The /console routes (mounted by the API app). */
export function consoleRoutes(): Hono {
  let files: Map<string, Served> | undefined;
  const app = new Hono();
  app.get('/*', (c) => {
    try {
      files ??= load();
    } catch (err) {
      throw new HttpError('UNAVAILABLE', `The web console is unavailable: ${(err as Error).message}`);
    }
    const rest = c.req.path.replace(/^\/console\/?/, '');
    const file = files.get(rest);
    if (!file) throw notFound(`The requested URL ${c.req.path} was not found on this server.`);
    const headers: Record<string, string> = {
      'content-type': file.type,
      'cache-control': 'no-cache',
      etag: file.etag,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    };
    if (file.csp) headers['content-security-policy'] = file.csp;
    if (rest === '') headers['x-frame-options'] = 'DENY';
    const match = c.req.header('if-none-match');
    if (match && match.split(',').some((t) => t.trim() === file.etag)) return c.body(null, 304, headers);
    return c.body(file.body, 200, headers);
  });
  return app;
}
