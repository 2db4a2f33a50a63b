// Evaluation datasets (JSONL, one example a line) in the layouts tunekit tunes on, plus a plain one:
// - {"prompt": "...", "reference": "..."}                      (reference optional)
// - Vertex: {"systemInstruction"?, "contents": [{"role": "user"|"model", "parts": [{"text"}]}, ...]}
// - OpenAI: {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
// For the chat layouts the last user turn is the prompt and a model/assistant turn after it the
// reference; earlier turns are not replayed (single-turn evaluation). Problems name the line.

import * as fs from 'node:fs';
import { InvalidRequestError } from '../errors.js';
import type { EvalExample } from './run.js';

function textOfParts(parts: unknown): string | undefined {
  if (!Array.isArray(parts)) return undefined;
  const texts = parts.map((p) => (p !== null && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : undefined));
  return texts.every((t) => t !== undefined) ? texts.join('') : undefined;
}

export function parseEvalExample(value: unknown, where: string): EvalExample {
  const bad = (why: string) => new InvalidRequestError(`${where}: ${why}`);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad('expected a JSON object');
  const v = value as Record<string, unknown>;
  if (typeof v.prompt === 'string') {
    if (v.reference !== undefined && typeof v.reference !== 'string') throw bad('"reference" must be a string');
    return { prompt: v.prompt, reference: v.reference as string | undefined };
  }
  const turns: { role: string; text: string }[] = [];
  let system: string | undefined;
  if (Array.isArray(v.contents)) {
    v.contents.forEach((c, i) => {
      const role = (c as { role?: unknown })?.role;
      const text = textOfParts((c as { parts?: unknown })?.parts);
      if (typeof role !== 'string' || text === undefined) throw bad(`contents[${i}] needs a role and text parts`);
      turns.push({ role: role === 'model' ? 'model' : role, text });
    });
    const si = v.systemInstruction as { parts?: unknown } | undefined;
    if (si !== undefined) system = textOfParts(si.parts);
  } else if (Array.isArray(v.messages)) {
    v.messages.forEach((m, i) => {
      const role = (m as { role?: unknown })?.role;
      const content = (m as { content?: unknown })?.content;
      if (typeof role !== 'string' || typeof content !== 'string') throw bad(`messages[${i}] needs a role and string content`);
      if (role === 'system') system = content;
      else turns.push({ role: role === 'assistant' ? 'model' : role, text: content });
    });
  } else {
    throw bad('expected "prompt", "contents" (Vertex) or "messages" (OpenAI)');
  }
  const lastUser = turns.map((t) => t.role).lastIndexOf('user');
  if (lastUser < 0) throw bad('no user turn to use as the prompt');
  const after = turns.slice(lastUser + 1).find((t) => t.role === 'model');
  return { prompt: turns[lastUser].text, reference: after?.text, system };
}

export function readEvalDataset(file: string): EvalExample[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out: EvalExample[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new InvalidRequestError(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    out.push(parseEvalExample(value, `${file}:${i + 1}`));
  });
  if (out.length === 0) throw new InvalidRequestError(`${file}: no examples`);
  return out;
}
