// proto3 JSON at the HTTP edge: reading a size-limited JSON body, and typed field readers that accept
// what proto3 JSON parsers accept (lowerCamelCase or snake_case names, numbers as JSON numbers or
// strings, null as absent, enums by name) and reject the rest with 400 INVALID_ARGUMENT naming the
// field in Google's words: `Invalid value at 'generation_config.temperature' (TYPE_FLOAT), "hot"`.
// Output helpers write what proto3 JSON writes: int64 as strings, bytes as base64, RFC 3339 times.
// Field-by-field readers ignore unknown fields; routes that check a whole message against the published
// protos (parseMessage, below) refuse them with their path.
// Bodies must be UTF-8 (not repaired to U+FFFD) and nested at most 100 levels, as protobuf parsers require.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CancelledError } from '../errors.js';
import { invalidArgument, type HttpError } from './errors.js';

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
    let v = this.raw(name);
    if (v === undefined) return undefined;
    // proto3 JSON parsers accept an enum's number as well as its name (the Python SDK sends numbers).
    if (typeof v === 'number' && Number.isInteger(v)) v = enumNumberName(type, v) ?? v;
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

// ---------------------------------------------------------------------------------------------------
// Messages as each API version has them. src/api/proto/aiplatform-{v1,v1beta1}.json describe the
// messages and enums tunekit reads and writes; tools/gen-proto-descriptors.ts generates them from
// Google's published protos (googleapis/googleapis google/cloud/aiplatform/{v1,v1beta1}, google/rpc,
// google/longrunning). With them:
// - `parseMessage(value, 'TuningJob', version)` checks a request body strictly as proto3 JSON: field
//   names (lowerCamelCase json_name or the proto name), unknown fields refused with their path (a
//   v1beta1-only field sent to /v1 says so), scalar types, enums by name or number (normalized to the
//   name), maps, repeated fields, well-known types, oneofs, duplicates. It returns a Message over the
//   normalized value (json names, enum names, null fields dropped), so the typed readers above keep working.
// - `encodeMessage(value, 'TuningJob', version, { enumsAsInts })` is the response side: fields that
//   the version's message lacks are dropped (a /v1 response never carries a v1beta1-only field), and
//   enums are written as numbers when the caller asked with `$alt=json;enum-encoding=int`.
// - `Message.enumOf` accepts an enum's number too (looked up by the proto type name it is given), so
//   handlers that read field by field (generation.ts) take `"category": 1` as the SDKs send it.
//
// FOR GENERATION ROUTES (issue 11, src/api/generation.ts, routes/generate-methods.ts): to refuse unknown
// fields of a GenerateContentRequest / CountTokensRequest / ComputeTokensRequest with their path, call
//   const request = parseMessage((await body(api, c)).value, 'GenerateContentRequest', apiVersionOf(c.req.url));
// and read `request` as today (enums arrive as names, whatever the client sent); write responses with
//   protoJson(c.req.raw, value, 'GenerateContentResponse')
// so that /v1 answers carry only v1 fields and `$alt=json;enum-encoding=int` gets numbers. To only ask
// whether a field was left unread, compare Object.keys(message.value) with what the handler read.
// Note: the published GenerateContentRequest has fields tunekit may not honour (tools, toolConfig,
// cachedContent, labels, modelArmorConfig...): refuse those by name rather than ignore them.
// The descriptors are in src/api/proto/; add a root to ROOTS in tools/gen-proto-descriptors.ts and rerun
// it for other messages.
// ---------------------------------------------------------------------------------------------------

export type ApiVersion = 'v1' | 'v1beta1';

/** The descriptors' shapes, as tools/gen-proto-descriptors.ts writes them. */
export interface FieldDescriptor {
  /** proto field name (snake_case) */
  name: string;
  number: number;
  /** scalar type name (string, int64, ...) or a fully qualified message/enum name */
  type: string;
  kind: 'scalar' | 'message' | 'enum';
  repeated?: true;
  /** map<key, value>: `type`/`kind` describe the value */
  mapKey?: string;
  oneof?: string;
  outputOnly?: true;
  required?: true;
}
export interface MessageDescriptor { fields: Record<string, FieldDescriptor> /* by json name */ }
export interface EnumDescriptor { values: Record<string, number> }
export interface ProtoSetFile {
  package: string;
  source: string;
  messages: Record<string, MessageDescriptor>;
  enums: Record<string, EnumDescriptor>;
}
/** A loaded set, with lookup tables built on first use. */
interface ProtoSet {
  package: string;
  source: string;
  messages: Record<string, MessageDescriptor & { byName?: Map<string, [string, FieldDescriptor]> }>;
  enums: Record<string, EnumDescriptor & { byNumber?: Map<number, string> }>;
}

const protoSets = new Map<ApiVersion, ProtoSet>();

/** The generated descriptors of an API version. */
export function protoSet(version: ApiVersion): ProtoSet {
  let set = protoSets.get(version);
  if (!set) {
    // dist/src/api/proto-json.js and src/api/proto-json.ts alike: the JSON stays in src/api/proto.
    const here = fileURLToPath(import.meta.url);
    const candidates = [
      path.join(path.dirname(here), 'proto', `aiplatform-${version}.json`),
      path.join(path.dirname(here), '..', '..', '..', 'src', 'api', 'proto', `aiplatform-${version}.json`),
    ];
    const file = candidates.find((f) => fs.existsSync(f));
    if (!file) throw new Error(`proto descriptors for ${version} not found (looked in ${candidates.join(', ')})`);
    set = JSON.parse(fs.readFileSync(file, 'utf8')) as ProtoSet;
    protoSets.set(version, set);
  }
  return set;
}

/** The API version of a request URL (/v1/... or /v1beta1/...); v1beta1 for anything else. */
export function apiVersionOf(url: string): ApiVersion {
  return /^\/v1\//.test(new URL(url, 'http://x').pathname) ? 'v1' : 'v1beta1';
}

/** A message's full name: short names are in the version's aiplatform package. */
function fullName(set: ProtoSet, type: string): string {
  if (type.startsWith('google.')) return type.replace(/^google\.cloud\.aiplatform\.v1(beta1)?\./, `${set.package}.`);
  return `${set.package}.${type}`;
}

export function messageDescriptor(version: ApiVersion, type: string): MessageDescriptor | undefined {
  const set = protoSet(version);
  return set.messages[fullName(set, type)];
}

function fieldOf(set: ProtoSet, type: string, key: string): [string, FieldDescriptor] | undefined {
  const m = set.messages[type];
  if (!m) return undefined;
  const direct = m.fields[key];
  if (direct) return [key, direct];
  if (!m.byName) m.byName = new Map(Object.entries(m.fields).map(([j, f]) => [f.name, [j, f]]));
  return m.byName.get(key);
}

/** An enum value's name for a number, or undefined. */
function enumName(set: ProtoSet, type: string, n: number): string | undefined {
  const e = set.enums[type];
  if (!e) return undefined;
  if (!e.byNumber) e.byNumber = new Map(Object.entries(e.values).map(([k, v]) => [v, k]).reverse() as [number, string][]);
  return e.byNumber.get(n);
}

const INT32 = new Set(['int32', 'sint32', 'sfixed32']);
const UINT32 = new Set(['uint32', 'fixed32']);
const INT64 = new Set(['int64', 'sint64', 'sfixed64', 'uint64', 'fixed64']);
const WRAPPERS: Record<string, string> = {
  'google.protobuf.DoubleValue': 'double', 'google.protobuf.FloatValue': 'float', 'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64', 'google.protobuf.Int32Value': 'int32', 'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.BoolValue': 'bool', 'google.protobuf.StringValue': 'string', 'google.protobuf.BytesValue': 'bytes',
};

/** A violation of proto3 JSON at `field` (snake_case path); `description` is Google's wording. */
function violation(field: string, description: string): HttpError {
  return invalidArgument(description, { fieldViolations: [{ field, description }] });
}

const join = (p: string, name: string): string => (p ? `${p}.${name}` : name);

/**
 * Checks `value` as proto3 JSON of message `type` in `version` and returns it normalized (json names,
 * enum names, nulls dropped). Throws 400 INVALID_ARGUMENT naming the field path otherwise.
 */
export function checkMessage(value: unknown, type: string, version: ApiVersion, at = ''): Record<string, unknown> {
  const set = protoSet(version);
  return checkObject(set, value, fullName(set, type), version, at);
}

function checkObject(set: ProtoSet, value: unknown, type: string, version: ApiVersion, at: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw violation(at, `Invalid value at '${at}' (type.googleapis.com/${type}), ${show(value)}`);
  }
  const out: Record<string, unknown> = {};
  const oneofs = new Map<string, string>();
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const found = fieldOf(set, type, key);
    if (!found) {
      const other: ApiVersion = version === 'v1' ? 'v1beta1' : 'v1';
      const otherSet = protoSet(other);
      const inOther = fieldOf(otherSet, type.replace(set.package, otherSet.package), key) !== undefined;
      const where = at ? ` at '${at}'` : '';
      throw violation(join(at, snakeCase(key)), `Invalid JSON payload received. Unknown name ${JSON.stringify(key)}${where}: Cannot find field.` +
        (inOther ? ` (${key} is a field of the ${other} API: send the request to /${other}/.)` : ''));
    }
    const [json, f] = found;
    const path = join(at, f.name);
    if (json in out) throw violation(path, `Invalid JSON payload received. Duplicate field ${JSON.stringify(key)}${at ? ` at '${at}'` : ''}.`);
    if (v === null && f.type !== 'google.protobuf.Value') continue;
    if (f.oneof) {
      const prev = oneofs.get(f.oneof);
      if (prev) throw violation(path, `Invalid JSON payload received. Fields ${JSON.stringify(prev)} and ${JSON.stringify(json)} are both set, but only one of oneof '${f.oneof}' may be.`);
      oneofs.set(f.oneof, json);
    }
    if (f.mapKey) {
      if (typeof v !== 'object' || Array.isArray(v)) throw violation(path, `Invalid value at '${path}' (map<${f.mapKey}, ${f.type}>), ${show(v)}`);
      const m: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
        if (f.mapKey !== 'string') checkScalar(f.mapKey, /^(true|false)$/.test(k) ? k === 'true' : k, `${path}[${JSON.stringify(k)}]`);
        m[k] = checkValue(set, f, item, version, `${path}[${JSON.stringify(k)}]`);
      }
      out[json] = m;
    } else if (f.repeated) {
      if (!Array.isArray(v)) throw violation(path, `Invalid value at '${path}' (repeated ${typeLabel(f)}), ${show(v)}`);
      out[json] = v.map((item, i) => checkValue(set, f, item, version, `${path}[${i}]`));
    } else {
      out[json] = checkValue(set, f, v, version, path);
    }
  }
  return out;
}

function typeLabel(f: FieldDescriptor): string {
  return f.kind === 'scalar' ? `TYPE_${f.type.toUpperCase()}` : `type.googleapis.com/${f.type}`;
}

function checkValue(set: ProtoSet, f: FieldDescriptor, v: unknown, version: ApiVersion, path: string): unknown {
  if (f.kind === 'scalar') return checkScalar(f.type, v, path);
  if (f.kind === 'enum') {
    if (typeof v === 'string' && v in (set.enums[f.type]?.values ?? {})) return v;
    if (typeof v === 'number' && Number.isInteger(v)) {
      const name = enumName(set, f.type, v);
      if (name !== undefined) return name;
    }
    throw violation(path, `Invalid value at '${path}' (type.googleapis.com/${f.type}), ${show(v)}`);
  }
  return checkWellKnown(set, f.type, v, version, path);
}

function checkWellKnown(set: ProtoSet, type: string, v: unknown, version: ApiVersion, path: string): unknown {
  const bad = (): HttpError => violation(path, `Invalid value at '${path}' (type.googleapis.com/${type}), ${show(v)}`);
  if (!type.startsWith('google.protobuf.')) return checkObject(set, v, type, version, path);
  if (type in WRAPPERS) return checkScalar(WRAPPERS[type]!, v, path);
  switch (type) {
    case 'google.protobuf.Timestamp':
      if (typeof v !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/.test(v) || Number.isNaN(Date.parse(v))) throw bad();
      return v;
    case 'google.protobuf.Duration':
      if (typeof v !== 'string' || !/^-?\d+(\.\d{1,9})?s$/.test(v)) throw bad();
      return v;
    case 'google.protobuf.FieldMask':
      if (typeof v !== 'string') throw bad();
      return v;
    case 'google.protobuf.Struct':
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad();
      return v;
    case 'google.protobuf.ListValue':
      if (!Array.isArray(v)) throw bad();
      return v;
    case 'google.protobuf.Value':
      return v;
    case 'google.protobuf.Empty':
      if (v === null || typeof v !== 'object' || Array.isArray(v) || Object.keys(v).length) throw bad();
      return v;
    case 'google.protobuf.Any':
      if (v === null || typeof v !== 'object' || Array.isArray(v) || typeof (v as { '@type'?: unknown })['@type'] !== 'string') throw bad();
      return v;
    default:
      return v;
  }
}

function checkScalar(type: string, v: unknown, path: string): unknown {
  const bad = (): HttpError => violation(path, `Invalid value at '${path}' (TYPE_${type.toUpperCase()}), ${show(v)}`);
  if (type === 'string') {
    if (typeof v !== 'string') throw bad();
    return v;
  }
  if (type === 'bool') {
    if (typeof v !== 'boolean') throw bad();
    return v;
  }
  if (type === 'bytes') {
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/\-_]*={0,2}$/.test(v)) throw bad();
    return v;
  }
  if (type === 'float' || type === 'double') {
    if (typeof v === 'string' && /^(NaN|-?Infinity)$/.test(v)) return v;
    const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
    if (!Number.isFinite(n)) throw bad();
    return v;
  }
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+(\.0*)?$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n)) throw bad();
  if (INT32.has(type) && (n < -(2 ** 31) || n >= 2 ** 31)) throw bad();
  if (UINT32.has(type) && (n < 0 || n >= 2 ** 32)) throw bad();
  if (INT64.has(type) && (type.startsWith('u') || type.startsWith('fixed')) && n < 0) throw bad();
  if (INT64.has(type) && typeof v === 'number' && !Number.isSafeInteger(n)) throw bad();
  return v;
}

/** A request body checked as message `type` of `version` (see checkMessage). */
export function parseMessage(value: Record<string, unknown>, type: string, version: ApiVersion): Message {
  return new Message(checkMessage(value, type, version), '');
}

/**
 * `value` as message `type` of `version` for a response: fields that the version's message lacks are
 * dropped, and with `enumsAsInts` enums are written as numbers.
 */
export function encodeMessage(value: unknown, type: string, version: ApiVersion, opts: { enumsAsInts?: boolean } = {}): Record<string, unknown> {
  const set = protoSet(version);
  return encodeObject(set, value as Record<string, unknown>, fullName(set, type), opts.enumsAsInts === true);
}

function encodeObject(set: ProtoSet, value: Record<string, unknown>, type: string, ints: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    const found = fieldOf(set, type, key);
    if (!found) continue;
    const [json, f] = found;
    const one = (item: unknown): unknown => {
      if (f.kind === 'enum') {
        if (ints && typeof item === 'string') return set.enums[f.type]?.values[item] ?? item;
        return item;
      }
      if (f.kind === 'message' && !f.type.startsWith('google.protobuf.') && item !== null && typeof item === 'object' && !Array.isArray(item)) {
        return encodeObject(set, item as Record<string, unknown>, f.type, ints);
      }
      return item;
    };
    if (f.mapKey && v !== null && typeof v === 'object') out[json] = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, one(x)]));
    else if (f.repeated && Array.isArray(v)) out[json] = v.map(one);
    else out[json] = one(v);
  }
  return out;
}

/** Whether the request asked for enums as numbers: `$alt=json;enum-encoding=int` (the Python SDK's REST transport). */
export function wantsIntEnums(url: string): boolean {
  const params = new URL(url, 'http://x').searchParams;
  const alt = params.get('$alt') ?? params.get('alt') ?? '';
  return /(^|;)\s*enum-encoding=int\s*(;|$)/.test(alt);
}

/** A JSON response of message `type`, in the request's API version and enum encoding. */
export function protoJson(req: Request, value: unknown, type: string, status = 200): Response {
  const body = encodeMessage(value, type, apiVersionOf(req.url), { enumsAsInts: wantsIntEnums(req.url) });
  return Response.json(body, { status });
}

/** The name of an enum's number, by the enum's full proto name (numbers are the same in v1 and v1beta1). */
function enumNumberName(type: string, n: number): string | undefined {
  for (const version of ['v1beta1', 'v1'] as const) {
    const set = protoSet(version);
    const name = enumName(set, fullName(set, type), n);
    if (name !== undefined) return name;
  }
  return undefined;
}
