// Settings: the API key (sent as x-goog-api-key), project and location, entered once and kept in
// this browser's localStorage. Saving checks them with one list call and says what the server answered.

import { api, loadSettings, parent, saveSettings } from './api.js';
import { errorBox, h } from './dom.js';
import type { View } from './main.js';

export function settings(v: View): void {
  const s = loadSettings();
  const status = h('div', { role: 'status' });
  const field = (label: string, input: HTMLInputElement, help: string) => h('label', { class: 'field' }, h('span', {}, label), input, h('small', { class: 'muted' }, help));
  const key = h('input', { type: 'password', name: 'apiKey', autocomplete: 'off', value: s.apiKey, spellcheck: 'false' });
  const project = h('input', { name: 'project', required: true, value: s.project, placeholder: 'my-project', spellcheck: 'false' });
  const location = h('input', { name: 'location', required: true, value: s.location, spellcheck: 'false' });
  const form = h('form', {
    class: 'card form',
    onsubmit: async (e: Event) => {
      e.preventDefault();
      saveSettings({ apiKey: key.value.trim(), project: project.value.trim(), location: location.value.trim() || 'us-central1' });
      status.replaceChildren(h('p', { class: 'muted' }, 'Checking…'));
      try {
        await api(`${parent()}/tuningJobs?pageSize=1`);
        status.replaceChildren(h('p', { class: 'ok' }, 'Saved. The server accepts these settings. '), h('a', { href: '#/jobs' }, 'Go to tuning jobs'));
      } catch (err) {
        status.replaceChildren(h('p', {}, 'Saved, but the server refused a request with them:'), errorBox(err));
      }
    },
  },
  field('API key', key, 'A tunekit API key (tunekit iam keys create); empty for a server run with --insecure-no-auth. Kept in this browser only.'),
  field('Project', project, 'The project whose jobs, models and endpoints to show.'),
  field('Location', location, 'e.g. us-central1'),
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save')));
  v.main.replaceChildren(h('h1', {}, 'Settings'), form, status);
  if (!s.project) (project.value ? key : project).focus();
}
