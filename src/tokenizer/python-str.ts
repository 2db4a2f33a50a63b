// Python's str semantics, for chat templates: transformers renders them with Jinja2, where a template's
// `content.strip('\n')` is Python's str.strip and `x | tojson` is json.dumps. JavaScript differs where it
// matters for training data: trim() strips U+FEFF but not U+0085 or U+001C..U+001F, lengths and indexes
// count UTF-16 units instead of code points, JSON.stringify prints 1.5e-7 where Python prints 1.5e-07.
// Everything here works on code points.

/** Python's str.isspace() code points (Unicode White_Space plus the bidi-class B/S/WS separators). */
const PY_WHITESPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680,
  0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

/** Line boundaries of str.splitlines(). */
const PY_LINE_BREAKS = new Set([0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029]);

export function isPySpace(ch: string): boolean {
  return PY_WHITESPACE.has(ch.codePointAt(0)!);
}

export function codePoints(s: string): string[] {
  return Array.from(s);
}

/** Length in code points (Python's len). */
export function pyLen(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff || i + 1 >= s.length) n++;
    else {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
      n++;
    }
  }
  return n;
}

/** str.strip / lstrip / rstrip: chars null or undefined means whitespace; '' strips nothing. */
export function pyStrip(s: string, chars: string | null | undefined, side: 'both' | 'left' | 'right'): string {
  let a = 0;
  let b = s.length;
  if (chars === null || chars === undefined) {
    // Python's whitespace is all in the BMP: UTF-16 units are code points here.
    if (side !== 'right') while (a < b && PY_WHITESPACE.has(s.charCodeAt(a))) a++;
    if (side !== 'left') while (b > a && PY_WHITESPACE.has(s.charCodeAt(b - 1))) b--;
    return a === 0 && b === s.length ? s : s.slice(a, b);
  }
  const set = new Set(codePoints(chars));
  if (side !== 'right') {
    while (a < b) {
      const c = String.fromCodePoint(s.codePointAt(a)!);
      if (!set.has(c)) break;
      a += c.length;
    }
  }
  if (side !== 'left') {
    while (b > a) {
      let start = b - 1;
      const low = s.charCodeAt(start);
      if (low >= 0xdc00 && low <= 0xdfff && start > a) {
        const high = s.charCodeAt(start - 1);
        if (high >= 0xd800 && high <= 0xdbff) start--;
      }
      if (!set.has(s.slice(start, b))) break;
      b = start;
    }
  }
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** str.split(sep=None, maxsplit=-1). */
export function pySplit(s: string, sep: string | null, maxsplit = -1): string[] {
  if (sep !== null) {
    if (sep === '') throw new Error('ValueError: empty separator');
    const parts = s.split(sep);
    if (maxsplit < 0 || parts.length <= maxsplit + 1) return parts;
    return [...parts.slice(0, maxsplit), parts.slice(maxsplit).join(sep)];
  }
  const cps = codePoints(s);
  const out: string[] = [];
  let i = 0;
  while (i < cps.length) {
    while (i < cps.length && isPySpace(cps[i]!)) i++;
    if (i >= cps.length) break;
    if (maxsplit >= 0 && out.length === maxsplit) {
      // the rest, with its trailing whitespace kept (Python strips only the leading run)
      out.push(cps.slice(i).join(''));
      return out;
    }
    let j = i;
    while (j < cps.length && !isPySpace(cps[j]!)) j++;
    out.push(cps.slice(i, j).join(''));
    i = j;
  }
  return out;
}

/** str.rsplit(sep=None, maxsplit=-1). */
export function pyRsplit(s: string, sep: string | null, maxsplit = -1): string[] {
  if (maxsplit < 0) return pySplit(s, sep, -1);
  if (sep !== null) {
    if (sep === '') throw new Error('ValueError: empty separator');
    const parts = s.split(sep);
    if (parts.length <= maxsplit + 1) return parts;
    const keep = parts.length - maxsplit;
    return [parts.slice(0, keep).join(sep), ...parts.slice(keep)];
  }
  const cps = codePoints(s);
  const out: string[] = [];
  let i = cps.length;
  while (i > 0) {
    while (i > 0 && isPySpace(cps[i - 1]!)) i--;
    if (i === 0) break;
    if (out.length === maxsplit) {
      out.unshift(cps.slice(0, i).join(''));
      return out;
    }
    let j = i;
    while (j > 0 && !isPySpace(cps[j - 1]!)) j--;
    out.unshift(cps.slice(j, i).join(''));
    i = j;
  }
  return out;
}

/** str.splitlines(keepends=False). */
export function pySplitlines(s: string, keepends = false): string[] {
  const cps = codePoints(s);
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!.codePointAt(0)!;
    if (!PY_LINE_BREAKS.has(c)) continue;
    let end = i + 1;
    if (c === 0x0d && cps[i + 1] === '\n') end++;
    out.push(cps.slice(start, keepends ? end : i).join(''));
    start = end;
    i = end - 1;
  }
  if (start < cps.length) out.push(cps.slice(start).join(''));
  return out;
}

// Title case differs from upper case for a few characters (digraphs and ligatures).
const TITLE_CASE: Record<string, string> = {
  '\u01c4': '\u01c5', '\u01c5': '\u01c5', '\u01c6': '\u01c5', '\u01c7': '\u01c8', '\u01c8': '\u01c8', '\u01c9': '\u01c8',
  '\u01ca': '\u01cb', '\u01cb': '\u01cb', '\u01cc': '\u01cb', '\u01f1': '\u01f2', '\u01f2': '\u01f2', '\u01f3': '\u01f2',
  '\u00df': 'Ss', '\ufb00': 'Ff', '\ufb01': 'Fi', '\ufb02': 'Fl', '\ufb03': 'Ffi', '\ufb04': 'Ffl', '\ufb05': 'St', '\ufb06': 'St',
  '\u0587': '\u0535\u0582', '\ufb13': '\u0544\u0576', '\ufb14': '\u0544\u0565', '\ufb15': '\u0544\u056b', '\ufb16': '\u054e\u0576', '\ufb17': '\u0544\u056d',
};

function titleChar(c: string): string {
  return TITLE_CASE[c] ?? c.toUpperCase();
}

const CASED = /\p{Cased}/u;
const CASE_IGNORABLE = /\p{Case_Ignorable}/u;

/**
 * Lower case of cps[i] in context: a capital sigma is final (ς) when a cased letter precedes it and none
 * follows it (case-ignorable characters skipped), as Python's str.lower/title/capitalize decide.
 */
function lowerAt(cps: string[], i: number): string {
  const c = cps[i]!;
  if (c !== '\u03a3') return c.toLowerCase();
  let j = i - 1;
  while (j >= 0 && CASE_IGNORABLE.test(cps[j]!)) j--;
  const after = () => {
    let k = i + 1;
    while (k < cps.length && CASE_IGNORABLE.test(cps[k]!)) k++;
    return k < cps.length && CASED.test(cps[k]!);
  };
  return j >= 0 && CASED.test(cps[j]!) && !after() ? '\u03c2' : '\u03c3';
}

/** str.title(): a cased character after an uncased one is title-cased, the others lower-cased. */
export function pyTitle(s: string): string {
  const cps = codePoints(s);
  let out = '';
  let previousCased = false;
  for (let i = 0; i < cps.length; i++) {
    out += previousCased ? lowerAt(cps, i) : titleChar(cps[i]!);
    previousCased = CASED.test(cps[i]!);
  }
  return out;
}

/** str.capitalize(): the first character title-cased, the rest lower-cased. */
export function pyCapitalize(s: string): string {
  const cps = codePoints(s);
  if (cps.length === 0) return s;
  let out = titleChar(cps[0]!);
  for (let i = 1; i < cps.length; i++) out += lowerAt(cps, i);
  return out;
}

/** str.swapcase(). */
export function pySwapcase(s: string): string {
  let out = '';
  for (const c of s) {
    const lower = c.toLowerCase();
    out += lower !== c ? lower : c.toUpperCase();
  }
  return out;
}

/** Jinja2's `title` filter (not str.title): words start after '-', whitespace, '(', '{', '[' or '<'. */
export function jinjaTitle(s: string): string {
  const isBoundary = (c: string) => isPySpace(c) || '-({[<'.includes(c);
  const cps = codePoints(s);
  let out = '';
  let i = 0;
  while (i < cps.length) {
    let j = i;
    const boundary = isBoundary(cps[i]!);
    while (j < cps.length && isBoundary(cps[j]!) === boundary) j++;
    const item = cps.slice(i, j);
    out += item[0]!.toUpperCase() + item.slice(1).join('').toLowerCase();
    i = j;
  }
  return out;
}

/** str.replace(old, new, count=-1), with Python's rule for an empty `old` (insert between code points). */
export function pyReplace(s: string, old: string, replacement: string, count = -1): string {
  if (count === 0) return s;
  if (old === '') {
    const cps = codePoints(s);
    const limit = count < 0 ? cps.length + 1 : Math.min(count, cps.length + 1);
    let out = '';
    for (let i = 0; i < cps.length; i++) out += (i < limit ? replacement : '') + cps[i];
    return out + (cps.length < limit ? replacement : '');
  }
  if (count < 0) return s.split(old).join(replacement);
  const parts = s.split(old);
  if (parts.length - 1 <= count) return parts.join(replacement);
  return parts.slice(0, count + 1).join(replacement) + old + parts.slice(count + 1).join(old);
}

/** Python slice bounds (start/end may be negative or null) over a length. */
function bounds(n: number, start: number | null | undefined, end: number | null | undefined): [number, number] {
  const norm = (v: number | null | undefined, dflt: number) => (v === null || v === undefined ? dflt : v < 0 ? Math.max(0, n + v) : Math.min(v, n));
  return [norm(start, 0), norm(end, n)];
}

/** str.find / rfind (code point indexes; -1 when absent). */
export function pyFind(s: string, sub: string, start?: number | null, end?: number | null, reverse = false): number {
  const cps = codePoints(s);
  const [a, b] = bounds(cps.length, start, end);
  if (a > b) return -1;
  const hay = cps.slice(a, b).join('');
  const at = reverse ? hay.lastIndexOf(sub) : hay.indexOf(sub);
  return at < 0 ? -1 : a + pyLen(hay.slice(0, at));
}

/** str.count(sub) (non-overlapping). */
export function pyCount(s: string, sub: string, start?: number | null, end?: number | null): number {
  const cps = codePoints(s);
  const [a, b] = bounds(cps.length, start, end);
  if (a > b) return 0;
  const hay = cps.slice(a, b).join('');
  if (sub === '') return pyLen(hay) + 1;
  return hay.split(sub).length - 1;
}

/** str.startswith / endswith with optional start and end. */
export function pyAffix(s: string, affixes: string[], start: number | null | undefined, end: number | null | undefined, suffix: boolean): boolean {
  let hay = s;
  if ((start !== null && start !== undefined) || (end !== null && end !== undefined)) {
    const cps = codePoints(s);
    const [a, b] = bounds(cps.length, start, end);
    if (a > cps.length) return false;
    hay = a > b ? '' : cps.slice(a, b).join('');
    if (a > b) return false;
  }
  return affixes.some((x) => (suffix ? hay.endsWith(x) : hay.startsWith(x)));
}

const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

/** repr(str): Python's quoting and escapes. */
export function pyReprString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const c of s) {
    const cp = c.codePointAt(0)!;
    if (c === quote || c === '\\') out += '\\' + c;
    else if (c === '\t') out += '\\t';
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (cp < 0x20 || cp === 0x7f) out += '\\x' + cp.toString(16).padStart(2, '0');
    else if (cp < 0x7f || c === ' ' || !NON_PRINTABLE.test(c)) out += c;
    else if (cp < 0x100) out += '\\x' + cp.toString(16).padStart(2, '0');
    else if (cp < 0x10000) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += '\\U' + cp.toString(16).padStart(8, '0');
  }
  return out + quote;
}

/** repr(float): the shortest round-trip digits, scientific below 1e-4 and from 1e16. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, expText] = Math.abs(x).toExponential().split('e') as [string, string];
  const exp = Number(expText);
  const digits = mantissa.replace('.', '');
  const sign = x < 0 ? '-' : '';
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp >= 0) {
    const whole = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
    return `${sign}${whole}.${digits.slice(exp + 1) || '0'}`;
  }
  return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
}

/** Python code point order (JavaScript's < compares UTF-16 units, which differs above U+FFFF). */
export function comparePyStrings(a: string, b: string): number {
  const x = codePoints(a);
  const y = codePoints(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** json.dumps' string encoding (ensure_ascii escapes everything outside ' '..'~', astral as surrogate pairs). */
export function jsonString(s: string, ensureAscii: boolean): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    const u = s.charCodeAt(i);
    if (c === '"') out += '\\"';
    else if (c === '\\') out += '\\\\';
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\t') out += '\\t';
    else if (c === '\b') out += '\\b';
    else if (c === '\f') out += '\\f';
    else if (u < 0x20 || (ensureAscii && u > 0x7e)) out += '\\u' + u.toString(16).padStart(4, '0');
    else out += c;
  }
  return out + '"';
}
