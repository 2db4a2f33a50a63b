// What `tunekit eval` writes to --out: results.jsonl (one row per example: prompt, reference, each
// side's response, scores, judge explanations and errors, pairwise outcomes), summary.json, and
// report.html — one self-contained page (no network, no external files): the metric summary with a
// bar chart per metric (means and 95% bootstrap intervals), the side-by-side table with a text filter
// and sortable columns, and the configuration. The page's data sits in a JSON script element; all
// text reaches the DOM through textContent, never as HTML.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EvalOutcome, MetricSummary } from './run.js';

export interface ReportConfig {
  dataset: string;
  candidate: string;
  baseline?: string;
  judge?: string;
  metrics: string[];
  [key: string]: unknown;
}

export function writeEvalOutputs(outDir: string, outcome: EvalOutcome, config: ReportConfig): { results: string; summary: string; report: string } {
  fs.mkdirSync(outDir, { recursive: true });
  const results = path.join(outDir, 'results.jsonl');
  fs.writeFileSync(results, outcome.results.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const summary = path.join(outDir, 'summary.json');
  fs.writeFileSync(summary, JSON.stringify({ config, summary: outcome.summary }, null, 2) + '\n');
  const report = path.join(outDir, 'report.html');
  fs.writeFileSync(report, reportHtml(outcome, config));
  return { results, summary, report };
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** An SVG bar chart of one metric: a bar per side with its interval as a whisker, right of the labels. */
function chart(s: MetricSummary): string {
  const bars: { label: string; mean: number; lo: number; hi: number; color: string }[] = [];
  if (s.candidate) bars.push({ label: s.kind === 'pairwise' ? 'candidate win' : 'candidate', ...s.candidate, color: '#2b6cb0' });
  if (s.baseline) bars.push({ label: 'baseline', ...s.baseline, color: '#a0aec0' });
  if (bars.length === 0) return '<svg width="260" height="30"><text x="4" y="20">no scores</text></svg>';
  const lo = Math.min(0, ...bars.map((b) => b.lo));
  const hi = Math.max(1, ...bars.map((b) => b.hi));
  // The labels' column: 8 px a character is wider than 14 px system-ui text; the plot starts after it.
  const left = 12 + 8 * Math.max(...bars.map((b) => b.label.length));
  const plot = 160;
  const x = (v: number) => left + ((v - lo) / (hi - lo || 1)) * plot;
  const rows = bars.map((b, i) => {
    const y = 8 + i * 26;
    return `<text x="4" y="${y + 14}">${esc(b.label)}</text>` +
      `<rect x="${x(Math.min(0, b.mean))}" y="${y}" width="${Math.abs(x(b.mean) - x(0))}" height="18" fill="${b.color}"><title>${b.mean.toFixed(4)}</title></rect>` +
      `<line x1="${x(b.lo)}" x2="${x(b.hi)}" y1="${y + 9}" y2="${y + 9}" stroke="#1a202c" stroke-width="2"/>`;
  }).join('');
  return `<svg class="chart" width="${left + plot + 10}" height="${16 + bars.length * 26}" role="img" aria-label="${esc(s.metric)}">${rows}</svg>`;
}

const STYLE = `body{font:14px system-ui,sans-serif;margin:24px;color:#1a202c}h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #e2e8f0;padding:4px 6px;vertical-align:top;text-align:left}
th{background:#f7fafc}th button{font:inherit;font-weight:bold;border:0;background:none;padding:0;cursor:pointer;text-align:left;width:100%}td.text{white-space:pre-wrap;max-width:28em}.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #e2e8f0;border-radius:6px;padding:8px}.card h3{margin:0 0 4px;font-size:14px}.err{color:#c53030}
input{padding:4px;width:24em}.num{text-align:right;font-variant-numeric:tabular-nums}`;

// Runs in the page: renders the table from the embedded data, filters and sorts it.
const SCRIPT = `
const data = JSON.parse(document.getElementById('eval-data').textContent);
const rows = data.results;
const metrics = data.config.metrics;
const hasBaseline = rows.some((r) => r.baseline);
const cols = [['#', (r) => r.index], ['prompt', (r) => r.prompt], ['reference', (r) => r.reference ?? '']];
if (hasBaseline) cols.push(['baseline', (r) => r.baseline.response ?? ('error: ' + r.baseline.error)]);
cols.push(['candidate', (r) => r.candidate.response ?? ('error: ' + r.candidate.error)]);
for (const m of metrics) {
  if (rows.some((r) => r.pairwise && r.pairwise[m])) { cols.push([m, (r) => r.pairwise[m]?.choice ?? ('error: ' + (r.pairwise[m]?.error ?? ''))]); continue; }
  cols.push([m + ' (cand.)', (r) => r.candidate.scores[m] ?? (r.candidate.errors[m] ? 'error: ' + r.candidate.errors[m] : '')]);
  if (hasBaseline) cols.push([m + ' (base)', (r) => r.baseline.scores[m] ?? (r.baseline.errors[m] ? 'error: ' + r.baseline.errors[m] : '')]);
}
cols.push(['judge explanations', (r) => [...Object.entries(r.candidate.explanations).map(([k, v]) => k + ' (cand.): ' + v),
  ...Object.entries(r.baseline?.explanations ?? {}).map(([k, v]) => k + ' (base): ' + v),
  ...Object.entries(r.pairwise).filter(([, v]) => v.explanation).map(([k, v]) => k + ': ' + v.explanation)].join('\\n')]);
let sortCol = 0, sortDir = 1;
const table = document.getElementById('rows');
function render() {
  const focused = document.activeElement?.dataset?.col;
  const q = document.getElementById('filter').value.toLowerCase();
  const shown = rows.filter((r) => !q || cols.some(([, f]) => String(f(r)).toLowerCase().includes(q)));
  const f = cols[sortCol][1];
  shown.sort((a, b) => { const x = f(a), y = f(b); return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * sortDir; });
  table.replaceChildren();
  // Headers are buttons (mouse and keyboard: Tab, Enter/Space); the sorted one has aria-sort and keeps focus.
  const head = document.createElement('tr');
  cols.forEach(([name], i) => { const th = document.createElement('th'); th.scope = 'col';
    th.setAttribute('aria-sort', i === sortCol ? (sortDir > 0 ? 'ascending' : 'descending') : 'none');
    const b = document.createElement('button'); b.type = 'button'; b.dataset.col = String(i);
    b.textContent = name + (i === sortCol ? (sortDir > 0 ? ' ▲' : ' ▼') : '');
    b.onclick = () => { sortDir = sortCol === i ? -sortDir : 1; sortCol = i; render(); }; th.append(b); head.append(th); });
  table.append(head);
  if (focused !== undefined) head.querySelector('button[data-col="' + focused + '"]')?.focus();
  for (const r of shown) {
    const tr = document.createElement('tr');
    for (const [, fn] of cols) { const td = document.createElement('td'); const v = fn(r);
      td.textContent = typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v);
      td.className = typeof v === 'number' ? 'num' : 'text'; if (String(v).startsWith('error: ')) td.classList.add('err'); tr.append(td); }
    table.append(tr);
  }
  document.getElementById('count').textContent = shown.length + ' of ' + rows.length + ' examples';
}
document.getElementById('filter').oninput = render;
render();
`;

export function reportHtml(outcome: EvalOutcome, config: ReportConfig): string {
  const fmt = (v?: number) => (v === undefined ? '-' : v.toFixed(3));
  const cards = outcome.summary.map((s) => {
    const lines = s.kind === 'pairwise'
      ? `candidate wins ${fmt(s.candidateWinRate)}, baseline wins ${fmt(s.baselineWinRate)}, ties ${fmt(s.tieRate)}; orders disagree ${fmt(s.disagreementRate)}; failed ${s.candidateFailures}`
      : `candidate ${fmt(s.candidate?.mean)} [${fmt(s.candidate?.lo)}, ${fmt(s.candidate?.hi)}]` +
        (s.baseline ? `; baseline ${fmt(s.baseline.mean)} [${fmt(s.baseline.lo)}, ${fmt(s.baseline.hi)}]` : '') +
        `; failed ${s.candidateFailures}${s.baseline ? `/${s.baselineFailures}` : ''}`;
    return `<div class="card"><h3>${esc(s.metric)} <small>(${s.kind})</small></h3>${chart(s)}<div>${esc(lines)}</div></div>`;
  }).join('\n');
  const configRows = Object.entries(config).map(([k, v]) => `<tr><th>${esc(k)}</th><td class="text">${esc(typeof v === 'string' ? v : JSON.stringify(v))}</td></tr>`).join('');
  const data = JSON.stringify({ config, summary: outcome.summary, results: outcome.results }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tunekit eval: ${esc(config.candidate)}</title><style>${STYLE}</style></head>
<body>
<h1>Evaluation: ${esc(config.candidate)}${config.baseline ? ` vs ${esc(config.baseline)}` : ''}</h1>
<h2>Metrics</h2>
<div class="cards" id="summary">${cards}</div>
<h2>Examples</h2>
<p><input id="filter" type="search" placeholder="filter: any text in a row"> <span id="count"></span></p>
<table id="rows"></table>
<h2>Configuration</h2>
<table id="config">${configRows}</table>
<script type="application/json" id="eval-data">${data}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
