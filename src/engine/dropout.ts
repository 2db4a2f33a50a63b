// Dropout masks that need no storage: whether element i is kept is a hash of (key, i), so the backward
// pass (and a recomputed forward) regenerates exactly the mask the forward used. key comes from the
// run's seed, the step, the layer and the target, so runs are reproducible.

/** A well-mixed 32-bit key from a few integers. */
export function dropoutKey(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** out = x ∘ keep / (1 − p) over n values; keep(i) = hash(key, i) ≥ p·2³². out may alias x. */
export function dropoutApply(out: Float32Array, x: Float32Array, n: number, p: number, key: number): void {
  const threshold = Math.floor(p * 4294967296);
  const scale = 1 / (1 - p);
  for (let i = 0; i < n; i++) {
    let h = Math.imul(key ^ i, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    out[i] = (h >>> 0) >= threshold ? x[i] * scale : 0;
  }
}
