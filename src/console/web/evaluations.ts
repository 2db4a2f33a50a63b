// Evaluation reports: the evaluation runs of tuning jobs (evaluateDatasetRuns: their aggregate
// metrics, and the report.html the run wrote to its output directory, read through the Cloud Storage
// API of this server), and any report.html of `tunekit eval --out DIR` opened from a file. A report is
// shown in a sandboxed frame (viewer.html): its script runs there, with no origin and no network.

import { fetchText, idOf, listAll, parent } from './api.js';
import { errorBox, h, link, num, table } from './dom.js';
import type { View } from './main.js';

/** gs://BUCKET/OBJECT as this server's Cloud Storage JSON API media URL. */
function mediaUrl(gs: string): string {
  const m = /^gs:\/\/([^/]+)\/(.+)$/.exec(gs);
  if (!m) throw new Error(`not a gs:// object: ${gs}`);
  return `/storage/v1/b/${encodeURIComponent(m[1]!)}/o/${encodeURIComponent(m[2]!)}?alt=media`;
}

/** The numbers of an aggregation result, by path (e.g. exactMatchMetricValue.score: 0.75). */
function flatten(v: unknown, prefix = '', out: [string, string][] = []): [string, string][] {
  if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  else if (typeof v === 'number' || typeof v === 'string') out.push([prefix, typeof v === 'number' ? num(v, 4) : v]);
  return out;
}

/** A job's evaluation runs: metrics and a button that opens each run's report. */
export function evaluationRuns(job: Record<string, any>): HTMLElement {
  const viewer = h('div', { class: 'report-box' });
  const runs: Record<string, any>[] = job.evaluateDatasetRuns ?? [];
  return h('div', { class: 'card' }, runs.map((run, i) => {
    const response = run.evaluateDatasetResponse ?? {};
    const dir: string | undefined = response.outputInfo?.gcsOutputDirectory;
    const report = dir ? `${dir.replace(/\/?$/, '/')}report.html` : undefined;
    const rows = (response.aggregationOutput?.aggregationResults ?? []).flatMap(({ aggregationMetric, ...value }: Record<string, unknown>) =>
      flatten(value).map(([metric, x]) => [metric, String(aggregationMetric ?? ''), x]));
    return h('section', { 'aria-label': `Evaluation run ${i + 1}` },
      h('h3', {}, `Run ${i + 1}`, run.checkpointId ? ` (checkpoint ${run.checkpointId})` : ''),
      run.error ? errorBox(run.error.message ?? JSON.stringify(run.error)) : null,
      rows.length ? table(['Metric', 'Aggregation', 'Value'], rows) : null,
      report ? h('p', {}, h('span', { class: 'mono' }, report), ' ', h('button', {
        type: 'button', class: 'open-report',
        onclick: async () => {
          viewer.replaceChildren(h('p', { class: 'muted' }, 'Loading the report…'));
          try {
            showReport(viewer, await fetchText(mediaUrl(report)), `report of ${idOf(job.name)}`);
          } catch (err) {
            viewer.replaceChildren(errorBox(`Could not read ${report}: ${(err as Error).message}`));
          }
        },
      }, 'Open report')) : null);
  }), viewer);
}

/** Shows a report's HTML in a sandboxed frame inside `box`. */
export function showReport(box: HTMLElement, html: string, title: string): void {
  const frame = h('iframe', { src: '/console/viewer.html', sandbox: 'allow-scripts', title, class: 'report-frame', id: 'report-frame' });
  const onMessage = (e: MessageEvent) => {
    if (e.source !== frame.contentWindow || !(e.data as { viewerReady?: boolean } | null)?.viewerReady) return;
    removeEventListener('message', onMessage);
    frame.contentWindow!.postMessage({ reportHtml: html }, '*');
  };
  addEventListener('message', onMessage);
  const download = h('a', { href: URL.createObjectURL(new Blob([html], { type: 'text/html' })), download: 'report.html' }, 'Download report.html');
  box.replaceChildren(h('p', {}, download), frame);
}

export async function evaluations(v: View): Promise<void> {
  const jobs = (await listAll(`${parent()}/tuningJobs`, 'tuningJobs', v.signal)).filter((j) => j.evaluateDatasetRuns?.length);
  const box = h('div', { class: 'report-box', id: 'file-report' });
  const file = h('input', {
    type: 'file', id: 'report-file', accept: '.html,text/html',
    onchange: async (e: Event) => {
      const f = (e.currentTarget as HTMLInputElement).files?.[0];
      if (f) showReport(box, await f.text(), f.name);
    },
  });
  v.main.replaceChildren(
    h('h1', {}, 'Evaluations'),
    h('h2', {}, 'Tuning jobs with an evaluation'),
    jobs.length === 0
      ? h('p', { class: 'muted' }, 'No tuning job of this project ran an evaluation (supervisedTuningSpec.evaluationConfig).')
      : h('div', {}, jobs.map((j) => h('section', { 'aria-label': `Job ${idOf(j.name)}` }, h('h3', {}, link(`jobs/${idOf(j.name)}`, `${j.tunedModelDisplayName ?? ''} (${idOf(j.name)})`)), evaluationRuns(j)))),
    h('h2', {}, 'Open a report file'),
    h('div', { class: 'card' }, h('label', { class: 'field' }, h('span', {}, 'report.html written by tunekit eval --out DIR'), file)),
    box,
  );
}
