// Tuning jobs: the list (polled while any job is still running) and a job's page: state and times,
// hyper-parameters, live train / eval loss and accuracy curves from .../tuningJobs/ID/metrics (polled
// until the job ends), the dataset's statistics as histograms (tuningDataStats), what the job
// produced (model, endpoint, checkpoints) and its evaluation runs.

import { api, idOf, listAll, parent } from './api.js';
import { disposeIn, histogram, lineChart, type Curve } from './charts.js';
import { duration, errorBox, facts, h, link, num, stateBadge, table, time } from './dom.js';
import type { View } from './main.js';
import { evaluationRuns } from './evaluations.js';
import { jobSource, shortModel } from './job-source.js';

const ACTIVE = new Set(['JOB_STATE_QUEUED', 'JOB_STATE_PENDING', 'JOB_STATE_RUNNING', 'JOB_STATE_CANCELLING']);
const POLL_MS = 1500;

export const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

/** Replaces a container's content, keeping keyboard focus on the element with the same href or id. */
export function replaceKeepingFocus(box: HTMLElement, ...nodes: Node[]): void {
  const active = document.activeElement as HTMLElement | null;
  const key = active && box.contains(active) ? active.getAttribute('href') ?? active.id : null;
  box.replaceChildren(...nodes);
  if (key) [...box.querySelectorAll<HTMLElement>('a, button, [id]')].find((e) => (e.getAttribute('href') ?? e.id) === key)?.focus();
}

export async function jobList(v: View): Promise<void> {
  const box = h('div');
  v.main.replaceChildren(h('h1', {}, 'Tuning jobs'), h('p', {}, link('jobs/new', 'Create a tuning job', { class: 'button', id: 'create-job' })), box);
  let last = '';
  while (!v.signal.aborted) {
    const jobs = await listAll(`${parent()}/tuningJobs`, 'tuningJobs', v.signal);
    const snapshot = JSON.stringify(jobs);
    if (snapshot !== last) {
      last = snapshot;
      replaceKeepingFocus(box, jobs.length === 0
        ? h('p', { class: 'muted' }, 'No tuning jobs in this project yet. Create one with the SDK (ai.tunings.tune) or POST …/tuningJobs.')
        : table(['Job', 'Model name', 'Base model', 'State', 'Created', 'Duration'], jobs.map((j) => [
          link(`jobs/${idOf(j.name)}`, idOf(j.name)), j.tunedModelDisplayName ?? '', sourceCell(jobSource(j)),
          stateBadge(j.state), time(j.createTime), duration(j.startTime, j.endTime),
        ])));
    }
    if (!jobs.some((j) => ACTIVE.has(j.state))) break;
    await sleep(POLL_MS * 2, v.signal);
  }
}

const METRIC_CHARTS: { title: string; y: string; series: [string, string, string, boolean][] }[] = [
  { title: 'Loss', y: 'loss', series: [['/train_total_loss', 'train loss', '#2b6cb0', false], ['/eval_total_loss', 'eval loss', '#dd6b20', true]] },
  { title: 'Next-token accuracy', y: 'fraction', series: [['/train_fraction_of_correct_next_step_preds', 'train accuracy', '#2f855a', false], ['/eval_fraction_of_correct_next_step_preds', 'eval accuracy', '#b83280', true]] },
  { title: 'Learning rate', y: 'rate', series: [['/learning_rate', 'learning rate', '#4a5568', false]] },
];

export async function jobDetail(v: View, id: string): Promise<void> {
  const name = `${parent()}/tuningJobs/${id}`;
  const summary = h('section', { 'aria-label': 'Job' });
  const progress = h('div', { class: 'progress-line', role: 'status' });
  const charts = h('div', { class: 'grid charts', id: 'metric-charts' });
  const outputs = h('section', { 'aria-label': 'Results' });
  const stats = h('section', { 'aria-label': 'Dataset statistics' });
  const heading = h('h1', {}, 'Tuning job ', h('span', { class: 'mono' }, id));
  v.main.replaceChildren(h('p', { class: 'crumbs' }, link('jobs', 'Tuning jobs'), ' / ', id), heading, summary, h('h2', {}, 'Metrics'), progress, charts, outputs, stats);
  let lastUpdate = '';
  let lastPoints = -1;
  let statsShown = false;
  while (!v.signal.aborted) {
    const [job, metrics] = await Promise.all([api(name, { signal: v.signal }), api(`${name}/metrics`, { signal: v.signal })]);
    if (job.updateTime !== lastUpdate) {
      lastUpdate = job.updateTime;
      replaceKeepingFocus(summary, jobSummary(job, v.signal));
      replaceKeepingFocus(outputs, ...jobOutputs(job));
    }
    const series = new Map<string, [number, number][]>((metrics.metrics ?? []).map((m: any) => [m.name, m.points.map((p: any) => [Number(p.step), p.value])]));
    const points = [...series.values()].reduce((n, p) => n + p.length, 0);
    const total = Number(job.tuningDataStats?.supervisedTuningDataStats?.tuningStepCount ?? 0);
    const step = Math.max(0, ...(series.get('/train_total_loss') ?? []).map((p) => p[0]));
    progress.replaceChildren(total ? h('progress', { max: total, value: step, 'aria-label': 'steps done' }) : '',
      ` step ${step}${total ? ` of ${total}` : ''}`, job.state === 'JOB_STATE_RUNNING' ? ' · updating live' : '');
    if (points !== lastPoints) {
      lastPoints = points;
      disposeIn(charts);
      charts.replaceChildren(...METRIC_CHARTS.filter((c) => c.series.some(([m]) => series.has(m)) || c.title === 'Loss').map((c) => h('div', { class: 'card', 'data-metric': c.title },
        lineChart(c.title, 'step', c.series.filter(([m]) => series.has(m) || c.title === 'Loss').map(([m, label, color, dash]): Curve => ({ label, color, dash, points: series.get(m) ?? [] }))))));
    }
    if (!statsShown && job.tuningDataStats) {
      statsShown = true;
      stats.replaceChildren(...dataStats(job.tuningDataStats.supervisedTuningDataStats ?? {}));
    }
    if (!ACTIVE.has(job.state)) break;
    await sleep(POLL_MS, v.signal);
  }
}

/** The list's base model column: the base, and for a continuous tuning job the tuned model it started from. */
function sourceCell(src: ReturnType<typeof jobSource>): Node | string {
  if (!src.tunedModel) return shortModel(src.base);
  return h('span', {}, shortModel(src.base), h('br'), h('span', { class: 'muted' }, `from ${idOf(src.tunedModel)}${src.checkpointId ? ` @ checkpoint ${src.checkpointId}` : ''}`));
}

function jobSummary(job: Record<string, any>, signal: AbortSignal): HTMLElement {
  const src = jobSource(job);
  const spec = job.supervisedTuningSpec ?? {};
  const hp = spec.hyperParameters ?? {};
  const cancel = ACTIVE.has(job.state) && job.state !== 'JOB_STATE_CANCELLING'
    ? h('button', {
      type: 'button', id: 'cancel-job',
      onclick: async (e: Event) => {
        const b = e.currentTarget as HTMLButtonElement;
        if (!confirm(`Cancel tuning job ${idOf(job.name)}?`)) return;
        b.disabled = true;
        try { await api(`${job.name}:cancel`, { body: {}, signal }); } catch (err) { b.after(errorBox(err)); }
      },
    }, 'Cancel job')
    : null;
  return h('div', { class: 'card' },
    h('div', { class: 'row' }, stateBadge(job.state), cancel),
    job.error ? errorBox(`${job.error.status ?? job.error.code ?? ''} ${job.error.message ?? ''}`) : null,
    facts([
      ['Tuned model name', job.tunedModelDisplayName], ['Base model', src.base],
      ['Continued from', src.tunedModel ? link(`models/${idOf(src.tunedModel)}`, src.tunedModel) : ''],
      ['From checkpoint', src.checkpointId], ['Description', job.description],
      ['Training data', spec.trainingDatasetUri], ['Validation data', spec.validationDatasetUri],
      ['Epochs', hp.epochCount], ['Adapter size', String(hp.adapterSize ?? '').replace(/^ADAPTER_SIZE_/, '').toLowerCase()],
      ['Learning rate multiplier', hp.learningRateMultiplier], ['Learning rate', hp.learningRate],
      ['Labels', job.labels ? Object.entries(job.labels).map(([k, x]) => `${k}=${x}`).join(', ') : ''],
      ['Created', time(job.createTime)], ['Started', time(job.startTime)], ['Ended', time(job.endTime)],
      ['Duration', duration(job.startTime, job.endTime)],
    ]));
}

function jobOutputs(job: Record<string, any>): Node[] {
  const tm = job.tunedModel;
  const out: Node[] = [];
  if (tm) {
    const model = String(tm.model ?? '');
    const modelId = idOf(model);
    out.push(h('h2', {}, 'Tuned model'), h('div', { class: 'card' }, facts([
      ['Model', model ? link(`models/${modelId}`, model) : ''],
      ['Endpoint', tm.endpoint ? link(`endpoints/${idOf(tm.endpoint)}`, tm.endpoint) : ''],
      ['Try it', tm.endpoint ? link(`playground?target=${encodeURIComponent(tm.endpoint)}&compare=${encodeURIComponent(jobSource(job).base)}`, 'Open in the playground (tuned vs base)') : ''],
    ]), tm.checkpoints?.length ? table(['Checkpoint', 'Epoch', 'Step', 'Endpoint'], tm.checkpoints.map((c: any) => [c.checkpointId, c.epoch, c.step, c.endpoint ? link(`endpoints/${idOf(c.endpoint)}`, idOf(c.endpoint)) : ''])) : null));
  }
  if (job.evaluateDatasetRuns?.length) out.push(h('h2', {}, 'Evaluation'), evaluationRuns(job));
  return out;
}

function dataStats(s: Record<string, any>): Node[] {
  const dist = (title: string, d: any, unit: string) => d?.buckets?.length
    ? h('div', { class: 'card' }, histogram(title, d.buckets, unit),
      h('p', { class: 'muted small' }, `min ${num(d.min)} · median ${num(d.median, 1)} · mean ${num(d.mean, 1)} · p95 ${num(d.p95, 1)} · max ${num(d.max)} · total ${num(d.sum)}`))
    : null;
  return [
    h('h2', {}, 'Training dataset'),
    h('div', { class: 'card' }, facts([
      ['Examples', num(s.tuningDatasetExampleCount)], ['Characters', num(s.totalTuningCharacterCount)],
      ['Billable tokens (one epoch)', num(s.totalBillableTokenCount)], ['Optimizer steps', num(s.tuningStepCount)],
      ['Truncated examples', num(s.totalTruncatedExampleCount)],
      ['Dropped rows', s.droppedExampleReasons?.length ? h('ul', {}, s.droppedExampleReasons.map((r: string) => h('li', {}, r))) : ''],
    ])),
    h('div', { class: 'grid charts', id: 'dataset-charts' },
      dist('Input tokens per example', s.userInputTokenDistribution, 'tokens'),
      dist('Output tokens per example', s.userOutputTokenDistribution, 'tokens'),
      dist('Messages per example', s.userMessagePerExampleDistribution, 'messages')),
  ];
}

interface FormOptions { adapterSizes: Record<string, number>; defaults: { epochCount: number; adapterSize: string; learningRateMultiplier: number } }

/** The create form: a supervised tuning job of a base model on gs:// datasets (POST .../tuningJobs). */
export async function jobCreate(v: View): Promise<void> {
  const [options, publisher] = await Promise.all([
    fetch('/console/options.json', { signal: v.signal }).then((r) => r.json() as Promise<FormOptions>),
    api('publishers/google/models', { signal: v.signal }),
  ]);
  const field = (label: string, input: HTMLElement, help?: string) => h('label', { class: 'field' }, h('span', {}, label), input, help ? h('small', { class: 'muted' }, help) : null);
  const name = h('input', { name: 'tunedModelDisplayName', required: true, maxlength: 128, placeholder: 'my-tuned-model' });
  const base = h('select', { name: 'baseModel', required: true }, ((publisher.publisherModels ?? []) as Record<string, any>[]).map((m) => h('option', { value: m.name }, idOf(m.name))));
  const train = h('input', { name: 'trainingDatasetUri', required: true, placeholder: 'gs://BUCKET/train.jsonl', spellcheck: 'false' });
  const validation = h('input', { name: 'validationDatasetUri', placeholder: 'gs://BUCKET/validation.jsonl (optional)', spellcheck: 'false' });
  const epochs = h('input', { name: 'epochCount', type: 'number', min: 1, step: 1, value: String(options.defaults.epochCount) });
  const adapter = h('select', { name: 'adapterSize' }, Object.entries(options.adapterSizes).map(([k, rank]) => h('option', { value: k, selected: k === options.defaults.adapterSize }, `${rank}`)));
  const lrm = h('input', { name: 'learningRateMultiplier', type: 'number', min: 0, step: 'any', value: String(options.defaults.learningRateMultiplier) });
  const description = h('textarea', { name: 'description', rows: 2 });
  const status = h('div', { role: 'status' });
  const form = h('form', {
    class: 'card form',
    onsubmit: async (e: Event) => {
      e.preventDefault();
      const submit = form.querySelector('button[type=submit]') as HTMLButtonElement;
      submit.disabled = true;
      status.replaceChildren(h('p', { class: 'muted' }, 'Checking the datasets and creating the job…'));
      try {
        const job = await api(`${parent()}/tuningJobs`, {
          body: {
            baseModel: base.value, tunedModelDisplayName: name.value,
            ...(description.value.trim() ? { description: description.value } : {}),
            supervisedTuningSpec: {
              trainingDatasetUri: train.value.trim(),
              ...(validation.value.trim() ? { validationDatasetUri: validation.value.trim() } : {}),
              hyperParameters: { epochCount: Number(epochs.value), adapterSize: adapter.value, learningRateMultiplier: Number(lrm.value) },
            },
          },
          signal: v.signal,
        });
        location.hash = `#/jobs/${idOf(job.name)}`;
      } catch (err) {
        submit.disabled = false;
        status.replaceChildren(errorBox(err));
      }
    },
  },
  h('div', { class: 'grid two' }, field('Tuned model name', name), field('Base model', base)),
  h('div', { class: 'grid two' }, field('Training dataset', train, 'JSONL in the Vertex layout, uploaded to this server (tunekit storage cp, or any Cloud Storage client)'), field('Validation dataset', validation)),
  h('div', { class: 'grid four' }, field('Epochs', epochs), field('Adapter size (LoRA rank)', adapter), field('Learning rate multiplier', lrm)),
  field('Description', description),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Start tuning'), link('jobs', 'Back to the jobs')));
  v.main.replaceChildren(h('p', { class: 'crumbs' }, link('jobs', 'Tuning jobs'), ' / new'), h('h1', {}, 'Create a tuning job'), form, status);
}
