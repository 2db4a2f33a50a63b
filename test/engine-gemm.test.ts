// The native BLAS path and the TypeScript fallback must agree with a float64 triple loop, for every
// transpose combination, strided views and offsets (how attention slices heads out of rows).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeGemm, typescriptGemm, type Gemm } from '../src/engine/blas.js';
import { Random } from '../src/engine/random.js';

function reference(tA: boolean, tB: boolean, M: number, N: number, K: number, alpha: number,
  A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number, C: Float32Array, ldc: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += (tA ? A[k * lda + i]! : A[i * lda + k]!) * (tB ? B[j * ldb + k]! : B[k * ldb + j]!);
    out[i * N + j] = alpha * s + beta * C[i * ldc + j]!;
  }
  return out;
}

const backends: Gemm[] = [typescriptGemm];
const native = nativeGemm();
if (native) backends.push(native);

for (const g of backends) {
  test(`sgemm (${g.name}) matches a float64 reference`, () => {
    const rng = new Random(7);
    for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      const M = 13, N = 17, K = 29, pad = 3;
      const lda = (tA ? M : K) + pad, ldb = (tB ? K : N) + pad, ldc = N + pad;
      const A = rng.fillNormal(new Float32Array((tA ? K : M) * lda + 5), 0, 1);
      const B = rng.fillNormal(new Float32Array((tB ? N : K) * ldb + 5), 0, 1);
      const C = rng.fillNormal(new Float32Array(M * ldc + 5), 0, 1);
      const off = 5;
      const want = reference(tA, tB, M, N, K, 0.5, A.subarray(off), lda, B.subarray(off), ldb, 0.25, C.subarray(off), ldc);
      const before = C.slice(0, off);
      g.sgemm(tA, tB, M, N, K, 0.5, A.subarray(off), lda, B.subarray(off), ldb, 0.25, C.subarray(off), ldc);
      assert.deepEqual(C.slice(0, off), before, 'memory before the view is untouched');
      for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
        const got = C[off + i * ldc + j]!;
        assert.ok(Math.abs(got - want[i * N + j]!) < 1e-4, `tA=${tA} tB=${tB} C[${i},${j}] = ${got}, want ${want[i * N + j]}`);
      }
    }
  });

  test(`sgemv (${g.name}) matches a float64 reference, both orientations`, () => {
    const rng = new Random(11);
    const M = 37, N = 23;
    const A = rng.fillNormal(new Float32Array(M * N), 0, 1);
    for (const trans of [false, true]) {
      const x = rng.fillNormal(new Float32Array(trans ? M : N), 0, 1);
      const y = rng.fillNormal(new Float32Array(trans ? N : M), 0, 1);
      const y0 = y.slice();
      g.sgemv(trans, M, N, 2, A, N, x, 1, y);
      for (let i = 0; i < y.length; i++) {
        let s = 0;
        for (let k = 0; k < x.length; k++) s += (trans ? A[k * N + i]! : A[i * N + k]!) * x[k]!;
        assert.ok(Math.abs(y[i]! - (2 * s + y0[i]!)) < 1e-4, `trans=${trans} y[${i}]`);
      }
    }
  });
}

test('a native BLAS library is found on this machine (CI installs libopenblas0-pthread)', () => {
  assert.ok(native, 'no BLAS library loaded; install libopenblas0-pthread or set TUNEKIT_BLAS');
});
