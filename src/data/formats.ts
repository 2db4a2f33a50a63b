// The dataset layouts tunekit reads, each parsed to a Conversation. The layout is detected per line:
//   vertex    {"systemInstruction"?: {"role"?, "parts": [{"text"}]}, "contents": [{"role": "user"|"model", "parts": [{"text"}]}]}
//   messages  {"messages": [{"role": "system"|"user"|"model", "content": "..."}]}   (the Vertex article's layout)
//   openai    {"messages": [{"role": "system"|"user"|"assistant", "content": "..." | [{"type": "text", "text"}], "weight"?: 0|1}]}
// Rules it keeps:
// - Parsing never throws on bad data: it returns DatasetProblems (file, line, JSON path, message), as
//   many as it finds, so a validator can list them all. `conversation` is set only when there are none.
// - Checks are the ones a correct Conversation needs: known roles, the right JSON types, text that is
//   not blank, no non-text parts, at least one model turn and a model turn last. Alternation, lengths
//   and statistics belong to validation.
// - Several text parts of one turn are concatenated as they are (no separator), as Gemini does.
// - Texts are kept verbatim (no trimming); the chat template decides about whitespace.

import type { Conversation, Turn, TurnRole } from './conversation.js';
import type { DatasetProblem } from './errors.js';
import type { ProblemKind } from './problems.js';

export type DatasetFormat = 'vertex' | 'messages' | 'openai';

export const FORMAT_NAMES: Record<DatasetFormat, string> = {
  vertex: 'Vertex "contents"',
  messages: '"messages" with role "model"',
  openai: 'OpenAI chat "messages"',
};

export interface ParseResult {
  /** null when the line matches no layout (or a "messages" line has no reply role to tell which). */
  format: DatasetFormat | null;
  /** Set exactly when `problems` is empty. */
  conversation: Conversation | null;
  problems: DatasetProblem[];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);
/** A value as a problem message shows it: short strings and numbers as JSON, anything else by its type. */
const shown = (v: unknown): string =>
  typeof v === 'string' ? JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v)
  : typeof v === 'number' || typeof v === 'boolean' ? String(v)
  : describe(v);
const MULTIMODAL = 'multimodal examples are not supported by this base model; keep only text parts';
const VERTEX_NON_TEXT = ['inlineData', 'fileData', 'videoMetadata'];
const VERTEX_TOOLS = ['functionCall', 'functionResponse', 'executableCode', 'codeExecutionResult'];

/** Which layout a parsed line is in, from its keys and roles. */
export function detectFormat(value: unknown): DatasetFormat | null {
  if (!isObject(value)) return null;
  if ('contents' in value) return 'vertex';
  if (!Array.isArray(value.messages)) return null;
  const roles = value.messages.map((m) => (isObject(m) ? m.role : undefined));
  if (roles.includes('assistant')) return 'openai';
  if (roles.includes('model')) return 'messages';
  return null;
}

/** Collects problems for one line. */
class Problems {
  readonly list: DatasetProblem[] = [];
  constructor(readonly source: { file: string; line: number }) {}
  add(kind: ProblemKind, path: string, message: string): void {
    this.list.push({ ...this.source, path, message, kind });
  }
}

/** Parses one line's value to a Conversation, or says everything that keeps it from being one. */
export function parseExample(value: unknown, source: { file: string; line: number }): ParseResult {
  const problems = new Problems(source);
  const format = detectFormat(value);
  let conv: Conversation | null = null;
  if (!isObject(value)) {
    problems.add('not_object', '', `expected a JSON object per line, got ${describe(value)}`);
  } else if (format === 'vertex') {
    conv = parseVertex(value, problems);
  } else if (Array.isArray(value.messages)) {
    conv = parseMessages(value.messages, format, problems);
  } else if ('messages' in value) {
    problems.add('wrong_type', 'messages', `must be an array of messages, got ${describe(value.messages)}`);
  } else {
    problems.add('missing_contents', '', 'expected a Vertex example {"contents": [...]} or a chat example {"messages": [...]}');
  }
  const ok = conv !== null && problems.list.length === 0;
  return { format, conversation: ok ? conv : null, problems: problems.list };
}

function parseVertex(value: Json, problems: Problems): Conversation | null {
  let systemInstruction: string | undefined;
  const si = value.systemInstruction;
  if (si !== undefined) {
    if (!isObject(si)) problems.add('wrong_type', 'systemInstruction', `must be an object {"parts": [{"text": ...}]}, got ${describe(si)}`);
    else {
      if (si.role !== undefined && si.role !== 'system' && si.role !== 'user') {
        problems.add('unknown_role', 'systemInstruction.role', `must be "system" (or left out), got ${shown(si.role)}`);
      }
      systemInstruction = vertexText(si.parts, 'systemInstruction.parts', problems);
    }
  }
  if (!Array.isArray(value.contents)) {
    problems.add('wrong_type', 'contents', `must be an array of {"role", "parts"}, got ${describe(value.contents)}`);
    return null;
  }
  const turns: ReadTurn[] = value.contents.map((c, i) => {
    const path = `contents[${i}]`;
    if (!isObject(c)) {
      problems.add('wrong_type', path, `must be an object {"role", "parts"}, got ${describe(c)}`);
      return { path, turn: null };
    }
    const text = vertexText(c.parts, `${path}.parts`, problems);
    if (c.role !== 'user' && c.role !== 'model') {
      const hint = c.role === 'system' ? '; put the system prompt in systemInstruction' : '';
      problems.add('unknown_role', `${path}.role`, `unknown role ${shown(c.role)} (expected "user" or "model")${hint}`);
      return { path, turn: null, role: c.role };
    }
    return { path, turn: text === undefined ? null : { role: c.role, text }, role: c.role };
  });
  return finish(systemInstruction, turns, 'contents', problems);
}

/** The concatenated text of a Vertex parts array; undefined (with problems added) when unusable. */
function vertexText(parts: unknown, path: string, problems: Problems): string | undefined {
  if (!Array.isArray(parts) || parts.length === 0) {
    problems.add(Array.isArray(parts) ? 'empty_content' : 'wrong_type', path, `must be a non-empty array of {"text": ...}, got ${Array.isArray(parts) ? 'an empty array' : describe(parts)}`);
    return undefined;
  }
  let text = '';
  let ok = true;
  parts.forEach((part, j) => {
    const at = `${path}[${j}]`;
    if (!isObject(part)) {
      problems.add('wrong_type', at, `must be an object {"text": ...}, got ${describe(part)}`);
      ok = false;
    } else if (typeof part.text === 'string') {
      text += part.text;
    } else {
      const key = Object.keys(part).find((k) => VERTEX_NON_TEXT.includes(k) || VERTEX_TOOLS.includes(k));
      if (key && VERTEX_NON_TEXT.includes(key)) problems.add('multimodal', `${at}.${key}`, MULTIMODAL);
      else if (key) problems.add('unsupported_part', `${at}.${key}`, 'function calling and code execution parts are not supported; keep only text parts');
      else problems.add('non_string_content', `${at}.text`, `must be a string, got ${describe(part.text)}`);
      ok = false;
    }
  });
  if (!ok) return undefined;
  if (text.trim() === '') {
    problems.add('empty_content', parts.length === 1 ? `${path}[0].text` : path, 'text is empty');
    return undefined;
  }
  return text;
}

function parseMessages(messages: unknown[], format: DatasetFormat | null, problems: Problems): Conversation | null {
  // The reply role is "model" in the article's layout and "assistant" in OpenAI's; a line with neither
  // (format null) accepts both and fails below for having no model turn.
  const replyRoles = format === 'messages' ? ['model'] : format === 'openai' ? ['assistant'] : ['model', 'assistant'];
  const expected = ['system', 'user', ...replyRoles].map((r) => `"${r}"`).join(', ');
  let systemInstruction: string | undefined;
  const turns: ReadTurn[] = [];
  messages.forEach((m, i) => {
    const path = `messages[${i}]`;
    if (!isObject(m)) {
      problems.add('wrong_type', path, `must be an object {"role", "content"}, got ${describe(m)}`);
      return;
    }
    const role = m.role;
    const isReply = typeof role === 'string' && replyRoles.includes(role);
    if (role !== 'system' && role !== 'user' && !isReply) {
      problems.add('unknown_role', `${path}.role`, `unknown role ${shown(role)} (expected ${expected})`);
    }
    if (m.tool_calls !== undefined || m.function_call !== undefined) {
      problems.add('unsupported_part', `${path}.${m.tool_calls !== undefined ? 'tool_calls' : 'function_call'}`, 'tool calls are not supported; keep only text messages');
      return;
    }
    const text = messageText(m.content, `${path}.content`, problems);
    let weight: 0 | 1 | undefined;
    if (m.weight !== undefined) {
      if (m.weight !== 0 && m.weight !== 1) problems.add('bad_weight', `${path}.weight`, `must be 0 or 1, got ${shown(m.weight)}`);
      else if (!isReply) problems.add('bad_weight', `${path}.weight`, `only ${replyRoles.join('/')} messages carry a weight; user and system text is never trained`);
      else weight = m.weight;
    }
    if (role === 'system') {
      if (i !== 0) problems.add('misplaced_system', `${path}.role`, 'a system message must be the first message, and there can be only one');
      else systemInstruction = text;
      return;
    }
    const turnRole: TurnRole | undefined = isReply ? 'model' : role === 'user' ? 'user' : undefined;
    const turn = text !== undefined && turnRole ? { role: turnRole, text, ...(weight !== undefined ? { weight } : {}) } : null;
    turns.push({ path, role: turnRole ?? role, turn });
  });
  return finish(systemInstruction, turns, 'messages', problems);
}

/** A message's content: a string, or an array of {"type": "text", "text"} parts concatenated. */
function messageText(content: unknown, path: string, problems: Problems): string | undefined {
  let text: string;
  if (typeof content === 'string') {
    text = content;
  } else if (Array.isArray(content) && content.length > 0) {
    text = '';
    let ok = true;
    content.forEach((part, j) => {
      const at = `${path}[${j}]`;
      if (!isObject(part)) {
        problems.add('wrong_type', at, `must be an object {"type": "text", "text": ...}, got ${describe(part)}`);
        ok = false;
      } else if (part.type === 'text' && typeof part.text === 'string') {
        text += part.text;
      } else if (part.type === 'text') {
        problems.add('non_string_content', `${at}.text`, `must be a string, got ${describe(part.text)}`);
        ok = false;
      } else {
        problems.add(typeof part.type === 'string' ? 'multimodal' : 'wrong_type', `${at}.type`, typeof part.type === 'string' ? MULTIMODAL : `must be "text", got ${describe(part.type)}`);
        ok = false;
      }
    });
    if (!ok) return undefined;
  } else {
    const got = Array.isArray(content) ? 'an empty array' : describe(content);
    problems.add(Array.isArray(content) ? 'empty_content' : 'non_string_content', path, `must be a string or an array of {"type": "text", "text": ...}, got ${got}`);
    return undefined;
  }
  if (text.trim() === '') {
    problems.add('empty_content', path, 'text is empty');
    return undefined;
  }
  return text;
}

/** A user or model turn as read: its JSON path, its role when known, the turn when fully valid. */
interface ReadTurn {
  path: string;
  role?: unknown;
  turn: Turn | null;
}

/** Checks that hold for every layout once the turns are read: some turns, a model turn last. */
function finish(systemInstruction: string | undefined, turns: ReadTurn[], key: string, problems: Problems): Conversation | null {
  if (turns.length === 0) {
    problems.add('no_model_turn', key, 'has no user or model turns; an example needs at least one model turn to train on');
    return null;
  }
  const last = turns[turns.length - 1];
  if (last.role === 'user') {
    const anyModel = turns.some((t) => t.role === 'model' || t.role === 'assistant');
    problems.add(anyModel ? 'last_turn_not_model' : 'no_model_turn', `${last.path}.role`, anyModel ? 'the last turn must be a model turn (the reply to train on)' : 'there is no model turn to train on');
  }
  if (problems.list.length > 0 || turns.some((t) => t.turn === null)) return null;
  return {
    ...(systemInstruction !== undefined ? { systemInstruction } : {}),
    turns: turns.map((t) => t.turn!),
    source: problems.source,
  };
}
