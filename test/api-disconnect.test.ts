// Clients that give up, at every stage of a request, and a server that shuts down: the work stops at
// the next prompt chunk or token and the engine's slot is free for the next caller. Work is observed by
// counting the core's forward passes (each engine pass — a prompt chunk or a generated token of a lone
// request — is one), never by timing. The engine runs one request at a time here (parallel 1), so a
// second request waits in its queue behind a busy one.
// Regression tests for issue 8: a streaming client that gave up while queued held the model's lock
// forever; abandoned non-streaming requests ran to completion.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { createApp } from '../src/api/app.js';
import { ModelCatalog } from '../src/api/catalog.js';
import { listen } from '../src/api/server.js';
import { loadModel } from '../src/models/model.js';
import { PREFIX, tinyApi, userText } from './helpers/api-app.js';

const base = await tinyApi();

/** A catalog whose models count forward passes of the core and can run a hook before each. */
function countingCatalog() {
  const counter = { calls: 0, onForward: (_n: number) => undefined as void };
  const catalog = new ModelCatalog(base.store, async (dir) => {
    const m = await loadModel(dir);
    const decoder = m.transformer.decoder;
    const forward = decoder.forward.bind(decoder);
    decoder.forward = (...args: Parameters<typeof forward>) => {
      counter.calls++;
      counter.onForward(counter.calls);
      return forward(...args);
    };
    return m;
  }, { engine: { parallel: 1 } });
  return { catalog, counter };
}

const URL_GEN = `${PREFIX}/gemma3-tiny:generateContent`;
const URL_SSE = `${PREFIX}/gemma3-tiny:streamGenerateContent?alt=sse`;
// 400 tokens with temperature 0: the tiny model runs to the limit (checked below), one forward per token.
const LONG = { ...userText('Go on'), generationConfig: { temperature: 0, maxOutputTokens: 400 } };
const post = (app: ReturnType<typeof createApp>, url: string, body: unknown, signal?: AbortSignal) =>
  app.request(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, signal });

/** Resolves once the model's engine runs and queues nothing. */
async function modelIsFree(catalog: ModelCatalog): Promise<void> {
  const { engine } = await catalog.served('google', 'gemma3-tiny');
  await engine.idle();
  const { running, queued } = engine.stats();
  assert.deepEqual({ running, queued }, { running: 0, queued: 0 });
}

const settle = () => new Promise((r) => setTimeout(r, 50));
/** Resolves once `check` holds, polling between turns of the event loop. */
const until = async (check: () => boolean) => { while (!check()) await new Promise((r) => setTimeout(r, 2)); };

test('the long request used below really runs 400 tokens', async () => {
  const { catalog, counter } = countingCatalog();
  const app = createApp({ catalog });
  const res = await post(app, URL_GEN, LONG);
  const json = await res.json() as { usageMetadata: { candidatesTokenCount: number } };
  assert.equal(json.usageMetadata.candidatesTokenCount, 400);
  assert.equal(counter.calls, 400, 'one prompt chunk, then one forward per generated token but the last');
});

test('queued: a streaming client that gives up while waiting for a busy model does not hold it', async () => {
  const { catalog } = countingCatalog();
  const app = createApp({ catalog });
  const { engine } = await catalog.served('google', 'gemma3-tiny');
  const busy = post(app, URL_GEN, LONG);
  await until(() => engine.stats().running === 1);
  const gaveUp = new AbortController();
  const queued = post(app, URL_SSE, LONG, gaveUp.signal);
  await until(() => engine.stats().queued === 1);
  gaveUp.abort('client went away');
  const queuedRes = await queued;
  assert.equal(queuedRes.status, 499);
  assert.equal(((await queuedRes.json()) as { error: { status: string } }).error.status, 'CANCELLED');
  assert.equal((await busy).status, 200);
  // The next caller gets the model (before the fix this waited forever).
  const next = await post(app, URL_GEN, { ...userText('hi'), generationConfig: { maxOutputTokens: 3 } });
  assert.equal(next.status, 200);
  await modelIsFree(catalog);
});

test('queued: a non-streaming client that gives up never runs its generation', async () => {
  const { catalog, counter } = countingCatalog();
  const app = createApp({ catalog });
  const { engine } = await catalog.served('google', 'gemma3-tiny');
  const busy = post(app, URL_GEN, LONG);
  await until(() => engine.stats().running === 1);
  const gaveUp = new AbortController();
  const queued = post(app, URL_GEN, LONG, gaveUp.signal);
  await until(() => engine.stats().queued === 1);
  gaveUp.abort();
  assert.equal((await queued).status, 499);
  assert.equal((await busy).status, 200);
  await settle();
  assert.equal(counter.calls, 400, 'only the busy request ran');
});

test('prefill: a client that leaves during a long prompt stops it at the next chunk', async () => {
  const { catalog, counter } = countingCatalog();
  const app = createApp({ catalog });
  const gaveUp = new AbortController();
  counter.onForward = (n) => { if (n === 2) gaveUp.abort(); };
  const longPrompt = { ...userText('word '.repeat(1500)), generationConfig: { maxOutputTokens: 50 } };
  const res = await post(app, URL_GEN, longPrompt, gaveUp.signal);
  assert.equal(res.status, 499);
  assert.equal(counter.calls, 2, 'no prompt chunk after the abort');
  await modelIsFree(catalog);
});

test('decode, non-streaming: an abandoned request stops at the next token', async () => {
  const { catalog, counter } = countingCatalog();
  const app = createApp({ catalog });
  const gaveUp = new AbortController();
  counter.onForward = (n) => { if (n === 10) gaveUp.abort(); };
  const res = await post(app, URL_GEN, LONG, gaveUp.signal);
  assert.equal(res.status, 499);
  assert.equal(counter.calls, 10);
  await modelIsFree(catalog);
});

test('streaming: a client gone mid-stream (no cancel() from the server adapter) stops the generation', async () => {
  const { catalog, counter } = countingCatalog();
  const app = createApp({ catalog });
  const gaveUp = new AbortController();
  const res = await post(app, URL_SSE, LONG, gaveUp.signal);
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  assert.ok(!(await reader.read()).done);
  const before = counter.calls;
  gaveUp.abort(); // the socket closed; nobody reads or cancels the body any more
  await settle();
  await modelIsFree(catalog);
  assert.ok(counter.calls <= before + 2, `forwards after the abort: ${counter.calls - before}`);
});

test('shutdown: in-flight generations end with 503 UNAVAILABLE, streams with a 503 error event', async () => {
  const { catalog, counter } = countingCatalog();
  const shutdown = new AbortController();
  const app = createApp({ catalog, shutdown: shutdown.signal });
  const sse = await post(app, URL_SSE, LONG);
  const plain = post(app, URL_GEN, LONG);
  counter.onForward = (n) => { if (n === 20) shutdown.abort(); };
  const text = await sse.text();
  const events = text.split('\r\n\r\n').filter((e) => e !== '').map((e) => JSON.parse(e.slice('data: '.length)) as Record<string, unknown>);
  assert.deepEqual(events[events.length - 1], {
    error: { code: 503, message: 'The server is shutting down; retry the request.', status: 'UNAVAILABLE', details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'UNAVAILABLE', domain: 'aiplatform.googleapis.com' }, { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '5s' }] },
  });
  const res = await plain;
  assert.equal(res.status, 503);
  assert.ok(counter.calls < 30, `forwards: ${counter.calls}`);
});

test('over a socket: clients that disconnect while queued, during the prompt or mid-stream leave the model free', async () => {
  const { catalog, counter } = countingCatalog();
  const server = await listen(createApp({ catalog }), { port: 0, host: '127.0.0.1' });
  const { engine } = await catalog.served('google', 'gemma3-tiny');
    try {
    const url = (path: string) => `${server.url}${path}`;
    /** A raw HTTP request destroyed (like curl -m) when `leave` resolves, or once its first bytes arrive. */
    const giveUp = (path: string, body: unknown, leave?: Promise<unknown>) => new Promise<void>((resolve) => {
      const req = http.request(url(path), { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.once('data', () => req.destroy());
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.end(JSON.stringify(body));
      void leave?.then(() => req.destroy());
    });
    const busy = fetch(url(URL_GEN), { method: 'POST', body: JSON.stringify(LONG) });
    await until(() => engine.stats().running === 1);
    // Three streaming clients give up while the model is busy (all three in the engine's queue)...
    const queued = until(() => engine.stats().queued === 3);
    const left = Promise.all([0, 1, 2].map(() => giveUp(URL_SSE, LONG, queued)));
    await left;
    await until(() => engine.stats().queued === 0);
    assert.equal((await busy).status, 200);
    // ...then two leave mid-stream, each once its first event arrives.
    await Promise.all([0, 1].map(() => giveUp(URL_SSE, LONG)));
    const callsAfterLeaving = counter.calls;
    const next = await fetch(url(URL_GEN), { method: 'POST', body: JSON.stringify({ ...userText('hi'), generationConfig: { maxOutputTokens: 3 } }) });
    assert.equal(next.status, 200);
    await next.json();
    // The queued ones never ran; the two that left mid-stream stopped early (400 + a little + 3).
    assert.ok(callsAfterLeaving < 400 + 2 * 200, `forwards: ${callsAfterLeaving}`);
    await modelIsFree(catalog);
  } finally {
    await server.close();
  }
});
