// The CLI's one progress display: a bar with percentage, count, a detail and the ETA, redrawn in place
// on a terminal (stderr by default, at most every 100 ms), and nothing at all when the stream is not
// a terminal, so logs and pipes stay clean. `log` prints a line above a live bar. Also the loss
// sparkline that `tunekit jobs watch` draws beside its bar. (cli-progress was tried: it saves and
// restores the cursor around the bar, which breaks lines logged above it, and its timer keeps the
// process alive; what is needed here is a few lines.)

export interface ProgressOptions {
  /** Written before the bar, e.g. "validate data.jsonl". */
  label: string;
  total: number;
  /** Where the bar is drawn (default process.stderr); drawn only when it is a TTY. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** How counts are shown: plain numbers, or bytes (KB, MB, ...). */
  unit?: 'count' | 'bytes';
  /** Characters of the bar itself (default 24). */
  barSize?: number;
}

export interface Progress {
  /** Whether anything is drawn (the stream is a terminal). */
  readonly live: boolean;
  update(done: number, detail?: string): void;
  setTotal(total: number): void;
  /** A line printed above the bar (or just printed, when nothing is drawn). */
  log(line: string): void;
  /** Draws the last state and leaves it on its own line. */
  stop(): void;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export interface BarState {
  label: string;
  done: number;
  total: number;
  detail?: string;
  /** Seconds since the start. */
  elapsed: number;
  unit?: 'count' | 'bytes';
  barSize?: number;
}

/**
 * One frame of the bar within `width` columns: the bar shrinks (to 8 characters) and then the detail
 * is cut (with '…') so that the count and the ETA stay visible; a label too long for the width is cut.
 */
export function renderBar(s: BarState, width: number): string {
  const fraction = s.total > 0 ? Math.min(1, Math.max(0, s.done / s.total)) : 0;
  const show = s.unit === 'bytes' ? formatBytes : (n: number) => String(n);
  const finished = s.total > 0 && s.done >= s.total;
  const eta = finished ? `in ${formatDuration(s.elapsed)}`
    : s.done > 0 && s.total > 0 ? `ETA ${formatDuration((s.elapsed / s.done) * (s.total - s.done))}` : 'ETA ?';
  const count = `${`${Math.floor(fraction * 100)}%`.padStart(4)} ${show(s.done)}/${show(s.total)}`;
  const len = (x: string) => [...x].length;
  const max = Math.max(1, width - 1);
  const MIN_BAR = 8;
  const fixed = len(s.label) + 1 + 1 + len(count) + 1 + len(eta);
  let detail = s.detail ?? '';
  const detailRoom = max - fixed - MIN_BAR - 1;
  if (len(detail) > detailRoom) detail = detailRoom >= 2 ? `${[...detail].slice(0, detailRoom - 1).join('')}…` : '';
  const rest = detail ? `${count} ${detail} ${eta}` : `${count} ${eta}`;
  const size = Math.max(MIN_BAR, Math.min(s.barSize ?? 24, max - len(s.label) - 2 - len(rest)));
  const filled = Math.round(fraction * size);
  const line = `${s.label} ${'█'.repeat(filled)}${'░'.repeat(size - filled)} ${rest}`;
  return [...line].slice(0, max).join('');
}

const REDRAW_MS = 100;

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const live = stream.isTTY === true;
  const t0 = Date.now();
  const state: BarState = { label: opts.label, done: 0, total: opts.total, elapsed: 0, unit: opts.unit, barSize: opts.barSize };
  let drawnAt = -Infinity;
  let active = live;
  const draw = (force: boolean): void => {
    const t = Date.now();
    if (!force && t - drawnAt < REDRAW_MS) return;
    drawnAt = t;
    state.elapsed = (t - t0) / 1000;
    stream.write(`\r${renderBar(state, stream.columns || 80)}\x1b[K`);
  };
  let drawn = false;
  return {
    live,
    update(done, detail) {
      state.done = done;
      if (detail !== undefined) state.detail = detail;
      if (active) draw(!drawn || done >= state.total);
      drawn = true;
    },
    setTotal(total) {
      state.total = total;
    },
    log(line) {
      if (!active) {
        stream.write(`${line}\n`);
        return;
      }
      stream.write(`\r\x1b[K${line}\n`);
      draw(true);
    },
    stop() {
      if (!active) return;
      active = false;
      draw(true);
      stream.write('\n');
    },
  };
}

/** A library's onProgress(done, total) drawn on `p`. */
export function progressTo(p: Progress): (done: number, total: number) => void {
  return (done, total) => {
    p.setTotal(total);
    p.update(done);
  };
}

/** Runs `fn` with a progress display and always stops it. */
export async function withProgress<T>(opts: ProgressOptions, fn: (p: Progress) => T | Promise<T>): Promise<T> {
  const p = createProgress(opts);
  try {
    return await fn(p);
  } finally {
    p.stop();
  }
}

const SPARKS = '▁▂▃▄▅▆▇█';

/**
 * The last `width` values as a sparkline, scaled between their minimum and maximum (a flat series is
 * a row of the lowest bar). Non-finite values are left out.
 */
export function sparkline(values: readonly number[], width: number): string {
  const v = values.filter((x) => Number.isFinite(x)).slice(-Math.max(0, width));
  if (v.length === 0 || width <= 0) return '';
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return v.map((x) => SPARKS[hi === lo ? 0 : Math.round(((x - lo) / (hi - lo)) * (SPARKS.length - 1))]).join('');
}
