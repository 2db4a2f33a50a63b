// Small element-wise kernels: residual adds, scaling, embedding lookup.

/** a += b over n values. */
export function addInPlace(a: Float32Array, b: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) a[i] += b[i];
}

/** out(T, C) = table[tokens[t]] · scale. */
export function embeddingForward(
  out: Float32Array, tokens: ArrayLike<number>, table: Float32Array, T: number, C: number, scale: number,
): void {
  for (let t = 0; t < T; t++) {
    const src = tokens[t] * C;
    const dst = t * C;
    if (scale === 1) out.set(table.subarray(src, src + C), dst);
    else for (let i = 0; i < C; i++) out[dst + i] = table[src + i] * scale;
  }
}
