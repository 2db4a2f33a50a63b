// Element-wise kernels against float64 references, and the kernel pool's split runs against the
// single-threaded kernels: they must give bit-identical results.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fastExp } from '../src/engine/fast-exp.js';
import { softmaxRows } from '../src/engine/softmax.js';
import { rmsnormForward, addRmsnormRows } from '../src/engine/rmsnorm.js';
import { swigluRange, gegluTanhRange } from '../src/engine/activations.js';
import { KernelPool, runSplit, sharedFloat32 } from '../src/engine/kernel-pool.js';
import { ropeInverseFrequencies } from '../src/engine/rope.js';
import { Random } from '../src/engine/random.js';

test('fastExp is within 1e-10 relative of Math.exp and handles the edges', () => {
  const rng = new Random(1);
  for (let i = 0; i < 200000; i++) {
    const x = (rng.next() - 0.7) * 200;
    const e = Math.exp(x);
    assert.ok(Math.abs(fastExp(x) - e) <= 1e-10 * e, `x=${x}`);
  }
  assert.equal(fastExp(0), 1);
  assert.ok(Number.isNaN(fastExp(NaN)));
  assert.equal(Math.fround(fastExp(-Infinity)), 0);
  assert.equal(Math.fround(fastExp(1000)), Infinity);
});

test('masked softmax rows match a float64 reference (causal and sliding window, unnormalised form)', () => {
  const rng = new Random(2);
  const rows = 5, G = 2, S = 12, first = 7;
  for (const window of [null, 4]) {
    const x = rng.fillNormal(new Float32Array(2 * rows * G * S), 0, 3); // two KV groups
    const ref = Float64Array.from(x);
    const y = x.slice();
    const inv = new Float32Array(2 * rows * G);
    softmaxRows(x, rows, G, S, first, window, 0, 2 * rows * G);
    softmaxRows(y, rows, G, S, first, window, 0, 2 * rows * G, inv);
    for (let row = 0; row < 2 * rows * G; row++) {
      const r = Math.floor((row % (rows * G)) / G);
      const hi = first + r;
      const lo = window === null ? 0 : Math.max(0, hi - window + 1);
      let max = -Infinity;
      for (let j = lo; j <= hi; j++) max = Math.max(max, ref[row * S + j]!);
      let sum = 0;
      for (let j = lo; j <= hi; j++) sum += Math.exp(ref[row * S + j]! - max);
      for (let j = 0; j < S; j++) {
        const want = j >= lo && j <= hi ? Math.exp(ref[row * S + j]! - max) / sum : 0;
        assert.ok(Math.abs(x[row * S + j]! - want) < 1e-6, `window ${window} row ${row} col ${j}`);
        assert.ok(Math.abs(y[row * S + j]! * inv[row]! - want) < 1e-6);
      }
    }
  }
});

test('rmsnorm (with and without Gemma offset) and the fused add+norm match float64', () => {
  const rng = new Random(3);
  const N = 3, C = 10, eps = 1e-6;
  const x = rng.fillNormal(new Float32Array(N * C), 0, 2);
  const d = rng.fillNormal(new Float32Array(N * C), 0, 1);
  const w = rng.fillNormal(new Float32Array(C), 0, 0.5);
  for (const offset of [0, 1]) {
    const out = new Float32Array(N * C);
    rmsnormForward(out, x, w, N, C, eps, offset);
    const x2 = x.slice();
    const out2 = new Float32Array(N * C);
    addRmsnormRows(x2, d, out2, w, C, eps, offset, 0, N);
    for (let n = 0; n < N; n++) {
      for (const [inp, o] of [[x, out], [Float64Array.from(x, (v, i) => Math.fround(v + d[i]!)), out2]] as const) {
        let ss = 0;
        for (let i = 0; i < C; i++) ss += inp[n * C + i]! ** 2;
        const r = 1 / Math.sqrt(ss / C + eps);
        for (let i = 0; i < C; i++) assert.ok(Math.abs(o[n * C + i]! - inp[n * C + i]! * r * (offset + w[i]!)) < 1e-5);
      }
    }
  }
});

test('SwiGLU and tanh-GELU GLU match their PyTorch definitions', () => {
  const g = Float32Array.from([-20, -3, -0.5, 0, 0.5, 3, 20]);
  const u = Float32Array.from([1, 2, 3, 4, 5, 6, 7]);
  const a = new Float32Array(7);
  const b = new Float32Array(7);
  swigluRange(a, g, u, 0, 7);
  gegluTanhRange(b, g, u, 0, 7);
  for (let i = 0; i < 7; i++) {
    const x = g[i]!;
    assert.ok(Math.abs(a[i]! - (x / (1 + Math.exp(-x))) * u[i]!) < 1e-6 * Math.max(1, Math.abs(a[i]!)));
    const gelu = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    assert.ok(Math.abs(b[i]! - gelu * u[i]!) < 1e-6 * Math.max(1, Math.abs(b[i]!)));
  }
});

test('kernel pool: split runs are bit-identical to single-threaded runs', () => {
  const pool = KernelPool.get();
  if (!pool) return; // one core: nothing to split (the forward tests still cover the kernels)
  const rng = new Random(4);
  const n = 300 * 256;
  const gate = sharedFloat32(n), up = sharedFloat32(n), out = sharedFloat32(n);
  rng.fillNormal(gate, 0, 2);
  rng.fillNormal(up, 0, 1);
  runSplit('swiglu', n, n, [out, gate, up], []);
  const ref = new Float32Array(n);
  swigluRange(ref, gate, up, 0, n);
  assert.deepEqual(out, ref);
  const rows = 64, G = 3, S = 400;
  const x = sharedFloat32(2 * rows * G * S);
  rng.fillNormal(x, 0, 2);
  const y = x.slice();
  const inv = sharedFloat32(2 * rows * G);
  runSplit('softmaxRows', 2 * rows * G, x.length, [x, inv], [rows, G, S, S - rows, 50]);
  const invRef = new Float32Array(2 * rows * G);
  softmaxRows(y, rows, G, S, S - rows, 50, 0, 2 * rows * G, invRef);
  assert.deepEqual(x, y);
  assert.deepEqual(inv, invRef);
});

test('llama3 RoPE scaling leaves high frequencies alone and divides low ones by the factor', () => {
  const plain = ropeInverseFrequencies(128, 500000, null);
  const scaled = ropeInverseFrequencies(128, 500000, { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  assert.equal(scaled[0], plain[0]); // wavelength 2π < 8192/4
  assert.ok(Math.abs(scaled[63]! - plain[63]! / 32) < 1e-12); // wavelength > 8192
  const lin = ropeInverseFrequencies(64, 10000, { type: 'linear', factor: 8 });
  const base = ropeInverseFrequencies(64, 10000, null);
  for (let i = 0; i < 32; i++) assert.ok(Math.abs(lin[i]! - base[i]! / 8) < 1e-9);
});
