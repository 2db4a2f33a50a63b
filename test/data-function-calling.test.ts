// Datasets with function calling: Vertex functionCall / functionResponse parts with functionDeclarations
// and OpenAI tool_calls / tool messages with tools are parsed, rendered by the model's chat template
// exactly as transformers renders the same conversation (Jinja2 renders carried as data in
// test/fixtures/chat-template-renders.json, from tools/render-templates.py), trained with loss on the
// model's call turns (the call markup through the end-of-turn token) and never on tool results; a
// template without tool support refuses them at the line and field of the first function part.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseExample } from '../src/data/formats.js';
import { toOpenAI, toVertex } from '../src/data/convert.js';
import { renderForTraining, renderSegments, toChatMessages } from '../src/data/render.js';
import { validateDataset } from '../src/data/validate.js';
import { DatasetError, type DatasetProblem } from '../src/data/errors.js';
import type { Conversation } from '../src/data/conversation.js';
import { Tokenizer, type TemplateMessage } from '../src/tokenizer/tokenizer.js';
import { initTinyModel } from '../src/models/tiny.js';
import { tune, DEFAULT_TUNE_OPTIONS, type StepMetrics } from '../src/train/trainer.js';
import { realTokenizerDir } from './helpers/real-tokenizers.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const root = process.cwd();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-data-fc-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

interface Case { template: string; conversation: string; add_generation_prompt: boolean; kwargs: Record<string, unknown>; expected?: string; error?: string }
const fixture = JSON.parse(fs.readFileSync(path.join(root, 'test/fixtures/chat-template-renders.json'), 'utf8')) as {
  conversations: Record<string, { messages: TemplateMessage[]; tools: { type: string; function: { name: string; description: string; parameters: unknown } }[] | null }>;
  cases: Case[];
};
const jinja2 = (template: string, conversation: string): Case =>
  fixture.cases.find((c) => c.template === template && c.conversation === conversation && !c.add_generation_prompt && Object.keys(c.kwargs).length === 0)!;

const tokenizers = new Map<string, Tokenizer>();
before(() => {
  tokenizers.set('qwen3', Tokenizer.loadSync(realTokenizerDir('qwen3')));
  const llama = realTokenizerDir('llama3_1');
  const config = JSON.parse(fs.readFileSync(path.join(llama, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  config.chat_template = fs.readFileSync(path.join(root, 'test/fixtures/llama3.1-instruct.jinja'), 'utf8');
  tokenizers.set('llama3.1-instruct', Tokenizer.fromFiles({ tokenizer: JSON.parse(fs.readFileSync(path.join(llama, 'tokenizer.json'), 'utf8')) as Record<string, unknown>, config }));
});

/** A fixture conversation as an OpenAI fine-tuning line: call ids, arguments as JSON text, tool_call_id. */
function openaiLine(name: string): Record<string, unknown> {
  const conv = fixture.conversations[name]!;
  let n = 0;
  const ids: string[] = [];
  const messages = conv.messages.map((m) => {
    if (m.role === 'assistant' && Array.isArray(m.tool_calls)) {
      return {
        role: 'assistant', content: m.content === '' ? null : m.content,
        tool_calls: (m.tool_calls as { function: { name: string; arguments: unknown } }[]).map((c) => {
          ids.push(`call_${n++}`);
          return { id: ids[ids.length - 1], type: 'function', function: { name: c.function.name, arguments: JSON.stringify(c.function.arguments) } };
        }),
      };
    }
    if (m.role === 'tool') return { role: 'tool', tool_call_id: ids.shift(), content: m.content };
    return m;
  });
  return { messages, ...(conv.tools ? { tools: conv.tools } : {}) };
}

/** 'tools-call-and-response' as a Vertex line: functionCall / functionResponse parts, functionDeclarations. */
function vertexLine(): Record<string, unknown> {
  const conv = fixture.conversations['tools-call-and-response']!;
  const [system, user, call, result, answer] = conv.messages as Record<string, any>[];
  return {
    systemInstruction: { parts: [{ text: system!.content }] },
    contents: [
      { role: 'user', parts: [{ text: user!.content }] },
      { role: 'model', parts: [{ functionCall: { name: call!.tool_calls[0].function.name, args: call!.tool_calls[0].function.arguments } }] },
      { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: JSON.parse(result!.content) } }] },
      { role: 'model', parts: [{ text: answer!.content }] },
    ],
    tools: [{ functionDeclarations: conv.tools!.map((t) => ({ name: t.function.name, description: t.function.description, parametersJsonSchema: t.function.parameters })) }],
  };
}

const parse = (value: unknown, line = 1): Conversation => {
  const r = parseExample(value, { file: 'd.jsonl', line });
  assert.deepEqual(r.problems, []);
  return r.conversation!;
};

test('function calling examples render as transformers renders them (Jinja2), in both layouts and both templates', () => {
  for (const template of ['qwen3', 'llama3.1-instruct']) {
    const tok = tokenizers.get(template)!;
    const lines: [string, Record<string, unknown>][] = [
      ['tools-call-and-response', openaiLine('tools-call-and-response')],
      ['tools-call-and-response', vertexLine()],
      ['tools-no-system', openaiLine('tools-no-system')],
      ['tools-parallel-calls', openaiLine('tools-parallel-calls')],
    ];
    for (const [name, line] of lines) {
      const expected = jinja2(template, name);
      const conv = parse(line);
      const label = `${template} ${name} ${'contents' in line ? 'vertex' : 'openai'}`;
      if (expected.error !== undefined) {
        // Llama 3.1 takes one call per turn: its own error, as a dataset error of the line.
        assert.throws(() => renderSegments(conv, tok), (e: unknown) => e instanceof DatasetError && e.line === 1 && e.message.includes(expected.error!), label);
        continue;
      }
      assert.equal(tok.applyChatTemplate(toChatMessages(conv), { tools: conv.tools }), expected.expected, label);
      // Training renders the same text.
      assert.equal(renderSegments(conv, tok).map((s) => s.text).join(''), expected.expected, label);
    }
  }
});

test('loss on the model\'s call turns (call markup through the end-of-turn token) and answers, never on tool results', () => {
  const expected = {
    // Qwen3's final answer starts with the empty think block a default (thinking on) prompt leaves the model to write.
    qwen3: ['<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris", "unit": "celsius"}}\n</tool_call><|im_end|>', '<think>\n\n</think>\n\nIt is 22.5 °C and clear in Paris.<|im_end|>'],
    'llama3.1-instruct': ['{"name": "get_weather", "parameters": {"location": "Paris", "unit": "celsius"}}<|eot_id|>', 'It is 22.5 °C and clear in Paris.<|eot_id|>'],
  };
  for (const [template, spans] of Object.entries(expected)) {
    const tok = tokenizers.get(template)!;
    for (const line of [openaiLine('tools-call-and-response'), vertexLine()]) {
      const conv = parse(line);
      const segments = renderSegments(conv, tok);
      assert.deepEqual(segments.filter((s) => s.loss).map((s) => s.text), spans, template);
      // Each trained span is where Jinja2's render has it.
      for (const s of spans) assert.ok(jinja2(template, 'tools-call-and-response').expected!.includes(s));
      const r = renderForTraining(conv, tok);
      const trained = r.tokens.filter((_, i) => r.lossMask[i]);
      assert.deepEqual(trained, spans.flatMap((s) => tok.encode(s, { addSpecialTokens: false })));
    }
  }
  // weight 0 on the call turn: only the answer is trained.
  const weighted = openaiLine('tools-call-and-response');
  (weighted.messages as Record<string, unknown>[])[2]!.weight = 0;
  assert.deepEqual(renderSegments(parse(weighted), tokenizers.get('qwen3')!).filter((s) => s.loss).map((s) => s.text), [expected.qwen3[1]]);
});

test('validate: accepted with a tool-capable model; refused at the line and field of the first function part without one', async () => {
  const qwenTools = path.join(dir, 'qwen3-tools');
  initTinyModel({ family: 'qwen3', size: 'tiny', seed: 2, out: qwenTools });
  const published = JSON.parse(fs.readFileSync(path.join(realTokenizerDir('qwen3'), 'tokenizer_config.json'), 'utf8')) as { chat_template: string };
  const configFile = path.join(qwenTools, 'tokenizer_config.json');
  fs.writeFileSync(configFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(configFile, 'utf8')), chat_template: published.chat_template }));
  const plain = { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] };
  const vertex = path.join(dir, 'vertex.jsonl');
  fs.writeFileSync(vertex, [vertexLine(), vertexLine(), { contents: [{ role: 'user', parts: [{ text: 'Hi' }] }, { role: 'model', parts: [{ text: 'Hello!' }] }] }].map((l) => JSON.stringify(l)).join('\n') + '\n');
  const openai = path.join(dir, 'openai.jsonl');
  fs.writeFileSync(openai, [plain, openaiLine('tools-call-and-response'), openaiLine('tools-parallel-calls')].map((l) => JSON.stringify(l)).join('\n') + '\n');
  for (const file of [vertex, openai]) {
    const seen: DatasetProblem[] = [];
    await validateDataset(file, { model: { dir: qwenTools }, onProblem: (p) => seen.push(p) });
    assert.deepEqual(seen.filter((p) => p.kind !== 'too_few_examples' && p.kind !== 'duplicate' && p.kind !== 'system_prompts_differ'), [], file);
  }
  const seen: DatasetProblem[] = [];
  await validateDataset(openai, { model: { dir: tinyModelDir('gemma3') }, onProblem: (p) => seen.push(p) });
  const refused = seen.filter((p) => p.kind === 'render_failed').map((p) => [p.line, p.path]);
  assert.deepEqual(refused, [[2, 'tools'], [3, 'tools']]);
  assert.match(seen.find((p) => p.kind === 'render_failed')!.message, /chat template has no tool support/);
  const noDecl = path.join(dir, 'nodecl.jsonl');
  const line = vertexLine();
  delete line.tools;
  fs.writeFileSync(noDecl, JSON.stringify(line) + '\n');
  const seen2: DatasetProblem[] = [];
  await validateDataset(noDecl, { model: { dir: tinyModelDir('gemma3') }, onProblem: (p) => seen2.push(p) });
  assert.deepEqual(seen2.filter((p) => p.kind === 'render_failed').map((p) => [p.line, p.path]), [[1, 'contents[1].parts[0].functionCall']]);
});

test('data convert: function-calling examples convert both ways and render the same; what would change is refused', () => {
  const tok = tokenizers.get('qwen3')!;
  const render = (c: Conversation) => renderSegments(c, tok);
  const parallel = parse(openaiLine('tools-parallel-calls'));
  assert.deepEqual(render(parse(toOpenAI(parallel))), render(parallel));
  for (const line of [openaiLine('tools-call-and-response'), vertexLine()]) {
    const conv = parse(line);
    const viaVertex = parse(toVertex(conv));
    const viaOpenAI = parse(toOpenAI(conv));
    assert.deepEqual(render(viaVertex), render(conv));
    assert.deepEqual(render(viaOpenAI), render(conv));
    assert.deepEqual(render(parse(toOpenAI(viaVertex))), render(conv));
  }
  // A tool result that is not a JSON object ("[]", "rain") cannot be a Vertex functionResponse.
  for (const name of ['tools-no-system', 'tools-parallel-calls']) {
    assert.throws(() => toVertex(parse(openaiLine(name))), (e: unknown) => e instanceof DatasetError && e.path === 'tools' && /json\.dumps/.test(e.message), name);
  }
});

test('the trainer trains on call turns: its predictions are the call and answer tokens', async () => {
  const qwenTools = path.join(dir, 'qwen3-tools');
  const file = path.join(dir, 'train.jsonl');
  fs.writeFileSync(file, [openaiLine('tools-call-and-response'), openaiLine('tools-parallel-calls')].map((l) => JSON.stringify(l)).join('\n') + '\n');
  const steps: StepMetrics[] = [];
  await tune({ ...DEFAULT_TUNE_OPTIONS, baseDir: qwenTools, trainFile: file, outDir: path.join(dir, 'out'), epochs: 1, batchTokens: 4096, maxSeqLen: 1024, onEvent: (e) => { if (e.type === 'step') steps.push(e.metrics); } });
  const tok = Tokenizer.loadSync(qwenTools);
  // Independent count: the trained spans cut from Jinja2's renders, tokenized by the tiny model's tokenizer.
  const spans = [
    ...['<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris", "unit": "celsius"}}\n</tool_call><|im_end|>', '<think>\n\n</think>\n\nIt is 22.5 °C and clear in Paris.<|im_end|>'],
    ...['<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"location": "Berlin"}}\n</tool_call><|im_end|>', '<think>\n\n</think>\n\nParis: rain. Berlin: snow.<|im_end|>'],
  ];
  for (const s of spans) assert.ok(fixture.cases.some((c) => c.template === 'qwen3' && c.expected?.includes(s)), s);
  const predictions = steps.reduce((a, m) => a + m.train_num_predictions, 0);
  assert.equal(predictions, spans.reduce((a, s) => a + tok.encode(s, { addSpecialTokens: false }).length, 0));
  assert.ok(steps.every((m) => Number.isFinite(m.train_total_loss)));
});
