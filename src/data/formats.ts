// The dataset layouts tunekit reads, each parsed to a Conversation. The layout is detected per line:
//   vertex    {"systemInstruction"?: {"role"?, "parts": [{"text"}]}, "contents": [{"role": "user"|"model", "parts": [{"text"}]}]}
//   messages  {"messages": [{"role": "system"|"user"|"model", "content": "..."}]}   (the Vertex article's layout)
//   openai    {"messages": [{"role": "system"|"user"|"assistant", "content": "..." | [{"type": "text", "text"}], "weight"?: 0|1}]}
// Function calling, in either layout: Vertex functionCall parts (model turns) and functionResponse parts
// (user turns) with "tools": [{"functionDeclarations": [...]}]; OpenAI assistant "tool_calls" and "tool"
// messages with "tools": [{"type": "function", "function": {...}}]. Whether the model's chat template can
// render them is decided where the example is rendered (render.ts), which knows the model.
// Rules it keeps:
// - Parsing never throws on bad data: it returns DatasetProblems (file, line, JSON path, message), as
//   many as it finds, so a validator can list them all. `conversation` is set only when there are none.
// - Checks are the ones a correct Conversation needs: known roles, the right JSON types, text that is
//   not blank, no non-text parts, at least one model turn and a model turn last. Alternation, lengths
//   and statistics belong to validation.
// - Several text parts of one turn are concatenated as they are (no separator), as Gemini does.
// - Texts are kept verbatim (no trimming); the chat template decides about whitespace.

import type { Conversation, FunctionCall, FunctionResponse, Turn, TurnRole } from './conversation.js';
import { vertexToJsonSchema } from '../structured/tools.js';
import { pythonJson } from '../tokenizer/chat-template.js';
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
const VERTEX_CODE = ['executableCode', 'codeExecutionResult'];

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
    conv = parseMessages(value.messages, format, problems, value.tools);
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
      systemInstruction = vertexText(si.parts, 'systemInstruction.parts', problems)?.text;
    }
  }
  if (!Array.isArray(value.contents)) {
    problems.add('wrong_type', 'contents', `must be an array of {"role", "parts"}, got ${describe(value.contents)}`);
    return null;
  }
  const tools = vertexTools(value.tools, problems);
  let toolsPath = tools ? 'tools' : undefined;
  const turns: ReadTurn[] = value.contents.map((c, i) => {
    const path = `contents[${i}]`;
    if (!isObject(c)) {
      problems.add('wrong_type', path, `must be an object {"role", "parts"}, got ${describe(c)}`);
      return { path, turn: null };
    }
    const role = c.role === 'user' || c.role === 'model' ? c.role : null;
    const read = vertexText(c.parts, `${path}.parts`, problems, role);
    if (!role) {
      const hint = c.role === 'system' ? '; put the system prompt in systemInstruction' : '';
      problems.add('unknown_role', `${path}.role`, `unknown role ${shown(c.role)} (expected "user" or "model")${hint}`);
      return { path, turn: null, role: c.role };
    }
    if (!read) return { path, turn: null, role };
    toolsPath ??= read.functionPath;
    const turn: Turn = { role, text: read.text };
    if (read.calls.length) turn.calls = read.calls;
    if (read.responses.length) turn.responses = read.responses;
    return { path, turn, role };
  });
  return finish(systemInstruction, turns, 'contents', problems, tools, toolsPath);
}

/** Vertex `tools`: functionDeclarations as the chat template's `tools` (transformers' layout). */
function vertexTools(tools: unknown, problems: Problems): unknown[] | undefined {
  if (tools === undefined) return undefined;
  if (!Array.isArray(tools)) {
    problems.add('wrong_type', 'tools', `must be an array of {"functionDeclarations": [...]}, got ${describe(tools)}`);
    return undefined;
  }
  const out: unknown[] = [];
  tools.forEach((tool, i) => {
    const at = `tools[${i}]`;
    if (!isObject(tool) || !Array.isArray(tool.functionDeclarations)) {
      problems.add('unsupported_part', at, 'only {"functionDeclarations": [...]} tools can be trained (search, retrieval and code execution are Google services)');
      return;
    }
    tool.functionDeclarations.forEach((d, j) => {
      const dat = `${at}.functionDeclarations[${j}]`;
      if (!isObject(d) || typeof d.name !== 'string' || d.name === '') {
        problems.add('wrong_type', `${dat}.name`, 'a function declaration needs a "name" string');
        return;
      }
      const parameters = d.parameters !== undefined ? vertexToJsonSchema(d.parameters) : isObject(d.parametersJsonSchema) ? d.parametersJsonSchema : { type: 'object', properties: {} };
      out.push({ type: 'function', function: { name: d.name, ...(typeof d.description === 'string' ? { description: d.description } : {}), parameters } });
    });
  });
  return out;
}

/** What a Vertex parts array says: its texts concatenated, and its function calls or responses. */
interface ReadParts {
  text: string;
  calls: FunctionCall[];
  responses: FunctionResponse[];
  /** Path of the first function part. */
  functionPath?: string;
}

/**
 * The parts of a Vertex content; undefined (with problems added) when unusable. functionCall parts
 * belong in model turns and functionResponse parts in user turns (role null: the system instruction).
 */
function vertexText(parts: unknown, path: string, problems: Problems, role: TurnRole | null = null): ReadParts | undefined {
  if (!Array.isArray(parts) || parts.length === 0) {
    problems.add(Array.isArray(parts) ? 'empty_content' : 'wrong_type', path, `must be a non-empty array of {"text": ...}, got ${Array.isArray(parts) ? 'an empty array' : describe(parts)}`);
    return undefined;
  }
  const read: ReadParts = { text: '', calls: [], responses: [] };
  let ok = true;
  parts.forEach((part, j) => {
    const at = `${path}[${j}]`;
    if (!isObject(part)) {
      problems.add('wrong_type', at, `must be an object {"text": ...}, got ${describe(part)}`);
      ok = false;
    } else if (typeof part.text === 'string') {
      read.text += part.text;
    } else if (part.functionCall !== undefined || part.functionResponse !== undefined) {
      const call = part.functionCall !== undefined;
      const key = call ? 'functionCall' : 'functionResponse';
      const v = part[key];
      if (role !== (call ? 'model' : 'user')) {
        problems.add('unsupported_part', `${at}.${key}`, `${key} parts belong in ${call ? 'model' : 'user'} turns`);
        ok = false;
      } else if (!isObject(v) || typeof v.name !== 'string' || v.name === '') {
        problems.add('wrong_type', `${at}.${key}.name`, `a ${key} needs a "name" string`);
        ok = false;
      } else if (call && v.args !== undefined && !isObject(v.args)) {
        problems.add('wrong_type', `${at}.functionCall.args`, `must be an object, got ${describe(v.args)}`);
        ok = false;
      } else if (!call && !isObject(v.response)) {
        problems.add('wrong_type', `${at}.functionResponse.response`, `must be an object, got ${describe(v.response)}`);
        ok = false;
      } else {
        read.functionPath ??= `${at}.${key}`;
        if (call) read.calls.push({ name: v.name, args: (v.args ?? {}) as Record<string, unknown> });
        else read.responses.push({ name: v.name, content: pythonJson(v.response) });
      }
    } else {
      const key = Object.keys(part).find((k) => VERTEX_NON_TEXT.includes(k) || VERTEX_CODE.includes(k));
      if (key && VERTEX_NON_TEXT.includes(key)) problems.add('multimodal', `${at}.${key}`, MULTIMODAL);
      else if (key) problems.add('unsupported_part', `${at}.${key}`, 'code execution parts are not supported; keep text and function parts');
      else problems.add('non_string_content', `${at}.text`, `must be a string, got ${describe(part.text)}`);
      ok = false;
    }
  });
  if (!ok) return undefined;
  if (read.text.trim() === '' && read.calls.length === 0 && read.responses.length === 0) {
    problems.add('empty_content', parts.length === 1 ? `${path}[0].text` : path, 'text is empty');
    return undefined;
  }
  return read;
}

function parseMessages(messages: unknown[], format: DatasetFormat | null, problems: Problems, toolsValue: unknown): Conversation | null {
  // The reply role is "model" in the article's layout and "assistant" in OpenAI's; a line with neither
  // (format null) accepts both and fails below for having no model turn.
  const replyRoles = format === 'messages' ? ['model'] : format === 'openai' ? ['assistant'] : ['model', 'assistant'];
  const expected = ['system', 'user', ...replyRoles, 'tool'].map((r) => `"${r}"`).join(', ');
  const tools = openaiTools(toolsValue, problems);
  let toolsPath = tools ? 'tools' : undefined;
  let systemInstruction: string | undefined;
  const turns: ReadTurn[] = [];
  /** Function names of the calls so far by tool_call_id (a tool message names the call it answers). */
  const callNames = new Map<string, string>();
  messages.forEach((m, i) => {
    const path = `messages[${i}]`;
    if (!isObject(m)) {
      problems.add('wrong_type', path, `must be an object {"role", "content"}, got ${describe(m)}`);
      return;
    }
    const role = m.role;
    const isReply = typeof role === 'string' && replyRoles.includes(role);
    if (role !== 'system' && role !== 'user' && role !== 'tool' && !isReply) {
      problems.add('unknown_role', `${path}.role`, `unknown role ${shown(role)} (expected ${expected})`);
    }
    if (m.function_call !== undefined) {
      problems.add('unsupported_part', `${path}.function_call`, 'the legacy function_call field is not supported; write tool_calls');
      return;
    }
    if (role === 'tool') {
      // A tool result: with the results next to it, one user turn (Vertex: functionResponse parts).
      toolsPath ??= path;
      const content = messageText(m.content, `${path}.content`, problems, true);
      const name = typeof m.tool_call_id === 'string' ? callNames.get(m.tool_call_id) : typeof m.name === 'string' ? m.name : undefined;
      if (content === undefined) return;
      const response: FunctionResponse = { name: name ?? '', content };
      const last = turns[turns.length - 1];
      if (last?.turn?.responses && last.turn.text === '') last.turn.responses.push(response);
      else turns.push({ path, role: 'user', turn: { role: 'user', text: '', responses: [response] } });
      return;
    }
    let calls: FunctionCall[] | undefined;
    if (m.tool_calls !== undefined) {
      toolsPath ??= `${path}.tool_calls`;
      if (!isReply) problems.add('unsupported_part', `${path}.tool_calls`, `only ${replyRoles.join('/')} messages make tool calls`);
      else calls = toolCalls(m.tool_calls, `${path}.tool_calls`, problems, callNames);
      if (!calls) return;
    }
    const text = calls && (m.content === null || m.content === undefined || m.content === '') ? '' : messageText(m.content, `${path}.content`, problems);
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
    const turn: Turn | null = text !== undefined && turnRole ? { role: turnRole, text, ...(weight !== undefined ? { weight } : {}), ...(calls ? { calls } : {}) } : null;
    turns.push({ path, role: turnRole ?? role, turn });
  });
  return finish(systemInstruction, turns, 'messages', problems, tools, toolsPath);
}

/** OpenAI `tools`: [{type: "function", function: {name, description?, parameters?}}], kept as written. */
function openaiTools(tools: unknown, problems: Problems): unknown[] | undefined {
  if (tools === undefined) return undefined;
  if (!Array.isArray(tools)) {
    problems.add('wrong_type', 'tools', `must be an array of {"type": "function", "function": {...}}, got ${describe(tools)}`);
    return undefined;
  }
  tools.forEach((t, i) => {
    if (!isObject(t) || t.type !== 'function' || !isObject(t.function) || typeof t.function.name !== 'string' || t.function.name === '') {
      problems.add('wrong_type', `tools[${i}]`, 'must be {"type": "function", "function": {"name", "description"?, "parameters"?}}');
    }
  });
  return tools;
}

/** An assistant message's tool_calls: [{id?, type: "function", function: {name, arguments: JSON text}}]. */
function toolCalls(value: unknown, path: string, problems: Problems, names: Map<string, string>): FunctionCall[] | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    problems.add('wrong_type', path, `must be a non-empty array of {"type": "function", "function": {"name", "arguments"}}, got ${describe(value)}`);
    return undefined;
  }
  const calls: FunctionCall[] = [];
  for (const [j, c] of value.entries()) {
    const at = `${path}[${j}]`;
    const fn = isObject(c) ? c.function : undefined;
    if (!isObject(fn) || typeof fn.name !== 'string' || fn.name === '') {
      problems.add('wrong_type', `${at}.function.name`, 'a tool call needs {"function": {"name": ..., "arguments": ...}}');
      return undefined;
    }
    // Arguments are JSON text in OpenAI's layout; the template gets the object, as at inference.
    let args: unknown = fn.arguments ?? {};
    if (typeof args === 'string') {
      try {
        args = JSON.parse(args);
      } catch {
        problems.add('wrong_type', `${at}.function.arguments`, 'must be JSON text of an object');
        return undefined;
      }
    }
    if (!isObject(args)) {
      problems.add('wrong_type', `${at}.function.arguments`, `must be a JSON object, got ${describe(args)}`);
      return undefined;
    }
    if (isObject(c) && typeof c.id === 'string') names.set(c.id, fn.name);
    calls.push({ name: fn.name, args });
  }
  return calls;
}

/** A message's content: a string, or an array of {"type": "text", "text"} parts concatenated. */
function messageText(content: unknown, path: string, problems: Problems, allowBlank = false): string | undefined {
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
  if (text.trim() === '' && !allowBlank) {
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
function finish(systemInstruction: string | undefined, turns: ReadTurn[], key: string, problems: Problems, tools?: unknown[], toolsPath?: string): Conversation | null {
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
    ...(tools ? { tools } : {}),
    ...(toolsPath !== undefined ? { toolsPath } : {}),
    source: problems.source,
  };
}
