// Checks that validation adds to parsing: unknown fields (on the raw JSON value, whatever else is wrong
// with it) and role alternation (on a parsed Conversation), plus the canonical key that makes two
// examples "the same" for duplicate and train/validation-overlap detection.
// Rules it keeps:
// - Unknown fields are warnings: tunekit ignores them, but a misspelt key usually means lost data.
// - Turns must alternate user, model, user, ... starting with user: Gemma's chat template raises on
//   anything else, and Vertex's own docs ask for it.
// - At most MAX_TURNS_PER_EXAMPLE (32,768) turns per example: each turn renders to at least 4 tokens
//   in every supported chat template (a role header, the text, an end-of-turn token), so more turns
//   than that can never fit in Vertex's 131,072-token limit; refusing them keeps the work per example
//   bounded (rendering and token counting are linear in the turns, but not free).
// - Two examples are the same when their system instruction, turns (role, text, weight, function parts)
//   and declared functions are equal,
//   whatever their layout or JSON whitespace.

import crypto from 'node:crypto';
import type { Conversation } from './conversation.js';
import type { DatasetProblem } from './errors.js';
import type { DatasetFormat } from './formats.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

const VERTEX_TOP = new Set(['systemInstruction', 'contents', 'tools']);
const VERTEX_CONTENT = new Set(['role', 'parts']);
const VERTEX_PART = new Set(['text', 'thought', 'inlineData', 'fileData', 'videoMetadata', 'functionCall', 'functionResponse', 'executableCode', 'codeExecutionResult']);
const CHAT_TOP = new Set(['messages', 'tools']);
const CHAT_MESSAGE = new Set(['role', 'content', 'weight', 'name', 'tool_calls', 'tool_call_id', 'function_call']);
const CHAT_PART = new Set(['type', 'text']);

/** One warning per key that the example's layout does not define, with its JSON path. */
export function unknownFields(value: unknown, format: DatasetFormat | null, source: { file: string; line: number }): DatasetProblem[] {
  const out: DatasetProblem[] = [];
  if (!isObject(value)) return out;
  const check = (obj: unknown, known: Set<string>, at: string): void => {
    if (!isObject(obj)) return;
    for (const key of Object.keys(obj)) {
      if (!known.has(key)) {
        out.push({ ...source, path: at ? `${at}.${key}` : key, kind: 'unknown_field', message: `unknown field ${JSON.stringify(key)} (expected one of ${[...known].join(', ')}); it is ignored` });
      }
    }
  };
  const vertex = format === 'vertex' || (format === null && 'contents' in value);
  if (vertex) {
    check(value, VERTEX_TOP, '');
    check(value.systemInstruction, VERTEX_CONTENT, 'systemInstruction');
    const partsOf = (c: unknown, at: string): void => {
      check(c, VERTEX_CONTENT, at);
      if (isObject(c) && Array.isArray(c.parts)) c.parts.forEach((p, j) => check(p, VERTEX_PART, `${at}.parts[${j}]`));
    };
    if (isObject(value.systemInstruction) && Array.isArray(value.systemInstruction.parts)) {
      value.systemInstruction.parts.forEach((p, j) => check(p, VERTEX_PART, `systemInstruction.parts[${j}]`));
    }
    if (Array.isArray(value.contents)) value.contents.forEach((c, i) => partsOf(c, `contents[${i}]`));
  } else if ('messages' in value) {
    check(value, CHAT_TOP, '');
    if (!Array.isArray(value.messages)) return out;
    value.messages.forEach((m, i) => {
      check(m, CHAT_MESSAGE, `messages[${i}]`);
      if (isObject(m) && Array.isArray(m.content)) {
        m.content.forEach((p, j) => {
          if (isObject(p) && p.type === 'text') check(p, CHAT_PART, `messages[${i}].content[${j}]`);
        });
      }
    });
  }
  return out;
}

/** JSON path of turn i of a parsed conversation in its source layout. */
export function turnPath(conv: Conversation, format: DatasetFormat, i: number): string {
  if (format === 'vertex') return `contents[${i}]`;
  return `messages[${i + (conv.systemInstruction !== undefined ? 1 : 0)}]`;
}

/** The first place where the turns stop alternating user/model (starting with user), or null. */
export function alternationProblem(conv: Conversation, format: DatasetFormat): DatasetProblem | null {
  const turns = conv.turns;
  for (let i = 0; i < turns.length; i++) {
    const expected = i % 2 === 0 ? 'user' : 'model';
    if (turns[i].role === expected) continue;
    const message = i === 0
      ? 'the first turn must be a user turn (turns alternate user, model, user, ...)'
      : `two ${turns[i].role} turns in a row (turns ${i} and ${i + 1}); turns must alternate user, model, user, ...`;
    return { ...conv.source, path: `${turnPath(conv, format, i)}.role`, kind: 'roles_not_alternating', message };
  }
  return null;
}

/** Turns per example that validation accepts (see the file comment): 131,072 tokens / 4 per turn. */
export const MAX_TURNS_PER_EXAMPLE = 32_768;

/** A problem at the first turn past MAX_TURNS_PER_EXAMPLE, or null. */
export function turnCountProblem(conv: Conversation, format: DatasetFormat): DatasetProblem | null {
  const n = conv.turns.length;
  if (n <= MAX_TURNS_PER_EXAMPLE) return null;
  return {
    ...conv.source, path: turnPath(conv, format, MAX_TURNS_PER_EXAMPLE), kind: 'too_many_turns',
    message: `${n} turns, over the limit of ${MAX_TURNS_PER_EXAMPLE} per example (every turn renders to at least 4 tokens, so this many can never fit in the 131,072-token limit); split the conversation into several examples`,
  };
}

/** A short digest of what an example says (system, roles, texts, weights), for equality tests. */
export function exampleKey(conv: Pick<Conversation, 'systemInstruction' | 'turns' | 'tools'>, salt = ''): string {
  // Length-prefixed fields: unambiguous without escaping anything.
  // Fed to the hash piece by piece: no concatenated copy of the texts.
  const hash = crypto.createHash('sha256').update(salt);
  const sys = conv.systemInstruction;
  if (sys === undefined) hash.update('-');
  else hash.update(`${sys.length}:`).update(sys);
  for (const t of conv.turns) {
    hash.update(`${t.role === 'model' ? 'm' : 'u'}${t.weight ?? 1}${t.text.length}:`).update(t.text);
    // Function parts and declarations as JSON (length-prefixed too).
    if (t.calls || t.responses) {
      const f = JSON.stringify([t.calls ?? [], t.responses ?? []]);
      hash.update(`f${f.length}:`).update(f);
    }
  }
  if (conv.tools) {
    const f = JSON.stringify(conv.tools);
    hash.update(`t${f.length}:`).update(f);
  }
  return hash.digest('base64').slice(0, 20);
}

/** Unicode code points in a string (what Vertex's character counts count). */
export function codePoints(text: string): number {
  SURROGATE_PAIR.lastIndex = 0;
  let n = text.length;
  while (SURROGATE_PAIR.test(text)) n--;
  return n;
}

const SURROGATE_PAIR = /[\uD800-\uDBFF][\uDC00-\uDFFF]/g;
