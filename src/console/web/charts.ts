// Charts drawn with uPlot: metric curves over training steps and histograms of dataset distributions.
// Each chart sizes itself to its box and follows it (phones, resized windows). The chart element
// carries data-points (how many points it plots) for tests and screen readers' summaries.

import uPlot from 'uplot';
import { h } from './dom.js';

/** Tick spacings for integer axes (steps, token counts). */
const INTEGER_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 1e6, 1e7];

export interface Curve { label: string; color: string; points: [number, number][]; dash?: boolean }

const charts = new Set<uPlot>();
const resizer = new ResizeObserver((entries) => {
  for (const e of entries) {
    const plot = (e.target as HTMLElement & { plot?: uPlot }).plot;
    if (plot) plot.setSize(size(e.target as HTMLElement));
  }
});

function size(box: HTMLElement): { width: number; height: number } {
  const width = Math.max(240, Math.floor(box.clientWidth));
  return { width, height: Math.round(Math.min(260, Math.max(160, width * 0.45))) };
}

/** Destroys every chart (when a view is left). */
export function disposeCharts(): void {
  for (const c of charts) c.destroy();
  charts.clear();
  resizer.disconnect();
}

/** Destroys the charts inside `el` (before it is replaced). */
export function disposeIn(el: HTMLElement): void {
  for (const box of el.querySelectorAll<HTMLElement & { plot?: uPlot }>('.chart')) {
    if (!box.plot) continue;
    charts.delete(box.plot);
    resizer.unobserve(box);
    box.plot.destroy();
    box.plot = undefined;
  }
}

function mount(box: HTMLElement & { plot?: uPlot }, opts: Omit<uPlot.Options, 'width' | 'height'>, data: uPlot.AlignedData): void {
  const make = () => {
    box.plot?.destroy();
    box.replaceChildren();
    const plot = new uPlot({ ...opts, ...size(box) }, data, box);
    box.plot = plot;
    charts.add(plot);
    resizer.observe(box);
  };
  // A box not yet in the document has no width: draw once it is.
  if (box.isConnected) make();
  else requestAnimationFrame(function wait() { if (box.isConnected) make(); else requestAnimationFrame(wait); });
}

/** A line chart of curves sharing the x axis (their x values merged; gaps are spanned). */
export function lineChart(title: string, xLabel: string, curves: Curve[]): HTMLElement {
  const xs = [...new Set(curves.flatMap((c) => c.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = curves.map((c) => {
    const y: (number | null)[] = new Array(xs.length).fill(null);
    for (const [x, v] of c.points) y[index.get(x)!] = v;
    return y;
  });
  const count = curves.reduce((n, c) => n + c.points.length, 0);
  const box = h('div', { class: 'chart', 'data-points': count, role: 'img', 'aria-label': `${title}: ${curves.map((c) => `${c.label} ${c.points.length} points`).join(', ')}` });
  mount(box, {
    title,
    legend: { live: false },
    scales: { x: { time: false } },
    axes: [{ label: xLabel, incrs: INTEGER_STEPS }, { size: 56 }],
    series: [{ label: xLabel }, ...curves.map((c) => ({
      label: c.label, stroke: c.color, width: 2, spanGaps: true, ...(c.dash ? { dash: [6, 4] } : {}),
      points: { show: c.points.length < 40 },
    }))],
  }, [xs, ...ys] as uPlot.AlignedData);
  return h('figure', { class: 'chart-figure' }, box, count === 0 ? h('figcaption', { class: 'muted' }, 'No points yet.') : null);
}

/** A histogram of buckets [left, right) with counts (Vertex's dataset distributions). */
export function histogram(title: string, buckets: { count: number | string; left: number; right: number }[], unit: string, color = '#2b6cb0'): HTMLElement {
  // Bars start at their bucket's left edge and are as wide as the gap to the next x: the last bucket's
  // right edge is one more x, without a bar.
  const xs = [...buckets.map((b) => b.left), buckets.length ? buckets[buckets.length - 1]!.right : 1];
  const counts = [...buckets.map((b) => Number(b.count)), null];
  const box = h('div', { class: 'chart', 'data-points': buckets.length, role: 'img', 'aria-label': `${title}: ${buckets.map((b) => `${b.left}–${b.right - 1}: ${b.count}`).join('; ')}` });
  mount(box, {
    title,
    scales: { x: { time: false, range: () => [xs[0]!, xs[xs.length - 1]!] } },
    axes: [{ label: unit, incrs: INTEGER_STEPS }, { label: 'examples' }],
    legend: { show: false },
    series: [{}, { label: 'examples', fill: color, stroke: color, paths: uPlot.paths.bars!({ size: [0.92, Infinity], align: 1 }), points: { show: false } }],
  }, [xs, counts]);
  return h('figure', { class: 'chart-figure' }, box);
}
