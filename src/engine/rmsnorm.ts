// RMSNorm over the last dimension: out = x / sqrt(mean(x²) + eps) · (offset + w).
// offset is 0 for Llama/Qwen and 1 for Gemma, whose checkpoints store w around zero.
// The reciprocal RMS per row is written to rstd when given; the backward pass reuses it.
// Kernels work on rows [start, end) so the kernel pool can split them.

export function rmsnormForward(
  out: Float32Array, inp: Float32Array, weight: Float32Array,
  N: number, C: number, eps: number, offset: number, rstd?: Float32Array,
): void {
  rmsnormRows(out, inp, weight, C, eps, offset, 0, N, rstd);
}

export function rmsnormRows(
  out: Float32Array, inp: Float32Array, weight: Float32Array,
  C: number, eps: number, offset: number, start: number, end: number, rstd?: Float32Array,
): void {
  for (let n = start; n < end; n++) {
    const base = n * C;
    let ss = 0;
    for (let i = 0; i < C; i++) {
      const v = inp[base + i];
      ss += v * v;
    }
    const r = 1 / Math.sqrt(ss / C + eps);
    if (rstd) rstd[n] = r;
    for (let i = 0; i < C; i++) out[base + i] = Math.fround(inp[base + i] * r) * (offset + weight[i]);
  }
}

/** The residual add fused with the next norm: x += delta, then out = rmsnorm(x), over rows [start, end). */
export function addRmsnormRows(
  x: Float32Array, delta: Float32Array, out: Float32Array, weight: Float32Array,
  C: number, eps: number, offset: number, start: number, end: number,
): void {
  for (let n = start; n < end; n++) {
    const base = n * C;
    let ss = 0;
    for (let i = base; i < base + C; i++) {
      const v = Math.fround(x[i] + delta[i]);
      x[i] = v;
      ss += v * v;
    }
    const r = 1 / Math.sqrt(ss / C + eps);
    for (let i = 0; i < C; i++) out[base + i] = Math.fround(x[base + i] * r) * (offset + weight[i]);
  }
}

/**
 * Backward of rmsnormForward over rows [start, end), using the rstd it saved.
 * With w' = offset + w and r = rstd: dx = r·(dy∘w') − (r³/C)·x·Σ(dy∘w'∘x). dinp is assigned (it may
 * alias dout); dweight, when given, accumulates Σ_rows dy∘x·r.
 */
export function rmsnormBackwardRows(
  dinp: Float32Array, dweight: Float32Array | null, dout: Float32Array, inp: Float32Array, weight: Float32Array,
  rstd: Float32Array, C: number, offset: number, start: number, end: number,
): void {
  for (let n = start; n < end; n++) {
    const base = n * C;
    const r = rstd[n];
    let dot = 0;
    for (let i = 0; i < C; i++) dot += dout[base + i] * (offset + weight[i]) * inp[base + i];
    const k = (r * r * r * dot) / C;
    for (let i = 0; i < C; i++) {
      const dy = dout[base + i];
      if (dweight) dweight[i] += dy * inp[base + i] * r;
      dinp[base + i] = r * dy * (offset + weight[i]) - k * inp[base + i];
    }
  }
}
