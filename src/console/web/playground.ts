// The playground: a prompt (with a system instruction) sent to an endpoint or a base model, with
// temperature, top-p, max output tokens, a thinking budget and JSON mode (an optional JSON Schema),
// streamed (streamGenerateContent?alt=sse) or not, with token counts (countTokens before, usageMetadata
// after) — and optionally a second model answering the same request side by side (tuned vs base).

import { api, ApiError, idOf, listAll, parent, streamGenerate } from './api.js';
import { errorBox, h } from './dom.js';
import type { View } from './main.js';

/** The generation path of a target: an endpoint's full name, or a publisher model's. */
const pathOf = (target: string) => (target.startsWith('projects/') ? target : `${parent()}/${target}`);

interface Target { value: string; label: string }

async function targets(signal: AbortSignal): Promise<Target[]> {
  const [endpoints, publisher] = await Promise.all([
    listAll(`${parent()}/endpoints`, 'endpoints', signal).catch((e) => { if (e instanceof ApiError && e.status === 404) return []; throw e; }),
    api('publishers/google/models', { signal }),
  ]);
  return [
    ...endpoints.filter((e) => e.deployedModels?.length).map((e) => ({ value: String(e.name), label: `endpoint ${e.displayName} (${idOf(e.name)})` })),
    ...((publisher.publisherModels ?? []) as Record<string, any>[]).map((m) => ({ value: String(m.name), label: `base model ${idOf(m.name)}` })),
  ];
}

export async function playground(v: View): Promise<void> {
  const options = await targets(v.signal);
  const want = v.params.get('target') ?? '';
  const compareWith = v.params.get('compare') ?? '';
  const select = (id: string, selected: string, withNone: boolean) => h('select', { id, name: id },
    withNone ? h('option', { value: '' }, '(none)') : null,
    options.map((o) => h('option', { value: o.value, selected: o.value === selected }, o.label)),
    selected && !options.some((o) => o.value === selected) ? h('option', { value: selected, selected: true }, selected) : null);
  const target = select('target', want || options[0]?.value || '', false);
  const compare = select('compare', compareWith, true);
  const field = (label: string, input: HTMLElement, help?: string) => h('label', { class: 'field' }, h('span', {}, label), input, help ? h('small', { class: 'muted' }, help) : null);
  const system = h('textarea', { id: 'system', rows: 2, placeholder: 'optional' });
  const prompt = h('textarea', { id: 'prompt', rows: 4, required: true, placeholder: 'Ask something (Ctrl+Enter runs)' });
  const temperature = h('input', { id: 'temperature', type: 'number', min: 0, max: 2, step: 0.1, value: '0' });
  const topP = h('input', { id: 'top-p', type: 'number', min: 0, max: 1, step: 0.05, value: '' , placeholder: 'default' });
  const maxTokens = h('input', { id: 'max-tokens', type: 'number', min: 1, step: 1, value: '64' });
  const thinking = h('input', { id: 'thinking-budget', type: 'number', min: -1, step: 1, value: '', placeholder: 'default' });
  const jsonMode = h('input', { id: 'json-mode', type: 'checkbox' });
  const schema = h('textarea', { id: 'json-schema', rows: 3, placeholder: '{"type": "object", "properties": {"tone": {"type": "string"}}}', disabled: true });
  jsonMode.addEventListener('change', () => { schema.disabled = !jsonMode.checked; });
  const stream = h('input', { id: 'stream', type: 'checkbox', checked: true });
  const tokenInfo = h('span', { class: 'muted', id: 'prompt-tokens', role: 'status' });
  const outputs = h('div', { class: 'outputs', id: 'outputs' });
  let running: AbortController | undefined;
  const run = h('button', { type: 'submit', class: 'primary', id: 'run' }, 'Run');
  const stop = h('button', { type: 'button', id: 'stop', disabled: true, onclick: () => running?.abort() }, 'Stop');

  const request = (): Record<string, unknown> => {
    const g: Record<string, unknown> = {};
    const numberOf = (i: HTMLInputElement) => (i.value.trim() === '' ? undefined : Number(i.value));
    if (numberOf(temperature) !== undefined) g.temperature = numberOf(temperature);
    if (numberOf(topP) !== undefined) g.topP = numberOf(topP);
    if (numberOf(maxTokens) !== undefined) g.maxOutputTokens = numberOf(maxTokens);
    if (numberOf(thinking) !== undefined) g.thinkingConfig = { thinkingBudget: numberOf(thinking) };
    if (jsonMode.checked) {
      g.responseMimeType = 'application/json';
      if (schema.value.trim()) {
        try {
          g.responseJsonSchema = JSON.parse(schema.value);
        } catch (err) {
          throw new Error(`The JSON schema is not valid JSON: ${(err as Error).message}`);
        }
      }
    }
    return {
      contents: [{ role: 'user', parts: [{ text: prompt.value }] }],
      ...(system.value.trim() ? { systemInstruction: { parts: [{ text: system.value }] } } : {}),
      ...(Object.keys(g).length ? { generationConfig: g } : {}),
    };
  };

  const countTokens = async () => {
    tokenInfo.textContent = '';
    if (!prompt.value) return;
    try {
      const body = request();
      delete body.generationConfig;
      const r = await api(`${pathOf(target.value)}:countTokens`, { body, signal: v.signal });
      tokenInfo.textContent = `prompt: ${r.totalTokens} tokens`;
    } catch (err) {
      tokenInfo.textContent = `countTokens: ${(err as Error).message}`;
    }
  };

  const form = h('form', {
    class: 'card form playground',
    onsubmit: async (e: Event) => {
      e.preventDefault();
      running?.abort();
      const controller = (running = new AbortController());
      v.signal.addEventListener('abort', () => controller.abort(), { once: true });
      let body: Record<string, unknown>;
      try {
        body = request();
      } catch (err) {
        outputs.replaceChildren(errorBox(err));
        return;
      }
      const sides = [target.value, compare.value].filter(Boolean);
      const panels = sides.map((t) => answerPanel(t, options));
      outputs.replaceChildren(...panels.map((p) => p.el));
      run.disabled = true;
      stop.disabled = false;
      await Promise.all(sides.map((t, i) => generate(t, body, stream.checked, panels[i]!, controller.signal)));
      run.disabled = false;
      stop.disabled = true;
      if (running === controller) running = undefined;
    },
  },
  h('div', { class: 'grid two' }, field('Model', target, 'An endpoint (a tuned model) or a base model'), field('Side by side with', compare, 'Optional: the same request to a second model')),
  field('System instruction', system),
  field('Prompt', prompt),
  h('div', { class: 'grid four' }, field('Temperature', temperature), field('Top-p', topP), field('Max output tokens', maxTokens), field('Thinking budget', thinking, '-1 dynamic, 0 off, N tokens')),
  h('div', { class: 'grid two' }, h('label', { class: 'check' }, jsonMode, ' JSON mode (responseMimeType application/json)'), h('label', { class: 'check' }, stream, ' Stream the answer')),
  field('JSON schema (responseJsonSchema, optional)', schema),
  h('div', { class: 'actions' }, run, stop, h('button', { type: 'button', onclick: () => void countTokens() }, 'Count tokens'), tokenInfo));
  prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  v.main.replaceChildren(h('h1', {}, 'Playground'), form, outputs);
}

interface Panel { el: HTMLElement; text: HTMLElement; thoughts: HTMLElement; meta: HTMLElement; status: HTMLElement }

function answerPanel(target: string, options: Target[]): Panel {
  const text = h('pre', { class: 'answer', 'aria-live': 'polite' });
  const thoughts = h('pre', { class: 'thoughts', hidden: true });
  const meta = h('div', { class: 'muted small meta' });
  const status = h('div', { class: 'status' }, 'waiting…');
  const label = options.find((o) => o.value === target)?.label ?? target;
  return { el: h('section', { class: 'card answer-panel', 'data-target': target, 'aria-label': `Answer of ${label}` }, h('h2', {}, label), status, thoughts, text, meta), text, thoughts, meta, status };
}

async function generate(target: string, body: Record<string, unknown>, streaming: boolean, p: Panel, signal: AbortSignal): Promise<void> {
  const t0 = performance.now();
  let first = 0;
  let last: Record<string, any> = {};
  const take = (chunk: Record<string, any>) => {
    if (!first) first = performance.now();
    last = chunk;
    for (const part of chunk.candidates?.[0]?.content?.parts ?? []) {
      if (typeof part.text !== 'string') continue;
      if (part.thought) {
        p.thoughts.hidden = false;
        p.thoughts.append(part.text);
      } else p.text.append(part.text);
    }
    p.status.textContent = 'generating…';
  };
  try {
    if (streaming) await streamGenerate(pathOf(target), body, take, signal);
    else take(await api(`${pathOf(target)}:generateContent`, { body, signal }));
    const u = last.usageMetadata ?? {};
    const seconds = (performance.now() - t0) / 1000;
    const c = last.candidates?.[0] ?? {};
    const whitespace = p.text.textContent !== '' && p.text.textContent!.trim() === '';
    p.status.textContent = `done: ${c.finishReason ?? 'no finish reason'}${whitespace ? ' (the answer is only whitespace)' : ''}`;
    p.status.className = 'status done';
    p.meta.replaceChildren(
      `prompt ${u.promptTokenCount ?? '?'} tokens · answer ${u.candidatesTokenCount ?? 0} tokens`,
      u.thoughtsTokenCount ? ` · thoughts ${u.thoughtsTokenCount} tokens` : '',
      ` · total ${u.totalTokenCount ?? '?'} · first token after ${((first - t0) / 1000).toFixed(2)} s · ${seconds.toFixed(2)} s in all`,
      last.modelVersion ? ` · ${last.modelVersion}` : '');
  } catch (err) {
    if (signal.aborted) {
      p.status.textContent = 'stopped';
      return;
    }
    p.status.textContent = 'failed';
    p.el.append(errorBox(err));
  }
}
