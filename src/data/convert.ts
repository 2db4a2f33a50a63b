// Conversion between layouts and deterministic train/validation splitting, both streaming.
// Rules it keeps:
// - Conversion reads through the one parser and writes one line per example; the first bad line is
//   thrown (validate first to see all of them). Vertex has no per-message weight, so converting an
//   example with a weight-0 model turn to Vertex is an error rather than a silent change of training.
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
import { usesTools } from './render.js';
import { InvalidRequestError } from '../errors.js';

export type ConvertTarget = 'vertex' | 'openai';

/** Examples with function parts are not converted (yet): refused at their first function part. */
function refuseTools(conv: Conversation): void {
  if (!usesTools(conv)) return;
  throw new DatasetError({
    ...conv.source, path: conv.toolsPath ?? '', kind: 'unsupported_part',
    message: 'examples with function calls, responses or declarations cannot be converted between layouts yet; keep them in the layout they are written in (both are trained as they are)',
  });
}

export function toVertex(conv: Conversation): Record<string, unknown> {
  refuseTools(conv);
  const weighted = conv.turns.findIndex((t) => t.weight === 0);
  if (weighted >= 0) {
    throw new DatasetError({
      ...conv.source, path: `${turnPath(conv, 'openai', weighted)}.weight`, kind: 'bad_weight',
      message: 'weight 0 (a model turn that is not trained) cannot be expressed in the Vertex layout; remove the turn or convert to openai',
    });
  }
  return {
    ...(conv.systemInstruction !== undefined ? { systemInstruction: { parts: [{ text: conv.systemInstruction }] } } : {}),
    contents: conv.turns.map((t) => ({ role: t.role, parts: [{ text: t.text }] })),
  };
}

export function toOpenAI(conv: Conversation): Record<string, unknown> {
  refuseTools(conv);
  return {
    messages: [
      ...(conv.systemInstruction !== undefined ? [{ role: 'system', content: conv.systemInstruction }] : []),
      ...conv.turns.map((t) => ({ role: t.role === 'model' ? 'assistant' : 'user', content: t.text, ...(t.weight !== undefined ? { weight: t.weight } : {}) })),
    ],
  };
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
