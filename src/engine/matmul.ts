// Linear layers: out = inp · Wᵀ, with W stored as Hugging Face stores it, (OC, C) row-major.
// One token goes through GEMV (memory bound), several through GEMM (compute bound).

import { gemm } from './blas.js';

/** out(N, OC) = inp(N, C) · weight(OC, C)ᵀ, or += when accumulate is set. */
export function matmulForward(
  out: Float32Array, inp: Float32Array, weight: Float32Array,
  N: number, C: number, OC: number, accumulate = false,
): void {
  const g = gemm();
  const beta = accumulate ? 1 : 0;
  if (N === 1) g.sgemv(false, OC, C, 1, weight, C, inp, beta, out);
  else g.sgemm(false, true, N, OC, C, 1, inp, C, weight, C, beta, out, OC);
}
