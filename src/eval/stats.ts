// Summary statistics for evaluation reports: means and percentile-bootstrap confidence intervals
// (resampling instances with replacement, a seeded generator so a report is reproducible).

import { Random } from '../engine/random.js';

export function mean(xs: number[]): number | undefined {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined;
}

export interface Interval {
  mean: number;
  lo: number;
  hi: number;
  n: number;
}

/** The mean and its (1 - alpha) percentile-bootstrap interval; undefined for no values. */
export function bootstrapCi(xs: number[], opts: { iterations?: number; alpha?: number; seed?: number } = {}): Interval | undefined {
  const n = xs.length;
  if (n === 0) return undefined;
  const m = mean(xs)!;
  const iterations = opts.iterations ?? 2000;
  const alpha = opts.alpha ?? 0.05;
  const rng = new Random(opts.seed ?? 0);
  const means = new Float64Array(iterations);
  for (let b = 0; b < iterations; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += xs[Math.floor(rng.next() * n)];
    means[b] = s / n;
  }
  means.sort();
  const at = (q: number) => means[Math.min(iterations - 1, Math.max(0, Math.floor(q * iterations)))];
  return { mean: m, lo: at(alpha / 2), hi: at(1 - alpha / 2), n };
}

/** A score as protobuf's JSON printer writes a `float` field: the shortest decimal naming the same float32. */
export function float32Json(x: number): number {
  const f = Math.fround(x);
  for (let p = 1; p < 9; p++) {
    const d = Number(f.toPrecision(p));
    if (Math.fround(d) === f) return d;
  }
  return Number(f.toPrecision(9));
}
