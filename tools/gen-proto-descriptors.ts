// Generates src/api/proto/aiplatform-v1.json and aiplatform-v1beta1.json: the messages and enums that
// tunekit's API reads and writes, taken from Google's published protos (googleapis/googleapis,
// google/cloud/aiplatform/{v1,v1beta1}/*.proto, google/rpc, google/longrunning, google/type), so that the
// request parser (src/api/proto-json.ts) follows each API version's own field set and nothing is typed
// twice by hand.
//
//   node dist/tools/gen-proto-descriptors.js --googleapis DIR [--out src/api/proto]
//
// DIR is a googleapis checkout (a work tree) or a bare git directory (read at HEAD with `git show`).
// Only messages reachable from ROOTS are written. Well-known types (google.protobuf.*) are not
// described: the parser knows their JSON forms.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { EnumDescriptor, FieldDescriptor, MessageDescriptor, ProtoSetFile } from '../src/api/proto-json.js';

type ProtoSet = ProtoSetFile;

const SCALARS = new Set(['double', 'float', 'int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'fixed32', 'fixed64',
  'sfixed32', 'sfixed64', 'bool', 'string', 'bytes']);

/** The request and response messages of the routes tunekit serves (short names in the version's package). */
export const ROOTS = [
  'TuningJob', 'ListTuningJobsResponse', 'CancelTuningJobRequest', 'CreateTuningJobRequest',
  'Model', 'ListModelsResponse', 'ListModelVersionsResponse', 'ListModelVersionCheckpointsResponse', 'UpdateModelRequest',
  'Endpoint', 'ListEndpointsResponse', 'DeployModelRequest', 'DeployModelResponse', 'DeployModelOperationMetadata',
  'UndeployModelRequest', 'UndeployModelResponse', 'UndeployModelOperationMetadata', 'CreateEndpointOperationMetadata',
  'DeleteOperationMetadata', 'MutateDeployedModelRequest',
  'GenerateContentRequest', 'GenerateContentResponse', 'CountTokensRequest', 'CountTokensResponse',
  'ComputeTokensRequest', 'ComputeTokensResponse', 'EvaluateInstancesRequest', 'EvaluateInstancesResponse',
  'google.longrunning.Operation', 'google.longrunning.ListOperationsResponse', 'google.longrunning.WaitOperationRequest',
  'google.rpc.Status', 'google.rpc.ErrorInfo', 'google.rpc.BadRequest', 'google.rpc.QuotaFailure', 'google.rpc.RetryInfo',
  'google.rpc.PreconditionFailure', 'google.rpc.ResourceInfo', 'google.rpc.Help', 'google.rpc.LocalizedMessage',
  'google.rpc.DebugInfo', 'google.rpc.RequestInfo',
];

type Token = { t: 'id' | 'num' | 'str' | 'sym'; v: string };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) { i++; continue; }
    if (src.startsWith('//', i)) { i = src.indexOf('\n', i); if (i < 0) break; continue; }
    if (src.startsWith('/*', i)) { i = src.indexOf('*/', i) + 2; continue; }
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      out.push({ t: 'str', v: src.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    const id = /^[A-Za-z_.][A-Za-z0-9_.]*/.exec(src.slice(i, i + 200));
    if (id) { out.push({ t: 'id', v: id[0] }); i += id[0].length; continue; }
    const num = /^-?(0x[0-9a-fA-F]+|\d+(\.\d+)?([eE][-+]?\d+)?)/.exec(src.slice(i, i + 60));
    if (num) { out.push({ t: 'num', v: num[0] }); i += num[0].length; continue; }
    out.push({ t: 'sym', v: c });
    i++;
  }
  return out;
}

interface RawField { name: string; number: number; type: string; repeated: boolean; mapKey?: string; oneof?: string; options: string[] }
interface RawMessage { full: string; scope: string; fields: RawField[] }
interface RawEnum { full: string; values: Record<string, number> }

class Parser {
  private i = 0;
  pkg = '';
  imports: string[] = [];
  messages: RawMessage[] = [];
  enums: RawEnum[] = [];
  constructor(private readonly toks: Token[]) {}
  private peek(o = 0): Token | undefined { return this.toks[this.i + o]; }
  private next(): Token { const t = this.toks[this.i++]; if (!t) throw new Error('unexpected end of file'); return t; }
  private expect(v: string): void { const t = this.next(); if (t.v !== v) throw new Error(`expected ${v}, got ${t.v}`); }
  /** Skips to the end of a statement: the next `;` at depth 0, or a balanced `{...}` block. */
  private skipStatement(): void {
    let depth = 0;
    for (;;) {
      const t = this.next();
      if (t.t === 'sym' && (t.v === '{' || t.v === '[' || t.v === '(')) depth++;
      else if (t.t === 'sym' && (t.v === '}' || t.v === ']' || t.v === ')')) { depth--; if (depth === 0 && t.v === '}') { if (this.peek()?.v === ';') this.i++; return; } }
      else if (t.v === ';' && depth === 0) return;
    }
  }
  /** `[ ... ]` field options as a flat list of tokens' texts. */
  private options(): string[] {
    const out: string[] = [];
    if (this.peek()?.v !== '[') return out;
    let depth = 0;
    for (;;) {
      const t = this.next();
      if (t.v === '[' || t.v === '{') depth++;
      if (t.v === ']' || t.v === '}') depth--;
      out.push(t.v);
      if (depth === 0) return out;
    }
  }
  parseFile(): void {
    while (this.peek()) {
      const t = this.peek()!;
      if (t.v === 'package') { this.next(); this.pkg = this.next().v; this.expect(';'); }
      else if (t.v === 'import') { this.next(); if (this.peek()?.t === 'id') this.next(); this.imports.push(this.next().v); this.expect(';'); }
      else if (t.v === 'message') this.message(this.pkg);
      else if (t.v === 'enum') this.enumDef(this.pkg);
      else this.skipStatement(); // syntax, option, service, extend
    }
  }
  private message(scope: string): void {
    this.expect('message');
    const name = this.next().v;
    const full = `${scope}.${name}`;
    const msg: RawMessage = { full, scope: full, fields: [] };
    this.messages.push(msg);
    this.expect('{');
    this.body(msg, full, undefined);
  }
  private body(msg: RawMessage, scope: string, oneof: string | undefined): void {
    for (;;) {
      const t = this.peek()!;
      if (t.v === '}') { this.next(); if (this.peek()?.v === ';') this.next(); return; }
      if (t.v === ';') { this.next(); continue; }
      if (t.v === 'message') { this.message(scope); continue; }
      if (t.v === 'enum') { this.enumDef(scope); continue; }
      if (t.v === 'oneof') { this.next(); const o = this.next().v; this.expect('{'); this.body(msg, scope, o); continue; }
      if (t.v === 'option' || t.v === 'reserved' || t.v === 'extensions' || t.v === 'extend') { this.skipStatement(); continue; }
      let repeated = false;
      if (t.v === 'repeated') { repeated = true; this.next(); } else if (t.v === 'optional') this.next();
      let type = this.next().v;
      let mapKey: string | undefined;
      if (type === 'map') {
        this.expect('<'); mapKey = this.next().v; this.expect(','); type = this.next().v; this.expect('>');
      }
      const name = this.next().v;
      this.expect('=');
      const number = Number(this.next().v);
      const options = this.options();
      this.expect(';');
      msg.fields.push({ name, number, type, repeated, mapKey, oneof, options });
    }
  }
  private enumDef(scope: string): void {
    this.expect('enum');
    const full = `${scope}.${this.next().v}`;
    const values: Record<string, number> = {};
    this.expect('{');
    for (;;) {
      const t = this.peek()!;
      if (t.v === '}') { this.next(); if (this.peek()?.v === ';') this.next(); break; }
      if (t.v === 'option' || t.v === 'reserved') { this.skipStatement(); continue; }
      const name = this.next().v;
      this.expect('=');
      values[name] = Number(this.next().v);
      this.options();
      this.expect(';');
    }
    this.enums.push({ full, values });
  }
}

/** proto3's default json_name: snake_case to lowerCamelCase. */
export function jsonName(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function generate(
  read: (file: string) => string, version: 'v1' | 'v1beta1', source: string,
  list: (dir: string) => string[] = (dir) => dirLister(dir), roots: readonly string[] = ROOTS,
): ProtoSet {
  const pkg = `google.cloud.aiplatform.${version}`;
  const messages = new Map<string, RawMessage>();
  const enums = new Map<string, RawEnum>();
  const loaded = new Set<string>();
  const load = (file: string): void => {
    if (loaded.has(file) || file.startsWith('google/protobuf/') || file.startsWith('google/api/')) return;
    loaded.add(file);
    const p = new Parser(tokenize(read(file)));
    p.parseFile();
    for (const m of p.messages) messages.set(m.full, m);
    for (const e of p.enums) enums.set(e.full, e);
    for (const imp of p.imports) load(imp);
  };
  for (const f of list(`google/cloud/aiplatform/${version}`)) if (f.endsWith('.proto')) load(f);
  if (roots === ROOTS) for (const f of ['google/longrunning/operations.proto', 'google/rpc/status.proto', 'google/rpc/error_details.proto']) load(f);

  /** Resolves a type reference from a scope as protoc does (innermost scope first). */
  const resolve = (ref: string, scope: string): string => {
    if (ref.startsWith('.')) return ref.slice(1);
    if (SCALARS.has(ref)) return ref;
    if (ref.startsWith('google.protobuf.')) return ref;
    let s = scope;
    for (;;) {
      const candidate = s ? `${s}.${ref}` : ref;
      if (messages.has(candidate) || enums.has(candidate)) return candidate;
      if (!s) break;
      s = s.includes('.') ? s.slice(0, s.lastIndexOf('.')) : '';
    }
    throw new Error(`cannot resolve ${ref} from ${scope}`);
  };
  const out: ProtoSet = { package: pkg, source, messages: {}, enums: {} };
  const queue = roots.map((r) => (r.startsWith('google.') ? r : `${pkg}.${r}`));
  while (queue.length) {
    const full = queue.pop()!;
    if (out.messages[full] || out.enums[full] || full.startsWith('google.protobuf.')) continue;
    const e = enums.get(full);
    if (e) { out.enums[full] = { values: e.values }; continue; }
    const m = messages.get(full);
    if (!m) throw new Error(`no message ${full}`);
    const desc: MessageDescriptor = { fields: {} };
    out.messages[full] = desc;
    for (const f of m.fields) {
      const type = resolve(f.type, m.scope);
      const kind = SCALARS.has(type) ? 'scalar' : enums.has(type) ? 'enum' : 'message';
      const fd: FieldDescriptor = { name: f.name, number: f.number, type, kind };
      if (f.repeated) fd.repeated = true;
      if (f.mapKey) fd.mapKey = f.mapKey;
      if (f.oneof) fd.oneof = f.oneof;
      const opts = f.options.join(' ');
      if (/field_behavior\s*\)\s*=\s*OUTPUT_ONLY/.test(opts)) fd.outputOnly = true;
      if (/field_behavior\s*\)\s*=\s*REQUIRED/.test(opts)) fd.required = true;
      const jn = /json_name\s*=\s*(\S+)/.exec(opts)?.[1];
      desc.fields[jn ?? jsonName(f.name)] = fd;
      if (kind !== 'scalar') queue.push(type);
    }
  }
  const sorted = <T>(o: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
  out.messages = sorted(out.messages);
  out.enums = sorted(out.enums);
  return out;
}

let dirLister: (dir: string) => string[] = () => [];

function main(): void {
  const args = process.argv.slice(2);
  const at = (flag: string): string | undefined => { const i = args.indexOf(flag); return i >= 0 ? args[i + 1] : undefined; };
  const root = at('--googleapis');
  if (!root) throw new Error('usage: gen-proto-descriptors --googleapis DIR [--out DIR]');
  const outDir = at('--out') ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'api', 'proto');
  const bare = !fs.existsSync(path.join(root, 'google'));
  const git = (...a: string[]): string => execFileSync('git', ['--git-dir', bare ? root : path.join(root, '.git'), ...a], { encoding: 'utf8', maxBuffer: 1 << 28 });
  let commit = 'work tree';
  try { commit = git('rev-parse', 'HEAD').trim(); } catch { /* not a git checkout */ }
  const read = (file: string): string => (bare ? git('show', `HEAD:${file}`) : fs.readFileSync(path.join(root, file), 'utf8'));
  dirLister = (dir) => (bare ? git('ls-tree', '--name-only', `HEAD:${dir}`).split('\n').filter(Boolean).map((f) => `${dir}/${f}`)
    : fs.readdirSync(path.join(root, dir)).map((f) => `${dir}/${f}`));
  fs.mkdirSync(outDir, { recursive: true });
  for (const version of ['v1', 'v1beta1'] as const) {
    const set = generate(read, version, `googleapis/googleapis@${commit}`);
    const file = path.join(outDir, `aiplatform-${version}.json`);
    fs.writeFileSync(file, JSON.stringify(set) + '\n');
    process.stdout.write(`${file}: ${Object.keys(set.messages).length} messages, ${Object.keys(set.enums).length} enums\n`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
