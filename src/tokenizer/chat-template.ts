// Chat templates rendered as transformers renders them: Jinja2 (ImmutableSandboxedEnvironment, trim_blocks,
// lstrip_blocks, loopcontrols) with transformers' own `tojson` (json.dumps, ensure_ascii=False) and the
// globals raise_exception and strftime_now — and Python's semantics for the values a template touches.
//
// Parsing and control flow are @huggingface/jinja's. Its interpreter gives strings JavaScript semantics
// (0.5.11: strip/lstrip/rstrip ignore their argument and trim JavaScript's whitespace, lengths count UTF-16
// units, {{ none }} prints nothing, tojson prints 1e-7 and sorts keys by locale), so a Qwen3 reply's
// `content.lstrip('\n')` lost its leading indentation. This file is a wrapper, not a patch of the
// dependency: a subclass of its Interpreter replaces the few evaluation steps where values meet Python
// (string attributes and indexes, filters, printing, `~`, `==`, tests), with Python's str methods from
// ./python-str.ts. Why not a maintained patch (patch-package): the package ships two generated bundles
// (ESM and CJS) and its classes are not exported, so a patch would edit minified-by-bundler output twice
// and need a postinstall hook; here the override points are named methods, checked when this module loads,
// and test/chat-template-fidelity.test.ts compares the result with Jinja2's own renders, so an upgrade
// that moves them fails loudly rather than rendering different training text.
//
// Not Python: numbers that are integral arrive from JSON as integers (JavaScript cannot tell 1.0 from 1),
// and objects whose keys look like array indexes come in JavaScript's key order.

import * as jinja from '@huggingface/jinja';
import {
  codePoints, comparePyStrings, jinjaTitle, jsonString, pyAffix, pyCapitalize, pyCount, pyFind, pyFloatRepr, pyLen, pyReplace,
  pyReprString, pyRsplit, pySplit, pySplitlines, pyStrip, pySwapcase, pyTitle, isPySpace,
} from './python-str.js';

// The package's typings do not resolve under NodeNext (extensionless relative imports), so the parts used
// here are typed by hand.
/** A runtime value of the interpreter: its class name in `type`, the JavaScript value in `value`. */
interface Value { type: string; value: unknown }
type Node = { type: string };
type Program = Node;
interface Environment {
  set(name: string, value: unknown): Value;
  setVariable(name: string, value: Value): Value;
  tests: Map<string, (...values: Value[]) => boolean>;
}
interface InterpreterInstance { run(program: Program): Value }
const Environment = jinja.Environment as unknown as new (parent?: Environment) => Environment;
const Interpreter = jinja.Interpreter as unknown as new (env?: Environment) => InterpreterInstance;
const parse = jinja.parse as unknown as (tokens: unknown) => Program;
const tokenize = jinja.tokenize as unknown as (source: string, options: { lstrip_blocks: boolean; trim_blocks: boolean }) => unknown;
type ValueCtor = new (value: unknown) => Value;

// The runtime value classes are not exported; a scratch Environment converts a JavaScript value of each
// kind, which gives the classes.
const probe = new Environment();
let probeCount = 0;
const ctorOf = (v: unknown): ValueCtor => probe.set(`v${probeCount++}`, v).constructor as ValueCtor;
const StringValue = ctorOf('');
const IntegerValue = ctorOf(0);
const BooleanValue = ctorOf(true);
const ArrayValue = ctorOf([]);
const UndefinedValue = ctorOf(undefined);
const FunctionValue = ctorOf(() => 0);

const str = (s: string): Value => new StringValue(s);
const int = (n: number): Value => new IntegerValue(n);
const bool = (b: boolean): Value => new BooleanValue(b);
const list = (items: Value[]): Value => new ArrayValue(items);
const tuple = (items: Value[]): Value => Object.assign(new ArrayValue(items), { type: 'TupleValue' });
const fn = (f: (args: Value[], scope: Environment) => Value): Value => new FunctionValue(f);

const isStr = (v: Value | undefined): boolean => v?.type === 'StringValue';
const isList = (v: Value | undefined): boolean => v?.type === 'ArrayValue' || v?.type === 'TupleValue';
const isMap = (v: Value | undefined): boolean => v?.type === 'ObjectValue' || v?.type === 'KeywordArgumentsValue';
const isNone = (v: Value | undefined): boolean => v === undefined || v.type === 'NullValue' || v.type === 'UndefinedValue';

/** What the interpreter's internals look like to this file (private in its typings). */
interface Internals {
  evaluate(node: Node | undefined, env: Environment): Value;
  evaluateArguments(args: Node[], env: Environment): [Value[], Map<string, Value>];
  applyFilter(operand: Value, filter: Node, env: Environment): Value;
  evaluateBlock(statements: Node[], env: Environment): Value;
  evaluateMemberExpression(expr: Node, env: Environment): Value;
  evaluateSliceExpression(object: Value, expr: Node, env: Environment): Value;
  evaluateBinaryExpression(node: Node, env: Environment): Value;
  evaluateFor(node: Node, env: Environment): Value;
}

const base = Interpreter.prototype as unknown as Internals;
const USED = ['evaluateArguments', 'applyFilter', 'evaluateBlock', 'evaluateMemberExpression', 'evaluateSliceExpression', 'evaluateBinaryExpression', 'evaluateFor', 'evaluate'] as const;
const missing = USED.filter((m) => typeof (base as unknown as Record<string, unknown>)[m] !== 'function');

// ---- Python str() / repr() of runtime values -----------------------------------------------------------

function pyRepr(v: Value): string {
  if (v.type === 'StringValue') return pyReprString(v.value as string);
  return pyStr(v);
}

/** str(value), as Jinja2 prints {{ value }}. */
export function pyStr(v: Value): string {
  switch (v.type) {
    case 'StringValue': return v.value as string;
    case 'IntegerValue': return String(v.value);
    case 'FloatValue': return pyFloatRepr(v.value as number);
    case 'BooleanValue': return v.value ? 'True' : 'False';
    case 'NullValue': return 'None';
    case 'UndefinedValue': return '';
    case 'ArrayValue': return `[${(v.value as Value[]).map(pyRepr).join(', ')}]`;
    case 'TupleValue': {
      const items = (v.value as Value[]).map(pyRepr);
      return `(${items.join(', ')}${items.length === 1 ? ',' : ''})`;
    }
    case 'ObjectValue': case 'KeywordArgumentsValue':
      return `{${[...(v.value as Map<string, Value>)].map(([k, x]) => `${pyReprString(k)}: ${pyRepr(x)}`).join(', ')}}`;
    case 'NamespaceValue':
      return `<Namespace {${[...(v.value as Map<string, Value>)].map(([k, x]) => `${pyReprString(k)}: ${pyRepr(x)}`).join(', ')}}>`;
    default: return String(v.value);
  }
}

// ---- json.dumps, as transformers' tojson filter calls it -----------------------------------------------

interface DumpOptions { ensureAscii: boolean; indent: string | null; separators: [string, string]; sortKeys: boolean }

function dumps(v: Value, o: DumpOptions, depth: number): string {
  switch (v.type) {
    case 'StringValue': return jsonString(v.value as string, o.ensureAscii);
    case 'IntegerValue': return String(v.value);
    case 'FloatValue': {
      const x = v.value as number;
      return Number.isNaN(x) ? 'NaN' : x === Infinity ? 'Infinity' : x === -Infinity ? '-Infinity' : pyFloatRepr(x);
    }
    case 'BooleanValue': return v.value ? 'true' : 'false';
    case 'NullValue': return 'null';
    case 'ArrayValue': case 'TupleValue': case 'ObjectValue': case 'KeywordArgumentsValue': case 'NamespaceValue': {
      const isArray = v.type === 'ArrayValue' || v.type === 'TupleValue';
      let items: string[];
      if (isArray) items = (v.value as Value[]).map((x) => dumps(x, o, depth + 1));
      else {
        let entries = [...(v.value as Map<string, Value>)];
        if (o.sortKeys) entries = entries.sort(([a], [b]) => comparePyStrings(a, b));
        items = entries.map(([k, x]) => jsonString(k, o.ensureAscii) + o.separators[1] + dumps(x, o, depth + 1));
      }
      const [open, close] = isArray ? ['[', ']'] : ['{', '}'];
      if (items.length === 0) return open + close;
      if (o.indent === null) return open + items.join(o.separators[0]) + close;
      const inner = '\n' + o.indent.repeat(depth + 1);
      return open + inner + items.join(o.separators[0] + inner) + '\n' + o.indent.repeat(depth) + close;
    }
    case 'UndefinedValue': throw new Error('TypeError: Object of type Undefined is not JSON serializable');
    default: throw new Error(`TypeError: Object of type ${v.type} is not JSON serializable`);
  }
}

/**
 * A JavaScript value as Python's json.dumps(value, ensure_ascii=False) writes it (what tojson writes):
 * the text of a tool result given as a JSON object, as Python callers of transformers put it in a message.
 */
export function pythonJson(value: unknown): string {
  return dumps(new Environment().set('v', value), { ensureAscii: false, indent: null, separators: [', ', ': '], sortKeys: false }, 0);
}

/** transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False). */
function tojson(operand: Value, args: Value[], kwargs: Map<string, Value>): Value {
  const names = ['ensure_ascii', 'indent', 'separators', 'sort_keys'];
  const arg = (i: number): Value | undefined => args[i] ?? kwargs.get(names[i]!);
  for (const k of kwargs.keys()) if (!names.includes(k)) throw new Error(`TypeError: tojson() got an unexpected keyword argument '${k}'`);
  const indentArg = arg(1);
  let indent: string | null = null;
  if (!isNone(indentArg)) indent = isStr(indentArg) ? (indentArg!.value as string) : ' '.repeat(Math.max(0, Number(indentArg!.value)));
  const sepArg = arg(2);
  let separators: [string, string] = indent === null ? [', ', ': '] : [',', ': '];
  if (!isNone(sepArg)) {
    const parts = isList(sepArg) ? (sepArg!.value as Value[]) : [];
    if (parts.length !== 2 || !parts.every(isStr)) throw new Error('tojson separators must be a pair of strings');
    separators = [parts[0]!.value as string, parts[1]!.value as string];
  }
  const truthy = (v: Value | undefined) => !isNone(v) && Boolean(v!.value) && !(isList(v) && (v!.value as Value[]).length === 0);
  return str(dumps(operand, { ensureAscii: truthy(arg(0)), indent, separators, sortKeys: truthy(arg(3)) }, 0));
}

// ---- Python's str methods ------------------------------------------------------------------------------

function splitKwargs(args: Value[]): [Value[], Map<string, Value>] {
  const last = args[args.length - 1];
  if (last?.type === 'KeywordArgumentsValue') return [args.slice(0, -1), last.value as Map<string, Value>];
  return [args, new Map()];
}

function optionalString(v: Value | undefined, method: string): string | null {
  if (isNone(v)) return null;
  if (!isStr(v)) throw new Error(`TypeError: ${method} arg must be None or str`);
  return v!.value as string;
}

function optionalInt(v: Value | undefined): number | null {
  if (isNone(v)) return null;
  if (v!.type !== 'IntegerValue' && v!.type !== 'BooleanValue') throw new Error('TypeError: slice indices must be integers or None');
  return Number(v!.value);
}

function affixes(v: Value | undefined, method: string): string[] {
  if (isStr(v)) return [v!.value as string];
  if (isList(v) && (v!.value as Value[]).every(isStr)) return (v!.value as Value[]).map((x) => x.value as string);
  throw new Error(`TypeError: ${method} first arg must be str or a tuple of str`);
}

type StrMethod = (s: string, args: Value[], kwargs: Map<string, Value>) => Value;

const STR_METHODS: Record<string, StrMethod> = {
  strip: (s, a) => str(pyStrip(s, optionalString(a[0], 'strip'), 'both')),
  lstrip: (s, a) => str(pyStrip(s, optionalString(a[0], 'lstrip'), 'left')),
  rstrip: (s, a) => str(pyStrip(s, optionalString(a[0], 'rstrip'), 'right')),
  split: (s, a, k) => list(pySplit(s, optionalString(a[0] ?? k.get('sep'), 'split'), optionalInt(a[1] ?? k.get('maxsplit')) ?? -1).map(str)),
  rsplit: (s, a, k) => list(pyRsplit(s, optionalString(a[0] ?? k.get('sep'), 'rsplit'), optionalInt(a[1] ?? k.get('maxsplit')) ?? -1).map(str)),
  splitlines: (s, a, k) => list(pySplitlines(s, Boolean((a[0] ?? k.get('keepends'))?.value)).map(str)),
  startswith: (s, a) => bool(pyAffix(s, affixes(a[0], 'startswith'), optionalInt(a[1]), optionalInt(a[2]), false)),
  endswith: (s, a) => bool(pyAffix(s, affixes(a[0], 'endswith'), optionalInt(a[1]), optionalInt(a[2]), true)),
  replace: (s, a, k) => {
    if (!isStr(a[0]) || !isStr(a[1])) throw new Error('TypeError: replace() arguments must be str');
    return str(pyReplace(s, a[0]!.value as string, a[1]!.value as string, optionalInt(a[2] ?? k.get('count')) ?? -1));
  },
  upper: (s) => str(s.toUpperCase()),
  lower: (s) => str(s.toLowerCase()),
  casefold: (s) => str(s.toLowerCase()),
  title: (s) => str(pyTitle(s)),
  capitalize: (s) => str(pyCapitalize(s)),
  swapcase: (s) => str(pySwapcase(s)),
  find: (s, a) => int(pyFind(s, String(a[0]?.value ?? ''), optionalInt(a[1]), optionalInt(a[2]))),
  rfind: (s, a) => int(pyFind(s, String(a[0]?.value ?? ''), optionalInt(a[1]), optionalInt(a[2]), true)),
  index: (s, a) => {
    const at = pyFind(s, String(a[0]?.value ?? ''), optionalInt(a[1]), optionalInt(a[2]));
    if (at < 0) throw new Error('ValueError: substring not found');
    return int(at);
  },
  count: (s, a) => int(pyCount(s, String(a[0]?.value ?? ''), optionalInt(a[1]), optionalInt(a[2]))),
  removeprefix: (s, a) => {
    const p = String(a[0]?.value ?? '');
    return str(p && s.startsWith(p) ? s.slice(p.length) : s);
  },
  removesuffix: (s, a) => {
    const p = String(a[0]?.value ?? '');
    return str(p && s.endsWith(p) ? s.slice(0, s.length - p.length) : s);
  },
  join: (s, a) => {
    if (!isList(a[0]) && !isStr(a[0])) throw new Error('TypeError: can only join an iterable');
    const items = isStr(a[0]) ? codePoints(a[0]!.value as string).map(str) : (a[0]!.value as Value[]);
    if (!items.every(isStr)) throw new Error('TypeError: sequence item: expected str instance');
    return str(items.map((x) => x.value as string).join(s));
  },
  partition: (s, a) => {
    const sep = String(a[0]?.value ?? '');
    const at = s.indexOf(sep);
    return tuple(at < 0 ? [str(s), str(''), str('')] : [str(s.slice(0, at)), str(sep), str(s.slice(at + sep.length))]);
  },
  rpartition: (s, a) => {
    const sep = String(a[0]?.value ?? '');
    const at = s.lastIndexOf(sep);
    return tuple(at < 0 ? [str(''), str(''), str(s)] : [str(s.slice(0, at)), str(sep), str(s.slice(at + sep.length))]);
  },
  isspace: (s) => bool(s.length > 0 && codePoints(s).every(isPySpace)),
  isdigit: (s) => bool(/^\p{Nd}+$/u.test(s)),
  isnumeric: (s) => bool(/^\p{N}+$/u.test(s)),
  isalpha: (s) => bool(/^\p{L}+$/u.test(s)),
  isalnum: (s) => bool(/^[\p{L}\p{N}]+$/u.test(s)),
  isupper: (s) => bool(/\p{Cased}/u.test(s) && s === s.toUpperCase()),
  islower: (s) => bool(/\p{Cased}/u.test(s) && s === s.toLowerCase()),
};

/** One code point of s by Python index, or undefined out of range. */
function charAt(s: string, index: number): string | undefined {
  const cps = codePoints(s);
  const i = index < 0 ? cps.length + index : index;
  return cps[i];
}

// ---- Jinja2 filters on strings -------------------------------------------------------------------------

/** Jinja2's indent(width=4, first=False, blank=False): lines as str.splitlines() cuts them. */
function jinjaIndent(s: string, width: Value | undefined, first: boolean, blank: boolean): string {
  const indention = isStr(width) ? (width!.value as string) : ' '.repeat(isNone(width) ? 4 : Number(width!.value));
  const lines = pySplitlines(s + '\n');
  let rv: string;
  if (blank) rv = lines.join('\n' + indention);
  else {
    rv = lines.shift() ?? '';
    if (lines.length) rv += '\n' + lines.map((line) => (line ? indention + line : line)).join('\n');
  }
  return first ? indention + rv : rv;
}

function stringFilter(name: string, s: string, args: Value[], kwargs: Map<string, Value>): Value | undefined {
  switch (name) {
    case 'trim': return str(pyStrip(s, optionalString(args[0] ?? kwargs.get('chars'), 'trim'), 'both'));
    case 'upper': return str(s.toUpperCase());
    case 'lower': return str(s.toLowerCase());
    case 'capitalize': return str(pyCapitalize(s));
    case 'title': return str(jinjaTitle(s));
    case 'length': case 'count': return int(pyLen(s));
    case 'string': return str(s);
    case 'list': return list(codePoints(s).map(str));
    case 'first': { const c = codePoints(s)[0]; return c === undefined ? new UndefinedValue(undefined) : str(c); }
    case 'last': { const c = codePoints(s).at(-1); return c === undefined ? new UndefinedValue(undefined) : str(c); }
    case 'reverse': return str(codePoints(s).reverse().join(''));
    case 'wordcount': return int((s.match(/\w+/gu) ?? []).length);
    case 'indent':
      return str(jinjaIndent(s, args[0] ?? kwargs.get('width'), Boolean((args[1] ?? kwargs.get('first'))?.value), Boolean((args[2] ?? kwargs.get('blank'))?.value)));
    case 'replace': {
      if (!isStr(args[0]) || !isStr(args[1])) throw new Error('TypeError: replace() arguments must be str');
      return str(pyReplace(s, args[0]!.value as string, args[1]!.value as string, optionalInt(args[2] ?? kwargs.get('count')) ?? -1));
    }
    default: return undefined;
  }
}

// ---- Equality and tests --------------------------------------------------------------------------------

function pyEquals(a: Value, b: Value): boolean {
  const numeric = (v: Value) => v.type === 'IntegerValue' || v.type === 'FloatValue' || v.type === 'BooleanValue';
  if (numeric(a) && numeric(b)) return Number(a.value) === Number(b.value);
  if (isStr(a) && isStr(b)) return a.value === b.value;
  if (a.type === 'NullValue' || b.type === 'NullValue') return a.type === b.type;
  if (a.type === 'UndefinedValue' || b.type === 'UndefinedValue') return a.type === b.type;
  if (isList(a) && isList(b)) {
    const x = a.value as Value[];
    const y = b.value as Value[];
    return a.type === b.type && x.length === y.length && x.every((v, i) => pyEquals(v, y[i]!));
  }
  if (isMap(a) && isMap(b)) {
    const x = a.value as Map<string, Value>;
    const y = b.value as Map<string, Value>;
    return x.size === y.size && [...x].every(([k, v]) => y.has(k) && pyEquals(v, y.get(k)!));
  }
  return a === b;
}

function pyTests(env: Environment): Environment['tests'] {
  const tests = new Map(env.tests);
  tests.set('iterable', (v: Value) => isStr(v) || isList(v) || isMap(v));
  tests.set('number', (v: Value) => v.type === 'IntegerValue' || v.type === 'FloatValue' || v.type === 'BooleanValue');
  tests.set('lower', (v: Value) => isStr(v) && STR_METHODS.islower!(v.value as string, [], new Map()).value === true);
  tests.set('upper', (v: Value) => isStr(v) && STR_METHODS.isupper!(v.value as string, [], new Map()).value === true);
  tests.set('equalto', (a: Value, b: Value) => pyEquals(a, b));
  tests.set('eq', (a: Value, b: Value) => pyEquals(a, b));
  tests.set('ne', (a: Value, b: Value) => !pyEquals(a, b));
  tests.set('sameas', (a: Value, b: Value) => a === b || (['NullValue', 'BooleanValue'].includes(a.type) && a.type === b.type && a.value === b.value));
  return tests;
}

// ---- strftime_now, as datetime.now().strftime in the C locale -------------------------------------------

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

export function strftime(d: Date, format: string): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  const dayOfYear = Math.floor((Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) - Date.UTC(d.getFullYear(), 0, 1)) / 86_400_000) + 1;
  return format.replace(/%(-?)([aAbBdeHIjmMpSyYZz%])/g, (_, noPad: string, c: string) => {
    const pad = (n: number, w = 2) => (noPad ? String(n) : String(n).padStart(w, '0'));
    switch (c) {
      case 'a': return DAYS[d.getDay()]!.slice(0, 3);
      case 'A': return DAYS[d.getDay()]!;
      case 'b': return MONTHS[d.getMonth()]!.slice(0, 3);
      case 'B': return MONTHS[d.getMonth()]!;
      case 'd': return pad(d.getDate());
      case 'e': return String(d.getDate()).padStart(2, ' ');
      case 'H': return pad(d.getHours());
      case 'I': return pad(d.getHours() % 12 || 12);
      case 'j': return pad(dayOfYear, 3);
      case 'm': return pad(d.getMonth() + 1);
      case 'M': return pad(d.getMinutes());
      case 'p': return d.getHours() < 12 ? 'AM' : 'PM';
      case 'S': return pad(d.getSeconds());
      case 'y': return p2(d.getFullYear() % 100);
      case 'Y': return String(d.getFullYear());
      case 'z': case 'Z': return '';
      default: return '%';
    }
  });
}

// ---- The interpreter ----------------------------------------------------------------------------------

const SILENT_STATEMENTS = new Set(['Set', 'Macro', 'Comment']);

class PyInterpreter extends Interpreter {}

/** A node standing for a value already evaluated (see evaluateFor). */
const EVALUATED = 'TunekitEvaluated';

const overrides: Partial<Internals> & ThisType<Internals> = {
  evaluate(node, env) {
    if (node?.type === EVALUATED) return (node as unknown as { value: Value }).value;
    return base.evaluate.call(this, node, env);
  },

  // Loops over a string go over its characters (the library refuses strings).
  evaluateFor(node, env) {
    const n = node as unknown as { iterable: Node & { lhs?: Node } };
    const select = n.iterable.type === 'SelectExpression';
    const iterable = this.evaluate(select ? n.iterable.lhs : n.iterable, env);
    const evaluated = { type: EVALUATED, value: isStr(iterable) ? list(codePoints(iterable.value as string).map(str)) : iterable };
    const copy = select ? { ...node, iterable: { ...n.iterable, lhs: evaluated } } : { ...node, iterable: evaluated };
    return base.evaluateFor.call(this, copy, env);
  },

  // Printing: Jinja2 prints str(value) ({{ none }} is "None", {{ true }} is "True", lists as Python lists).
  evaluateBlock(statements, env) {
    let out = '';
    for (const statement of statements) {
      const v = this.evaluate(statement, env);
      if (SILENT_STATEMENTS.has(statement.type) && v.type === 'NullValue') continue;
      out += pyStr(v);
    }
    return str(out);
  },

  // Attributes and indexes of strings: Python's str methods only, indexes by code point.
  evaluateMemberExpression(expr, env) {
    const e = expr as unknown as { object: Node; property: Node; computed: boolean };
    const object = this.evaluate(e.object, env);
    if (!isStr(object)) {
      if (e.computed && e.property.type === 'SliceExpression') return this.evaluateSliceExpression(object, e.property, env);
      return memberOfNonString.call(this, object, e, env);
    }
    const s = object.value as string;
    if (e.computed && e.property.type === 'SliceExpression') return this.evaluateSliceExpression(object, e.property, env);
    const property = e.computed ? this.evaluate(e.property, env) : e.property.type === 'IntegerLiteral' ? int(Number((e.property as unknown as { value: number }).value)) : str((e.property as unknown as { value: string }).value);
    if (property.type === 'IntegerValue') {
      const c = charAt(s, property.value as number);
      return c === undefined ? new UndefinedValue(undefined) : str(c);
    }
    if (isStr(property)) {
      const method = STR_METHODS[property.value as string];
      if (method) {
        return fn((args) => {
          const [positional, kwargs] = splitKwargs(args);
          return method(s, positional, kwargs);
        });
      }
    }
    return new UndefinedValue(undefined);
  },

  applyFilter(operand, filter, env) {
    let name: string;
    let args: Value[] = [];
    let kwargs = new Map<string, Value>();
    if (filter.type === 'Identifier') name = (filter as unknown as { value: string }).value;
    else if (filter.type === 'CallExpression' && (filter as unknown as { callee: Node }).callee.type === 'Identifier') {
      const call = filter as unknown as { callee: { value: string }; args: Node[] };
      name = call.callee.value;
      if (name === 'tojson' || isStr(operand) || name === 'string' || name === 'select' || name === 'reject') {
        [args, kwargs] = this.evaluateArguments(call.args, env);
      }
    } else return base.applyFilter.call(this, operand, filter, env);

    if (name === 'tojson') return tojson(operand, args, kwargs);
    if (name === 'string') return str(pyStr(operand));
    if (isStr(operand)) {
      const out = stringFilter(name, operand.value as string, args, kwargs);
      if (out) return out;
    }
    if ((name === 'select' || name === 'reject') && (isList(operand) || isStr(operand))) {
      const items = isStr(operand) ? codePoints(operand.value as string).map(str) : (operand.value as Value[]);
      const [testName, ...testArgs] = args;
      const test = testName === undefined ? null : env.tests.get(String(testName.value));
      if (testName !== undefined && !test) throw new Error(`No test named '${String(testName.value)}'`);
      const keep = (v: Value) => (test ? test(v, ...testArgs) : Boolean(v.value) && !(isList(v) && (v.value as Value[]).length === 0));
      return list(items.filter((v) => keep(v) === (name === 'select')));
    }
    return base.applyFilter.call(this, operand, filter, env);
  },

  evaluateBinaryExpression(node, env) {
    const n = node as unknown as { operator: { value: string }; left: Node; right: Node };
    const op = n.operator.value;
    if (op === '~') return str(pyStr(this.evaluate(n.left, env)) + pyStr(this.evaluate(n.right, env)));
    if (op === '==' || op === '!=') {
      const eq = pyEquals(this.evaluate(n.left, env), this.evaluate(n.right, env));
      return bool(op === '==' ? eq : !eq);
    }
    return base.evaluateBinaryExpression.call(this, node, env);
  },
};

/** The library's member lookup for everything but strings, on an object already evaluated. */
function memberOfNonString(this: Internals, object: Value, e: { property: Node; computed: boolean }, env: Environment): Value {
  let property: Value;
  if (e.computed) property = this.evaluate(e.property, env);
  else if (e.property.type === 'IntegerLiteral') property = int(Number((e.property as unknown as { value: number }).value));
  else property = str((e.property as unknown as { value: string }).value);
  let value: Value | undefined;
  if (object.type === 'ObjectValue' || object.type === 'KeywordArgumentsValue' || object.type === 'NamespaceValue') {
    if (!isStr(property)) throw new Error(`Cannot access property with non-string: got ${property.type}`);
    const map = object.value as Map<string, Value>;
    value = map.get(property.value as string) ?? (object.type !== 'NamespaceValue' ? (object as unknown as { builtins: Map<string, Value> }).builtins.get(property.value as string) : undefined);
  } else if (isList(object)) {
    if (property.type === 'IntegerValue') value = (object.value as Value[]).at(property.value as number);
    else if (isStr(property)) value = (object as unknown as { builtins: Map<string, Value> }).builtins.get(property.value as string);
    else throw new Error(`Cannot access property with non-string/non-number: got ${property.type}`);
  } else if (isStr(property)) {
    value = (object as unknown as { builtins: Map<string, Value> }).builtins.get(property.value as string);
  }
  return value ?? new UndefinedValue(undefined);
}

Object.assign(PyInterpreter.prototype, overrides);

function range(args: Value[]): Value {
  const n = args.map((a) => Number(a.value));
  const [start, stop, step] = n.length === 1 ? [0, n[0]!, 1] : [n[0]!, n[1]!, n[2] ?? 1];
  if (step === 0) throw new Error('ValueError: range() arg 3 must not be zero');
  const out: Value[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(int(i));
  return list(out);
}

/** A parsed chat template; render() is Jinja2's render as transformers sets it up. */
export class ChatTemplate {
  private readonly program: Program;

  constructor(source: string) {
    if (missing.length > 0) {
      throw new Error(`@huggingface/jinja's Interpreter no longer has ${missing.join(', ')}: src/tokenizer/chat-template.ts needs updating for this version`);
    }
    this.program = parse(tokenize(source, { lstrip_blocks: true, trim_blocks: true }));
  }

  render(context: Record<string, unknown>): string {
    const env = new Environment();
    env.set('false', false);
    env.set('true', true);
    env.set('none', null);
    env.set('False', false);
    env.set('True', true);
    env.set('None', null);
    env.setVariable('raise_exception', fn((args) => {
      throw new Error(args.length ? pyStr(args[0]!) : 'raise_exception');
    }));
    env.setVariable('strftime_now', fn((args) => str(strftime(new Date(), String(args[0]?.value ?? '')))));
    env.setVariable('range', fn((args) => range(splitKwargs(args)[0])));
    for (const [key, value] of Object.entries(context)) {
      if (value !== undefined) env.set(key, value);
    }
    env.tests = pyTests(env);
    const out = new PyInterpreter(env).run(this.program);
    return out.value as string;
  }
}

