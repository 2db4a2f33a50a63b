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
  /** Set while tracing a render for the memo (see TraceState); null otherwise. */
  trace?: TraceState | null;
}

const base = Interpreter.prototype as unknown as Internals;
const USED = ['evaluateArguments', 'applyFilter', 'evaluateBlock', 'evaluateMemberExpression', 'evaluateSliceExpression', 'evaluateBinaryExpression', 'evaluateFor', 'evaluate'] as const;
const missing: string[] = USED.filter((m) => typeof (base as unknown as Record<string, unknown>)[m] !== 'function');
if (!((jinja.Environment as unknown as { TESTS?: unknown }).TESTS instanceof Map)) missing.push('Environment.TESTS');

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

// ---- The render memo ----------------------------------------------------------------------------------
// The interpreter costs about the same for every render (it allocates a value per step), and datasets
// repeat a few layouts: the same roles, options and tools with other texts. So the first render of a
// layout (the context without the messages' texts) is traced: each message's text is a TaintValue, which
// the template may concatenate, print and strip (strip, lstrip, rstrip, trim); truthiness, `x in text`,
// startswith and endswith are answered from the real text and recorded as guards; any other use reads its
// value, which throws TraceAbort (as does strftime_now, whose output changes with the clock). The output
// is kept as literal text and references to the texts. A later render of that layout whose texts give
// every guard the same answer takes the same path through the template, so its output is the kept one
// with its own texts put in (stripped by the same functions); otherwise it is traced too (up to
// MAX_TRACES per layout, an aborted trace remembered by its guards) or rendered as before.

const RuntimeValue = Object.getPrototypeOf(StringValue) as ValueCtor;
/** A loop body whose output the trace keeps (see evaluateFor). */
const CAPTURE = 'TunekitCapture';
const MAX_TRACES = 16;
const MAX_LAYOUTS = 256;
const MAX_LAYOUT_KEY = 1 << 16;

class TraceAbort extends Error {}

/** A step from a string to a value: a str method or filter with its arguments bound. */
type Step = (s: string) => Value;
interface Guard { index: number; steps: Step[]; test: Step; result: unknown }
interface TraceState { contents: (string | undefined)[]; guards: Guard[] }
type Part = string | TaintValue;
/** A kept trace: its guards, and its output with each text as (message index, steps); null: it aborted. */
interface Trace { guards: Guard[]; parts: (string | { index: number; steps: Step[] })[] | null }

function poisoned(this: Value): never {
  throw new TraceAbort(`a message's text is used as a value (${this.type})`);
}
const isTraced = (v: Value | undefined): boolean => v instanceof TaintValue || v instanceof SymbolicValue;

const TRANSFORMS = new Set(['strip', 'lstrip', 'rstrip']);
const GUARD_METHODS = new Set(['startswith', 'endswith']);

/** Message `index`'s text after `steps`, standing for whatever text a later render has there. */
class TaintValue extends RuntimeValue {
  override type = 'TunekitTaint';

  constructor(readonly state: TraceState, readonly index: number, readonly steps: Step[]) {
    super(undefined);
    Object.defineProperty(this, 'value', { get: poisoned });
  }

  static text(contents: readonly (string | undefined)[], index: number, steps: readonly Step[]): string {
    let s = contents[index]!;
    for (const step of steps) s = step(s).value as string;
    return s;
  }

  then(step: Step, args: Value[]): TaintValue {
    if (args.some(isTraced)) throw new TraceAbort('a message\'s text as an argument');
    if (!isStr(step(TaintValue.text(this.state.contents, this.index, this.steps)))) throw new TraceAbort('not a string');
    return new TaintValue(this.state, this.index, [...this.steps, step]);
  }

  guard(test: Step, args: Value[]): Value {
    if (args.some(isTraced)) throw new TraceAbort('a message\'s text as an argument');
    const out = test(TaintValue.text(this.state.contents, this.index, this.steps));
    if (out.type !== 'BooleanValue') throw new TraceAbort('not a boolean');
    this.state.guards.push({ index: this.index, steps: this.steps, test, result: out.value });
    return out;
  }

  __bool__(): Value {
    return this.guard((s) => (str(s) as unknown as { __bool__(): Value }).__bool__(), []);
  }

  get builtins(): never {
    return poisoned.call(this);
  }

  override toString(): never {
    return poisoned.call(this);
  }

  /** text.method, for the methods the trace follows. */
  member(e: { property: Node; computed: boolean }): Value {
    const name = !e.computed && e.property.type === 'Identifier' ? (e.property as unknown as { value: string }).value : '';
    const method = STR_METHODS[name];
    if (!method || !(TRANSFORMS.has(name) || GUARD_METHODS.has(name))) throw new TraceAbort(`a message's text's ${name || 'member'}`);
    return fn((args) => {
      const [positional, kwargs] = splitKwargs(args);
      const step: Step = (s) => method(s, positional, kwargs);
      const all = [...positional, ...kwargs.values()];
      return TRANSFORMS.has(name) ? this.then(step, all) : this.guard(step, all);
    });
  }
}

/** Output that holds message texts: literal parts and TaintValues, in order. */
class SymbolicValue extends RuntimeValue {
  override type = 'TunekitSymbolic';

  constructor(readonly parts: Part[]) {
    super(undefined);
    Object.defineProperty(this, 'value', { get: poisoned });
  }

  __bool__(): never {
    return poisoned.call(this);
  }

  get builtins(): never {
    return poisoned.call(this);
  }

  override toString(): never {
    return poisoned.call(this);
  }
}

function pushParts(parts: Part[], v: Value): void {
  if (v instanceof SymbolicValue) parts.push(...v.parts);
  else if (v instanceof TaintValue) parts.push(v);
  else parts.push(pyStr(v));
}

function fromParts(parts: Part[]): Value {
  if (parts.every((p) => typeof p === 'string')) return str(parts.join(''));
  const merged: Part[] = [];
  for (const p of parts) {
    if (p === '') continue;
    const last = merged.length - 1;
    if (typeof p === 'string' && typeof merged[last] === 'string') merged[last] += p;
    else merged.push(p);
  }
  return new SymbolicValue(merged);
}

/** A binary operation with a message's text on a side: concatenation, or `in` as a guard. */
function tracedBinary(op: string, left: Value, right: Value): Value {
  if (op === '+' || op === '~') {
    const sides = [left, right];
    if (op === '+' && !sides.every((v) => isStr(v) || isTraced(v))) throw new TraceAbort(`+ on a message's text and ${sides.find((v) => !isStr(v) && !isTraced(v))!.type}`);
    const parts: Part[] = [];
    for (const v of sides) pushParts(parts, v);
    return fromParts(parts);
  }
  if ((op === 'in' || op === 'not in') && isStr(left) && right instanceof TaintValue) {
    const needle = left.value as string;
    const found = right.guard((s) => bool(s.includes(needle)), []);
    return op === 'in' ? found : bool(!found.value);
  }
  throw new TraceAbort(`${op} on a message's text`);
}

/** What the tests say of a message's text: a string, defined, not none; other tests end the trace. */
const TRACED_TESTS: Record<string, boolean> = { string: true, defined: true, undefined: false, none: false };

function tracedTests(tests: Environment['tests']): Environment['tests'] {
  const out = new Map<string, (...values: Value[]) => boolean>();
  for (const [name, test] of tests) {
    out.set(name, (...values: Value[]) => {
      if (!values.some(isTraced)) return test(...values);
      if (values.length === 1 && name in TRACED_TESTS) return TRACED_TESTS[name]!;
      throw new TraceAbort(`test ${name} on a message's text`);
    });
  }
  return out;
}

function isPlainJson(v: unknown): boolean {
  switch (typeof v) {
    case 'string': case 'boolean': return true;
    case 'number': return Number.isFinite(v) && !Object.is(v, -0);
    case 'object': {
      if (v === null) return true;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (!(i in v) || !isPlainJson(v[i])) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return false;
      return Object.values(v).every(isPlainJson);
    }
    default: return false;
  }
}

/** The layout of a render context (its key) and its messages' texts, or null when it is not memoized. */
function layoutOf(context: Record<string, unknown>): { key: string; contents: (string | undefined)[] } | null {
  const messages = context.messages;
  if (!Array.isArray(messages)) return null;
  const contents: (string | undefined)[] = new Array(messages.length).fill(undefined);
  const shapes = messages.map((m: unknown, i) => {
    if (!m || typeof m !== 'object' || typeof (m as Record<string, unknown>).content !== 'string') return m;
    const { content, ...rest } = m as Record<string, unknown>;
    contents[i] = content as string;
    return rest;
  });
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(context)) if (v !== undefined && k !== 'messages') rest[k] = v;
  if (!isPlainJson(rest) || !isPlainJson(shapes)) return null;
  const key = JSON.stringify([rest, shapes, contents.map((c) => c !== undefined)]);
  return key.length > MAX_LAYOUT_KEY ? null : { key, contents };
}

function holds(trace: Trace, contents: readonly (string | undefined)[]): boolean {
  return trace.guards.every((g) => g.test(TaintValue.text(contents, g.index, g.steps)).value === g.result);
}

function fill(parts: NonNullable<Trace['parts']>, contents: readonly (string | undefined)[]): string {
  let out = '';
  for (const p of parts) out += typeof p === 'string' ? p : TaintValue.text(contents, p.index, p.steps);
  return out;
}

// ---- The interpreter ----------------------------------------------------------------------------------

const SILENT_STATEMENTS = new Set(['Set', 'Macro', 'Comment']);

class PyInterpreter extends Interpreter {}

/** A node standing for a value already evaluated (see evaluateFor). */
const EVALUATED = 'TunekitEvaluated';

const overrides: Partial<Internals> & ThisType<Internals> = {
  evaluate(node, env) {
    if (node?.type === EVALUATED) return (node as unknown as { value: Value }).value;
    if (node?.type === CAPTURE) {
      // Tracing: a loop body's output, kept (text or symbolic) instead of the library's string concatenation.
      const c = node as unknown as { body: Node[]; parts: Part[] };
      pushParts(c.parts, this.evaluateBlock(c.body, env));
      return str('');
    }
    return base.evaluate.call(this, node, env);
  },

  // Loops over a string go over its characters (the library refuses strings).
  evaluateFor(node, env) {
    const n = node as unknown as { iterable: Node & { lhs?: Node }; body: Node[]; defaultBlock: Node[] };
    const select = n.iterable.type === 'SelectExpression';
    const iterable = this.evaluate(select ? n.iterable.lhs : n.iterable, env);
    const evaluated = { type: EVALUATED, value: isStr(iterable) ? list(codePoints(iterable.value as string).map(str)) : iterable };
    const copy = select ? { ...node, iterable: { ...n.iterable, lhs: evaluated } } : { ...node, iterable: evaluated };
    if (!this.trace) return base.evaluateFor.call(this, copy, env);
    // Tracing: the library appends each iteration's output as a string; capture it instead.
    const parts: Part[] = [];
    const traced = { ...copy, body: [{ type: CAPTURE, body: n.body, parts }], defaultBlock: [{ type: CAPTURE, body: n.defaultBlock, parts }] };
    base.evaluateFor.call(this, traced, env);
    return fromParts(parts);
  },

  // Printing: Jinja2 prints str(value) ({{ none }} is "None", {{ true }} is "True", lists as Python lists).
  evaluateBlock(statements, env) {
    if (this.trace) {
      const parts: Part[] = [];
      for (const statement of statements) {
        const v = this.evaluate(statement, env);
        if (SILENT_STATEMENTS.has(statement.type) && v.type === 'NullValue') continue;
        pushParts(parts, v);
      }
      return fromParts(parts);
    }
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
    if (object instanceof TaintValue) return object.member(e);
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

    if (this.trace && (operand instanceof TaintValue || operand instanceof SymbolicValue)) {
      if (name === 'safe') return operand;
      if (name === 'trim' && operand instanceof TaintValue) return operand.then((s) => stringFilter('trim', s, args, kwargs)!, [...args, ...kwargs.values()]);
      throw new TraceAbort(`filter ${name} on a message's text`);
    }
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
    let n = node as unknown as { operator: { value: string }; left: Node; right: Node };
    const op = n.operator.value;
    if (this.trace && op !== 'and' && op !== 'or') {
      // Tracing: both sides once; a message's text only meets concatenation and `in` (a guard).
      const left = this.evaluate(n.left, env);
      const right = this.evaluate(n.right, env);
      if (left instanceof TaintValue || left instanceof SymbolicValue || right instanceof TaintValue || right instanceof SymbolicValue) {
        return tracedBinary(op, left, right);
      }
      n = { ...n, left: { type: EVALUATED, value: left } as Node, right: { type: EVALUATED, value: right } as Node };
      node = n as unknown as Node;
    }
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
  private readonly memo = new Map<string, Trace[]>();

  constructor(source: string) {
    if (missing.length > 0) {
      throw new Error(`@huggingface/jinja no longer has ${missing.join(', ')}: src/tokenizer/chat-template.ts needs updating for this version`);
    }
    this.program = parse(tokenize(source, { lstrip_blocks: true, trim_blocks: true }));
  }

  /** Rendered output; memoized per layout (see the render memo above), with the same result. */
  render(context: Record<string, unknown>): string {
    const layout = layoutOf(context);
    if (!layout) return this.run(context, null).value as string;
    let traces = this.memo.get(layout.key);
    for (const t of traces ?? []) {
      if (holds(t, layout.contents)) return t.parts ? fill(t.parts, layout.contents) : (this.run(context, null).value as string);
    }
    if (!traces) {
      if (this.memo.size >= MAX_LAYOUTS) this.memo.clear();
      this.memo.set(layout.key, (traces = []));
    }
    if (traces.length >= MAX_TRACES) return this.run(context, null).value as string;
    const state: TraceState = { contents: layout.contents, guards: [] };
    let parts: Trace['parts'];
    try {
      const out = this.run(context, state);
      // Kept without the TaintValues (they hold this render's texts).
      parts = out instanceof SymbolicValue ? out.parts.map((p) => (typeof p === 'string' ? p : { index: p.index, steps: p.steps })) : [out.value as string];
    } catch {
      parts = null; // TraceAbort, or an error the plain render below raises again
    }
    traces.push({ guards: state.guards, parts });
    return parts ? fill(parts, layout.contents) : (this.run(context, null).value as string);
  }

  /** One run of the interpreter; with a trace state, the messages' texts are TaintValues. */
  private run(context: Record<string, unknown>, trace: TraceState | null): Value {
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
    env.setVariable('strftime_now', fn((args) => {
      if (trace) throw new TraceAbort('strftime_now');
      return str(strftime(new Date(), String(args[0]?.value ?? '')));
    }));
    env.setVariable('range', fn((args) => range(splitKwargs(args)[0])));
    for (const [key, value] of Object.entries(context)) {
      if (value === undefined) continue;
      const v = env.set(key, value);
      if (trace && key === 'messages') {
        (v.value as Value[]).forEach((m, i) => {
          if (trace.contents[i] !== undefined) (m.value as Map<string, Value>).set('content', new TaintValue(trace, i, []));
        });
      }
    }
    env.tests = pyTests(env);
    const interpreter = new PyInterpreter(env) as unknown as Internals & InterpreterInstance;
    if (trace) {
      interpreter.trace = trace;
      env.tests = tracedTests(env.tests);
    }
    // Every scope the run creates (a for loop's, a macro's) takes its tests from Environment.TESTS, not
    // from env: the run, which is synchronous, swaps Python's (and, while tracing, the traced) ones in.
    const statics = Environment as unknown as { TESTS: Environment['tests'] };
    const saved = statics.TESTS;
    statics.TESTS = env.tests;
    try {
      return interpreter.run(this.program);
    } finally {
      statics.TESTS = saved;
    }
  }
}
