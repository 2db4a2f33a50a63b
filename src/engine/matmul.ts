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

/**
 * Backward of matmulForward. dinp(N, C) = dout(N, OC) · weight(OC, C) (assigned, or added when
 * accumulate is set); dweight(OC, C) += dout(N, OC)ᵀ · inp(N, C) when dweight is given.
 */
export function matmulBackward(
  dinp: Float32Array | null, dweight: Float32Array | null, dout: Float32Array, inp: Float32Array, weight: Float32Array,
  N: number, C: number, OC: number, accumulate = false,
): void {
  const g = gemm();
  if (dinp) g.sgemm(false, false, N, C, OC, 1, dout, OC, weight, C, accumulate ? 1 : 0, dinp, C);
  if (dweight) g.sgemm(true, false, OC, C, N, 1, dout, OC, inp, C, 1, dweight, C);
}
