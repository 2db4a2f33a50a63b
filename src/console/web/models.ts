// Models of the registry: the list, and a model's page with its versions (models/M:listVersions),
// each version's epoch checkpoints (models/M@V:listCheckpoints) and where it is deployed.

import { api, idOf, listAll, parent } from './api.js';
import { facts, h, link, table, time } from './dom.js';
import type { View } from './main.js';

const labels = (l?: Record<string, string>) => (l ? Object.entries(l).map(([k, x]) => `${k}=${x}`).join(', ') : '');
const baseOf = (m: Record<string, any>) => String(m.baseModelSource?.modelGardenSource?.publicModelName ?? '');

export async function modelList(v: View): Promise<void> {
  const models = await listAll(`${parent()}/models`, 'models', v.signal);
  v.main.replaceChildren(h('h1', {}, 'Models'), models.length === 0
    ? h('p', { class: 'muted' }, 'No models yet: every tuning job that succeeds registers one.')
    : table(['Model', 'Display name', 'Version', 'Base model', 'Deployed on', 'Labels', 'Created'], models.map((m) => [
      link(`models/${idOf(m.name)}`, idOf(m.name)), m.displayName, m.versionId, baseOf(m).replace(/^publishers\/[^/]+\/models\//, ''),
      (m.deployedModels ?? []).map((d: any) => link(`endpoints/${idOf(d.endpoint)}`, idOf(d.endpoint), { class: 'chip' })), labels(m.labels), time(m.createTime),
    ])));
}

export async function modelDetail(v: View, id: string): Promise<void> {
  const name = `${parent()}/models/${id}`;
  const [model, versions] = await Promise.all([api(name, { signal: v.signal }), api(`${name}:listVersions`, { signal: v.signal })]);
  const list: Record<string, any>[] = versions.models ?? [];
  const checkpoints = await Promise.all(list.map((m) => api(`${name}@${m.versionId}:listCheckpoints`, { signal: v.signal })));
  v.main.replaceChildren(
    h('p', { class: 'crumbs' }, link('models', 'Models'), ' / ', id),
    h('h1', {}, model.displayName || id),
    h('div', { class: 'card' }, facts([
      ['Name', h('span', { class: 'mono' }, model.name)], ['Base model', baseOf(model)], ['Newest version', model.versionId],
      ['Artifacts', h('span', { class: 'mono' }, model.artifactUri ?? '')], ['Labels', labels(model.labels)],
      ['Created', time(model.createTime)], ['Updated', time(model.updateTime)], ['ETag', h('span', { class: 'mono' }, model.etag ?? '')],
    ])),
    h('h2', {}, 'Versions'),
    ...list.map((m, i) => h('section', { class: 'card', 'aria-label': `Version ${m.versionId}` },
      h('h3', {}, `Version ${m.versionId}`, (m.versionAliases ?? []).map((a: string) => h('span', { class: 'chip' }, a))),
      facts([['Created', time(m.versionCreateTime)], ['Artifacts', h('span', { class: 'mono' }, m.artifactUri ?? '')],
        ['Deployed on', (m.deployedModels ?? []).map((d: any) => link(`endpoints/${idOf(d.endpoint)}`, `${idOf(d.endpoint)} (deployed model ${d.deployedModelId})`, { class: 'chip' }))]]),
      checkpoints[i]?.checkpoints?.length
        ? table(['Checkpoint', 'Epoch', 'Step'], checkpoints[i]!.checkpoints.map((c: any) => [c.checkpointId, c.epoch, c.step]), 'Checkpoints (each can be deployed: deployModel with deployedModel.checkpointId)')
        : h('p', { class: 'muted' }, 'No checkpoints kept.'))),
    h('p', {}, link(`playground?target=${encodeURIComponent(baseOf(model))}`, 'Try the base model in the playground')),
  );
}
