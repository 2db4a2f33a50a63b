// Conversion between layouts and deterministic train/validation splitting, both streaming.
// Rules it keeps:
// - Conversion reads through the one parser and writes one line per example; the first bad line is
//   thrown (validate first to see all of them). Vertex has no per-message weight, so converting an
//   example with a weight-0 model turn to Vertex is an error rather than a silent change of training;
//   so is a function-calling example whose rendered text the conversion would change.
// - Split: examples are ranked by a seeded digest of their content and the lowest-ranked
//   round(n x fraction) distinct examples go to validation. Identical examples share a digest, so
//   copies always land on the same side: no example is in both files. Same file and seed, same split.
//   Each line keeps its value and layout, written as compact JSON.

import fs from 'node:fs';
import { once } from 'node:events';
import type { Conversation } from './conversation.js';
import { readExamples } from './dataset.js';
import { DatasetError } from './errors.js';
import { exampleKey, turnPath } from './checks.js';
import { parseExample } from './formats.js';
import { readJsonl } from './jsonl.js';
import { pythonJson } from '../tokenizer/chat-template.js';
import { InvalidRequestError } from '../errors.js';

export type ConvertTarget = 'vertex' | 'openai';

/** A conversion that would change what the template renders: refused, naming the field. */
function unconvertible(conv: Conversation, path: string, message: string): DatasetError {
  return new DatasetError({ ...conv.source, path, kind: 'unsupported_part', message });
}

/**
 * Function parts convert where the rendered text stays the same: a tool result's text must be the
 * JSON object Python's json.dumps writes (a Vertex functionResponse is an object, rendered that way)
 * and name its function; declarations must hold only name, description and parameters.
 */
export function toVertex(conv: Conversation): Record<string, unknown> {
  const weighted = conv.turns.findIndex((t) => t.weight === 0);
  if (weighted >= 0) {
    throw new DatasetError({
      ...conv.source, path: `${turnPath(conv, 'openai', weighted)}.weight`, kind: 'bad_weight',
      message: 'weight 0 (a model turn that is not trained) cannot be expressed in the Vertex layout; remove the turn or convert to openai',
    });
  }
  const contents = conv.turns.map((t, i) => {
    const parts: Record<string, unknown>[] = [];
    for (const r of t.responses ?? []) {
      let response: unknown;
      try {
        response = JSON.parse(r.content);
      } catch {
        response = undefined;
      }
      if (response === null || typeof response !== 'object' || Array.isArray(response) || pythonJson(response) !== r.content || !r.name) {
        throw unconvertible(conv, conv.toolsPath ?? '', `turn ${i + 1}: a tool result converts to a Vertex functionResponse only when it names its call's function and its text is a JSON object as Python's json.dumps writes it (otherwise the model would be trained on different text); got ${JSON.stringify(r.content.slice(0, 60))}`);
      }
      parts.push({ functionResponse: { name: r.name, response } });
    }
    if (t.text !== '' || parts.length === 0 && !t.calls?.length) parts.push({ text: t.text });
    for (const c of t.calls ?? []) parts.push({ functionCall: { name: c.name, args: c.args } });
    return { role: t.role, parts };
  });
  let tools: unknown[] | undefined;
  if (conv.tools) {
    const declarations = conv.tools.map((tool) => {
      const fn = (tool as { function?: Record<string, unknown> }).function ?? {};
      const extra = Object.keys(tool as object).filter((k) => k !== 'type' && k !== 'function').concat(Object.keys(fn).filter((k) => !['name', 'description', 'parameters'].includes(k)));
      if (extra.length > 0) throw unconvertible(conv, 'tools', `a Vertex function declaration has no ${JSON.stringify(extra[0])}; the template would render the tools differently`);
      return { name: fn.name, ...(fn.description !== undefined ? { description: fn.description } : {}), ...(fn.parameters !== undefined ? { parametersJsonSchema: fn.parameters } : {}) };
    });
    tools = [{ functionDeclarations: declarations }];
  }
  return {
    ...(conv.systemInstruction !== undefined ? { systemInstruction: { parts: [{ text: conv.systemInstruction }] } } : {}),
    contents,
    ...(tools ? { tools } : {}),
  };
}

/** Calls get ids (call_TURN_K); a tool message answers the earliest unanswered call of its function. */
export function toOpenAI(conv: Conversation): Record<string, unknown> {
  const messages: Record<string, unknown>[] = conv.systemInstruction !== undefined ? [{ role: 'system', content: conv.systemInstruction }] : [];
  let open: { id: string; name: string }[] = [];
  conv.turns.forEach((t, i) => {
    if (t.role === 'model') {
      const m: Record<string, unknown> = { role: 'assistant', content: t.calls?.length && t.text === '' ? null : t.text };
      if (t.calls?.length) {
        const calls = t.calls.map((c, k) => ({ id: `call_${i}_${k}`, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.args) } }));
        m.tool_calls = calls;
        open = calls.map((c) => ({ id: c.id, name: c.function.name }));
      }
      if (t.weight !== undefined) m.weight = t.weight;
      messages.push(m);
      return;
    }
    for (const r of t.responses ?? []) {
      const k = open.findIndex((c) => c.name === r.name);
      if (k < 0) throw unconvertible(conv, conv.toolsPath ?? '', `turn ${i + 1}: the function response ${JSON.stringify(r.name)} answers no call of the model turn before it, so no tool_call_id can be given`);
      messages.push({ role: 'tool', tool_call_id: open[k]!.id, content: r.content });
      open.splice(k, 1);
    }
    if (t.text !== '' || !t.responses?.length) messages.push({ role: 'user', content: t.text });
  });
  return { messages, ...(conv.tools ? { tools: conv.tools } : {}) };
}

class LineWriter {
  private readonly stream: fs.WriteStream;
  constructor(file: string) {
    this.stream = fs.createWriteStream(file);
  }
  async write(line: string): Promise<void> {
    if (!this.stream.write(line + '\n')) await once(this.stream, 'drain');
  }
  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.stream.end((e?: Error | null) => (e ? reject(e) : resolve())));
  }
}

export async function convertDataset(file: string, to: ConvertTarget, out: string): Promise<{ examples: number }> {
  const writer = new LineWriter(out);
  let examples = 0;
  try {
    for await (const { conversation } of readExamples(file)) {
      await writer.write(JSON.stringify(to === 'vertex' ? toVertex(conversation) : toOpenAI(conversation)));
      examples++;
    }
  } finally {
    await writer.close();
  }
  return { examples };
}

export interface SplitOptions {
  validationFraction: number;
  seed: number;
  outTrain: string;
  outValidation: string;
}

/** Splits a dataset into training and validation files; returns how many examples each got. */
export async function splitDataset(file: string, o: SplitOptions): Promise<{ train: number; validation: number }> {
  if (!(o.validationFraction > 0 && o.validationFraction < 1)) {
    throw new InvalidRequestError(`the validation fraction must be in (0, 1), got ${o.validationFraction}`);
  }
  // Pass 1: the seeded key of every example (copies share one).
  const rows: string[] = [];
  for await (const { line, value } of readJsonl(file)) {
    const parsed = parseExample(value, { file, line });
    if (!parsed.conversation) throw new DatasetError(parsed.problems[0]);
    rows.push(exampleKey(parsed.conversation, `split:${o.seed}:`));
  }
  if (rows.length < 2) throw new InvalidRequestError(`${file} has ${rows.length} example(s); splitting needs at least 2`);
  const copies = new Map<string, number>();
  for (const r of rows) copies.set(r, (copies.get(r) ?? 0) + 1);
  const distinct = [...copies.keys()].sort();
  const wanted = Math.min(distinct.length - 1, Math.max(1, Math.round(rows.length * o.validationFraction)));
  const validation = new Set<string>();
  let taken = 0;
  for (const key of distinct) {
    if (taken >= wanted) break;
    validation.add(key);
    taken += copies.get(key)!;
  }
  // Pass 2: copy each line to its side.
  const train = new LineWriter(o.outTrain);
  const val = new LineWriter(o.outValidation);
  const counts = { train: 0, validation: 0 };
  let i = 0;
  try {
    for await (const { value } of readJsonl(file)) {
      const toValidation = validation.has(rows[i++]);
      await (toValidation ? val : train).write(JSON.stringify(value));
      counts[toValidation ? 'validation' : 'train']++;
    }
  } finally {
    await train.close();
    await val.close();
  }
  return counts;
}
