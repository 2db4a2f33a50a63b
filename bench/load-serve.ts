// npm run load:serve — a load test of the serving engine over loopback: a server process (the API app
// on a tiny Llama with 4 tuned endpoints, each a LoRA adapter, beside the bare publisher model) and 32
// concurrent streaming clients spread over the 5 models for 60 s (LOAD_SECONDS, LOAD_CLIENTS). Every
// response is checked as the SDK parses it (SSE events of GenerateContentResponse, text parts, the last
// with finishReason and usageMetadata whose candidatesTokenCount matches); any error fails the run.
// Prints p50/p99 time to first token, aggregate tokens/s, and the server's RSS after a warm-up and
// after the load once idle (no forced GC), which must stay within RSS_BOUND_MIB of each other.
// runLoad() is also used, briefly, by test/serve-load.test.ts.

import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Random } from '../src/engine/random.js';

const MiB = 2 ** 20;
/** Allowed growth of the server's RSS from after the warm-up to after the load (idle). */
export const RSS_BOUND_MIB = 64;
const ADAPTERS = 4;

export interface LoadOptions {
  seconds: number;
  clients: number;
  /** Engine slots of the server (serve --parallel). */
  parallel: number;
  log?: (line: string) => void;
}

export interface LoadReport {
  requests: number;
  errors: string[];
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  ttftP50: number;
  ttftP99: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
}

const PREFIX = '/v1/projects/p/locations/us-central1';
const targets = [
  `${PREFIX}/publishers/google/models/llama-tiny`,
  ...Array.from({ length: ADAPTERS }, (_, i) => `${PREFIX}/endpoints/${100 + i}`),
];

/** The server side, in its own process: tiny model, adapters, the app on a loopback port. */
async function serve(workDir: string, parallel: number): Promise<void> {
  const { initTinyModel } = await import('../src/models/tiny.js');
  const { loadModelConfig } = await import('../src/models/loader.js');
  const { defaultLoraConfig, initLoraAdapter } = await import('../src/lora/lora.js');
  const { saveAdapter } = await import('../src/lora/peft.js');
  const { createApp } = await import('../src/api/app.js');
  const { ModelCatalog, registerPublisherModel } = await import('../src/api/catalog.js');
  const { notFound } = await import('../src/api/errors.js');
  const { listen } = await import('../src/api/server.js');
  const modelDir = path.join(workDir, 'llama-tiny');
  initTinyModel({ family: 'llama', size: 'tiny', seed: 1, out: modelDir });
  const config = loadModelConfig(modelDir);
  const adapterDirs = Array.from({ length: ADAPTERS }, (_, i) => {
    const a = initLoraAdapter(config, defaultLoraConfig(4 << (i % 3)), 10 + i);
    const rng = new Random(20 + i);
    for (const pairs of a.layers) for (const p of Object.values(pairs)) rng.fillNormal(p!.B, 0, 0.3);
    const dir = path.join(workDir, `adapter-${i}`);
    saveAdapter(dir, a);
    return dir;
  });
  const registrations = new Map<string, { publisher: string; name: string; dir: string; createTime: string }>();
  const store = {
    get: async (publisher: string, name: string) => registrations.get(`${publisher}/${name}`),
    list: async () => [...registrations.values()],
    put: async (r: { publisher: string; name: string; dir: string; createTime: string }) => void registrations.set(`${r.publisher}/${r.name}`, r),
  };
  await registerPublisherModel(store, modelDir, { name: 'llama-tiny' });
  const app = createApp({
    catalog: new ModelCatalog(store, undefined, { engine: { parallel, maxQueue: 256 } }),
    endpoints: {
      resolve: (project, location, endpoint) => {
        const i = Number(endpoint) - 100;
        if (!(i >= 0 && i < ADAPTERS)) throw notFound(`Endpoint \`projects/${project}/locations/${location}/endpoints/${endpoint}\` not found.`);
        return { publisher: 'google', model: 'llama-tiny', adapterDir: adapterDirs[i]!, modelVersion: `projects/p/locations/us-central1/models/${i}@1` };
      },
    },
  });
  const server = await listen(app, { port: 0, host: '127.0.0.1' });
  process.on('message', (m: { kind: string }) => {
    if (m.kind === 'rss') process.send!({ kind: 'rss', rss: process.memoryUsage().rss });
    if (m.kind === 'stop') void server.close().then(() => process.exit(0));
  });
  process.send!({ kind: 'ready', url: server.url });
}

interface StreamOutcome { ttft: number; tokens: number; error?: string }

/** One streaming request, read and checked event by event. */
async function streamOnce(url: string, target: string, rng: Random): Promise<StreamOutcome> {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'tell', 'me', 'about', 'the', 'river', 'stone'];
  const text = Array.from({ length: 2 + Math.floor(rng.next() * 30) }, () => words[Math.floor(rng.next() * words.length)]).join(' ');
  const maxOutputTokens = 8 + Math.floor(rng.next() * 56);
  const body = {
    contents: [{ role: 'user', parts: [{ text }] }],
    generationConfig: { temperature: 0.8, seed: Math.floor(rng.next() * 1e6), maxOutputTokens },
  };
  const t0 = performance.now();
  const res = await fetch(`${url}${target}:streamGenerateContent?alt=sse`, {
    method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' },
  });
  if (res.status !== 200) return { ttft: 0, tokens: 0, error: `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}` };
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let ttft = 0;
  const events: Array<Record<string, unknown>> = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    ttft ||= performance.now() - t0;
    buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\r\n\r\n')) >= 0) {
      const raw = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 4);
      if (!raw.startsWith('data: ')) return { ttft, tokens: 0, error: `malformed event ${JSON.stringify(raw.slice(0, 80))}` };
      events.push(JSON.parse(raw.slice(6)) as Record<string, unknown>);
    }
  }
  if (buffer !== '') return { ttft, tokens: 0, error: 'stream ended inside an event' };
  if (events.length === 0) return { ttft, tokens: 0, error: 'no events' };
  for (const e of events) {
    if (e.error) return { ttft, tokens: 0, error: `error event ${JSON.stringify(e.error)}` };
    const c = (e.candidates as Array<{ content?: { role?: string; parts?: Array<{ text?: unknown }> } }> | undefined)?.[0];
    if (!c || c.content?.role !== 'model' || !(c.content.parts ?? []).every((p) => typeof p.text === 'string')) {
      return { ttft, tokens: 0, error: `malformed response ${JSON.stringify(e).slice(0, 120)}` };
    }
  }
  const last = events[events.length - 1]! as { candidates: Array<{ finishReason?: string }>; usageMetadata?: { candidatesTokenCount?: number } };
  const n = last.usageMetadata?.candidatesTokenCount;
  if (!last.candidates[0]!.finishReason || typeof n !== 'number' || n < 0 || n > maxOutputTokens) {
    return { ttft, tokens: 0, error: `last event without finishReason or a plausible usage: ${JSON.stringify(last).slice(0, 160)}` };
  }
  return { ttft, tokens: n };
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Starts the server process, loads it for `seconds` with `clients` streaming clients, and reports. */
export async function runLoad(o: LoadOptions): Promise<LoadReport> {
  const log = o.log ?? (() => undefined);
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-load-'));
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--server', workDir, String(o.parallel)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ask = <T>(kind: string, reply: string) => new Promise<T>((resolve, reject) => {
    const onMessage = (m: { kind: string } & T) => {
      if (m.kind !== reply) return;
      child.off('message', onMessage);
      resolve(m);
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`the server exited (${code})`)));
    if (kind) child.send({ kind });
  });
  try {
    const { url } = await ask<{ url: string }>('', 'ready');
    const rss = async () => (await ask<{ rss: number }>('rss', 'rss')).rss / MiB;
    // Warm-up: every model and adapter loaded, then a round of the whole client count.
    const rng = new Random(7);
    for (const t of targets) {
      const w = await streamOnce(url, t, rng);
      if (w.error) throw new Error(`warm-up on ${t}: ${w.error}`);
    }
    await Promise.all(Array.from({ length: o.clients }, (_, i) => streamOnce(url, targets[i % targets.length]!, new Random(100 + i))));
    const rssBeforeMiB = await rss();
    log(`server RSS after warm-up: ${rssBeforeMiB.toFixed(0)} MiB; ${o.clients} clients for ${o.seconds} s ...`);
    const errors: string[] = [];
    const ttfts: number[] = [];
    let tokens = 0;
    let requests = 0;
    const t0 = performance.now();
    const end = t0 + o.seconds * 1000;
    await Promise.all(Array.from({ length: o.clients }, async (_, i) => {
      const r = new Random(1000 + i);
      for (let k = 0; performance.now() < end; k++) {
        const target = targets[(i + k) % targets.length]!;
        let out: StreamOutcome;
        try {
          out = await streamOnce(url, target, r);
        } catch (err) {
          out = { ttft: 0, tokens: 0, error: String(err) };
        }
        requests++;
        if (out.error) errors.push(`${target}: ${out.error}`);
        else {
          ttfts.push(out.ttft);
          tokens += out.tokens;
        }
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 1000));
    const rssAfterMiB = await rss();
    return {
      requests, errors, tokens, seconds, tokensPerSecond: tokens / seconds,
      ttftP50: percentile(ttfts, 50), ttftP99: percentile(ttfts, 99), rssBeforeMiB, rssAfterMiB,
    };
  } finally {
    child.send({ kind: 'stop' });
    await new Promise((r) => child.once('exit', r));
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] === self) {
  if (process.argv[2] === '--server') {
    await serve(process.argv[3]!, Number(process.argv[4]));
  } else {
    const seconds = Number(process.env.LOAD_SECONDS ?? 60);
    const clients = Number(process.env.LOAD_CLIENTS ?? 32);
    const parallel = Number(process.env.LOAD_PARALLEL ?? 32);
    const r = await runLoad({ seconds, clients, parallel, log: (l) => console.log(l) });
    console.log(`${r.requests} streamed requests in ${r.seconds.toFixed(1)} s over 1 base model + ${ADAPTERS} adapters (engine --parallel ${parallel}), ${r.errors.length} errors`);
    console.log(`time to first token: p50 ${r.ttftP50.toFixed(0)} ms, p99 ${r.ttftP99.toFixed(0)} ms; aggregate ${r.tokensPerSecond.toFixed(1)} generated tokens/s`);
    console.log(`server RSS: ${r.rssBeforeMiB.toFixed(0)} MiB after warm-up, ${r.rssAfterMiB.toFixed(0)} MiB after the load (bound: +${RSS_BOUND_MIB} MiB)`);
    for (const e of r.errors.slice(0, 10)) console.log(`error: ${e}`);
    const ok = r.errors.length === 0 && r.rssAfterMiB - r.rssBeforeMiB <= RSS_BOUND_MIB;
    console.log(ok ? 'load test: PASS' : 'load test: FAIL');
    process.exitCode = ok ? 0 : 1;
  }
}
