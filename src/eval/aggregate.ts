// Vertex's aggregation metrics (Metric.AggregationMetric) over one metric's per-instance scores, as a
// tuning job's evaluation reports them: AVERAGE, MODE, STANDARD_DEVIATION and VARIANCE (sample, n - 1,
// as pandas computes them), MINIMUM, MAXIMUM, MEDIAN and the PERCENTILE_P90/P95/P99 (linear
// interpolation between order statistics, numpy's default). Pairwise metrics have only MODE, over
// their choices (the proto says the others are not supported for pairwise metrics).

export const AGGREGATION_METRICS = [
  'AVERAGE', 'MODE', 'STANDARD_DEVIATION', 'VARIANCE', 'MINIMUM', 'MAXIMUM', 'MEDIAN', 'PERCENTILE_P90', 'PERCENTILE_P95', 'PERCENTILE_P99',
] as const;
export type AggregationMetric = (typeof AGGREGATION_METRICS)[number];

function quantile(sorted: number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

/** The most frequent value; ties go to the smallest (pandas' mode()[0]). */
export function mode<T extends number | string>(xs: T[]): T | undefined {
  const counts = new Map<T, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  let best: T | undefined;
  let bestCount = 0;
  for (const [x, c] of [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (c > bestCount) {
      best = x;
      bestCount = c;
    }
  }
  return best;
}

/** One aggregation of the scores; undefined for no scores (and for a spread of one score). */
export function aggregate(kind: AggregationMetric, xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const sorted = [...xs].sort((a, b) => a - b);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.length > 1 ? xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1) : undefined;
  switch (kind) {
    case 'AVERAGE': return mean;
    case 'MODE': return mode(xs);
    case 'STANDARD_DEVIATION': return variance === undefined ? undefined : Math.sqrt(variance);
    case 'VARIANCE': return variance;
    case 'MINIMUM': return sorted[0];
    case 'MAXIMUM': return sorted[sorted.length - 1];
    case 'MEDIAN': return quantile(sorted, 0.5);
    case 'PERCENTILE_P90': return quantile(sorted, 0.9);
    case 'PERCENTILE_P95': return quantile(sorted, 0.95);
    case 'PERCENTILE_P99': return quantile(sorted, 0.99);
  }
}
