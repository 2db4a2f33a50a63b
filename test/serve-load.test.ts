// A short run of the loopback load test (bench/load-serve.ts, `npm run load:serve` runs it for 60 s):
// a server process with a tiny model and 4 tuned endpoints, 12 concurrent streaming clients over the
// 5 models for a few seconds. Every response must be well-formed and nothing may fail; the figures are
// printed, not asserted (timings vary with the host).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad } from '../bench/load-serve.js';

test('12 streaming clients over a base model and 4 adapters: zero errors, every response well-formed', async (t) => {
  const r = await runLoad({ seconds: 3, clients: 12, parallel: 8 });
  t.diagnostic(`${r.requests} requests, ${r.tokens} tokens, ${r.tokensPerSecond.toFixed(1)} tokens/s, TTFT p50 ${r.ttftP50.toFixed(0)} ms p99 ${r.ttftP99.toFixed(0)} ms, RSS ${r.rssBeforeMiB.toFixed(0)} -> ${r.rssAfterMiB.toFixed(0)} MiB`);
  assert.deepEqual(r.errors, []);
  assert.ok(r.requests >= 12, `${r.requests} requests`);
});
