// An incremental JSON-with-schema recognizer over bytes. Its state is a set of threads (anyOf and
// "any" branch until a byte decides); each thread is an immutable stack of frames, so stepping a byte
// allocates a new state and never changes the old one — the token mask walks the vocabulary trie with
// one state per trie depth and no undo. A byte is accepted when some thread survives it.
// Whitespace: at most WS_MAX bytes between tokens of the JSON text, none before or after it (so a
// random-weight model cannot spend its budget on blanks). Numbers at most MAX_NUMBER bytes; "any"
// values nest at most MAX_DEPTH deep.
// minRest(state): the length of the shortest text that finishes the value — the budget rule of the
// constraint keeps it within the tokens left, so the JSON closes before maxOutputTokens when it can.

import { ANY, entryLength, minLength, utf8Length, type FormatTemplate, type SchemaNode } from './schema.js';

export const WS_MAX = 12;
export const MAX_NUMBER = 20;
export const MAX_DEPTH = 16;

type Frame =
  | { t: 'value'; s: SchemaNode; ws: number }
  | { t: 'lit'; texts: Uint8Array[]; pos: number; key: boolean }
  | { t: 'str'; fmt: FormatTemplate | undefined; pos: number; prev: number; esc: number; cont: number; lo: number; hi: number }
  | { t: 'num'; integer: boolean; st: number; len: number }
  | { t: 'obj'; s: Extract<SchemaNode, { kind: 'object' }>; seen: string[]; key: string | null; phase: 'first' | 'key' | 'colon' | 'value' | 'after' | 'comma'; ws: number }
  | { t: 'arr'; s: Extract<SchemaNode, { kind: 'array' }>; count: number; phase: 'first' | 'value' | 'after'; ws: number }
  /** Containers of a wrapped value (prefix, JSON, suffix): what comes once the child completes. */
  | { t: 'then-value'; s: SchemaNode; suffix: Uint8Array }
  | { t: 'then-suffix'; suffix: Uint8Array };

interface Stack {
  f: Frame;
  up: Stack | null;
  depth: number;
}

/** A thread: a stack, or null once the whole value is complete. */
export type Thread = Stack | null;
export type State = Thread[];

const MAX_THREADS = 64;
const enc = new TextEncoder();
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const isWs = (b: number) => b === 0x20 || b === 0x0a || b === 0x09; // no CR: nobody pretty-prints with it
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);

const ANY_OBJECT: SchemaNode = { kind: 'object', props: null, required: [] };
const ANY_ARRAY: SchemaNode = { kind: 'array', items: ANY, minItems: 0, maxItems: Infinity };
const STRING: SchemaNode = { kind: 'string' };
const NUMBER: SchemaNode = { kind: 'number', integer: false };
const BOOL: SchemaNode = { kind: 'boolean' };
const NULL: SchemaNode = { kind: 'null' };
const TRUE_FALSE = [enc.encode('true'), enc.encode('false')];
const NULL_TEXT = [enc.encode('null')];
const litCache = new WeakMap<object, Uint8Array[]>();
function litTexts(n: Extract<SchemaNode, { kind: 'literals' }>): Uint8Array[] {
  let t = litCache.get(n);
  if (!t) litCache.set(n, (t = n.texts.map((x) => enc.encode(x))));
  return t;
}

/** The start state for a JSON value of schema `s` (no leading whitespace). */
export function jsonStart(s: SchemaNode): State {
  return [{ f: { t: 'value', s, ws: WS_MAX }, up: null, depth: 0 }];
}

/** The start state for exactly one of `texts`, raw (text/x.enum). */
export function rawStart(texts: string[]): State {
  return [{ f: { t: 'lit', texts: texts.map((x) => enc.encode(x)), pos: 0, key: false }, up: null, depth: 0 }];
}

/** The start state for `prefix`, then a JSON value of schema `s`, then `suffix` (a tool call's markup). */
export function wrappedStart(prefix: string, s: SchemaNode, suffix: string): State {
  const sfx = enc.encode(suffix);
  if (prefix === '') return [{ f: { t: 'value', s, ws: WS_MAX }, up: sfx.length ? { f: { t: 'then-suffix', suffix: sfx }, up: null, depth: 0 } : null, depth: 0 }];
  return [{ f: { t: 'lit', texts: [enc.encode(prefix)], pos: 0, key: false }, up: { f: { t: 'then-value', s, suffix: sfx }, up: null, depth: 0 }, depth: 0 }];
}

/** The state after byte b, or null when no thread accepts it. */
export function step(state: State, b: number): State | null {
  const out: Thread[] = [];
  for (const th of state) {
    stepThread(th, b, out);
    if (out.length > MAX_THREADS) out.length = MAX_THREADS;
  }
  return out.length === 0 ? null : out;
}

/** The state after all of `bytes`, or null. */
export function stepAll(state: State, bytes: Uint8Array): State | null {
  let s: State | null = state;
  for (let i = 0; i < bytes.length && s; i++) s = step(s, bytes[i]!);
  return s;
}

/** Some thread has a complete value (the text may end here). */
export function accepting(state: State): boolean {
  for (const th of state) {
    if (th === null) return true;
    if (th.up === null && th.f.t === 'num' && numComplete(th.f.st)) return true;
  }
  return false;
}

/** Some thread can take more bytes. */
export function canContinue(state: State): boolean {
  return state.some((th) => th !== null);
}

/** Every live thread sits inside a string whose content is free (no format, no escape pending). */
export function inFreeString(state: State): boolean {
  for (const th of state) {
    if (th === null || th.f.t !== 'str' || th.f.fmt !== undefined || th.f.esc !== 0 || th.f.cont !== 0) return false;
  }
  return state.length > 0;
}

function push(out: Thread[], f: Frame, up: Stack | null, depth: number): void {
  out.push({ f, up, depth });
}

/** The parent after its child value completed (`keyText`: the JSON text of a key that just closed). */
function pop(up: Stack | null, keyText?: Uint8Array): Thread {
  if (up === null) return null;
  const f = up.f;
  if (f.t === 'obj') {
    if (f.phase === 'key') {
      const key = keyText ? (JSON.parse(new TextDecoder().decode(keyText)) as string) : null;
      return { f: { ...f, phase: 'colon', ws: 0, key, seen: key === null ? f.seen : [...f.seen, key] }, up: up.up, depth: up.depth };
    }
    return { f: { ...f, phase: 'after', ws: 0, key: null }, up: up.up, depth: up.depth };
  }
  if (f.t === 'arr') return { f: { ...f, phase: 'after', ws: 0, count: f.count + 1 }, up: up.up, depth: up.depth };
  if (f.t === 'then-value') {
    const rest: Stack | null = f.suffix.length ? { f: { t: 'then-suffix', suffix: f.suffix }, up: up.up, depth: up.depth } : up.up;
    return { f: { t: 'value', s: f.s, ws: WS_MAX }, up: rest, depth: up.depth };
  }
  if (f.t === 'then-suffix') return { f: { t: 'lit', texts: [f.suffix], pos: 0, key: false }, up: up.up, depth: up.depth };
  throw new Error(`internal: ${f.t} frame is not a container`);
}

function startValue(s: SchemaNode, up: Stack | null, depth: number, b: number, out: Thread[]): void {
  switch (s.kind) {
    case 'any':
      startValue(STRING, up, depth, b, out);
      startValue(NUMBER, up, depth, b, out);
      startValue(BOOL, up, depth, b, out);
      startValue(NULL, up, depth, b, out);
      if (depth < MAX_DEPTH) {
        startValue(ANY_OBJECT, up, depth, b, out);
        startValue(ANY_ARRAY, up, depth, b, out);
      }
      return;
    case 'string':
      if (b === QUOTE) push(out, { t: 'str', fmt: s.format, pos: 0, prev: 0, esc: 0, cont: 0, lo: 0, hi: 0 }, up, depth);
      return;
    case 'number':
      if (b === 0x2d) push(out, { t: 'num', integer: s.integer, st: 1, len: 1 }, up, depth);
      else if (b === 0x30) push(out, { t: 'num', integer: s.integer, st: 2, len: 1 }, up, depth);
      else if (isDigit(b)) push(out, { t: 'num', integer: s.integer, st: 3, len: 1 }, up, depth);
      return;
    case 'boolean':
      return startLit(TRUE_FALSE, false, up, depth, b, out);
    case 'null':
      return startLit(NULL_TEXT, false, up, depth, b, out);
    case 'literals':
      return startLit(litTexts(s), false, up, depth, b, out);
    case 'object':
      if (b === 0x7b) push(out, { t: 'obj', s, seen: [], key: null, phase: 'first', ws: 0 }, up, depth + 1);
      return;
    case 'array':
      if (b === 0x5b) push(out, { t: 'arr', s, count: 0, phase: 'first', ws: 0 }, up, depth + 1);
      return;
    case 'anyOf':
      for (const o of s.options) startValue(o, up, depth, b, out);
      return;
  }
}

function startLit(texts: Uint8Array[], key: boolean, up: Stack | null, depth: number, b: number, out: Thread[]): void {
  litStep(texts, 0, key, up, depth, b, out);
}

function litStep(texts: Uint8Array[], pos: number, key: boolean, up: Stack | null, depth: number, b: number, out: Thread[]): void {
  const next: Uint8Array[] = [];
  for (const t of texts) {
    if (t[pos] !== b) continue;
    if (t.length === pos + 1) out.push(pop(up, key ? t : undefined));
    else next.push(t);
  }
  if (next.length > 0) push(out, { t: 'lit', texts: next, pos: pos + 1, key }, up, depth);
}

function numComplete(st: number): boolean {
  return st === 2 || st === 3 || st === 5 || st === 8;
}

/** Number grammar: 1 '-', 2 '0', 3 int digits, 4 '.', 5 fraction, 6 'e', 7 exponent sign, 8 exponent digits. */
function numNext(st: number, integer: boolean, b: number): number {
  const d = isDigit(b);
  switch (st) {
    case 1: return b === 0x30 ? 2 : d ? 3 : 0;
    case 2: return integer ? 0 : b === 0x2e ? 4 : b === 0x65 || b === 0x45 ? 6 : 0;
    case 3: return d ? 3 : integer ? 0 : b === 0x2e ? 4 : b === 0x65 || b === 0x45 ? 6 : 0;
    case 4: return d ? 5 : 0;
    case 5: return d ? 5 : b === 0x65 || b === 0x45 ? 6 : 0;
    case 6: return d ? 8 : b === 0x2b || b === 0x2d ? 7 : 0;
    case 7: case 8: return d ? 8 : 0;
  }
  return 0;
}

function keyStart(th: Stack, f: Extract<Frame, { t: 'obj' }>, out: Thread[]): void {
  const parent: Stack = { f: { ...f, phase: 'key', ws: 0 }, up: th.up, depth: th.depth };
  if (f.s.props === null) {
    push(out, { t: 'str', fmt: undefined, pos: 0, prev: 0, esc: 0, cont: 0, lo: 0, hi: 0 }, parent, th.depth);
    return;
  }
  const texts: Uint8Array[] = [];
  for (const k of f.s.props.keys()) if (!f.seen.includes(k)) texts.push(enc.encode(JSON.stringify(k)));
  if (texts.length > 0) push(out, { t: 'lit', texts, pos: 1, key: true }, parent, th.depth);
}

function missingRequired(f: Extract<Frame, { t: 'obj' }>): string[] {
  return f.s.required.filter((r) => !f.seen.includes(r));
}

function canAddKey(f: Extract<Frame, { t: 'obj' }>): boolean {
  if (f.s.props === null) return true;
  for (const k of f.s.props.keys()) if (!f.seen.includes(k)) return true;
  return false;
}

function stepThread(th: Thread, b: number, out: Thread[]): void {
  if (th === null) return;
  const f = th.f;
  switch (f.t) {
    case 'value':
      if (isWs(b)) {
        if (f.ws < WS_MAX) push(out, { ...f, ws: f.ws + 1 }, th.up, th.depth);
        return;
      }
      return startValue(f.s, th.up, th.depth, b, out);
    case 'lit':
      return litStep(f.texts, f.pos, f.key, th.up, th.depth, b, out);
    case 'str':
      if (f.esc === 1) {
        if (b === 0x75) push(out, { ...f, esc: 2 }, th.up, th.depth);
        else if (b === QUOTE || b === BACKSLASH || b === 0x2f || b === 0x62 || b === 0x66 || b === 0x6e || b === 0x72 || b === 0x74) push(out, { ...f, esc: 0 }, th.up, th.depth);
        return;
      }
      if (f.esc >= 2) {
        if (isHex(b)) push(out, { ...f, esc: f.esc === 5 ? 0 : f.esc + 1 }, th.up, th.depth);
        return;
      }
      if (f.cont > 0 && (b < f.lo || b > f.hi)) return;
      if (b === QUOTE) {
        if (f.fmt === undefined || f.pos === f.fmt.length) out.push(pop(th.up));
        return;
      }
      if (b < 0x20) return;
      if (f.fmt !== undefined) {
        if (f.pos < f.fmt.length && f.fmt.allows(f.pos, f.prev, b)) push(out, { ...f, pos: f.pos + 1, prev: b }, th.up, th.depth);
        return;
      }
      if (f.cont > 0) {
        // Inside a UTF-8 sequence: only its continuation bytes (the text stays well-formed UTF-8).
        if (b >= f.lo && b <= f.hi) push(out, { ...f, cont: f.cont - 1, lo: 0x80, hi: 0xbf }, th.up, th.depth);
        return;
      }
      if (b === BACKSLASH) push(out, { ...f, esc: 1 }, th.up, th.depth);
      else if (b < 0x80) out.push(th); // free content: the same state
      else if (b >= 0xc2 && b <= 0xdf) push(out, { ...f, cont: 1, lo: 0x80, hi: 0xbf }, th.up, th.depth);
      else if (b >= 0xe0 && b <= 0xef) push(out, { ...f, cont: 2, lo: b === 0xe0 ? 0xa0 : 0x80, hi: b === 0xed ? 0x9f : 0xbf }, th.up, th.depth);
      else if (b >= 0xf0 && b <= 0xf4) push(out, { ...f, cont: 3, lo: b === 0xf0 ? 0x90 : 0x80, hi: b === 0xf4 ? 0x8f : 0xbf }, th.up, th.depth);
      return;
    case 'num': {
      const st = numNext(f.st, f.integer, b);
      if (st !== 0) {
        if (f.len < MAX_NUMBER) push(out, { ...f, st, len: f.len + 1 }, th.up, th.depth);
        return;
      }
      if (numComplete(f.st)) stepThread(pop(th.up), b, out);
      return;
    }
    case 'obj': {
      const wsOk = f.phase === 'first' || f.phase === 'colon' || f.phase === 'after' || f.phase === 'comma';
      if (isWs(b)) {
        if (wsOk && f.ws < WS_MAX) push(out, { ...f, ws: f.ws + 1 }, th.up, th.depth);
        return;
      }
      if (f.phase === 'first' || f.phase === 'comma') {
        if (b === QUOTE) keyStart(th, f, out);
        else if (b === 0x7d && f.phase === 'first' && missingRequired(f).length === 0) out.push(pop(th.up));
        return;
      }
      if (f.phase === 'colon') {
        if (b !== 0x3a) return;
        const s = f.key === null || f.s.props === null ? ANY : f.s.props.get(f.key)!;
        const parent: Stack = { f: { ...f, phase: 'value', ws: 0 }, up: th.up, depth: th.depth };
        push(out, { t: 'value', s, ws: 0 }, parent, th.depth);
        return;
      }
      if (f.phase === 'after') {
        if (b === 0x2c && canAddKey(f)) push(out, { ...f, phase: 'comma', ws: 0 }, th.up, th.depth);
        else if (b === 0x7d && missingRequired(f).length === 0) out.push(pop(th.up));
      }
      return;
    }
    case 'then-value': case 'then-suffix':
      return; // containers only, never on top
    case 'arr': {
      if (isWs(b)) {
        if (f.phase !== 'value' && f.ws < WS_MAX) push(out, { ...f, ws: f.ws + 1 }, th.up, th.depth);
        return;
      }
      if (f.phase === 'first') {
        if (b === 0x5d) {
          if (f.s.minItems === 0) out.push(pop(th.up));
          return;
        }
        if (f.s.maxItems > 0) startValue(f.s.items, { f: { ...f, phase: 'value', ws: 0 }, up: th.up, depth: th.depth }, th.depth, b, out);
        return;
      }
      if (f.phase === 'after') {
        if (b === 0x2c && f.count < f.s.maxItems) {
          push(out, { t: 'value', s: f.s.items, ws: 0 }, { f: { ...f, phase: 'value', ws: 0 }, up: th.up, depth: th.depth }, th.depth);
        } else if (b === 0x5d && f.count >= f.s.minItems) out.push(pop(th.up));
      }
      return;
    }
  }
}

/** The shortest number of bytes that completes the value, over all threads. */
export function minRest(state: State): number {
  let best = Infinity;
  for (const th of state) best = Math.min(best, threadRest(th));
  return best;
}

function threadRest(th: Thread): number {
  if (th === null) return 0;
  const f = th.f;
  if (f.t === 'lit' && f.key) {
    // The key chosen decides what follows: minimise over the keys still possible.
    let best = Infinity;
    const obj = th.up!;
    for (const t of f.texts) {
      const after = pop(obj, t);
      best = Math.min(best, t.length - f.pos + threadRest(after));
    }
    return best;
  }
  let n = topRest(f);
  // Then each ancestor finishes after its child.
  for (let up = th.up; up !== null; up = up.up) n += afterChild(up.f);
  return n;
}

/** Bytes to finish the top frame's own value. */
function topRest(f: Frame): number {
  switch (f.t) {
    case 'value': return minLength(f.s);
    case 'lit': return Math.min(...f.texts.map((t) => t.length - f.pos));
    case 'str': return f.cont + (f.esc === 1 ? 1 : f.esc >= 2 ? 6 - f.esc : 0) + (f.fmt ? f.fmt.length - f.pos : 0) + 1;
    case 'num': return numComplete(f.st) ? 0 : 1;
    case 'obj': return objRest(f);
    case 'arr': return arrRest(f);
    case 'then-value': return minLength(f.s) + f.suffix.length;
    case 'then-suffix': return f.suffix.length;
  }
}

/** Bytes to finish a container once the child on top of it is complete. */
function afterChild(f: Frame): number {
  if (f.t === 'obj') {
    if (f.phase === 'key') {
      // A free key (props null): ':' then any value (1 byte), then the object closes.
      return 1 + 1 + objRest({ ...f, phase: 'after' });
    }
    return objRest({ ...f, phase: 'after' });
  }
  if (f.t === 'arr') return arrRest({ ...f, phase: 'after', count: f.count + 1 });
  if (f.t === 'then-value') return minLength(f.s) + f.suffix.length;
  if (f.t === 'then-suffix') return f.suffix.length;
  return 0;
}

function objRest(f: Extract<Frame, { t: 'obj' }>): number {
  const props = f.s.props;
  const missing = missingRequired(f);
  const entries = missing.reduce((n, r) => n + entryLength(r, props!.get(r)!), 0);
  switch (f.phase) {
    case 'first':
      return entries + Math.max(0, missing.length - 1) + 1;
    case 'after':
      return entries + missing.length + 1;
    case 'comma': {
      if (missing.length > 0) return entries + (missing.length - 1) + 1;
      if (props === null) return 4 + 1; // "":0}
      let best = Infinity;
      for (const [k, v] of props) if (!f.seen.includes(k)) best = Math.min(best, entryLength(k, v));
      return best + 1;
    }
    case 'colon': {
      const s = f.key === null || props === null ? ANY : props.get(f.key)!;
      return 1 + minLength(s) + objRest({ ...f, phase: 'after' });
    }
    case 'key': case 'value':
      return objRest({ ...f, phase: 'after' });
  }
}

function arrRest(f: Extract<Frame, { t: 'arr' }>): number {
  const item = minLength(f.s.items);
  if (f.phase === 'first') return f.s.minItems === 0 ? 1 : f.s.minItems * item + (f.s.minItems - 1) + 1;
  const missing = Math.max(0, f.s.minItems - f.count);
  return missing * (1 + item) + 1;
}

export { utf8Length };
