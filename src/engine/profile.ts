// Optional per-op wall-clock accounting (TUNEKIT_PROFILE=1): where a forward or backward pass spends
// its time, by op name. When off, `mark` is a no-op and costs one branch.

const enabled = process.env.TUNEKIT_PROFILE === '1';
const totals = new Map<string, number>();
let last = 0;

/** Starts timing the next op. */
export function profileStart(): void {
  if (enabled) last = performance.now();
}

/** Charges the time since the previous mark (or start) to `op`. */
export function profileMark(op: string): void {
  if (!enabled) return;
  const now = performance.now();
  totals.set(op, (totals.get(op) ?? 0) + now - last);
  last = now;
}

export function profileReport(): string {
  const total = [...totals.values()].reduce((a, b) => a + b, 0);
  return [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([op, ms]) => `${op.padEnd(12)} ${ms.toFixed(1).padStart(9)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%`)
    .join('\n');
}

export function profileReset(): void {
  totals.clear();
}
