// proto3 JSON at the HTTP edge: reading a size-limited JSON body, and typed field readers that accept
// what proto3 JSON parsers accept (lowerCamelCase or snake_case names, numbers as JSON numbers or
// strings, null as absent, enums by name) and reject the rest with 400 INVALID_ARGUMENT naming the
// field in Google's words: `Invalid value at 'generation_config.temperature' (TYPE_FLOAT), "hot"`.
// Output helpers write what proto3 JSON writes: int64 as strings, bytes as base64, RFC 3339 times.
// Unknown fields are ignored (the SDK sends fields of newer API versions); known ones are checked.
// Bodies must be UTF-8 (not repaired to U+FFFD) and nested at most 100 levels, as protobuf parsers require.

import { CancelledError } from '../errors.js';
import { invalidArgument } from './errors.js';

/** Default request body limit: 16 MiB. */
export const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;

/** The request body parsed as a JSON object; an empty body is `{}`. */
export async function readJsonBody(req: Request, limit = DEFAULT_BODY_LIMIT): Promise<Message> {
  const tooLarge = () => invalidArgument(`Request payload size exceeds the limit: ${limit} bytes.`);
  const declared = Number(req.headers.get('content-length') ?? NaN);
  if (declared > limit) {
    await req.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    const reader = req.body.getReader();
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        throw new CancelledError('The client closed the connection while sending the request body.');
      }
      const { done, value } = chunk;
      if (done) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel().catch(() => undefined);
        throw tooLarge();
      }
      chunks.push(value);
    }
  }
  const bytes = Buffer.concat(chunks);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw invalidArgument(`Invalid JSON payload received. The body is not valid UTF-8 (first bad byte at offset ${firstInvalidUtf8(bytes)}).`);
  }
  if (text.trim() === '') return new Message({}, '');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw invalidArgument(`Invalid JSON payload received. ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgument('Invalid JSON payload received. Expected an object at the top level.');
  }
  const depth = nestingDepth(value, MAX_NESTING);
  if (depth > MAX_NESTING) {
    throw invalidArgument(`Invalid JSON payload received. Nesting deeper than ${MAX_NESTING} levels (protobuf's recursion limit).`);
  }
  return new Message(value as Record<string, unknown>, '');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Objects and arrays nested deeper than this are refused, as protobuf parsers refuse them. */
export const MAX_NESTING = 100;

/** Offset of the first byte that is not part of well-formed UTF-8. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let lo = 0;
  let hi = bytes.length;
  // The longest valid prefix, found by bisection on the decoder (offsets inside a character are invalid too).
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    try {
      utf8.decode(bytes.subarray(0, mid));
      lo = mid;
    } catch {
      hi = mid - 1;
    }
  }
  // lo is a valid prefix; the next character (up to 4 bytes) is the bad one.
  return lo;
}

/** Whether a JSON value has at most `limit` objects, arrays and leaves in all (cheap to print). */
function nodesWithin(value: unknown, limit: number): boolean {
  const stack: unknown[] = [value];
  let n = 0;
  while (stack.length > 0) {
    const v = stack.pop();
    if (++n > limit) return false;
    if (v !== null && typeof v === 'object') {
      const children = Array.isArray(v) ? v : Object.values(v);
      if (children.length > limit) return false;
      stack.push(...children);
    }
  }
  return true;
}

/** The nesting depth of a JSON value, counted without recursion; stops counting past `limit`. */
function nestingDepth(value: unknown, limit: number): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, d + 1]);
    }
  }
  return max;
}

export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** A short rendering of a value for an error message (at most 80 characters, any size or depth). */
function show(value: unknown): string {
  let s: string;
  if (typeof value === 'string') s = JSON.stringify(value.length > 100 ? value.slice(0, 100) : value);
  else if (value === null || typeof value !== 'object') s = String(value);
  else if (nodesWithin(value, 64)) s = JSON.stringify(value);
  else s = Array.isArray(value) ? `[an array of ${value.length} items]` : `{an object with ${Object.keys(value).length} fields}`;
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** A JSON object read as a proto message; `path` is its snake_case field path for messages. */
export class Message {
  constructor(readonly value: Record<string, unknown>, readonly path: string) {}

  private at(name: string): string {
    const field = snakeCase(name);
    return this.path ? `${this.path}.${field}` : field;
  }

  /** The raw value of a field given by its lowerCamelCase name; null counts as absent. */
  raw(name: string): unknown {
    const v = this.value[name] ?? this.value[snakeCase(name)];
    return v === null ? undefined : v;
  }

  has(name: string): boolean {
    return this.raw(name) !== undefined;
  }

  invalid(name: string, type: string, value: unknown): Error {
    return invalidArgument(`Invalid value at '${this.at(name)}' (${type}), ${show(value)}`);
  }

  string(name: string): string | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw this.invalid(name, 'TYPE_STRING', v);
    return v;
  }

  bool(name: string): boolean | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw this.invalid(name, 'TYPE_BOOL', v);
    return v;
  }

  /** float/double: a JSON number or a numeric string. */
  float(name: string): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
    if (!Number.isFinite(n)) throw this.invalid(name, 'TYPE_FLOAT', v);
    return n;
  }

  /** int32: an integral JSON number or string in range. */
  int32(name: string): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < -(2 ** 31) || n >= 2 ** 31) throw this.invalid(name, 'TYPE_INT32', v);
    return n;
  }

  /** int64: accepted as a number or a string, returned as a number (exact below 2^53). */
  int64(name: string): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n)) throw this.invalid(name, 'TYPE_INT64', v);
    return n;
  }

  /** An enum field by name; `type` is the proto enum's full name for the message. */
  enumOf<T extends string>(name: string, values: readonly T[], type: string): T | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      throw this.invalid(name, `type.googleapis.com/${type}`, v);
    }
    return v as T;
  }

  message(name: string, type: string): Message | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw this.invalid(name, `type.googleapis.com/${type}`, v);
    return new Message(v as Record<string, unknown>, this.at(name));
  }

  /** A repeated message field (a single object is not accepted, as proto3 JSON requires). */
  messages(name: string, type: string): Message[] {
    const v = this.raw(name);
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw this.invalid(name, `repeated type.googleapis.com/${type}`, v);
    return v.map((item, i) => {
      const at = `${this.at(name)}[${i}]`;
      if (item === null || typeof item !== 'object' || Array.isArray(item)) {
        throw invalidArgument(`Invalid value at '${at}' (type.googleapis.com/${type}), ${show(item)}`);
      }
      return new Message(item as Record<string, unknown>, at);
    });
  }

  strings(name: string): string[] {
    const v = this.raw(name);
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw this.invalid(name, 'repeated TYPE_STRING', v);
    return v.map((item, i) => {
      if (typeof item !== 'string') throw invalidArgument(`Invalid value at '${this.at(name)}[${i}]' (TYPE_STRING), ${show(item)}`);
      return item;
    });
  }

  /** The snake_case path of a field of this message, for messages about its value. */
  fieldPath(name: string): string {
    return this.at(name);
  }
}

/** RFC 3339 with Z, as proto3 JSON writes google.protobuf.Timestamp. */
export function timestamp(date: Date = new Date()): string {
  return date.toISOString();
}

export const int64 = (n: number): string => String(n);
export const bytes = (b: Uint8Array): string => Buffer.from(b).toString('base64');
