// Chat templates render as transformers renders them, character for character. The expected strings are
// Jinja2's own renders (tools/render-templates.py, transformers' environment) of the published Gemma 3,
// Qwen3 and Llama 3.1 templates over a corpus of conversations (multi-turn, system prompts, tool
// declarations, tool calls and responses, reasoning inline and in reasoning_content, replies starting with
// newlines and indentation, code, BOM, U+0085, U+3000, emoji, control-token look-alikes), with and without
// the generation prompt and enable_thinking; plus one-method templates over awkward strings.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer, type TemplateMessage } from '../src/tokenizer/tokenizer.js';
import { ChatTemplate } from '../src/tokenizer/chat-template.js';
import { realTokenizerDir, type RealTokenizerName } from './helpers/real-tokenizers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Case {
  template: string;
  conversation: string;
  add_generation_prompt: boolean;
  kwargs: Record<string, unknown>;
  expected?: string;
  error?: string;
}
interface Fixture {
  templates: Record<string, { sha256: string; file: string | null }>;
  conversations: Record<string, { messages: TemplateMessage[]; tools: unknown[] | null }>;
  cases: Case[];
  expressions: { template: string; variables: Record<string, unknown>; expected: string }[];
}

const fixture = JSON.parse(fs.readFileSync(path.join(root, 'test/fixtures/chat-template-renders.json'), 'utf8')) as Fixture;
const tokenizers = new Map<string, Tokenizer>();

const SOURCES: Record<string, RealTokenizerName> = { gemma3: 'gemma3', qwen3: 'qwen3', llama3_1: 'llama3_1', 'llama3.1-instruct': 'llama3_1' };

before(() => {
  for (const [name, meta] of Object.entries(fixture.templates)) {
    const dir = realTokenizerDir(SOURCES[name]!);
    let tok: Tokenizer;
    if (meta.file) {
      const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
      config.chat_template = fs.readFileSync(path.join(root, meta.file), 'utf8');
      tok = Tokenizer.fromFiles({ tokenizer: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as Record<string, unknown>, config });
    } else {
      tok = Tokenizer.loadSync(dir);
    }
    const sha = crypto.createHash('sha256').update(tok.chatTemplate ?? '').digest('hex');
    assert.equal(sha, meta.sha256, `${name}: the template differs from the one the fixture was rendered from; run tools/render-templates.py`);
    tokenizers.set(name, tok);
  }
});

function render(tok: Tokenizer, c: Case): string {
  const conv = fixture.conversations[c.conversation]!;
  const { enable_thinking: enableThinking, ...variables } = c.kwargs;
  return tok.applyChatTemplate(structuredClone(conv.messages), {
    addGenerationPrompt: c.add_generation_prompt,
    tools: conv.tools,
    ...(enableThinking === undefined ? {} : { enableThinking: enableThinking as boolean }),
    variables,
  });
}

/** Where two strings first differ, shown with a little context. */
function firstDifference(actual: string, expected: string): string {
  let i = 0;
  while (i < actual.length && actual[i] === expected[i]) i++;
  const show = (s: string) => JSON.stringify(s.slice(Math.max(0, i - 30), i + 30));
  return `at ${i}: tunekit ${show(actual)}, Jinja2 ${show(expected)}`;
}

for (const name of Object.keys(fixture.templates)) {
  test(`${name}: every render equals Jinja2's, and every template error is raised too`, () => {
    const tok = tokenizers.get(name)!;
    const cases = fixture.cases.filter((c) => c.template === name);
    assert.ok(cases.length >= 50, `${cases.length} cases`);
    const failures: string[] = [];
    for (const c of cases) {
      const label = `${c.conversation} (add_generation_prompt=${c.add_generation_prompt} ${JSON.stringify(c.kwargs)})`;
      let out: string;
      try {
        out = render(tok, c);
      } catch (e) {
        if (c.error === undefined) failures.push(`${label}: threw ${(e as Error).message}`);
        else if (!(e as Error).message.includes(c.error)) failures.push(`${label}: threw ${(e as Error).message}, Jinja2 raised ${c.error}`);
        continue;
      }
      if (c.error !== undefined) failures.push(`${label}: rendered, Jinja2 raised ${c.error}`);
      else if (out !== c.expected) failures.push(`${label}: ${firstDifference(out, c.expected!)}`);
    }
    assert.deepEqual(failures, [], `${failures.length} of ${cases.length} renders differ:\n${failures.slice(0, 10).join('\n')}`);
  });
}

test("string methods and filters follow Python's semantics (one-method templates, Jinja2's renders)", () => {
  const failures: string[] = [];
  const compiled = new Map<string, ChatTemplate>();
  for (const e of fixture.expressions) {
    let out: string;
    try {
      let t = compiled.get(e.template);
      if (!t) compiled.set(e.template, (t = new ChatTemplate(e.template)));
      out = t.render(e.variables);
    } catch (err) {
      failures.push(`${e.template} with ${JSON.stringify(e.variables)}: threw ${(err as Error).message}`);
      continue;
    }
    if (out !== e.expected) failures.push(`${e.template} with ${JSON.stringify(e.variables)}: ${firstDifference(out, e.expected)}`);
  }
  assert.deepEqual(failures, [], `${failures.length} of ${fixture.expressions.length} differ:\n${failures.slice(0, 12).join('\n')}`);
});

test('the Qwen3 template keeps a reply\'s leading indentation and the reasoning, as transformers does', () => {
  const tok = tokenizers.get('qwen3')!;
  const out = tok.applyChatTemplate([{ role: 'user', content: 'Code?' }, { role: 'assistant', content: '<think>\nPlan.\n</think>\n\n    x = 1' }]);
  assert.ok(out.endsWith('<|im_start|>assistant\n<think>\nPlan.\n</think>\n\n    x = 1<|im_end|>\n'), JSON.stringify(out));
});
