// The console's shell: hash routes (#/jobs, #/jobs/new, #/jobs/ID, #/models/ID, #/endpoints/ID, #/playground,
// #/evaluations, #/settings) rendered into <main>. Leaving a view aborts what it was doing (polls,
// streams) and disposes its charts. Without an API key and project the settings come first.

import { ApiError, loadSettings } from './api.js';
import { disposeCharts } from './charts.js';
import { errorBox, h } from './dom.js';
import { endpointDetail, endpointList } from './endpoints.js';
import { evaluations } from './evaluations.js';
import { jobCreate, jobDetail, jobList } from './jobs.js';
import { modelDetail, modelList } from './models.js';
import { playground } from './playground.js';
import { settings } from './settings.js';

export interface View { main: HTMLElement; signal: AbortSignal; params: URLSearchParams }

const routes: Record<string, (v: View, id?: string) => Promise<void> | void> = {
  jobs: (v, id) => (id === 'new' ? jobCreate(v) : id ? jobDetail(v, id) : jobList(v)),
  models: (v, id) => (id ? modelDetail(v, id) : modelList(v)),
  endpoints: (v, id) => (id ? endpointDetail(v, id) : endpointList(v)),
  playground: (v) => playground(v),
  evaluations: (v) => evaluations(v),
  settings: (v) => settings(v),
};

let current: AbortController | undefined;

async function render(): Promise<void> {
  current?.abort();
  disposeCharts();
  const controller = (current = new AbortController());
  const [route, query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  let [section = 'jobs', ...rest] = (route ?? '').split('/').filter(Boolean).map(decodeURIComponent);
  const s = loadSettings();
  if (!s.project && section !== 'settings') section = 'settings';
  if (!(section in routes)) section = 'jobs';
  for (const a of document.querySelectorAll<HTMLAnchorElement>('#nav a')) {
    if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.getElementById('where')!.textContent = s.project ? `${s.project} · ${s.location}` : '';
  const main = document.getElementById('main')!;
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  const view: View = { main, signal: controller.signal, params: new URLSearchParams(query) };
  try {
    await routes[section]!(view, rest.join('/') || undefined);
  } catch (err) {
    if (controller.signal.aborted) return;
    main.replaceChildren(errorBox(err), err instanceof ApiError && (err.status === 401 || err.status === 403)
      ? h('p', {}, h('a', { href: '#/settings' }, 'Check the API key and project in Settings')) : '');
  }
}

/** Moves focus to the new view's heading after a navigation (keyboard and screen reader users). */
function focusHeading(): void {
  const heading = document.querySelector<HTMLElement>('#main h1');
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

addEventListener('hashchange', () => void render().then(focusHeading));
void render();
