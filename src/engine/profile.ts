// Optional per-op accounting (TUNEKIT_PROFILE=1): where a forward or backward pass spends its wall-clock
// and CPU time (all threads of the process), by op name; CPU / wall is how many cores the op kept busy.
// When off, `mark` is a no-op and costs one branch.

const enabled = process.env.TUNEKIT_PROFILE === '1';
const totals = new Map<string, { wall: number; cpu: number }>();
let lastWall = 0;
let lastCpu = 0;

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Starts timing the next op. */
export function profileStart(): void {
  if (!enabled) return;
  lastWall = performance.now();
  lastCpu = cpuMs();
}

/** Charges the time since the previous mark (or start) to `op`. */
export function profileMark(op: string): void {
  if (!enabled) return;
  const wall = performance.now();
  const cpu = cpuMs();
  const t = totals.get(op) ?? { wall: 0, cpu: 0 };
  t.wall += wall - lastWall;
  t.cpu += cpu - lastCpu;
  totals.set(op, t);
  lastWall = wall;
  lastCpu = cpu;
}

export function profileReport(): string {
  const total = [...totals.values()].reduce((a, b) => a + b.wall, 0);
  return [...totals.entries()]
    .sort((a, b) => b[1].wall - a[1].wall)
    .map(([op, t]) => `${op.padEnd(12)} ${t.wall.toFixed(1).padStart(9)} ms ${((100 * t.wall) / total).toFixed(1).padStart(5)}%  CPU ${t.cpu.toFixed(0).padStart(7)} ms  ${(t.cpu / Math.max(t.wall, 1e-9)).toFixed(2)} cores`)
    .join('\n');
}

export function profileReset(): void {
  totals.clear();
}
