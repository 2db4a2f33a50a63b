// Fast exact token counts for BPE tokenizers, for validation and statistics over large files, without
// the tokenizer library: tokenizer.json's vocabulary and merges are compiled once into flat typed
// arrays (CounterTables, in SharedArrayBuffers, so every worker thread of a process reads one copy),
// and a text's count is computed by our own BPE over its pieces. BPE never merges across a piece
// boundary, so the count of a text is the sum of its pieces' counts; pieces repeat a lot, so each
// distinct piece is counted once and remembered.
// Pipelines mirrored (anything else: buildCounterTables returns null and callers encode with the
// tokenizer itself), exactly as @huggingface/tokenizers runs them:
// - Added tokens (no lstrip/rstrip/single_word; not normalized when there is a normalizer) are cut out
//   first, leftmost-longest (the library's trie), each counting 1.
// - Byte-level (Llama 3, Qwen3, GPT-2 style): optional NFC normalizer (applied to each section between
//   added tokens, then split, as the library does); pre-tokenizer Split(Regex, Isolated) then
//   ByteLevel(use_regex false, add_prefix_space false); each piece's UTF-8 bytes mapped to the byte
//   alphabet are merged. The regex is rewritten to syntax Node 20 compiles: `(?i:...)` becomes a plain
//   group whose ASCII letters match both cases ([sS]), which is what the library does too (ASCII
//   folding only). Constructs the library rewrites in other ways (`.`, `^`, `$`, nested classes,
//   possessive quantifiers, ...) are refused.
// - SentencePiece-style (Gemma 3): normalizer Replace(' ' -> '▁') and a pre-tokenizer that then has
//   nothing to split (Split on ' '), so the library merges a whole section as one word, code point
//   symbols, byte fallback for characters outside the vocabulary. Here the normalized section is cut
//   before each '▁' that follows a character c with no merge result containing c + '▁' (so no token
//   can span the cut and merging the parts separately gives the same tokens).
// - BPE without dropout, every merge's parts and result in the vocabulary, ignore_merges honoured, and
//   no input that could produce an unknown token (byte-level alphabet complete, or byte fallback with
//   all 256 <0xXX> tokens).
// - Merge order: lowest merge rank first, leftmost first among equal ranks (the library's priority
//   queue with its position bias).
// test/data-piece-counter.test.ts checks counts against tokenizer.encode on a multilingual corpus and
// adversarial text for the tiny tokenizers and the published Gemma 3, Qwen3 and Llama 3.1 ones.

import fs from 'node:fs';
import path from 'node:path';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

type Json = Record<string, unknown>;
// Pieces remembered per counter, in a table of our own (a Map of strings cost about 3x as much per lookup,
// and a slice per piece): up to PIECES distinct pieces and ARENA_LIMIT UTF-16 units of their text (about
// 30 MB at most); when either is full the table starts over.
const PIECE_SLOTS = 1 << 20;
const PIECES = PIECE_SLOTS >> 1;
const ARENA_LIMIT = 1 << 23;
const SELF_CHECK = "It's 12345 o'clock;  they'LL   go!\n\n\tTabs\r\n  café naïve 東京 データ 🙂🙂 ответ ... x+y=z  \n end  ";

/** Everything a PieceCounter needs; structured-clone friendly (its arrays share their buffers across threads). */
export interface CounterTables {
  kind: 'byte-level' | 'chars';
  normalizer: 'none' | 'nfc' | 'metaspace';
  /** JavaScript regex source of the byte-level Split pattern (rewritten), else null. */
  pattern: string | null;
  /** chars mode: the characters after which a cut before '▁' is not safe. */
  noCutAfter: string;
  added: string[];
  ignoreMerges: boolean;
  byteFallback: boolean;
  /** Vocabulary strings, concatenated UTF-16 units; symbol s spans chars[starts[s], starts[s + 1]). */
  chars: Uint16Array;
  starts: Int32Array;
  /** Open addressing, string hash -> symbol + 1 (0: empty). */
  strTable: Int32Array;
  /** Open addressing by (a, b): 4 ints per slot: a + 1 (0: empty), b, rank, result symbol. */
  mergeTable: Int32Array;
}

function shared<T extends Int32Array | Uint16Array>(Ctor: { new (b: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number }, n: number): T {
  return new Ctor(new SharedArrayBuffer(Math.max(1, n) * Ctor.BYTES_PER_ELEMENT));
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function hashPair(a: number, b: number): number {
  return (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca6b)) >>> 0;
}

function tableSize(n: number): number {
  let size = 1024;
  while (size < n * 2) size *= 2;
  return size;
}

// GPT-2's byte -> character alphabet (the library's BYTES_TO_UNICODE).
const BYTE_CHARS: string[] = (() => {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCharCode(cs[i]!)));
  return out;
})();

const BYTE_CODES = Uint16Array.from(BYTE_CHARS, (c) => c.charCodeAt(0));

const ESCAPE = /[.*+?^${}()|[\]\\]/g;

/**
 * A tokenizer regex (Rust/Oniguruma syntax) as a JavaScript regex source with the same matches as the
 * library's compiled pattern, or null for syntax this does not rewrite. `(?i:X)` becomes `(?:X')` where
 * each ASCII letter of X matches both cases; inside such a group, character classes must hold no ASCII
 * letters.
 */
export function rewriteSplitRegex(source: string): string | null {
  let out = '';
  const groups: boolean[] = []; // per open group: was it case-insensitive
  let fold = false;
  let lastQuantifier = false;
  let i = 0;
  const n = source.length;
  // An escape at `at`: its JavaScript form; `used` is set to the source characters it spans.
  let used = 0;
  const escape = (at: number): string | null => {
    const c = source[at + 1];
    used = 2;
    if (c === undefined) return null;
    if (c === 'p' || c === 'P') {
      const m = /^\{[A-Za-z_=]+\}/.exec(source.slice(at + 2));
      used = 2 + (m ? m[0].length : 0);
      return m ? `\\${c}${m[0]}` : null;
    }
    // The library's rewrites: \s is Unicode White_Space (JavaScript's \s adds U+FEFF and lacks U+0085).
    if (c === 's') return '\\p{White_Space}';
    if (c === 'S') return '\\P{White_Space}';
    if (c === 'd') return '\\p{Nd}';
    if (c === 'D') return '\\P{Nd}';
    if ('rntfv'.includes(c)) return `\\${c}`;
    if (/[A-Za-z0-9]/.test(c)) return null;
    return `\\${c}`;
  };
  while (i < n) {
    const c = source[i]!;
    if (c === '\\') {
      const e = escape(i);
      if (e === null) return null;
      out += e;
      i += used;
      lastQuantifier = false;
      continue;
    }
    if (c === '[') {
      let j = i + 1;
      let cls = '[';
      if (source[j] === '^') {
        cls += '^';
        j++;
      }
      for (; j < n && source[j] !== ']'; ) {
        const d = source[j]!;
        if (d === '[' || (d === '&' && source[j + 1] === '&')) return null;
        if (d === '\\') {
          const e = escape(j);
          if (e === null) return null;
          cls += e;
          j += used;
          continue;
        }
        if (fold && /[A-Za-z]/.test(d)) return null;
        cls += d;
        j += d.length;
      }
      if (source[j] !== ']') return null;
      out += cls + ']';
      i = j + 1;
      lastQuantifier = false;
      continue;
    }
    if (c === '(') {
      const rest = source.slice(i);
      let prefix: string;
      if (rest.startsWith('(?i:')) prefix = '(?i:';
      else if (/^\(\?[:=!]/.test(rest)) prefix = rest.slice(0, 3);
      else if (/^\(\?<[=!]/.test(rest)) prefix = rest.slice(0, 4);
      else if (rest.startsWith('(?')) return null; // named groups, atomic groups, other flags
      else prefix = '(';
      groups.push(fold);
      if (prefix === '(?i:') fold = true;
      out += prefix === '(?i:' ? '(?:' : prefix;
      i += prefix.length;
      lastQuantifier = false;
      continue;
    }
    if (c === ')') {
      if (groups.length === 0) return null;
      fold = groups.pop()!;
      out += c;
      i++;
      lastQuantifier = false;
      continue;
    }
    if (c === '*' || c === '+' || c === '{') {
      if (lastQuantifier) return null; // possessive or stacked quantifiers: the library rewrites them
      if (c === '{') {
        const m = /^\{\d+(,\d*)?\}/.exec(source.slice(i));
        if (!m) return null;
        out += m[0];
        i += m[0].length;
      } else {
        out += c;
        i++;
      }
      lastQuantifier = true;
      continue;
    }
    if (c === '?') {
      out += c;
      i++;
      lastQuantifier = !lastQuantifier; // `X??` is lazy; a third would be stacked
      continue;
    }
    if (c === '|') {
      out += c;
      i++;
      lastQuantifier = false;
      continue;
    }
    if (c === '.' || c === '^' || c === '$' || c === ']' || c === '}') return null;
    const cp = String.fromCodePoint(source.codePointAt(i)!);
    out += fold && /[A-Za-z]/.test(cp) ? `[${cp.toLowerCase()}${cp.toUpperCase()}]` : cp.replace(ESCAPE, '\\$&');
    i += cp.length;
    lastQuantifier = false;
  }
  if (groups.length) return null;
  try {
    new RegExp(out, 'gu');
  } catch {
    return null;
  }
  return out;
}

// The Split pattern of Llama 3 (digits {1,3}) and Qwen3 (single digits), GPT-4's, as this file rewrites
// it: PieceCounter cuts text by it with a hand-written scanner (splitEnd), which gives the same matches
// as the regex (tested against the library's compiled pattern) at a fraction of its cost.
const GPT4_SPLIT = (digits: string): string =>
  `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}${digits}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const SCANNED: [string | null, number][] = [[rewriteSplitRegex(GPT4_SPLIT('{1,3}')), 3], [rewriteSplitRegex(GPT4_SPLIT('')), 1]];

// Code point classes for the scanner: letters (\p{L}), numbers (\p{N}), White_Space other than \r \n,
// \r and \n, and everything else (lone surrogates included).
const OTHER = 0;
const LETTER = 1;
const NUMBER = 2;
const SPACE = 3;
const NEWLINE = 4;
let bmpClasses: Uint8Array | null = null;
const astralClasses = new Map<number, number>();

function classOf(ch: string): number {
  if (ch === '\r' || ch === '\n') return NEWLINE;
  if (/\p{L}/u.test(ch)) return LETTER;
  if (/\p{N}/u.test(ch)) return NUMBER;
  return /\p{White_Space}/u.test(ch) ? SPACE : OTHER;
}

function bmpClassTable(): Uint8Array {
  if (bmpClasses) return bmpClasses;
  const table = new Uint8Array(65536);
  for (let c = 0; c < 65536; c++) if (c < 0xd800 || c > 0xdfff) table[c] = classOf(String.fromCharCode(c));
  return (bmpClasses = table);
}

function astralClass(cp: number): number {
  let k = astralClasses.get(cp);
  if (k === undefined) astralClasses.set(cp, (k = classOf(String.fromCodePoint(cp))));
  return k;
}

function readJsonFile(file: string): Json | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
  } catch {
    return null;
  }
}

/**
 * Compiles a parsed tokenizer.json (and tokenizer_config.json, whose remove_space and lowercasing flags
 * the library honours) into CounterTables, or null when its pipeline is not one this mirrors exactly.
 */
export function buildCounterTables(tj: Json, config: Json = {}): CounterTables | null {
  if (config.remove_space === true || config.do_lowercase_and_remove_accent === true) return null;
  const model = tj.model as Json | undefined;
  if (!model || model.type !== 'BPE' || (model.dropout !== null && model.dropout !== undefined)) return null;
  if (model.end_of_word_suffix || model.continuing_subword_prefix || model.continuing_subword_suffix) return null;
  const vocab = model.vocab as Record<string, number> | undefined;
  const merges = model.merges as (string | [string, string])[] | undefined;
  if (!vocab || typeof vocab !== 'object' || !Array.isArray(merges)) return null;

  const norm = tj.normalizer as Json | null | undefined;
  const pre = tj.pre_tokenizer as Json | null | undefined;
  let kind: CounterTables['kind'];
  let normalizer: CounterTables['normalizer'];
  let pattern: string | null = null;
  if (norm && norm.type === 'Replace' && (norm.pattern as Json | undefined)?.String === ' ' && norm.content === '\u2581') {
    // SentencePiece-style: the pre-tokenizer may only split on ' ', which no longer occurs.
    normalizer = 'metaspace';
    kind = 'chars';
    if (pre) {
      const p = pre.type === 'Sequence' && Array.isArray(pre.pretokenizers) && pre.pretokenizers.length === 1 ? (pre.pretokenizers[0] as Json) : pre;
      if (p.type !== 'Split' || (p.pattern as Json | undefined)?.String !== ' ' || p.invert === true) return null;
    }
    if (model.byte_fallback !== true || model.ignore_merges === true) return null; // the library checks whole sections
  } else {
    if (norm === null || norm === undefined) normalizer = 'none';
    else if (norm.type === 'NFC') normalizer = 'nfc';
    else return null;
    kind = 'byte-level';
    if (!pre || pre.type !== 'Sequence' || !Array.isArray(pre.pretokenizers) || pre.pretokenizers.length !== 2) return null;
    const [split, byteLevel] = pre.pretokenizers as Json[];
    const regex = (split!.pattern as Json | undefined)?.Regex;
    if (split!.type !== 'Split' || typeof regex !== 'string' || split!.behavior !== 'Isolated' || split!.invert === true) return null;
    if (byteLevel!.type !== 'ByteLevel' || byteLevel!.use_regex !== false || byteLevel!.add_prefix_space === true) return null;
    pattern = rewriteSplitRegex(regex);
    if (pattern === null) return null;
  }

  const added: string[] = [];
  for (const t of (tj.added_tokens as Json[] | undefined) ?? []) {
    if (t.lstrip || t.rstrip || t.single_word || typeof t.content !== 'string' || t.content === '') return null;
    const normalized = (t.normalized as boolean | undefined) ?? t.special !== true;
    if (normalized && normalizer !== 'none') return null;
    added.push(t.content);
  }

  // Symbols: the vocabulary strings, numbered here (ids do not matter, only counts).
  const symbols = Object.keys(vocab);
  const index = new Map<string, number>();
  let totalChars = 0;
  symbols.forEach((s, k) => {
    index.set(s, k);
    totalChars += s.length;
  });
  const chars = shared(Uint16Array, totalChars);
  const starts = shared(Int32Array, symbols.length + 1);
  let at = 0;
  symbols.forEach((s, k) => {
    starts[k] = at;
    for (let i = 0; i < s.length; i++) chars[at++] = s.charCodeAt(i);
  });
  starts[symbols.length] = at;
  const strSize = tableSize(symbols.length);
  const strTable = shared(Int32Array, strSize);
  symbols.forEach((s, k) => {
    let h = hashString(s) & (strSize - 1);
    while (strTable[h] !== 0) h = (h + 1) & (strSize - 1);
    strTable[h] = k + 1;
  });

  if (kind === 'byte-level') {
    for (const c of BYTE_CHARS) if (!index.has(c)) return null;
  } else {
    for (let b = 0; b < 256; b++) if (!index.has(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)) return null;
  }

  const mSize = tableSize(merges.length);
  const mergeTable = shared(Int32Array, mSize * 4);
  const noCut = new Set<string>();
  for (let rank = 0; rank < merges.length; rank++) {
    const m = merges[rank]!;
    let a: string;
    let b: string;
    if (Array.isArray(m)) [a, b] = m;
    else {
      const sp = m.indexOf(' ');
      if (sp < 0) return null;
      a = m.slice(0, sp);
      b = m.slice(sp + 1).split(' ')[0]!;
    }
    const ia = index.get(a);
    const ib = index.get(b);
    const ir = index.get(a + b);
    if (ia === undefined || ib === undefined || ir === undefined) return null;
    let h = hashPair(ia, ib) & (mSize - 1);
    for (;;) {
      const slot = h * 4;
      if (mergeTable[slot] === 0) {
        mergeTable[slot] = ia + 1;
        mergeTable[slot + 1] = ib;
        mergeTable[slot + 2] = rank;
        mergeTable[slot + 3] = ir;
        break;
      }
      if (mergeTable[slot] === ia + 1 && mergeTable[slot + 1] === ib) break; // a repeated merge keeps its first rank
      h = (h + 1) & (mSize - 1);
    }
    if (kind === 'chars') {
      const s = a + b;
      for (let i = s.indexOf('\u2581', 1); i > 0; i = s.indexOf('\u2581', i + 1)) if (s[i - 1] !== '\u2581') noCut.add(s[i - 1]!);
    }
  }
  return {
    kind, normalizer, pattern, noCutAfter: [...noCut].join(''), added, ignoreMerges: model.ignore_merges === true,
    byteFallback: model.byte_fallback === true, chars, starts, strTable, mergeTable,
  };
}

/** CounterTables for the tokenizer directory `dir`, or null (unreadable, or a pipeline not mirrored). */
export function counterTablesFor(dir: string): CounterTables | null {
  const tj = readJsonFile(path.join(dir, 'tokenizer.json'));
  if (!tj) return null;
  return buildCounterTables(tj, readJsonFile(path.join(dir, 'tokenizer_config.json')) ?? {});
}

export class PieceCounter {
  /** Open addressing: 2 ints per slot, the piece's hash and its entry + 1 (0: empty). */
  private readonly slots = new Int32Array(PIECE_SLOTS * 2);
  /** Per entry: its text's start in the arena, its length, its token count. */
  private readonly entryAt = new Int32Array(PIECES);
  private readonly entryLength = new Int32Array(PIECES);
  private readonly entryCount = new Int32Array(PIECES);
  private entries = 0;
  private arena = new Uint16Array(1 << 16);
  private arenaUsed = 0;
  /** chars mode: symbol of each BMP character (-1 none), -2 until looked up. */
  private readonly charSym = new Int32Array(65536).fill(-2);
  /** Trie of the added tokens by UTF-16 unit: node -> (unit -> node); whether a token ends at a node. */
  private readonly trie: Map<number, number>[] = [new Map()];
  private readonly trieEnd: boolean[] = [false];
  private readonly addedFirst: RegExp | null;
  private readonly pieces: RegExp | null;
  /** Digits per number piece when the Split pattern is GPT-4's (scanned by splitEnd), else 0. */
  private readonly scanDigits: number;
  private readonly classes: Uint8Array;
  /** Width in UTF-16 units of the code point classified last (classAt). */
  private width = 1;
  private readonly noCut: Set<number>;
  private readonly strMask: number;
  private readonly mergeMask: number;
  private readonly byteSym: Int32Array = new Int32Array(256);
  // Scratch space for one piece's merge (grown on demand).
  private sym = new Int32Array(64);
  private next = new Int32Array(64);
  private prev = new Int32Array(64);
  private extra = new Int32Array(64);
  // At most n - 1 initial candidates and 2 per merge: 3n entries.
  private heapKey = new Float64Array(256);
  private heapNode = new Int32Array(256);
  private heapL = new Int32Array(256);
  private heapR = new Int32Array(256);
  private heapS = new Int32Array(256);
  private size = 0;
  /** A piece's UTF-8 bytes (byte-level mode). */
  private utf8 = new Uint8Array(256);

  constructor(private readonly t: CounterTables) {
    for (const a of t.added) {
      let node = 0;
      for (let i = 0; i < a.length; i++) {
        let next = this.trie[node]!.get(a.charCodeAt(i));
        if (next === undefined) {
          next = this.trie.length;
          this.trie.push(new Map());
          this.trieEnd.push(false);
          this.trie[node]!.set(a.charCodeAt(i), next);
        }
        node = next;
      }
      this.trieEnd[node] = true;
    }
    const firsts = [...this.trie[0]!.keys()].map((k) => String.fromCharCode(k));
    // Lone surrogates cannot sit in a 'u' class; match the first units without it.
    this.addedFirst = firsts.length ? new RegExp(`[${firsts.map((f) => `\\u${f.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}]`, 'g') : null;
    this.scanDigits = t.pattern === null ? 0 : SCANNED.find(([pattern]) => pattern === t.pattern)?.[1] ?? 0;
    this.pieces = t.pattern === null || this.scanDigits > 0 ? null : new RegExp(t.pattern, 'gu');
    this.classes = this.scanDigits > 0 ? bmpClassTable() : new Uint8Array(0);
    this.noCut = new Set([...t.noCutAfter].map((c) => c.charCodeAt(0)));
    this.strMask = t.strTable.length - 1;
    this.mergeMask = t.mergeTable.length / 4 - 1;
    if (t.kind === 'byte-level') for (let b = 0; b < 256; b++) this.byteSym[b] = this.lookup(BYTE_CHARS[b]!);
  }

  /** A counter for the tokenizer in `dir`, or null when its pipeline is not one this mirrors exactly. */
  static forTokenizer(dir: string, tokenizer: Tokenizer): PieceCounter | null {
    const tables = counterTablesFor(dir);
    if (!tables) return null;
    const counter = new PieceCounter(tables);
    // A last guard: a probe text that exercises the pipeline must count the same both ways.
    const probe = SELF_CHECK + tables.added.slice(0, 300).join(' x ');
    return counter.count(probe) === tokenizer.encode(probe, { addSpecialTokens: false }).length ? counter : null;
  }

  /** Equals tokenizer.encode(text, { addSpecialTokens: false }).length. */
  count(text: string): number {
    const first = this.addedFirst;
    if (!first) return this.countSection(text);
    let n = 0;
    let at = 0;
    first.lastIndex = 0;
    for (let m = first.exec(text); m; m = first.exec(text)) {
      const i = m.index;
      // The longest added token at i (the library's leftmost-longest trie match).
      let len = 0;
      for (let j = i, node = 0; j < text.length; j++) {
        const next = this.trie[node]!.get(text.charCodeAt(j));
        if (next === undefined) break;
        node = next;
        if (this.trieEnd[node]) len = j + 1 - i;
      }
      if (len === 0) continue;
      if (i > at) n += this.countSection(text.slice(at, i));
      n++;
      at = i + len;
      first.lastIndex = at;
    }
    if (at < text.length) n += this.countSection(at === 0 ? text : text.slice(at));
    return n;
  }

  private countSection(section: string): number {
    if (this.t.normalizer === 'nfc') section = section.normalize('NFC');
    else if (this.t.normalizer === 'metaspace') section = section.replaceAll(' ', '\u2581');
    if (section === '') return 0;
    let n = 0;
    if (this.scanDigits > 0) {
      for (let at = 0; at < section.length; ) {
        const end = this.splitEnd(section, at);
        n += this.piece(section, at, end);
        at = end;
      }
      return n;
    }
    if (this.pieces) {
      const re = this.pieces;
      let at = 0;
      re.lastIndex = 0;
      for (let m = re.exec(section); m; m = re.exec(section)) {
        const p = m[0];
        if (p === '') {
          re.lastIndex += (section.codePointAt(re.lastIndex) ?? 0) > 0xffff ? 2 : 1;
          continue;
        }
        if (m.index > at) n += this.piece(section, at, m.index);
        n += this.piece(section, m.index, m.index + p.length);
        at = m.index + p.length;
      }
      if (at < section.length) n += this.piece(section, at, section.length);
      return n;
    }
    // chars mode: cut before each '▁' that follows a character no merge joins to '▁'.
    let start = 0;
    for (let i = section.indexOf('\u2581', 1); i > 0; i = section.indexOf('\u2581', i + 1)) {
      const c = section.charCodeAt(i - 1);
      if (c === 0x2581 || this.noCut.has(c)) continue;
      n += this.piece(section, start, i);
      start = i;
    }
    n += this.piece(section, start, section.length);
    return n;
  }

  /** Class of the code point at i (i < s.length); sets this.width. */
  private classAt(s: string, i: number): number {
    const c = s.charCodeAt(i);
    this.width = 1;
    if (c < 0xd800 || c > 0xdfff) return this.classes[c]!;
    const d = s.charCodeAt(i + 1);
    if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) return OTHER;
    this.width = 2;
    return astralClass(0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00));
  }

  /** End of the code point run of class k from i. */
  private runEnd(s: string, i: number, k: number): number {
    while (i < s.length && this.classAt(s, i) === k) i += this.width;
    return i;
  }

  /**
   * End of the GPT-4 Split pattern's match at i (every position starts one), its alternatives in order:
   * (?i:'s|'t|'re|'ve|'m|'ll|'d) (ASCII case folding), [^\r\n\p{L}\p{N}]?\p{L}+, \p{N}{1,digits},
   * ' '?[^\s\p{L}\p{N}]+[\r\n]*, \s*[\r\n]+ (up to the run's last \r or \n), \s+(?!\S) (the run
   * but its last character unless it ends the text), \s+.
   */
  private splitEnd(s: string, i: number): number {
    const n = s.length;
    const c = s.charCodeAt(i);
    if (c === 0x27 && i + 1 < n) {
      const lower = (k: number): number => (k >= 0x41 && k <= 0x5a ? k + 0x20 : k);
      const d = lower(s.charCodeAt(i + 1));
      if (d === 0x73 || d === 0x74 || d === 0x6d || d === 0x64) return i + 2; // 's 't 'm 'd
      const e = i + 2 < n ? lower(s.charCodeAt(i + 2)) : -1;
      if ((d === 0x72 && e === 0x65) || (d === 0x76 && e === 0x65) || (d === 0x6c && e === 0x6c)) return i + 3; // 're 've 'll
    }
    const k0 = this.classAt(s, i);
    const w0 = this.width;
    if (k0 === LETTER) return this.runEnd(s, i + w0, LETTER);
    if ((k0 === OTHER || k0 === SPACE) && i + w0 < n && this.classAt(s, i + w0) === LETTER) return this.runEnd(s, i + w0 + this.width, LETTER);
    if (k0 === NUMBER) {
      let end = i + w0;
      for (let k = 1; k < this.scanDigits && end < n && this.classAt(s, end) === NUMBER; k++) end += this.width;
      return end;
    }
    const j = c === 0x20 && i + 1 < n && this.classAt(s, i + 1) === OTHER ? i + 1 : i;
    if (j > i || k0 === OTHER) {
      let end = this.runEnd(s, j, OTHER);
      while (end < n && (s.charCodeAt(end) === 0x0d || s.charCodeAt(end) === 0x0a)) end++;
      return end;
    }
    // White space (all of it in the BMP: one unit per character).
    let end = i;
    let lastNewline = -1;
    for (; end < n; end++) {
      const k = this.classAt(s, end);
      if (k === NEWLINE) lastNewline = end;
      else if (k !== SPACE) break;
    }
    if (lastNewline >= 0) return lastNewline + 1;
    return end === n || end - i === 1 ? end : end - 1;
  }

  /** Tokens of the piece s[start, end): remembered, or merged once (bpe) and remembered. */
  private piece(s: string, start: number, end: number): number {
    const length = end - start;
    let h = 0x811c9dc5 | 0;
    for (let i = start; i < end; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    const slots = this.slots;
    const mask = PIECE_SLOTS * 2 - 1;
    let slot = (h << 1) & mask;
    for (;; slot = (slot + 2) & mask) {
      const e = slots[slot + 1]!;
      if (e === 0) break;
      if (slots[slot] !== h || this.entryLength[e - 1] !== length) continue;
      const at = this.entryAt[e - 1]!;
      const arena = this.arena;
      let i = 0;
      while (i < length && arena[at + i] === s.charCodeAt(start + i)) i++;
      if (i === length) return this.entryCount[e - 1]!;
    }
    const count = this.bpe(start === 0 && end === s.length ? s : s.slice(start, end));
    if (this.entries === PIECES || this.arenaUsed + length > ARENA_LIMIT) {
      // Full: start over (the slot found above is empty in an empty table too).
      slots.fill(0);
      this.entries = 0;
      this.arenaUsed = 0;
      if (length > ARENA_LIMIT) return count;
    }
    if (this.arenaUsed + length > this.arena.length) {
      let size = this.arena.length;
      while (size < this.arenaUsed + length) size *= 2;
      const grown = new Uint16Array(Math.min(size, ARENA_LIMIT));
      grown.set(this.arena.subarray(0, this.arenaUsed));
      this.arena = grown;
    }
    const e = this.entries++;
    const at = this.arenaUsed;
    for (let i = 0; i < length; i++) this.arena[at + i] = s.charCodeAt(start + i);
    this.arenaUsed += length;
    this.entryAt[e] = at;
    this.entryLength[e] = length;
    this.entryCount[e] = count;
    slots[slot] = h;
    slots[slot + 1] = e + 1;
    return count;
  }

  /** Symbol of a vocabulary string, or -1. */
  private lookup(s: string): number {
    const { strTable, starts, chars } = this.t;
    for (let h = hashString(s) & this.strMask; ; h = (h + 1) & this.strMask) {
      const e = strTable[h]!;
      if (e === 0) return -1;
      const k = e - 1;
      const a = starts[k]!;
      if (starts[k + 1]! - a !== s.length) continue;
      let same = true;
      for (let i = 0; i < s.length; i++) {
        if (chars[a + i] !== s.charCodeAt(i)) {
          same = false;
          break;
        }
      }
      if (same) return k;
    }
  }

  /** lookup() of bytes[0..m) mapped to the byte alphabet, without building the string. */
  private lookupBytes(bytes: Uint8Array, m: number): number {
    const { strTable, starts, chars } = this.t;
    let h = 0x811c9dc5;
    for (let i = 0; i < m; i++) h = Math.imul(h ^ BYTE_CODES[bytes[i]!]!, 0x01000193);
    for (h = (h >>> 0) & this.strMask; ; h = (h + 1) & this.strMask) {
      const e = strTable[h]!;
      if (e === 0) return -1;
      const k = e - 1;
      const a = starts[k]!;
      if (starts[k + 1]! - a !== m) continue;
      let i = 0;
      while (i < m && chars[a + i] === BYTE_CODES[bytes[i]!]) i++;
      if (i === m) return k;
    }
  }

  private mergeOf(a: number, b: number): number {
    const mt = this.t.mergeTable;
    for (let h = hashPair(a, b) & this.mergeMask; ; h = (h + 1) & this.mergeMask) {
      const slot = h * 4;
      const e = mt[slot]!;
      if (e === 0) return -1;
      if (e === a + 1 && mt[slot + 1] === b) return slot;
    }
  }

  private grow(n: number): void {
    if (this.sym.length >= n) return;
    let size = this.sym.length;
    while (size < n) size *= 2;
    this.sym = new Int32Array(size);
    this.next = new Int32Array(size);
    this.prev = new Int32Array(size);
    this.extra = new Int32Array(size);
    this.heapKey = new Float64Array(size * 4);
    this.heapNode = new Int32Array(size * 4);
    this.heapL = new Int32Array(size * 4);
    this.heapR = new Int32Array(size * 4);
    this.heapS = new Int32Array(size * 4);
  }

  /** Tokens of one piece (already normalized): its symbols merged by rank, leftmost first. */
  private bpe(p: string): number {
    const t = this.t;
    let n = 0;
    if (t.kind === 'byte-level') {
      let ascii = true;
      for (let i = 0; i < p.length; i++) {
        if (p.charCodeAt(i) >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii && !t.ignoreMerges) {
        this.grow(p.length);
        for (let i = 0; i < p.length; i++) this.sym[n++] = this.byteSym[p.charCodeAt(i)]!;
        return this.merge(n);
      }
      // UTF-8 as TextEncoder writes it (a lone surrogate as U+FFFD).
      if (this.utf8.length < p.length * 3) this.utf8 = new Uint8Array(p.length * 3);
      const bytes = this.utf8;
      let m = 0;
      for (let i = 0; i < p.length; i++) {
        let c = p.charCodeAt(i);
        if (c < 0x80) bytes[m++] = c;
        else if (c < 0x800) {
          bytes[m++] = 0xc0 | (c >> 6);
          bytes[m++] = 0x80 | (c & 63);
        } else {
          const d = p.charCodeAt(i + 1);
          if (c >= 0xd800 && c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
            const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
            bytes[m++] = 0xf0 | (cp >> 18);
            bytes[m++] = 0x80 | ((cp >> 12) & 63);
            bytes[m++] = 0x80 | ((cp >> 6) & 63);
            bytes[m++] = 0x80 | (cp & 63);
            i++;
            continue;
          }
          if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
          bytes[m++] = 0xe0 | (c >> 12);
          bytes[m++] = 0x80 | ((c >> 6) & 63);
          bytes[m++] = 0x80 | (c & 63);
        }
      }
      if (t.ignoreMerges && this.lookupBytes(bytes, m) >= 0) return 1;
      this.grow(m);
      for (let i = 0; i < m; i++) this.sym[n++] = this.byteSym[bytes[i]!]!;
    } else {
      if (t.ignoreMerges && this.lookup(p) >= 0) return 1;
      this.grow(p.length);
      for (let i = 0; i < p.length; ) {
        const cp = p.codePointAt(i)!;
        const w = cp > 0xffff ? 2 : 1;
        let k: number;
        if (w === 1) {
          k = this.charSym[cp]!;
          if (k === -2) k = this.charSym[cp] = this.lookup(p[i]!);
        } else k = this.lookup(p.substr(i, 2));
        this.sym[n] = k;
        // Bytes the character falls back to when it is not in the vocabulary.
        this.extra[n] = k >= 0 ? 1 : cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        n++;
        i += w;
      }
    }
    return this.merge(n);
  }

  /** Merges sym[0..n) by rank, leftmost first; the tokens they end as. */
  private merge(n: number): number {
    const t = this.t;
    if (n === 0) return 0;
    if (n === 1) return t.kind === 'chars' ? this.extra[0]! : 1;
    const { sym, next, prev } = this;
    const mt = t.mergeTable;
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    // Binary min-heap of candidate merges keyed by rank * 2^32 + left position (unique per pair: a rank
    // is one merge), each with the pair and its merge-table slot; stale entries are skipped. The
    // initial candidates are heapified at once.
    this.size = 0;
    for (let i = 0; i + 1 < n; i++) this.candidate(i, false);
    for (let i = (this.size >> 1) - 1; i >= 0; i--) this.siftDown(i);
    const { heapKey, heapNode, heapL, heapR, heapS } = this;
    let alive = n;
    while (this.size > 0) {
      const left = heapNode[0]!;
      const la = heapL[0]!;
      const rb = heapR[0]!;
      const slot = heapS[0]!;
      const last = --this.size;
      if (last > 0) {
        heapKey[0] = heapKey[last]!;
        heapNode[0] = heapNode[last]!;
        heapL[0] = heapL[last]!;
        heapR[0] = heapR[last]!;
        heapS[0] = heapS[last]!;
        this.siftDown(0);
      }
      if (sym[left] !== la) continue; // merged since (a dead right node keeps no entry of its own: see below)
      const right = next[left]!;
      if (right < 0 || sym[right] !== rb) continue;
      sym[left] = mt[slot + 3]!;
      this.extra[left] = 1;
      sym[right] = -2; // dead
      next[left] = next[right]!;
      if (next[left]! >= 0) prev[next[left]!] = left;
      alive--;
      if (prev[left]! >= 0) this.candidate(prev[left]!, true);
      this.candidate(left, true);
    }
    if (t.kind === 'byte-level') return alive;
    let count = 0;
    for (let i = 0; i >= 0; i = next[i]!) count += sym[i]! >= 0 ? 1 : this.extra[i]!;
    return count;
  }

  /** Adds the pair starting at node `left` to the heap when it has a merge (sifted up, or left for heapify). */
  private candidate(left: number, sift: boolean): void {
    const right = this.next[left]!;
    if (right < 0) return;
    const a = this.sym[left]!;
    const b = this.sym[right]!;
    if (a < 0 || b < 0) return;
    const slot = this.mergeOf(a, b);
    if (slot < 0) return;
    const key = this.t.mergeTable[slot + 2]! * 4294967296 + left;
    const { heapKey, heapNode, heapL, heapR, heapS } = this;
    let i = this.size++;
    if (sift) {
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (heapKey[parent]! <= key) break;
        heapKey[i] = heapKey[parent]!;
        heapNode[i] = heapNode[parent]!;
        heapL[i] = heapL[parent]!;
        heapR[i] = heapR[parent]!;
        heapS[i] = heapS[parent]!;
        i = parent;
      }
    }
    heapKey[i] = key;
    heapNode[i] = left;
    heapL[i] = a;
    heapR[i] = b;
    heapS[i] = slot;
  }

  private siftDown(at: number): void {
    const { heapKey, heapNode, heapL, heapR, heapS, size } = this;
    const key = heapKey[at]!;
    const node = heapNode[at]!;
    const l = heapL[at]!;
    const r = heapR[at]!;
    const s = heapS[at]!;
    let i = at;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= size) break;
      if (c + 1 < size && heapKey[c + 1]! < heapKey[c]!) c++;
      if (heapKey[c]! >= key) break;
      heapKey[i] = heapKey[c]!;
      heapNode[i] = heapNode[c]!;
      heapL[i] = heapL[c]!;
      heapR[i] = heapR[c]!;
      heapS[i] = heapS[c]!;
      i = c;
    }
    heapKey[i] = key;
    heapNode[i] = node;
    heapL[i] = l;
    heapR[i] = r;
    heapS[i] = s;
  }
}
