// RMSNorm over the last dimension: out = x / sqrt(mean(x²) + eps) · (offset + w).
// offset is 0 for Llama/Qwen and 1 for Gemma, whose checkpoints store w around zero.
// The reciprocal RMS per row is written to rstd when given; the backward pass reuses it.

export function rmsnormForward(
  out: Float32Array, inp: Float32Array, weight: Float32Array,
  N: number, C: number, eps: number, offset: number, rstd?: Float32Array,
): void {
  for (let n = 0; n < N; n++) {
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
