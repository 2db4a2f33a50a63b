// Endpoints: the list with each one's traffic split, and an endpoint's page with its deployed models
// (model version, checkpoint, share of requests) and a link to the playground.

import { api, idOf, listAll, parent } from './api.js';
import { facts, h, link, table, time } from './dom.js';
import type { View } from './main.js';

const COLORS = ['#2b6cb0', '#dd6b20', '#2f855a', '#b83280', '#6b46c1', '#c05621'];

/** The traffic split as a bar: one segment per deployed model with its percentage. */
function trafficBar(e: Record<string, any>): HTMLElement {
  const split: Record<string, number> = e.trafficSplit ?? {};
  const deployed: Record<string, any>[] = e.deployedModels ?? [];
  if (deployed.length === 0) return h('span', { class: 'muted' }, 'nothing deployed');
  return h('div', { class: 'traffic', role: 'img', 'aria-label': `traffic split: ${deployed.map((d) => `${d.id} ${split[d.id] ?? 0}%`).join(', ')}` },
    deployed.filter((d) => (split[d.id] ?? 0) > 0).map((d, i) => h('span', {
      class: 'seg', style: `width:${split[d.id]}%;background:${COLORS[i % COLORS.length]}`, title: `${d.id}: ${split[d.id]}%`,
    }, `${split[d.id]}%`)));
}

export async function endpointList(v: View): Promise<void> {
  const endpoints = await listAll(`${parent()}/endpoints`, 'endpoints', v.signal);
  v.main.replaceChildren(h('h1', {}, 'Endpoints'), endpoints.length === 0
    ? h('p', { class: 'muted' }, 'No endpoints yet: every tuning job that succeeds deploys its model on a new one.')
    : table(['Endpoint', 'Display name', 'Deployed models', 'Traffic split', 'Created'], endpoints.map((e) => [
      link(`endpoints/${idOf(e.name)}`, idOf(e.name)), e.displayName, String((e.deployedModels ?? []).length), trafficBar(e), time(e.createTime),
    ])));
}

export async function endpointDetail(v: View, id: string): Promise<void> {
  const e = await api(`${parent()}/endpoints/${id}`, { signal: v.signal });
  const split: Record<string, number> = e.trafficSplit ?? {};
  v.main.replaceChildren(
    h('p', { class: 'crumbs' }, link('endpoints', 'Endpoints'), ' / ', id),
    h('h1', {}, e.displayName || id),
    h('div', { class: 'card' }, facts([
      ['Name', h('span', { class: 'mono' }, e.name)], ['Traffic split', trafficBar(e)],
      ['Labels', e.labels ? Object.entries(e.labels).map(([k, x]) => `${k}=${x}`).join(', ') : ''],
      ['Created', time(e.createTime)], ['Updated', time(e.updateTime)],
    ]), h('p', {}, link(`playground?target=${encodeURIComponent(e.name)}`, 'Open in the playground', { class: 'button' }))),
    h('h2', {}, 'Deployed models'),
    (e.deployedModels ?? []).length === 0 ? h('p', { class: 'muted' }, 'Nothing is deployed on this endpoint.')
      : table(['Deployed model', 'Model', 'Version', 'Checkpoint', 'Traffic', 'Deployed'], e.deployedModels.map((d: any) => [
        d.id, link(`models/${idOf(d.model)}`, idOf(d.model)), d.modelVersionId, d.checkpointId ?? 'final', `${split[d.id] ?? 0}%`, time(d.createTime),
      ])),
  );
}
