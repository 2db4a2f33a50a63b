// The model core on batches of many sequences: a batch that mixes sequences at different stages
// (prompt chunks, single decode tokens), different adapters and rows with no adapter gives each
// sequence the logits it gets alone, to float32 rounding; the KV store allocates, frees, reuses and
// truncates sequences; a packed batch without a KV store (training's layout) gives the KV path's
// logits; rows with no adapter cost exactly nothing; a fresh adapter (B = 0) is the base exactly;
// two adapters trained in one packed batch get the gradients each gets alone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../src/models/model.js';
import { Decoder } from '../src/core/decoder.js';
import { KVStore } from '../src/core/kv-store.js';
import { NO_ADAPTER, sequenceBatch, type Batch } from '../src/core/batch.js';
import { createWorkspace } from '../src/core/workspace.js';
import { defaultLoraConfig, initLoraAdapter, type LoraAdapter } from '../src/lora/lora.js';
import type { ModelConfig } from '../src/models/config.js';
import { Random } from '../src/engine/random.js';
import { FAMILIES, tinyModelDir } from './helpers/tiny-models.js';

function randomAdapter(config: ModelConfig, rank: number, seed: number): LoraAdapter {
  const a = initLoraAdapter(config, defaultLoraConfig(rank), seed);
  const rng = new Random(seed + 1);
  for (const pairs of a.layers) for (const p of Object.values(pairs)) rng.fillNormal(p!.B, 0, 0.2);
  return a;
}

function tokens(n: number, vocab: number, seed: number): number[] {
  const rng = new Random(seed);
  return Array.from({ length: n }, () => Math.floor(rng.next() * vocab));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Concatenates rows of several one-sequence batches into one batch. */
function concat(parts: Batch[]): Batch {
  const N = parts.reduce((n, p) => n + p.N, 0);
  const b: Batch = { N, tokens: new Int32Array(N), positions: new Int32Array(N), seqIds: new Int32Array(N), adapters: new Int32Array(N).fill(NO_ADAPTER), logits: new Uint8Array(N) };
  let off = 0;
  for (const p of parts) {
    b.tokens.set(p.tokens, off);
    b.positions.set(p.positions, off);
    b.seqIds.set(p.seqIds, off);
    if (p.adapters) b.adapters!.set(p.adapters, off);
    if (p.logits) b.logits!.set(p.logits, off);
    off += p.N;
  }
  return b;
}

for (const family of FAMILIES) {
  test(`${family}: a mixed batch (prompt chunks, decode tokens, three adapters and none) gives each sequence its solo logits`, async () => {
    const m = await loadModel(tinyModelDir(family));
    const { config, weights } = m;
    const V = config.vocabSize;
    const decoder = new Decoder(config, weights);
    const adapters = new Map([[3, { adapter: randomAdapter(config, 4, 11) }], [7, { adapter: randomAdapter(config, 8, 12) }], [9, { adapter: randomAdapter(config, 2, 13) }]]);
    const seqs = [
      { adapter: 3, prompt: tokens(30, m.tokenizer.size, 1), steps: 6 },
      { adapter: NO_ADAPTER, prompt: tokens(5, m.tokenizer.size, 2), steps: 9 },
      { adapter: 7, prompt: tokens(70, m.tokenizer.size, 3), steps: 4 }, // longer than a query block
      { adapter: 9, prompt: tokens(12, m.tokenizer.size, 4), steps: 7 },
      { adapter: 3, prompt: tokens(8, m.tokenizer.size, 5), steps: 5 },
    ];
    // Solo: each sequence alone, prompt in one pass, then one token per pass (its own greedy-free feed).
    const feed = (i: number, step: number) => (i * 31 + step * 7) % m.tokenizer.size;
    const solo = seqs.map((s, i) => {
      const kv = new KVStore(config);
      const id = kv.allocate(128);
      const out: Float32Array[] = [];
      const ws = decoder.inferenceWorkspace(s.prompt.length, 8);
      let pass = decoder.forward(sequenceBatch(s.prompt, id, 0, { adapter: s.adapter }), ws, { kv, adapters });
      out.push(decoder.logits(pass));
      for (let k = 0; k < s.steps; k++) {
        pass = decoder.forward(sequenceBatch([feed(i, k)], id, s.prompt.length + k, { adapter: s.adapter }), ws, { kv, adapters });
        out.push(decoder.logits(pass));
      }
      return out;
    });
    // Batched: sequences join at different passes; prompts go in chunks of at most 16 tokens beside
    // the others' decode tokens.
    const kv = new KVStore(config);
    const state = seqs.map((s, i) => ({ id: -1, joinAt: i, fed: 0, step: 0, logits: [] as Float32Array[] }));
    for (let passNo = 0; state.some((st, i) => st.step < seqs[i]!.steps || st.fed < seqs[i]!.prompt.length); passNo++) {
      const parts: Batch[] = [];
      const owners: number[] = [];
      state.forEach((st, i) => {
        const s = seqs[i]!;
        if (passNo < st.joinAt) return;
        if (st.id < 0) st.id = kv.allocate(128);
        if (st.fed < s.prompt.length) {
          const n = Math.min(16, s.prompt.length - st.fed);
          const done = st.fed + n === s.prompt.length;
          parts.push(sequenceBatch(s.prompt.slice(st.fed, st.fed + n), st.id, st.fed, { adapter: s.adapter, logits: done ? 'last' : 'none' }));
          st.fed += n;
          if (done) owners.push(i);
        } else if (st.step < s.steps) {
          parts.push(sequenceBatch([feed(i, st.step)], st.id, s.prompt.length + st.step, { adapter: s.adapter }));
          st.step++;
          owners.push(i);
        }
      });
      const batch = concat(parts);
      const pass = decoder.forward(batch, decoder.inferenceWorkspace(batch.N, 8), { kv, adapters });
      const logits = decoder.logits(pass);
      owners.forEach((i, k) => state[i]!.logits.push(logits.slice(k * V, (k + 1) * V)));
    }
    let worst = 0;
    seqs.forEach((_, i) => {
      assert.equal(state[i]!.logits.length, solo[i]!.length);
      solo[i]!.forEach((l, k) => { worst = Math.max(worst, maxAbsDiff(state[i]!.logits[k]!, l)); });
    });
    assert.ok(worst < 1e-4, `max |Δlogit| batched vs solo ${worst}`);
  });
}

test('a packed batch without a KV store gives the logits of each sequence run against the store', async () => {
  const m = await loadModel(tinyModelDir('gemma3'));
  const { config, weights } = m;
  const V = config.vocabSize;
  const decoder = new Decoder(config, weights);
  const lengths = [9, 21, 14];
  const seqsTokens = lengths.map((n, i) => tokens(n, m.tokenizer.size, 20 + i));
  const parts = seqsTokens.map((t, i) => sequenceBatch(t, 100 + i, 0, { logits: 'all' }));
  const packed = concat(parts);
  packed.targets = new Int32Array(packed.N).fill(-1);
  const ws = createWorkspace(config, { maxTokens: packed.N, backward: true });
  const all = decoder.logits(decoder.forward(packed, ws));
  let off = 0;
  let worst = 0;
  for (const t of seqsTokens) {
    const kv = new KVStore(config);
    const id = kv.allocate(64);
    const alone = decoder.logits(decoder.forward(sequenceBatch(t, id, 0, { logits: 'all' }), decoder.inferenceWorkspace(t.length), { kv }));
    worst = Math.max(worst, maxAbsDiff(all.subarray(off * V, (off + t.length) * V), alone));
    off += t.length;
  }
  assert.ok(worst < 1e-4, `max |Δlogit| packed vs KV ${worst}`);
});

test('rows with no adapter are the base exactly; a fresh adapter (B = 0) is the base exactly', async () => {
  const m = await loadModel(tinyModelDir('qwen3'));
  const { config, weights } = m;
  const decoder = new Decoder(config, weights);
  const t = tokens(20, m.tokenizer.size, 7);
  const run = (adapter: number, adapters?: Map<number, { adapter: LoraAdapter }>) => {
    const kv = new KVStore(config);
    const id = kv.allocate(32);
    return decoder.logits(decoder.forward(sequenceBatch(t, id, 0, { adapter, logits: 'all' }), decoder.inferenceWorkspace(t.length, 8), { kv, adapters }));
  };
  const base = run(NO_ADAPTER);
  assert.deepEqual(run(NO_ADAPTER, new Map([[1, { adapter: randomAdapter(config, 8, 3) }]])), base);
  assert.deepEqual(run(1, new Map([[1, { adapter: initLoraAdapter(config, defaultLoraConfig(8), 5) }]])), base);
  assert.throws(() => run(2, new Map()), /adapter 2 is not loaded/);
});

test('KV store: sequences are allocated, released and reused; truncation forgets the tail; context limits hold', async () => {
  const m = await loadModel(tinyModelDir('llama'));
  const { config, weights } = m;
  const decoder = new Decoder(config, weights);
  const kv = new KVStore(config);
  const a = kv.allocate(40);
  const b = kv.allocate(40);
  assert.notEqual(a, b);
  assert.equal(kv.live, 2);
  const t = tokens(30, m.tokenizer.size, 9);
  const ws = decoder.inferenceWorkspace(30);
  const full = decoder.logits(decoder.forward(sequenceBatch(t, a, 0), ws, { kv }));
  assert.equal(kv.length(a), 30);
  // Truncate to 20 and feed the last 10 again: same logits.
  kv.truncate(a, 20);
  assert.equal(kv.length(a), 20);
  assert.ok(maxAbsDiff(decoder.logits(decoder.forward(sequenceBatch(t.slice(20), a, 20), ws, { kv })), full) < 1e-5);
  assert.throws(() => decoder.forward(sequenceBatch(t.slice(0, 5), a, 36), ws, { kv }), /leaves a gap/);
  assert.throws(() => decoder.forward(sequenceBatch(t.slice(0, 11), a, 30), ws, { kv }), /need 41 tokens but the context holds 40/);
  kv.release(a);
  assert.equal(kv.live, 1);
  const c = kv.allocate(40);
  assert.equal(c, a, 'a released id is reused');
  assert.equal(kv.length(c), 0);
  const again = decoder.logits(decoder.forward(sequenceBatch(t, c, 0), ws, { kv }));
  assert.ok(maxAbsDiff(again, full) < 1e-5);
  const bytes = kv.bytes;
  kv.release(c);
  kv.allocate(40);
  assert.equal(kv.bytes, bytes, 'reuse allocates nothing');
});

test('training two adapters in one packed batch gives each the gradients it gets alone (adapter-set backward)', async () => {
  const m = await loadModel(tinyModelDir('qwen3'));
  const { config, weights } = m;
  const decoder = new Decoder(config, weights);
  const grads = (rank: number) => {
    const g = initLoraAdapter(config, defaultLoraConfig(rank), 1);
    for (const pairs of g.layers) for (const p of Object.values(pairs)) { p!.A.fill(0); p!.B.fill(0); }
    return g;
  };
  const adapters = [randomAdapter(config, 4, 31), randomAdapter(config, 8, 32)];
  const seqTokens = [tokens(15, m.tokenizer.size, 41), tokens(22, m.tokenizer.size, 42)];
  const withTargets = (b: Batch): Batch => {
    const targets = new Int32Array(b.N).fill(-1);
    for (let t = 0; t + 1 < b.N; t++) if (b.seqIds[t] === b.seqIds[t + 1]) targets[t] = b.tokens[t + 1]!;
    return { ...b, targets };
  };
  const run = (batch: Batch, lookup: Map<number, { adapter: LoraAdapter; grads: LoraAdapter }>) => {
    const ws = createWorkspace(config, { maxTokens: batch.N, backward: true, loraRank: 8 });
    const pass = decoder.forward(withTargets(batch), ws, { adapters: lookup });
    return decoder.loss(pass, { scale: 1 });
  };
  // Alone: each sequence with its adapter.
  const alone = adapters.map((adapter, i) => {
    const g = grads(adapter.config.rank);
    const loss = run(sequenceBatch(seqTokens[i]!, i, 0, { adapter: i, logits: 'none' }), new Map([[i, { adapter, grads: g }]]));
    return { g, loss };
  });
  // Together: one packed batch, rows of sequence i on adapter i.
  const together = adapters.map((a) => grads(a.config.rank));
  const packed = concat(seqTokens.map((t, i) => sequenceBatch(t, i, 0, { adapter: i, logits: 'none' })));
  const loss = run(packed, new Map(adapters.map((adapter, i) => [i, { adapter, grads: together[i]! }])));
  assert.ok(Math.abs(loss.lossSum - (alone[0]!.loss.lossSum + alone[1]!.loss.lossSum)) < 1e-3);
  let worst = 0;
  let largest = 0;
  together.forEach((g, i) => g.layers.forEach((pairs, l) => {
    for (const [t, p] of Object.entries(pairs)) {
      const ref = alone[i]!.g.layers[l]![t as keyof typeof pairs]!;
      for (const k of ['A', 'B'] as const) {
        for (let j = 0; j < p![k].length; j++) {
          worst = Math.max(worst, Math.abs(p![k][j]! - ref[k][j]!));
          largest = Math.max(largest, Math.abs(ref[k][j]!));
        }
      }
    }
  }));
  assert.ok(largest > 1e-2, 'gradients are not trivially zero');
  assert.ok(worst < 1e-4 * largest, `max |Δgrad| ${worst} of ${largest}`);
});
