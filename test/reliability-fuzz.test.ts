// The reliability suite's fuzzer (issue 8): property-based request fuzzing of every route the API
// serves, in-process (app.fetch), over a real platform (IAM keys, storage, two succeeded tuning jobs
// with their models and endpoints) and tiny models with a 128-position context (so any generation is
// cheap, whatever the request says).
//
// Inputs (fast-check, fixed seed): a valid request with one to three mutations (a field set to a wrong
// type, huge / negative / non-finite numbers, number-like strings, unicode with lone surrogates, long
// strings, deep nesting, fields deleted, unknown fields, snake_case/camelCase twins, arrays repeated),
// arbitrary JSON, JSON text broken at the text level (truncated, duplicate keys, BOM, trailing bytes),
// invalid UTF-8 and raw bytes; odd path segments (percent-encoding errors, dots, colons, ids with bad
// versions, long ones), odd pageSize / pageToken / filter values, every credential kind, clients that
// leave after the first SSE event or while waiting; and JSONL dataset files built the same way, for
// tuning-job creates.
//
// The property, for every request: no 5xx other than deliberate 501/503; every non-2xx answer is
// application/json holding a google.rpc.Status whose code is the HTTP status and whose status is its
// canonical name; every 2xx answer is well-formed JSON (SSE events for alt=sse, where an error event is
// a Status too); nothing reaches the server's internal-error log; each request answers within BOUND_MS.
// After the runs, the jobs, models, endpoints and objects created before them read back unchanged.
//
// Faults that are known and not fixed yet (issue 8) are listed in KNOWN: the fuzzer counts cases that
// hit them instead of failing, and each has its own minimal reproduction below marked `todo`. Remove
// the KNOWN entry and the `todo` with the fix.
//
// TUNEKIT_FUZZ_SEED and TUNEKIT_FUZZ_SCALE (a multiplier of the run counts) explore further locally.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { createApp } from '../src/api/app.js';
import { ModelCatalog, registerPublisherModel } from '../src/api/catalog.js';
import { DbRegistrationStore } from '../src/api/db-store.js';
import { Platform } from '../src/platform/platform.js';
import { TuningService } from '../src/platform/jobs/service.js';
import { formatTask } from './helpers/format-task.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import { createBody, makeKeys, PROJECT, seedData, vertexJsonl, waitForJob, type Keys } from './helpers/tuning.js';
import { DELIBERATE_5XX, shortContextModelDir, statusBodyProblem, statusProblem } from './helpers/reliability.js';

const SEED = Number(process.env.TUNEKIT_FUZZ_SEED ?? 20240808);
const SCALE = Number(process.env.TUNEKIT_FUZZ_SCALE ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
/** No request may take longer than this. */
const BOUND_MS = 10_000;
/** How long a failing property may spend shrinking its counterexample. */
const SHRINK_MS = 20_000;
const LOC = 'us-central1';
const PARENT = `projects/${PROJECT}/locations/${LOC}`;

// ---------------------------------------------------------------------------------------------------
// The platform under test

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-fuzz-'));
const platform = await Platform.open({ dataDir });
const store = new DbRegistrationStore(platform.db);
await registerPublisherModel(store, shortContextModelDir('gemma3'), { name: 'gemma3-tiny' });
await registerPublisherModel(store, shortContextModelDir('qwen3'), { name: 'qwen3-tiny' });
// The full 4,096-position context, for the tests of large prompts (not fuzzed: its generations are long).
await registerPublisherModel(store, tinyModelDir('gemma3'), { name: 'gemma3-full' });
await seedData(platform, 8);
// Datasets that are wrong in ways the fuzzer's URIs may point at.
await platform.storage.putObject('us-data', 'invalid-utf8.jsonl', Buffer.concat([Buffer.from('{"contents": [{"role": "user", "parts": [{"text": "a'), Buffer.from([0xff, 0xc0, 0xaf]), Buffer.from('"}]}, {"role": "model", "parts": [{"text": "b"}]}]}\n')]));
await platform.storage.putObject('us-data', 'empty.jsonl', '');
await platform.storage.putObject('us-data', 'truncated.jsonl', '{"contents": [{"role": "user", "parts": [{"te');
await platform.storage.putObject('us-data', 'deep.jsonl', `{"contents": ${'['.repeat(20000)}${']'.repeat(20000)}}\n`);
await platform.storage.putObject('us-data', 'long-line.jsonl', vertexJsonl([{ input: 'word '.repeat(50_000), output: 'x' }]));
await platform.storage.putObject('us-data', 'messages.jsonl', formatTask(8, 3).map((e) => JSON.stringify({ messages: [{ role: 'user', content: e.input }, { role: 'model', content: e.output }] })).join('\n') + '\n');
const keys: Keys = await makeKeys(platform);
const tuning = new TuningService(platform, { pollMs: 100 });
const catalog = new ModelCatalog(store);
/** What the app's internal-error log received (every entry is a bug). */
const logged: unknown[] = [];
const app = createApp({ catalog, auth: platform.iam, assertLocation: async (l) => await platform.config.assertLocation(l), tuning, log: (e) => logged.push(e) });

/** Resources made before the fuzzing: two tuned models (each with an endpoint) and a spare deployment. */
interface Fixtures {
  job1: string; job2: string;
  model1: string; model2: string;
  endpoint1: string; endpoint2: string;
  /** A deployed model on endpoint2 that :undeployModel's valid request removes. */
  spare: string;
  /** Real page tokens of the lists. */
  tokens: string[];
}
let fx: Fixtures;
/** What reading the pre-fuzz resources gives (compared after the runs). */
let snapshot: Record<string, unknown>;

async function api(method: string, url: string, body?: unknown, key: string | undefined = keys.trainer): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key) headers['x-goog-api-key'] = key;
  const res = await app.fetch(new Request(`http://tunekit.test${url}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }));
  return { status: res.status, json: await res.json() };
}
const lastId = (name: string) => name.split('/').pop()!;

async function tune(displayName: string): Promise<Record<string, any>> {
  const created = await api('POST', `/v1/${PARENT}/tuningJobs`, createBody({ epochs: 1, validation: '', name: displayName }));
  assert.equal(created.status, 200, JSON.stringify(created.json));
  const job = await waitForJob(async () => (await api('GET', `/v1/${created.json.name}`)).json);
  assert.equal(job.state, 'JOB_STATE_SUCCEEDED', JSON.stringify(job.error));
  return job;
}

/** Everything the fuzzer must leave as it was. */
async function readStoredData(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const get = async (url: string) => {
    const r = await api('GET', url);
    // endpoint2 is the fuzzer's to deploy on and undeploy from: a model's deployedModels there may change.
    const json = Array.isArray(r.json.deployedModels) && url.includes('/models/')
      ? { ...r.json, deployedModels: r.json.deployedModels.filter((d: { endpoint: string }) => !d.endpoint.endsWith(`/endpoints/${fx.endpoint2}`)) }
      : r.json;
    out[url] = { status: r.status, json };
  };
  for (const id of [fx.job1, fx.job2]) {
    await get(`/v1/${PARENT}/tuningJobs/${id}`);
    await get(`/v1/${PARENT}/tuningJobs/${id}/metrics`);
  }
  await get(`/v1/${PARENT}/models/${fx.model1}`);
  await get(`/v1/${PARENT}/models/${fx.model1}@1`);
  await get(`/v1/${PARENT}/models/${fx.model2}`);
  await get(`/v1/${PARENT}/endpoints/${fx.endpoint1}`);
  await get(`/v1/${PARENT}/tuningJobs?filter=${encodeURIComponent('state="JOB_STATE_SUCCEEDED"')}`);
  await get('/v1/publishers/google/models');
  for (const b of ['us-data', 'eu-data']) {
    for (const o of ['train.jsonl', 'validation.jsonl']) out[`gs://${b}/${o}`] = (await platform.storage.readObject(b, o)).toString('base64');
  }
  const adapter = (out[`/v1/${PARENT}/models/${fx.model1}`] as { json: { artifactUri: string } }).json.artifactUri;
  const [bucket, ...prefix] = adapter.slice('gs://'.length).split('/');
  out[adapter] = await Promise.all((await platform.storage.listObjects(bucket!, { prefix: prefix.join('/') })).objects
    .map(async (o) => [o.name, o.generation, (await platform.storage.readObject(bucket!, o.name)).toString('base64')]));
  const gen = await api('POST', `/v1/${PARENT}/endpoints/${fx.endpoint1}:generateContent`, { contents: [{ role: 'user', parts: [{ text: 'the sky is red' }] }], generationConfig: { temperature: 0, maxOutputTokens: 6 } });
  out['endpoint1:generateContent'] = { status: gen.status, text: gen.json.candidates?.[0]?.content?.parts?.[0]?.text, usage: gen.json.usageMetadata };
  return out;
}

before(async () => {
  await tuning.runner.start();
  const j1 = await tune('reliability-original');
  const j2 = await tune('reliability-deploy-target');
  await tuning.runner.stop(); // jobs the fuzzer creates stay PENDING and are cancelled at once
  const [m1, m2] = [j1, j2].map((j) => lastId(j.tunedModel.model).replace(/@\d+$/, ''));
  const [e1, e2] = [j1, j2].map((j) => lastId(j.tunedModel.endpoint));
  const spare = await api('POST', `/v1/${PARENT}/endpoints/${e2}:deployModel`, { deployedModel: { model: `${PARENT}/models/${m1}` } });
  assert.equal(spare.status, 200, JSON.stringify(spare.json));
  const tokens: string[] = [];
  for (const list of ['tuningJobs', 'models', 'endpoints']) {
    const r = await api('GET', `/v1/${PARENT}/${list}?pageSize=1`);
    if (r.json.nextPageToken) tokens.push(r.json.nextPageToken);
  }
  fx = { job1: lastId(j1.name), job2: lastId(j2.name), model1: m1!, model2: m2!, endpoint1: e1!, endpoint2: e2!, spare: spare.json.response.deployedModel.id, tokens };
  snapshot = await readStoredData();
  assert.equal(logged.length, 0, String(logged[0]));
});

after(async () => {
  await tuning.runner.stop();
  await platform.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------
// Requests and the property

interface Call {
  route: string;
  method: string;
  /** Already percent-encoded. */
  path: string;
  /** Already encoded, without '?'. */
  query: string;
  headers: Record<string, string>;
  body?: Uint8Array;
  /**
   * The client leaves: after the first SSE event ('first-event': the body is cancelled and the
   * request's signal aborted, as a closed socket does), or a few milliseconds after sending ('waiting').
   */
  disconnect?: 'first-event' | 'waiting';
  /** The deepest nesting put into the body (0: ordinary). */
  depth: number;
  invalidUtf8: boolean;
}

interface Outcome {
  timedOut: boolean;
  /** The client left before an answer could be read (a disconnect): only the log and the time are checked. */
  left?: boolean;
  status: number;
  contentType: string | null;
  text: string;
  ms: number;
  /** What the internal-error log received meanwhile. */
  logged: unknown[];
}

const decoder = new TextDecoder();

/** Answers per route and status; TUNEKIT_FUZZ_STATS=1 prints them at exit (to see what the fuzzer reaches). */
const STATS = new Map<string, number>();
process.on('exit', () => {
  if (process.env.TUNEKIT_FUZZ_STATS) process.stderr.write(`${[...STATS].sort().map(([k, n]) => `${k} ${n}`).join('\n')}\n`);
});

async function perform(call: Call): Promise<Outcome> {
  const out = await send(call);
  const k = `${call.route} ${out.timedOut ? 'timeout' : out.status}`;
  STATS.set(k, (STATS.get(k) ?? 0) + 1);
  return out;
}

async function send(call: Call): Promise<Outcome> {
  const before = logged.length;
  const t0 = performance.now();
  const url = `http://tunekit.test${call.path}${call.query ? `?${call.query}` : ''}`;
  const client = new AbortController();
  const leave = call.disconnect === 'waiting' ? setTimeout(() => client.abort(), 5) : undefined;
  const work = (async () => {
    const res = await app.fetch(new Request(url, {
      method: call.method, headers: call.headers, signal: client.signal, ...(call.body ? { body: call.body as Uint8Array<ArrayBuffer> } : {}),
    }));
    const contentType = res.headers.get('content-type');
    let text = '';
    if (res.body && call.disconnect === 'waiting' && /event-stream/.test(contentType ?? '')) {
      // A client that has left reads nothing more: the stream is cancelled, as a closed socket does.
      await new Promise((r) => setTimeout(r, 10));
      await res.body.cancel();
      return { status: res.status, contentType, text: '', left: true };
    }
    if (res.body && call.disconnect === 'first-event' && res.status === 200 && /event-stream/.test(contentType ?? '')) {
      const reader = res.body.getReader();
      const first = await reader.read();
      text = first.value ? decoder.decode(first.value) : '';
      client.abort();
      await reader.cancel();
    } else {
      text = await res.text();
    }
    return { status: res.status, contentType, text, left: false };
  })().catch((err: unknown) => {
    if (client.signal.aborted) return { status: 0, contentType: null, text: '', left: true };
    throw err;
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), BOUND_MS); });
  const r = await Promise.race([work, timeout]);
  clearTimeout(timer);
  clearTimeout(leave);
  const ms = performance.now() - t0;
  if (r === 'timeout') return { timedOut: true, status: 0, contentType: null, text: '', ms, logged: logged.slice(before) };
  return { timedOut: false, ...r, ms, logged: logged.slice(before) };
}

function sseProblems(text: string, complete: boolean): string[] {
  const out: string[] = [];
  const events = text.split(/\r?\n\r?\n/).filter((e) => e.trim() !== '');
  if (complete && events.length === 0) out.push('an SSE response without events');
  for (const e of events) {
    const m = /^data: (.*)$/s.exec(e);
    if (!m) {
      out.push(`an SSE event that is not "data: ...": ${JSON.stringify(e.slice(0, 200))}`);
      continue;
    }
    let json: any;
    try {
      json = JSON.parse(m[1]!);
    } catch {
      out.push(`an SSE event that is not JSON: ${JSON.stringify(e.slice(0, 200))}`);
      continue;
    }
    if (json && typeof json === 'object' && 'error' in json) {
      const p = statusBodyProblem(undefined, json);
      if (p) out.push(`SSE error event: ${p}`);
      else if (json.error.code >= 500 && !DELIBERATE_5XX.includes(json.error.code)) out.push(`SSE error event ${json.error.code}: ${JSON.stringify(json).slice(0, 300)}`);
    }
  }
  return out;
}

function problems(call: Call, out: Outcome): string[] {
  const p: string[] = [];
  if (out.timedOut) {
    p.push(`no answer within ${BOUND_MS} ms`);
  } else if (out.left) {
    // nothing to read
  } else {
    if (out.status >= 500 && !DELIBERATE_5XX.includes(out.status)) p.push(`HTTP ${out.status}`);
    if (out.status < 100 || out.status > 599) p.push(`HTTP status ${out.status}`);
    if (call.method === 'HEAD') {
      // no body to check
    } else if (out.status < 200 || out.status >= 300) {
      const s = statusProblem(out.status, out.contentType, out.text);
      if (s) p.push(s);
    } else if (/^text\/event-stream/.test(out.contentType ?? '')) {
      if (!/(^|&)alt=sse(&|$)/.test(call.query)) p.push('an event stream without alt=sse');
      p.push(...sseProblems(out.text, !call.disconnect));
    } else if (!/^application\/json\b/.test(out.contentType ?? '')) {
      p.push(`2xx with content-type ${JSON.stringify(out.contentType)}`);
    } else {
      try {
        JSON.parse(out.text);
      } catch {
        p.push(`2xx body is not JSON: ${JSON.stringify(out.text.slice(0, 200))}`);
      }
    }
  }
  for (const e of out.logged) p.push(`internal error logged: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  return p;
}

const decodeQuery = (query: string, name: string): string[] => {
  const values: string[] = [];
  for (const part of query.split('&')) {
    const [k, v = ''] = part.split('=');
    if (k === name) {
      try {
        values.push(decodeURIComponent(v.replace(/\+/g, ' ')));
      } catch {
        values.push(v);
      }
    }
  }
  return values;
};

/** Faults that are known and not yet fixed (issue 8): cases that hit them are counted, not failed. */
const KNOWN: { todo: string; matches: (call: Call, out: Outcome) => boolean }[] = [
  // None at present. An entry: { todo: 'issue N: what is wrong', matches: (call, out) => ... }, with a
  // minimal reproduction below marked { todo } as well.
];
const knownHits = new Map<string, number>();

function showBody(body: Uint8Array | undefined): string {
  if (!body) return '(none)';
  const text = Buffer.from(body).toString('latin1');
  const shown = body.length > 600 ? `${text.slice(0, 400)} ... ${text.slice(-150)}` : text;
  return `${body.length} bytes: ${JSON.stringify(shown)}`;
}

function describe(call: Call, out: Outcome, found: string[]): string {
  return [
    `${call.route}: ${found.join('; ')}`,
    `request: ${call.method} ${call.path}${call.query ? `?${call.query}` : ''}`.slice(0, 2000),
    `headers: ${JSON.stringify(call.headers)}`,
    `body: ${showBody(call.body)}`,
    `answer after ${Math.round(out.ms)} ms: ${out.timedOut ? '(none)' : `${out.status} ${out.contentType} ${JSON.stringify(out.text.slice(0, 500))}`}`,
  ].join('\n');
}

/** Sends the request and checks the property; what was created is cleaned up through `onCreated`. */
async function check(call: Call): Promise<Outcome> {
  const out = await perform(call);
  const found = problems(call, out);
  if (found.length) {
    const known = KNOWN.find((k) => k.matches(call, out));
    if (!known) throw new Error(describe(call, out, found));
    knownHits.set(known.todo, (knownHits.get(known.todo) ?? 0) + 1);
  }
  return out;
}

/** fc.assert with a fixed seed, and a failure message that stays readable (counterexamples may be megabytes). */
async function assertProperty<T>(arb: fc.Arbitrary<T>, numRuns: number, predicate: (v: T) => Promise<void>, seedOffset: number): Promise<void> {
  const seed = SEED + seedOffset;
  // Shrinking stops SHRINK_MS after the first failure (later candidates pass): a failing case that is
  // slow (a hang, a large dataset) is still reported, as the smallest failing case found by then.
  let firstFailure: number | undefined;
  const bounded = async (v: T): Promise<void> => {
    if (firstFailure !== undefined && performance.now() - firstFailure > SHRINK_MS) return;
    try {
      await predicate(v);
    } catch (e) {
      firstFailure ??= performance.now();
      throw e;
    }
  };
  const details = await fc.check(fc.asyncProperty(arb, bounded), {
    seed, numRuns: runs(numRuns), skipAllAfterTimeLimit: 240_000, // bounds the shrinking of a hang
  });
  if (!details.failed) return;
  const err = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  const example = fc.stringify(details.counterexample);
  throw new Error([
    `Property failed after ${details.numRuns} run(s), shrunk ${details.numShrinks} time(s); replay: fc.assert(property, { seed: ${seed}, path: ${JSON.stringify(details.counterexamplePath)} })`,
    err.length > 4000 ? `${err.slice(0, 4000)}...` : err,
    `counterexample (${example.length} chars): ${example.length > 1500 ? `${example.slice(0, 1000)} ... ${example.slice(-300)}` : example}`,
  ].join('\n'));
}

// ---------------------------------------------------------------------------------------------------
// Arbitraries

const w = <T>(...pairs: [number, fc.Arbitrary<T>][]): fc.Arbitrary<T> => fc.oneof(...pairs.map(([weight, arbitrary]) => ({ weight, arbitrary })));

/** A JSON token written into the body text as is (numbers JSON.stringify cannot write, deep nesting). */
class Raw {
  constructor(readonly text: string) {}
}

function serialize(v: unknown): string {
  const raws: string[] = [];
  const s = JSON.stringify(v, (_k, x: unknown) => (x instanceof Raw ? `\u0000RAW${raws.push(x.text) - 1}\u0000` : x)) ?? 'null';
  return s.replace(/"\\u0000RAW(\d+)\\u0000"/g, (_m, i: string) => raws[Number(i)]!);
}

function setOwn(target: any, key: string | number, value: unknown): void {
  if (Array.isArray(target) && typeof key === 'number') target[key] = value;
  else Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true }); // "__proto__" too
}

function clone<T>(v: T): T {
  if (v instanceof Raw || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(clone) as T;
  const out = {};
  for (const k of Object.keys(v)) setOwn(out, k, clone((v as Record<string, unknown>)[k]));
  return out as T;
}

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const oddStrings = fc.constantFrom(
  '', ' ', '\t\n', 'NaN', 'Infinity', '-Infinity', '1e+300', '-1', '0', '-0', '1.5', '0x1F', ' 7 ', '７', 'null', 'true',
  '\u0000', 'a\u0000b', '\u202e', '\u{1F4A5}', 'e\u0301', 'JOB_STATE_SUCCEEDED', 'ADAPTER_SIZE_ONE', 'ADAPTER_SIZE_THIRTY_TWO',
  'TUNING_MODE_FULL', 'HARM_CATEGORY_HATE_SPEECH', 'BLOCK_NONE', 'gs://us-data/train.jsonl', 'gs://', 'gs://us-data/',
  'gs://eu-data/train.jsonl', 'gs://nope/x.jsonl', 'gs://us-data/../train.jsonl', 'user', 'model', 'system', 'assistant',
  '__proto__', '<think>', '</think>', '<start_of_turn>', '<end_of_turn>', '<|im_start|>', '<|im_end|>', '<|endoftext|>',
  '{{ raise_exception("x") }}', '{% for x in range(99999999) %}{% endfor %}', '%s%n', '../../etc/passwd', 'application/json',
  'gemma3-tiny', 'publishers/google/models/qwen3-tiny', 'projects/p/locations/us-central1/publishers/google/models/gemma3-tiny@1',
);
const longStrings = fc.tuple(fc.constantFrom(1_000, 20_000, 200_000), fc.constantFrom('a', 'é', '\u{1F4A5}', ' ', 'word ', '\uD800', '<start_of_turn>'))
  .map(([n, unit]) => unit.repeat(Math.ceil(n / unit.length)));
const mixedUnicode = fc.array(w<string>([3, fc.string({ unit: 'binary', maxLength: 3 })], [1, loneSurrogate]), { maxLength: 10 }).map((a) => a.join(''));
const anyString: fc.Arbitrary<string> = w<string>([4, oddStrings], [3, fc.string({ unit: 'binary', maxLength: 40 })], [2, mixedUnicode], [1, longStrings]);
const shortString: fc.Arbitrary<string> = w<string>([4, oddStrings], [3, fc.string({ unit: 'binary', maxLength: 20 })], [2, mixedUnicode]);

const rawNumbers = fc.constantFrom('1e999', '-1e999', '1E400', '-0.0', '123456789012345678901234567890', '1e-400', '1.0', '2e0').map((t) => new Raw(t));
const oddNumber: fc.Arbitrary<unknown> = w<unknown>(
  [3, fc.constantFrom(0, -0, 1, -1, 0.5, 1.5, 2, 2 ** 31, 2 ** 31 - 1, -(2 ** 31) - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 1e21, 1e308, -1e308, 5e-324, 1e-7, 128, 4096, 100_000)],
  [2, fc.integer()],
  [1, fc.double({ noNaN: true, noDefaultInfinity: true })],
  [1, rawNumbers],
);
const keyName = w<string>(
  [3, fc.constantFrom('unknownField', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', ' ', 'k'.repeat(1000),
    'contents', 'parts', 'text', 'thought', 'role', 'generation_config', 'generationConfig', 'max_output_tokens', 'inlineData', 'functionCall',
    'thoughtSignature', '@type', 'tools', 'labels', 'description', 'baseModel', 'base_model')],
  [1, shortString],
);
const weirdValue: fc.Arbitrary<unknown> = w<unknown>(
  [2, fc.constant(null)],
  [1, fc.boolean()],
  [4, oddNumber],
  [5, anyString],
  [1, fc.constantFrom([], {}, [[]], [{}], [null], { '': '' }, { text: 'x' }, [{ text: 'x' }], { role: 'user', parts: [] })],
  [2, fc.jsonValue({ maxDepth: 3 })],
  [1, fc.array(shortString, { maxLength: 8 })],
  [1, fc.dictionary(keyName, shortString, { maxKeys: 5 })],
);

type Op = 'set' | 'delete' | 'add' | 'rename' | 'wrap' | 'repeat' | 'retype';
const op = w<Op>([5, fc.constant('set')], [2, fc.constant('delete')], [2, fc.constant('add')], [1, fc.constant('rename')],
  [1, fc.constant('wrap')], [1, fc.constant('repeat')], [1, fc.constant('retype')]);
const mutation = fc.record({
  op, at: fc.nat(), value: weirdValue, key: keyName, flag: fc.boolean(),
  depth: fc.constantFrom(2, 8, 64, 1000, 20_000, 100_000), n: fc.constantFrom(0, 2, 30, 3000),
});
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

type Path = (string | number)[];
function allPaths(v: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => allPaths(x, [...prefix, i], out));
  else if (v !== null && typeof v === 'object' && !(v instanceof Raw)) for (const k of Object.keys(v)) allPaths((v as any)[k], [...prefix, k], out);
  return out;
}
const camel = (s: string) => s.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The base with the mutations applied (paths are those of the base; a path a mutation removed is skipped). */
function mutate(base: unknown, mutations: Mutation[]): { value: unknown; depth: number } {
  const root: any = { v: clone(base) };
  const paths = allPaths(base);
  let depth = 0;
  for (const m of mutations) {
    const p: Path = ['v', ...paths[m.at % paths.length]!];
    let parent: any = root;
    for (const k of p.slice(0, -1)) parent = parent !== null && typeof parent === 'object' ? parent[k] : undefined;
    if (parent === null || typeof parent !== 'object' || parent instanceof Raw) continue;
    const last = p[p.length - 1]!;
    const cur = parent[last];
    if (!Object.prototype.hasOwnProperty.call(parent, last)) continue;
    switch (m.op) {
      case 'set':
        setOwn(parent, last, clone(m.value));
        break;
      case 'delete':
        if (p.length === 1) setOwn(parent, last, {});
        else if (Array.isArray(parent)) parent.splice(last as number, 1);
        else delete parent[last];
        break;
      case 'add': {
        const target = cur !== null && typeof cur === 'object' && !Array.isArray(cur) && !(cur instanceof Raw) ? cur : Array.isArray(parent) ? null : parent;
        if (target) setOwn(target, m.key, clone(m.value));
        break;
      }
      case 'rename': {
        if (typeof last !== 'string' || p.length === 1) break;
        const other = last.includes('_') ? camel(last) : snake(last);
        if (other === last) break;
        if (m.flag) delete parent[last]; // moved to the other spelling
        setOwn(parent, other, m.flag ? cur : clone(m.value)); // or both spellings, with different values
        break;
      }
      case 'wrap': {
        const inner = serialize(cur);
        const text = m.flag ? `${'['.repeat(m.depth)}${inner}${']'.repeat(m.depth)}` : `${'{"a":'.repeat(m.depth)}${inner}${'}'.repeat(m.depth)}`;
        setOwn(parent, last, new Raw(text));
        depth = Math.max(depth, m.depth);
        break;
      }
      case 'repeat':
        if (Array.isArray(cur) && cur.length > 0) setOwn(parent, last, Array.from({ length: m.n }, (_x, i) => clone(cur[i % cur.length])));
        else if (typeof cur === 'string' && cur.length > 0) setOwn(parent, last, cur.repeat(Math.min(m.n, Math.floor(400_000 / cur.length))));
        break;
      case 'retype':
        setOwn(parent, last, typeof cur === 'number' ? String(cur)
          : typeof cur === 'string' ? (Number.isNaN(Number(cur)) ? [cur] : Number(cur))
          : typeof cur === 'boolean' ? String(cur)
          : Array.isArray(cur) ? (cur.length ? clone(cur[0]) : {})
          : cur !== null && typeof cur === 'object' && !(cur instanceof Raw) ? [clone(cur)] : 'null');
        break;
    }
  }
  return { value: root.v, depth };
}

type TextEdit = { edit: 'truncate' | 'bom' | 'garbage' | 'nul' | 'pad' | 'duplicateKey' | 'comment' | 'singleQuotes' | 'array' | 'twice' | 'trailingComma' | 'empty' | 'literal' | 'nanLiteral'; n: number };
const textEdit: fc.Arbitrary<TextEdit> = fc.record({
  edit: fc.constantFrom('truncate', 'bom', 'garbage', 'nul', 'pad', 'duplicateKey', 'comment', 'singleQuotes', 'array', 'twice', 'trailingComma', 'empty', 'literal', 'nanLiteral'),
  n: fc.nat(),
});
function editText(t: string, e: TextEdit): string {
  switch (e.edit) {
    case 'truncate': return t.slice(0, e.n % (t.length + 1));
    case 'bom': return `\uFEFF${t}`;
    case 'garbage': return `${t}}{"x": 1}`;
    case 'nul': return `${t}\u0000`;
    case 'pad': return `  \r\n\t${t}\n\n  `;
    case 'duplicateKey': return t.replace(/^\{"([^"]+)":/, '{"$1": [1, {"a": null}], "$1":');
    case 'comment': return t.replace(/^\{/, '{/* comment */');
    case 'singleQuotes': return t.replace(/"/g, "'");
    case 'array': return `[${t}]`;
    case 'twice': return `${t}${t}`;
    case 'trailingComma': return t.replace(/\}$/, ',}');
    case 'empty': return '';
    case 'literal': return ['null', '"text"', '1', 'true', '[]', '{', '}', '"', '{"contents"}', '{"a":1,}'][e.n % 10]!;
    case 'nanLiteral': return t.replace(/:\s*(-?\d+(\.\d+)?)/, ': NaN');
  }
}

/** Byte sequences that are not UTF-8: a lone byte, overlong, surrogate, truncated sequences, above U+10FFFF. */
const BAD_UTF8 = [[0xff], [0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xfe, 0xff], [0xf0, 0x9f, 0x92]];
const badUtf8 = fc.record({ seq: fc.nat({ max: BAD_UTF8.length - 1 }), at: fc.nat(), inString: fc.boolean() });
function insertBadUtf8(text: string, b: { seq: number; at: number; inString: boolean }): Uint8Array {
  const bytes = Buffer.from(text, 'utf8');
  let at = b.at % (bytes.length + 1);
  if (b.inString) {
    const q = text.indexOf('"text": "') >= 0 ? text.indexOf('"text": "') + 9 : text.indexOf('":"') >= 0 ? text.indexOf('":"') + 3 : text.indexOf('"') + 1;
    at = Buffer.byteLength(text.slice(0, Math.max(0, q)), 'utf8');
  }
  return Buffer.concat([bytes.subarray(0, at), Buffer.from(BAD_UTF8[b.seq]!), bytes.subarray(at)]);
}

type BodySpec =
  | { kind: 'valid' }
  | { kind: 'mutated'; mutations: Mutation[] }
  | { kind: 'json'; value: unknown }
  | { kind: 'text'; mutations: Mutation[]; edit: TextEdit }
  | { kind: 'utf8'; mutations: Mutation[]; bad: { seq: number; at: number; inString: boolean } }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'none' };

const bodySpec: fc.Arbitrary<BodySpec> = w<BodySpec>(
  [2, fc.constant({ kind: 'valid' as const })],
  [12, fc.array(mutation, { minLength: 1, maxLength: 3 }).map((mutations) => ({ kind: 'mutated' as const, mutations }))],
  [2, w<unknown>([3, fc.jsonValue({ maxDepth: 4 })], [1, fc.object({ maxDepth: 3 })]).map((value) => ({ kind: 'json' as const, value }))],
  [2, fc.record({ mutations: fc.array(mutation, { maxLength: 1 }), edit: textEdit }).map((r) => ({ kind: 'text' as const, ...r }))],
  [1, fc.record({ mutations: fc.array(mutation, { maxLength: 1 }), bad: badUtf8 }).map((r) => ({ kind: 'utf8' as const, ...r }))],
  [1, fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ kind: 'bytes' as const, bytes }))],
  [1, fc.constant({ kind: 'none' as const })],
);

function renderBody(base: unknown, spec: BodySpec): { body?: Uint8Array; depth: number; invalidUtf8: boolean } {
  const enc = (s: string) => Buffer.from(s, 'utf8');
  switch (spec.kind) {
    case 'valid': return { body: enc(serialize(base)), depth: 0, invalidUtf8: false };
    case 'mutated': {
      const m = mutate(base, spec.mutations);
      return { body: enc(serialize(m.value)), depth: m.depth, invalidUtf8: false };
    }
    case 'json': return { body: enc(serialize(spec.value)), depth: 0, invalidUtf8: false };
    case 'text': {
      const m = mutate(base, spec.mutations);
      return { body: enc(editText(serialize(m.value), spec.edit)), depth: m.depth, invalidUtf8: false };
    }
    case 'utf8': {
      const m = mutate(base, spec.mutations);
      return { body: insertBadUtf8(serialize(m.value), spec.bad), depth: m.depth, invalidUtf8: true };
    }
    case 'bytes': return { body: spec.bytes, depth: 0, invalidUtf8: Buffer.from(Buffer.from(spec.bytes).toString('utf8'), 'utf8').compare(Buffer.from(spec.bytes)) !== 0 };
    case 'none': return { depth: 0, invalidUtf8: false };
  }
}

// ---- path segments, queries, headers

/** Percent-encodes a path segment or query value byte by byte (lone surrogates as U+FFFD). */
const pct = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => (/[A-Za-z0-9._~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
const RAW_SEGMENTS = [
  '', '%20', '.', '..', '%2E%2E', '%2F', '%2F..%2F', '%00', '%ZZ', '%', '%E0%A4%A', '%C0%AF', '%ED%A0%80', '%FF', ':', 'a:b', '::', '@', '@1',
  '1e+300', '-1', '0', 'NaN', '99999999999999999999999999', '9223372036854775808', '__proto__', 'constructor', '*', '~', "'%20OR%201=1--",
  'x'.repeat(3000), '%3A', 'gemma3-tiny%3AcountTokens', 'a%2Fb', '%E2%80%AE', '%F0%9F%92%A5',
];
/** An odd, already encoded path segment. */
const oddSegment: fc.Arbitrary<string> = w<string>([3, fc.constantFrom(...RAW_SEGMENTS)], [2, shortString.map(pct)]);
const segment = (...known: string[]): fc.Arbitrary<string> => w<string>([8, fc.constantFrom(...known.map(pct))], [2, oddSegment]);
const version = w<string>([10, fc.constantFrom('v1', 'v1beta1')], [1, fc.constantFrom('v2', 'V1', 'v1beta', '', 'v1%2F..', 'v1beta1.')]);
const project = () => w<string>([12, fc.constant(PROJECT)], [1, fc.constantFrom('other', 'tunekit-admin', '-', 'P')], [1, oddSegment]);
const location = w<string>([12, fc.constant(LOC)], [1, fc.constantFrom('europe-west4', 'US-CENTRAL1', 'global', 'nowhere', 'us-central1 ')], [1, oddSegment]);
const publisher = w<string>([12, fc.constant('google')], [1, fc.constantFrom('meta', 'GOOGLE', 'qwen')], [1, oddSegment]);
const publisherModel = w<string>([10, fc.constantFrom('gemma3-tiny', 'qwen3-tiny')], [1, fc.constantFrom('gemma3-tiny@1', 'gemma3-tiny@001', 'llama-tiny', 'Gemma3-Tiny')], [1, oddSegment]);
const VERBS = ['generateContent', 'streamGenerateContent', 'countTokens', 'computeTokens'];
const verb = w<string>([12, fc.constantFrom(...VERBS)], [1, fc.constantFrom('predict', 'generatecontent', '', 'countTokens:countTokens', 'rawPredict', 'embedContent')]);

const JOB_STATES = ['JOB_STATE_QUEUED', 'JOB_STATE_PENDING', 'JOB_STATE_RUNNING', 'JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLING', 'JOB_STATE_CANCELLED', 'JOB_STATE_PAUSED', 'JOB_STATE_EXPIRED'];
const stateTerm = fc.tuple(fc.constantFrom('state', 'State', 'state ', ' state', 'job_state'), fc.constantFrom('=', ':', '!=', '', ' = '),
  fc.constantFrom(...JOB_STATES, 'JOB_STATE_BOGUS', '', 'job_state_pending', 'JOB_STATE_'), fc.boolean())
  .map(([k, eq, s, quoted]) => `${k}${eq}${quoted ? `"${s}"` : s}`);
const stateClause = fc.tuple(fc.array(stateTerm, { minLength: 1, maxLength: 3 }), fc.boolean(), fc.constantFrom(' OR ', ' or ', 'OR', ' OR  ', ' || '))
  .map(([terms, parens, or]) => (parens ? `(${terms.join(or)})` : terms.join(or)));
const filterName = w<string>([2, fc.constantFrom('reliability-original', 'tone', '\\x', '\\u12', '\\', '\\"', '\\n', '\\ud800', '"', '\\\\', '\\u0000', '\\/', "'")], [2, shortString]);
const nameClause = fc.tuple(fc.constantFrom('tuned_model_display_name', 'display_name', 'displayName', 'tunedModelDisplayName', 'labels.team'), fc.constantFrom('=', ' = ', ':'), filterName)
  .map(([k, eq, v]) => `${k}${eq}"${v}"`);
const filter = w<string>(
  [3, fc.array(w<string>([1, stateClause], [1, nameClause]), { minLength: 1, maxLength: 3 }).map((cs) => cs.join(' AND '))],
  [1, fc.constantFrom('', ' ', 'AND', 'state=', '(', ')', '()', '"', 'state="JOB_STATE_SUCCEEDED" AND', 'NOT state="JOB_STATE_FAILED"', 'create_time>"2024-01-01"')],
  [1, anyString],
);
const pageSize = w<string>([3, fc.nat({ max: 200 }).map(String)],
  [2, fc.constantFrom('', '0', '-1', '1.5', '1e3', '1e+300', 'NaN', 'Infinity', '0x10', ' 3', '2147483648', '9007199254740993', 'abc', '١', '+5', '05')], [1, shortString]);
const b64url = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
const pageToken = () => w<string>(
  [2, fx.tokens.length ? fc.constantFrom(...fx.tokens) : fc.constant(b64url('1'))],
  [3, fc.constantFrom('0', '1', '2', '-1', '1.5', '1e+300', '1e21', '9007199254740993', 'Infinity', 'NaN', ' 1', '01', 'n1', 'n-1', 'n1e+300', 'n99999999999999999999', '').map(b64url)],
  [1, fc.nat().map((n) => b64url(String(n)))],
  [2, shortString],
);
/** For the body properties: mostly a well-formed path, so that the body is what gets exercised. */
const rare = <T>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<T>): fc.Arbitrary<T> => w<T>([30, usual], [1, odd]);
const okVersion = rare(fc.constantFrom('v1', 'v1beta1'), version);
const okProject = () => rare(fc.constant(PROJECT), project());
const okLocation = rare(fc.constant(LOC), location);
const okPublisher = rare(fc.constant('google'), publisher);
const okPublisherModel = rare(fc.constantFrom('gemma3-tiny', 'qwen3-tiny'), publisherModel);
const okVerb = rare(fc.constantFrom(...VERBS), verb);
const okSegment = (...known: string[]) => rare(fc.constantFrom(...known), oddSegment);
type QueryParam = [string, string];
const queryParams = (extra: fc.Arbitrary<QueryParam>[]) => fc.array(w<QueryParam>(
  ...extra.map((a) => [3, a] as [number, fc.Arbitrary<QueryParam>]),
  [1, fc.tuple(fc.constantFrom('alt', '$alt', 'key', 'fields', 'unknown', 'pageSize', ''), shortString)],
), { maxLength: 4 });
const rawQuery = fc.constantFrom('%ZZ', 'pageSize=%', '&&&', 'pageSize', 'filter=%E0%A4%A', 'pageToken=%FF', '=', 'a=b=c', 'alt=sse&alt=json', 'pageSize=1&pageSize=x');
const query = (extra: fc.Arbitrary<QueryParam>[]) => w<string>(
  [8, queryParams(extra).map((ps) => ps.map(([k, v]) => `${pct(k)}=${pct(v)}`).join('&'))],
  [1, rawQuery],
);
const listQuery = () => query([
  fc.tuple(fc.constantFrom('pageSize', 'page_size'), pageSize),
  fc.tuple(fc.constantFrom('pageToken', 'page_token'), pageToken()),
]);

type Auth = 'trainer' | 'viewer' | 'noData' | 'none' | 'garbage' | 'bearer' | 'both' | 'empty';
const auth = w<Auth>([14, fc.constant('trainer')], [2, fc.constant('viewer')], [1, fc.constant('noData')], [2, fc.constant('none')],
  [1, fc.constant('garbage')], [1, fc.constant('bearer')], [1, fc.constant('both')], [1, fc.constant('empty')]);
const disconnect = w<'first-event' | 'waiting' | undefined>([4, fc.constant(undefined)], [2, fc.constant('first-event')], [1, fc.constant('waiting')]);
const okAuth = w<Auth>([8, fc.constant('trainer')], [1, auth]);
const contentType = w<string | null>([10, fc.constant('application/json')], [1, fc.constantFrom(null, 'text/plain', 'application/json; charset=latin1', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x')]);

function headers(a: Auth, ct: string | null = null): Record<string, string> {
  const h: Record<string, string> = {};
  if (ct) h['content-type'] = ct;
  switch (a) {
    case 'trainer': case 'viewer': case 'noData': h['x-goog-api-key'] = keys[a]; break;
    case 'garbage': h['x-goog-api-key'] = 'tk-not-a-key'; break;
    case 'bearer': h.authorization = 'Bearer not-a-token'; break;
    case 'both': h['x-goog-api-key'] = keys.trainer; h.authorization = 'Bearer not-a-token'; break;
    case 'empty': h['x-goog-api-key'] = ''; break;
    case 'none': break;
  }
  return h;
}

// ---- valid requests the mutations start from

const GENERATE = {
  contents: [
    { role: 'user', parts: [{ text: 'the sky is red today' }] },
    { role: 'model', parts: [{ text: 'thinking it over', thought: true }, { text: 'warm' }] },
    { role: 'user', parts: [{ text: 'and blue?' }] },
  ],
  systemInstruction: { parts: [{ text: 'answer in one word' }] },
  generationConfig: {
    temperature: 0.7, topP: 0.9, topK: 20, candidateCount: 1, maxOutputTokens: 4, seed: 7, stopSequences: ['\n\n'],
    presencePenalty: 0, frequencyPenalty: 0, responseMimeType: 'text/plain', thinkingConfig: { thinkingBudget: 0, includeThoughts: false },
  },
  safetySettings: [{ category: 'HARM_CATEGORY_HATE_SPEECH', threshold: 'BLOCK_NONE', method: 'SEVERITY' }],
};
const COUNT = { contents: GENERATE.contents, systemInstruction: GENERATE.systemInstruction, generationConfig: { maxOutputTokens: 4 } };
const baseFor = (v: string): unknown => (v === 'countTokens' || v === 'computeTokens' ? COUNT : GENERATE);
const CREATE = {
  baseModel: 'gemma3-tiny',
  supervisedTuningSpec: {
    trainingDatasetUri: 'gs://us-data/train.jsonl',
    validationDatasetUri: 'gs://us-data/validation.jsonl',
    hyperParameters: { epochCount: '1', adapterSize: 'ADAPTER_SIZE_FOUR', learningRateMultiplier: 2, learningRate: 0.001 },
    tuningMode: 'TUNING_MODE_PEFT_ADAPTER',
  },
  tunedModelDisplayName: 'fuzzed',
  description: 'a job the fuzzer made',
  labels: { team: 'reliability', env: 'test' },
};
const URIS = ['gs://us-data/train.jsonl', 'gs://us-data/validation.jsonl', 'gs://eu-data/train.jsonl', 'gs://us-data/invalid-utf8.jsonl', 'gs://us-data/empty.jsonl',
  'gs://us-data/truncated.jsonl', 'gs://us-data/deep.jsonl', 'gs://us-data/long-line.jsonl', 'gs://us-data/messages.jsonl', 'gs://us-data/missing.jsonl', 'gs://us-data',
  'gs://us-data/', 'gs://US-DATA/train.jsonl', 'gs://us-data/train.jsonl#1', 'gs://us-data/train.jsonl?generation=1', 'gs://us-data//train.jsonl', 'http://us-data/train.jsonl'];
/** A create with a dataset URI from the list (the mutations rarely hit the other objects by chance). */
const createBase = fc.record({
  train: w<string>([3, fc.constant('gs://us-data/train.jsonl')], [2, fc.constantFrom(...URIS)]),
  validation: fc.option(w<string>([3, fc.constant('gs://us-data/validation.jsonl')], [2, fc.constantFrom(...URIS)]), { nil: undefined }),
})
  .map(({ train, validation }) => {
    const b = clone(CREATE);
    b.supervisedTuningSpec.trainingDatasetUri = train;
    if (validation === undefined) delete (b.supervisedTuningSpec as Partial<typeof b.supervisedTuningSpec>).validationDatasetUri;
    else b.supervisedTuningSpec.validationDatasetUri = validation;
    return b;
  });

/** Cancels a job a fuzzed create made, so the next create is not refused by the quota. */
async function cancelCreated(out: Outcome): Promise<void> {
  if (out.status !== 200) return;
  const name = (JSON.parse(out.text) as { name?: string }).name;
  const m = /^projects\/([^/]+)\/locations\/([^/]+)\/tuningJobs\/([^/]+)$/.exec(name ?? '');
  assert.ok(m, `a created job's name: ${out.text.slice(0, 300)}`);
  const job = await tuning.jobs.get(m[1]!, m[2]!, m[3]!);
  if (job.state === 'JOB_STATE_PENDING' || job.state === 'JOB_STATE_QUEUED') await tuning.cancel(m[1]!, m[2]!, m[3]!);
}

// ---------------------------------------------------------------------------------------------------
// The fuzz properties, one per group of routes

test('GET routes: odd path segments and list queries (pageSize, pageToken, filter) never 5xx, always a Status', { timeout: 300_000 }, async () => {
  const jobId = () => segment(fx.job1, fx.job2);
  const modelId = () => segment(fx.model1, `${fx.model1}@1`, `${fx.model1}@2`, `${fx.model1}@0`, `${fx.model1}@-1`, `${fx.model1}@1e3`, `${fx.model1}@x`, `${fx.model1}@`, fx.model2, `${fx.model2}@1e+300`);
  const endpointId = () => segment(fx.endpoint1, fx.endpoint2);
  const routes: fc.Arbitrary<{ route: string; path: string; query: string }> = w(
    [1, fc.record({ v: version, pub: publisher, q: query([]) }).map((r) => ({ route: 'publisherModels.list', path: `/${r.v}/publishers/${r.pub}/models`, query: r.q }))],
    [1, fc.record({ v: version, pub: publisher, m: publisherModel, q: query([]) }).map((r) => ({ route: 'publisherModels.get', path: `/${r.v}/publishers/${r.pub}/models/${r.m}`, query: r.q }))],
    [1, fc.record({ v: version, p: project(), l: location, pub: publisher, m: publisherModel, q: query([]) })
      .map((r) => ({ route: 'projects.publisherModels.get', path: `/${r.v}/projects/${r.p}/locations/${r.l}/publishers/${r.pub}/models/${r.m}`, query: r.q }))],
    [4, fc.record({ v: version, p: project(), l: location, q: query([fc.tuple(fc.constant('filter'), filter), fc.tuple(fc.constantFrom('pageSize', 'page_size'), pageSize), fc.tuple(fc.constantFrom('pageToken', 'page_token'), pageToken())]) })
      .map((r) => ({ route: 'tuningJobs.list', path: `/${r.v}/projects/${r.p}/locations/${r.l}/tuningJobs`, query: r.q }))],
    [2, fc.record({ v: version, p: project(), l: location, id: jobId(), q: query([]) }).map((r) => ({ route: 'tuningJobs.get', path: `/${r.v}/projects/${r.p}/locations/${r.l}/tuningJobs/${r.id}`, query: r.q }))],
    [1, fc.record({ v: version, p: project(), l: location, id: jobId(), q: query([]) }).map((r) => ({ route: 'tuningJobs.metrics', path: `/${r.v}/projects/${r.p}/locations/${r.l}/tuningJobs/${r.id}/metrics`, query: r.q }))],
    [3, fc.record({ v: version, p: project(), l: location, q: listQuery() }).map((r) => ({ route: 'models.list', path: `/${r.v}/projects/${r.p}/locations/${r.l}/models`, query: r.q }))],
    [2, fc.record({ v: version, p: project(), l: location, id: modelId(), q: query([]) }).map((r) => ({ route: 'models.get', path: `/${r.v}/projects/${r.p}/locations/${r.l}/models/${r.id}`, query: r.q }))],
    [3, fc.record({ v: version, p: project(), l: location, q: listQuery() }).map((r) => ({ route: 'endpoints.list', path: `/${r.v}/projects/${r.p}/locations/${r.l}/endpoints`, query: r.q }))],
    [2, fc.record({ v: version, p: project(), l: location, id: endpointId(), q: query([]) }).map((r) => ({ route: 'endpoints.get', path: `/${r.v}/projects/${r.p}/locations/${r.l}/endpoints/${r.id}`, query: r.q }))],
  );
  await assertProperty(fc.record({ r: routes, auth }), 1500, async ({ r, auth: a }) => {
    await check({ ...r, method: 'GET', headers: headers(a), depth: 0, invalidUtf8: false });
  }, 1);
});

test('generation on publisher models (project and express paths, four verbs): fuzzed bodies never 5xx, always a Status', { timeout: 300_000 }, async () => {
  const arb = fc.record({
    express: w<boolean>([4, fc.constant(false)], [1, fc.constant(true)]),
    v: okVersion, p: okProject(), l: okLocation, pub: okPublisher, m: okPublisherModel, verb: okVerb,
    alt: w<string | undefined>([3, fc.constant('sse')], [1, fc.constant(undefined)], [1, fc.constantFrom('json', 'SSE', 'proto', '')]),
    disconnect, auth: okAuth, ct: contentType, body: bodySpec,
  });
  await assertProperty(arb, 1500, async (r) => {
    const rendered = renderBody(baseFor(r.verb), r.body);
    const prefix = r.express ? `/${r.v}` : `/${r.v}/projects/${r.p}/locations/${r.l}`;
    await check({
      route: r.express ? 'express.generation' : 'publisherModels.generation', method: 'POST',
      path: `${prefix}/publishers/${r.pub}/models/${r.m}:${r.verb}`, query: r.alt === undefined ? '' : `alt=${pct(r.alt)}`,
      headers: headers(r.auth, r.ct), disconnect: r.disconnect, ...rendered,
    });
  }, 2);
});

test('generation on endpoints (tuned models, four verbs): fuzzed bodies never 5xx, always a Status', { timeout: 300_000 }, async () => {
  const arb = fc.record({
    v: okVersion, p: okProject(), l: okLocation, e: okSegment(fx.endpoint1, fx.endpoint2), verb: okVerb,
    alt: w<string | undefined>([3, fc.constant('sse')], [1, fc.constant(undefined)]), disconnect, auth: okAuth, ct: contentType, body: bodySpec,
  });
  await assertProperty(arb, 800, async (r) => {
    await check({
      route: 'endpoints.generation', method: 'POST', path: `/${r.v}/projects/${r.p}/locations/${r.l}/endpoints/${r.e}:${r.verb}`,
      query: r.alt === undefined ? '' : `alt=${r.alt}`, headers: headers(r.auth, r.ct), disconnect: r.disconnect, ...renderBody(baseFor(r.verb), r.body),
    });
  }, 3);
});

test('tuningJobs create: fuzzed bodies never 5xx, always a Status; what is accepted is a job', { timeout: 300_000 }, async () => {
  const arb = fc.record({ v: okVersion, p: okProject(), l: okLocation, auth: okAuth, ct: contentType, base: createBase, body: bodySpec });
  await assertProperty(arb, 300, async (r) => {
    const out = await check({
      route: 'tuningJobs.create', method: 'POST', path: `/${r.v}/projects/${r.p}/locations/${r.l}/tuningJobs`, query: '',
      headers: headers(r.auth, r.ct), ...renderBody(r.base, r.body),
    });
    await cancelCreated(out);
  }, 4);
});

test('tuningJobs create: fuzzed dataset contents never 5xx, always a Status', { timeout: 300_000 }, async () => {
  const example = { systemInstruction: { parts: [{ text: 'be brief' }] }, contents: [{ role: 'user', parts: [{ text: 'the sky is red' }] }, { role: 'model', parts: [{ text: '{"tone": "warm"}' }] }] };
  const line = w<string>(
    [4, fc.constant(JSON.stringify(example))],
    [6, fc.array(mutation, { minLength: 1, maxLength: 2 }).map((ms) => serialize(mutate(example, ms).value))],
    [1, fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v))],
    [1, fc.record({ ms: fc.array(mutation, { maxLength: 1 }), edit: textEdit }).map(({ ms, edit }) => editText(serialize(mutate(example, ms).value), edit).replace(/\n/g, ' '))],
    [1, fc.constantFrom('', ' ', '\uFEFF{}', '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}')],
  );
  let n = 0;
  const arb = fc.record({ lines: fc.array(line, { minLength: 1, maxLength: 12 }), crlf: fc.boolean(), bad: fc.option(badUtf8, { freq: 6, nil: undefined }), asValidation: fc.boolean() });
  await assertProperty(arb, 60, async (r) => {
    const text = r.lines.join(r.crlf ? '\r\n' : '\n');
    const bytes = r.bad ? insertBadUtf8(text, r.bad) : Buffer.from(text, 'utf8');
    const object = `fuzz/${n++}.jsonl`;
    await platform.storage.putObject('us-data', object, bytes);
    const body = clone(CREATE);
    if (r.asValidation) body.supervisedTuningSpec.validationDatasetUri = `gs://us-data/${object}`;
    else body.supervisedTuningSpec.trainingDatasetUri = `gs://us-data/${object}`;
    const out = await check({
      route: 'tuningJobs.create(dataset)', method: 'POST', path: `/v1/${PARENT}/tuningJobs`, query: '', headers: headers('trainer', 'application/json'),
      body: Buffer.from(JSON.stringify(body)), depth: 0, invalidUtf8: false,
    });
    await cancelCreated(out);
  }, 5);
});

test('tuningJobs cancel, endpoints deployModel / undeployModel: fuzzed ids and bodies never 5xx, always a Status', { timeout: 300_000 }, async () => {
  const arb = w<{ route: string; path: string; base: unknown }>(
    [1, fc.record({ v: okVersion, p: okProject(), l: okLocation, id: okSegment(fx.job1, fx.job2, '1234567890123456789') })
      .map((r) => ({ route: 'tuningJobs.cancel', path: `/${r.v}/projects/${r.p}/locations/${r.l}/tuningJobs/${r.id}:cancel`, base: {} }))],
    [1, fc.record({ v: okVersion, p: okProject(), l: okLocation, e: okSegment(fx.endpoint2), m: fc.constantFrom(fx.model1, `${fx.model1}@1`, fx.model2, `${fx.model2}@1`, `${fx.model1}@9`) })
      .map((r) => ({ route: 'endpoints.deployModel', path: `/${r.v}/projects/${r.p}/locations/${r.l}/endpoints/${r.e}:deployModel`, base: { deployedModel: { model: `${PARENT}/models/${r.m}`, displayName: 'fuzz' } } }))],
    [1, fc.record({ v: okVersion, p: okProject(), l: okLocation, e: okSegment(fx.endpoint2) })
      .map((r) => ({ route: 'endpoints.undeployModel', path: `/${r.v}/projects/${r.p}/locations/${r.l}/endpoints/${r.e}:undeployModel`, base: { deployedModelId: fx.spare, trafficSplit: {} } }))],
  );
  await assertProperty(fc.record({ r: arb, auth: okAuth, ct: contentType, body: bodySpec }), 600, async ({ r, auth: a, ct, body }) => {
    await check({ route: r.route, method: 'POST', path: r.path, query: '', headers: headers(a, ct), ...renderBody(r.base, body) });
  }, 6);
});

test('any method on any path: unknown routes and wrong methods are a Status (404), never 5xx', { timeout: 300_000 }, async () => {
  const known = [
    '/v1/publishers/google/models', `/v1/${PARENT}/tuningJobs`, `/v1/${PARENT}/tuningJobs/${fx.job1}`, `/v1/${PARENT}/tuningJobs/${fx.job1}:cancel`,
    `/v1/${PARENT}/tuningJobs/${fx.job1}/metrics`, `/v1/${PARENT}/models`, `/v1/${PARENT}/endpoints/${fx.endpoint1}`, `/v1/${PARENT}/endpoints/${fx.endpoint1}:generateContent`,
    `/v1/${PARENT}/publishers/google/models/gemma3-tiny:countTokens`, '/v1beta1/publishers/google/models/qwen3-tiny:computeTokens', '/', '/v1', '/v1/', '//v1//projects',
    `/v1/${PARENT}`, `/v1/${PARENT}:evaluateInstances`, '/v1/projects/p/locations', '/v1/operations', `/v1/${PARENT}/tuningJobs/${fx.job1}:delete`,
  ];
  const arb = fc.record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'),
    path: w<string>([3, fc.constantFrom(...known)], [2, fc.array(oddSegment, { minLength: 1, maxLength: 8 }).map((s) => `/${s.join('/')}`)],
      [1, fc.tuple(fc.constantFrom(...known), oddSegment).map(([k, s]) => `${k}/${s}`)]),
    auth,
  });
  await assertProperty(arb, 400, async (r) => {
    await check({
      route: 'any', method: r.method, path: r.path, query: '', headers: headers(r.auth, r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH' ? 'application/json' : null),
      ...(['POST', 'PUT', 'PATCH'].includes(r.method) ? { body: Buffer.from('{}') } : {}), depth: 0, invalidUtf8: false,
    });
  }, 7);
});

test('the fuzz runs hit only known faults (each has a todo reproduction below)', (t) => {
  for (const [todo, n] of knownHits) t.diagnostic(`${n} fuzz case(s) hit the known fault: ${todo}`);
  t.diagnostic(`${logged.length} internal error(s) logged by the app, all in cases of known faults`);
});

// ---------------------------------------------------------------------------------------------------
// Faults found by the attack and by this fuzzer (issue 8), each as a minimal reproduction: those fixed
// are regression tests; those not fixed yet are marked todo (remove the mark, and the KNOWN entry,
// with the fix).

async function expectStatusCode(call: Call, code: number, status: string): Promise<Outcome> {
  const out = await perform(call);
  assert.ok(!out.timedOut, `${call.method} ${call.path}: no answer within ${BOUND_MS} ms`);
  assert.equal(out.status, code, describe(call, out, [`expected ${code} ${status}`]));
  assert.equal(statusProblem(out.status, out.contentType, out.text), null);
  assert.equal(JSON.parse(out.text).error.status, status);
  return out;
}
const post = (route: string, url: string, body: string | Uint8Array, h: Record<string, string> = headers('trainer', 'application/json')): Call =>
  ({ route, method: 'POST', path: url, query: '', headers: h, body: typeof body === 'string' ? Buffer.from(body) : body, depth: 0, invalidUtf8: false });
const getCall = (route: string, url: string, query = '', h: Record<string, string> = headers('trainer')): Call =>
  ({ route, method: 'GET', path: url, query, headers: h, depth: 0, invalidUtf8: false });

test('regression (issue 8): deeply nested arrays in contents are 400, not 500 (RangeError in proto-json show())', async () => {
  const url = `/v1/${PARENT}/publishers/google/models/gemma3-tiny:countTokens`;
  await expectStatusCode(post('publisherModels.generation', url, `{"contents": ${'['.repeat(10_000)}${']'.repeat(10_000)}}`), 400, 'INVALID_ARGUMENT');
  await expectStatusCode(post('publisherModels.generation', url.replace('countTokens', 'generateContent'), `{"contents": [{"role": "user", "parts": [{"text": ${'['.repeat(10_000)}"x"${']'.repeat(10_000)}}]}]}`), 400, 'INVALID_ARGUMENT');
});

test('regression (issue 8): pageToken 1e+300 on model registry lists is 400, not 500', async () => {
  for (const list of ['models', 'endpoints']) {
    await expectStatusCode(getCall(`${list}.list`, `/v1/${PARENT}/${list}`, `pageToken=${b64url('1e+300')}`), 400, 'INVALID_ARGUMENT');
  }
});

test('regression (issue 8): an invalid escape (\\x) in a tuningJobs filter string is 400, not 500', async () => {
  await expectStatusCode(getCall('tuningJobs.list', `/v1/${PARENT}/tuningJobs`, `filter=${pct('tuned_model_display_name="\\x"')}`), 400, 'INVALID_ARGUMENT');
});

test('regression (issue 8): a dataset line with a deeply nested value is a 400 naming the line, not 500 (RangeError in src/data/formats.ts)', async () => {
  const deep = `{"contents": [{"role": ${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}, "parts": [{"text": "hi"}]}, {"role": "model", "parts": [{"text": "ok"}]}]}\n`;
  await platform.storage.putObject('us-data', 'deep-role.jsonl', deep);
  const out = await perform(post('tuningJobs.create', `/v1/${PARENT}/tuningJobs`, JSON.stringify(createBody({ epochs: 1, validation: '', train: 'gs://us-data/deep-role.jsonl' }))));
  await cancelCreated(out);
  assert.equal(out.status, 400, describe(post('tuningJobs.create', `/v1/${PARENT}/tuningJobs`, ''), out, ['expected 400']));
  assert.match(JSON.parse(out.text).error.message, /deep-role\.jsonl:1/);
});

test('regression (issue 8): a body that is not UTF-8 is 400 on every POST route (fuzzed), not read as U+FFFD', { timeout: 120_000 }, async () => {
  const routes = fc.constantFrom(
    { url: `/v1/${PARENT}/publishers/google/models/gemma3-tiny:generateContent`, base: GENERATE },
    { url: `/v1/${PARENT}/publishers/google/models/qwen3-tiny:streamGenerateContent`, base: GENERATE },
    { url: `/v1/${PARENT}/publishers/google/models/gemma3-tiny:countTokens`, base: COUNT },
    { url: `/v1/${PARENT}/publishers/google/models/gemma3-tiny:computeTokens`, base: COUNT },
    { url: '/v1/publishers/google/models/gemma3-tiny:countTokens', base: COUNT },
    { url: `/v1/${PARENT}/endpoints/${fx.endpoint1}:countTokens`, base: COUNT },
    { url: `/v1/${PARENT}/tuningJobs`, base: CREATE },
    { url: `/v1/${PARENT}/tuningJobs/${fx.job1}:cancel`, base: {} },
    { url: `/v1/${PARENT}/endpoints/${fx.endpoint2}:undeployModel`, base: { deployedModelId: '1' } },
  );
  await fc.assert(fc.asyncProperty(routes, badUtf8, async (r, bad) => {
    const call = post('utf8', r.url, insertBadUtf8(serialize(r.base), { ...bad, inString: true }));
    const out = await perform(call);
    await cancelCreated(out);
    assert.equal(out.status, 400, describe(call, out, ['expected 400 INVALID_ARGUMENT']));
    assert.equal(statusProblem(out.status, out.contentType, out.text), null);
  }), { seed: SEED + 8, numRuns: runs(30), endOnFailure: true });
});

test('regression (issue 8): contents with no parts or only empty text are 400', async () => {
  for (const v of ['generateContent', 'streamGenerateContent']) {
    const url = `/v1/${PARENT}/publishers/google/models/gemma3-tiny:${v}`;
    for (const contents of [[{ role: 'user', parts: [] }], [{ role: 'user' }], [{ role: 'user', parts: [{ text: '' }] }], [{ role: 'user', parts: [{ text: 'hi' }] }, { role: 'model', parts: [] }, { role: 'user', parts: [{ text: 'hi' }] }]]) {
      await expectStatusCode(post('publisherModels.generation', url, JSON.stringify({ contents, generationConfig: { maxOutputTokens: 2 } })), 400, 'INVALID_ARGUMENT');
    }
  }
});

test('regression (issue 8): tuning job descriptions, labels and display names have size limits', async () => {
  const url = `/v1/${PARENT}/tuningJobs`;
  const cases: Record<string, unknown>[] = [
    { description: 'd'.repeat(1 << 20) },
    { labels: Object.fromEntries(Array.from({ length: 65 }, (_x, i) => [`k${i}`, 'v'])) },
    { labels: { ['k'.repeat(64)]: 'v' } },
    { labels: { k: 'v'.repeat(64) } },
    { tunedModelDisplayName: 'n'.repeat(129) },
    { tunedModelDisplayName: '\u{1F4A5}'.repeat(129) },
  ];
  for (const extra of cases) {
    const out = await perform(post('tuningJobs.create', url, JSON.stringify({ ...createBody({ epochs: 1, validation: '' }), ...extra })));
    await cancelCreated(out);
    assert.equal(out.status, 400, `${JSON.stringify(extra).slice(0, 100)}: ${out.status} ${out.text.slice(0, 300)}`);
    assert.equal(statusProblem(out.status, out.contentType, out.text), null);
  }
});

test('regression (issue 8): credentials are checked before the location (401, not 400, for a bad location without credentials)', async () => {
  const bad = `/v1/projects/${PROJECT}/locations/nowhere`;
  const calls: Call[] = [
    getCall('projects.publisherModels.get', `${bad}/publishers/google/models/gemma3-tiny`, '', {}),
    post('publisherModels.generation', `${bad}/publishers/google/models/gemma3-tiny:generateContent`, JSON.stringify(GENERATE), { 'content-type': 'application/json' }),
    post('endpoints.generation', `${bad}/endpoints/${fx.endpoint1}:countTokens`, JSON.stringify(COUNT), { 'content-type': 'application/json' }),
    post('tuningJobs.create', `${bad}/tuningJobs`, JSON.stringify(CREATE), { 'content-type': 'application/json' }),
    getCall('tuningJobs.list', `${bad}/tuningJobs`, '', {}),
    getCall('tuningJobs.get', `${bad}/tuningJobs/${fx.job1}`, '', {}),
    getCall('tuningJobs.metrics', `${bad}/tuningJobs/${fx.job1}/metrics`, '', {}),
    post('tuningJobs.cancel', `${bad}/tuningJobs/${fx.job1}:cancel`, '{}', { 'content-type': 'application/json' }),
    getCall('models.list', `${bad}/models`, '', {}),
    getCall('models.get', `${bad}/models/${fx.model1}`, '', {}),
    getCall('endpoints.list', `${bad}/endpoints`, '', {}),
    getCall('endpoints.get', `${bad}/endpoints/${fx.endpoint1}`, '', {}),
    post('endpoints.deployModel', `${bad}/endpoints/${fx.endpoint2}:deployModel`, '{}', { 'content-type': 'application/json' }),
    post('endpoints.undeployModel', `${bad}/endpoints/${fx.endpoint2}:undeployModel`, '{}', { 'content-type': 'application/json' }),
  ];
  const wrong: string[] = [];
  for (const c of calls) {
    for (const h of [{}, { 'x-goog-api-key': 'tk-not-a-key' }] as Record<string, string>[]) {
      const out = await perform({ ...c, headers: { ...c.headers, ...h } });
      if (out.status !== 401) wrong.push(`${c.route} ${c.method} ${c.path} ${JSON.stringify(h)}: ${out.status} ${out.text.slice(0, 120)}`);
    }
  }
  assert.deepEqual(wrong, []);
});

/** The longest the event loop stalled while `work` ran (20 ms ticks). */
async function maxLagDuring<T>(work: () => Promise<T>): Promise<{ value: T; lag: number }> {
  let last = performance.now();
  let lag = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    lag = Math.max(lag, now - last - 20);
    last = now;
  }, 20);
  try {
    return { value: await work(), lag };
  } finally {
    clearInterval(timer);
  }
}

const prompt = (user: string, model?: string) => JSON.stringify({
  contents: [{ role: 'user', parts: [{ text: user }] }, ...(model === undefined ? [] : [{ role: 'model', parts: [{ text: model }] }, { role: 'user', parts: [{ text: 'and?' }] }])],
  generationConfig: { maxOutputTokens: 2 },
});
const text = (chars: number) => 'the quick brown fox '.repeat(Math.ceil(chars / 20)).slice(0, chars);

test('large prompts (refused by length, or tokenized off the event loop) never stall the event loop for a second', { timeout: 120_000 }, async () => {
  const url = (v: string) => `/v1/${PARENT}/publishers/google/models/gemma3-full:${v}`;
  const cases: [string, string][] = [
    ['countTokens', prompt(text(2 << 20))], // cannot fit 4,096 tokens: refused before tokenizing
    ['countTokens', prompt(text(60_000))], // may fit: tokenized on a worker
    ['countTokens', prompt('hi', text(1 << 20))], // a long model turn
    ['computeTokens', prompt(text(60_000))],
    ['computeTokens', prompt('hi', text(1 << 20))],
    ['generateContent', prompt(text(2 << 20))],
    ['generateContent', prompt('hi', text(1 << 20))],
    ['streamGenerateContent', prompt(text(60_000))],
  ];
  const stalls: string[] = [];
  for (const [v, body] of cases) {
    const { value: out, lag } = await maxLagDuring(() => perform(post('publisherModels.generation', url(v), body)));
    assert.ok(!out.timedOut && out.status < 500, `${v}: ${out.status} ${out.text.slice(0, 200)}`);
    if (lag > 1000) stalls.push(`${v} (${body.length} bytes): the event loop stalled ${Math.round(lag)} ms`);
  }
  assert.deepEqual(stalls, []);
});

test('regression (issue 8): a model turn too long for the context is refused before tokenizing, as a user turn is', async () => {
  const url = `/v1/${PARENT}/publishers/google/models/gemma3-full:countTokens`;
  const user = await perform(post('publisherModels.generation', url, prompt(text(1 << 20))));
  assert.equal(user.status, 400, user.text.slice(0, 200));
  const t0 = performance.now();
  const model = await perform(post('publisherModels.generation', url, prompt('hi', text(1 << 20))));
  assert.equal(model.status, 400, `${model.status} after ${Math.round(performance.now() - t0)} ms: ${model.text.slice(0, 200)}`);
});

// ---------------------------------------------------------------------------------------------------

test('after the fuzzing, the jobs, models, endpoints and objects made before it read back unchanged', { timeout: 60_000 }, async () => {
  const now = await readStoredData();
  assert.deepEqual(now, snapshot);
  assert.equal((await api('GET', `/v1/${PARENT}/endpoints/${fx.endpoint2}`)).status, 200);
  // Every job the fuzzer created ended cancelled: none is left holding the quota.
  const pending = await api('GET', `/v1/${PARENT}/tuningJobs?filter=${encodeURIComponent('state="JOB_STATE_PENDING" OR state="JOB_STATE_RUNNING"')}`);
  assert.deepEqual(pending.json, {});
});
