// The chat-template render memo (src/tokenizer/chat-template.ts): a render that reuses a traced layout
// with other message texts must equal the interpreter's own render of those texts (which
// chat-template-fidelity.test.ts holds equal to Jinja2's). The plain render is reached through a context
// the memo does not take (a function-valued variable). Templates that inspect the texts in ways the
// trace does not follow must still render right (the trace ends and the interpreter renders), and
// guards must separate texts that take different paths.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ChatTemplate } from '../src/tokenizer/chat-template.js';
import { Random } from '../src/engine/random.js';
import { multilingualText } from '../bench/multilingual.js';
import { realTokenizerDir, REAL_TOKENIZER_NAMES } from './helpers/real-tokenizers.js';

type Message = { role: string; content: string };
type Traces = Map<string, { guards: unknown[]; parts: unknown[] | null }[]>;

const traces = (t: ChatTemplate): Traces => (t as unknown as { memo: Traces }).memo;

/** Render through the memo and without it; both must agree (or both throw the same error). */
function check(t: ChatTemplate, context: Record<string, unknown>): void {
  let memo: string | Error;
  let plain: string | Error;
  try {
    memo = t.render(context);
  } catch (e) {
    memo = e as Error;
  }
  try {
    plain = t.render({ ...context, unmemoized: () => 0 });
  } catch (e) {
    plain = e as Error;
  }
  if (memo instanceof Error || plain instanceof Error) {
    assert.ok(memo instanceof Error && plain instanceof Error, `one render failed: ${String(memo instanceof Error ? memo.message : plain)}`);
    assert.equal(memo.message, plain.message);
  } else {
    assert.equal(memo, plain, JSON.stringify(context.messages));
  }
}

const TEXTS = ['', ' ', 'a', 'ab', 'xb', ' abc ', 'hi', 'aaa', '\n\nq', 'c', '\u3000x\u0085', 'a</think>b', '<tool_response>r</tool_response>', '東京 🙂'];

const TEMPLATES: [string, boolean][] = [
  // [source, whether the trace must succeed for the common layouts]
  ['{% for m in messages %}{% if m.content is string %}S{% else %}N{% endif %}{{ m.content }}{% endfor %}', true],
  ['{% for m in messages %}{% if m.content %}[{{ m.content | trim }}]{% endif %}{% endfor %}', true],
  ["{% for m in messages %}{% if 'x' in m.content %}X{% endif %}{% if 'b' not in m.content %}-{% endif %}{{ m.content.lstrip('a') }}{% endfor %}", true],
  ["{% for m in messages %}{{ m.content.startswith('a') }}{{ m.content.endswith(('b', 'c')) }}{{ m.content.rstrip() }}{% endfor %}", true],
  ['{% for m in messages if m.content %}{{ loop.index }}{{ m.content }}{% endfor %}', true],
  ['{% for m in messages %}{% set c %}{{ m.content }}!{% endset %}{{ c }}{% endfor %}', true],
  ["{% for m in messages %}{{ m.content ~ 1 }}{{ (m.content + '!') | safe }}{% endfor %}", true],
  ["{% for m in messages %}{{ m.content if m.content.strip() else 'EMPTY' }}{% endfor %}", true],
  ['{% for m in messages %}{% if m.content is defined and m.content is not none %}{{ m.content }}{% endif %}{% endfor %}', true],
  ["{% for m in messages[::-1] %}{{ loop.index0 }}{{ m['content'] }}{% endfor %}", true],
  ['{% for m in messages %}{{ m.content | length }}{% endfor %}', false],
  ['{% for m in messages %}{{ m.content[0] }}{% endfor %}', false],
  ["{% set ns = namespace(c='') %}{% for m in messages %}{% set ns.c = ns.c + m.content %}{% endfor %}{{ ns.c | upper }}", false],
  ['{% macro f(x) %}<{{ x }}>{% endmacro %}{% for m in messages %}{{ f(m.content) | trim }}{% endfor %}', false],
  ["{% for m in messages %}{{ m.content == 'hi' }}{% endfor %}", false],
  ["{{ messages | selectattr('content', 'equalto', 'a') | list | length }}", false],
  ['{{ messages | tojson }}', false],
  ['{% for m in messages %}{% for ch in m.content %}{{ ch }}.{% endfor %}{% endfor %}', false],
  ["{{ strftime_now('%Y') }}{% for m in messages %}{{ m.content }}{% endfor %}", false],
  ["{% for m in messages %}{{ m.content | default('d') }}{{ m.content.upper() }}{% endfor %}", false],
  ["{% for m in messages %}{% if m.content|length > 1 %}{{ raise_exception('too long: ' ~ m.content) }}{% endif %}{{ m.content }}{% endfor %}", false],
];

test('memoized renders equal the interpreter\'s, for templates that use the texts in every way', () => {
  const rng = new Random(5);
  for (const [source, traced] of TEMPLATES) {
    const t = new ChatTemplate(source);
    for (let i = 0; i < 150; i++) {
      const messages: Message[] = [];
      for (let k = 0; k < 1 + (i % 3); k++) messages.push({ role: k % 2 ? 'assistant' : 'user', content: TEXTS[Math.floor(rng.next() * TEXTS.length)]! });
      check(t, { messages, add_generation_prompt: false });
    }
    const kept = [...traces(t).values()].flat();
    assert.ok(kept.length > 0);
    assert.equal(kept.some((tr) => tr.parts !== null), traced, `${source}: the trace ${traced ? 'follows' : 'does not follow'} this template`);
    // Each layout keeps a few traces (one per combination of guard answers), never one per example.
    for (const list of traces(t).values()) assert.ok(list.length <= 16);
  }
});

test('the published Gemma 3, Qwen3 and Llama 3.1 templates: memoized renders equal the interpreter\'s on multilingual texts and reasoning / tool-response layouts', () => {
  for (const name of REAL_TOKENIZER_NAMES) {
    const config = JSON.parse(fs.readFileSync(path.join(realTokenizerDir(name), 'tokenizer_config.json'), 'utf8')) as { chat_template: string; bos_token?: string };
    const t = new ChatTemplate(config.chat_template);
    const rng = new Random(17);
    let hits = 0;
    for (let i = 0; i < 120; i++) {
      const messages: Message[] = i % 2 ? [{ role: 'system', content: multilingualText(rng, 40) }] : [];
      for (let k = 0; k < 1 + (i % 3); k++) {
        messages.push({ role: 'user', content: multilingualText(rng, 10 + Math.floor(rng.next() * 300)) });
        let reply = multilingualText(rng, 10 + Math.floor(rng.next() * 300));
        if (i % 5 === 1) reply = `<think>\n${multilingualText(rng, 50)}\n</think>\n\n${reply}`;
        if (i % 5 === 2) reply = `\n\n  ${reply}\n`;
        messages.push({ role: 'assistant', content: reply });
      }
      if (i % 7 === 3) messages.push({ role: 'user', content: `<tool_response>${multilingualText(rng, 30)}</tool_response>` });
      const before = [...traces(t).values()].flat().length;
      for (const opts of [{ add_generation_prompt: false }, { add_generation_prompt: true, enable_thinking: false }]) {
        check(t, { bos_token: config.bos_token ?? '', messages, tools: null, documents: null, ...opts });
      }
      if ([...traces(t).values()].flat().length === before) hits++;
    }
    assert.ok(hits > 60, `${name}: most renders reuse a trace (${hits} of 120)`);
  }
});
