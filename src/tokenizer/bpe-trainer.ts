// Deterministic byte-level BPE trainer for the project's tiny test tokenizers (tiny-tokenizers.ts).
// Rules it keeps:
// - Text is split by the family's pre-tokenizer regex, then every piece is mapped byte by byte through
//   the GPT-2 byte-to-unicode table, exactly as the HF ByteLevel pre-tokenizer does at encode time.
// - The first 256 tokens are the byte symbols in ascending code-point order of their mapped character
//   (the GPT-2 / Llama 3 / Qwen layout); merged tokens follow in the order they were learned.
// - Each step merges the most frequent adjacent pair (occurrences weighted by word count); ties go to
//   the pair with the smaller left id, then the smaller right id. Same corpus + options, same output.
// - Within a word, occurrences are merged left to right without overlap, as BPE encoding applies them.

/**
 * Pre-tokenizer regexes exactly as llama.cpp spells them for its pre-tokenizer names (llama-vocab.cpp).
 * They are the HF originals with `(?i:'s|'t|...)` rewritten to explicit ASCII case classes, so HF
 * tokenizers and llama.cpp split identically. Both compile as JavaScript regexes with the `u` flag.
 */
export const SPLIT_REGEX = {
  /** Llama 3 ("llama-bpe" in llama.cpp): numbers in runs of up to three digits. */
  'llama-bpe':
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  /** Qwen2 / Qwen3 ("qwen2" in llama.cpp): every digit is its own piece. */
  qwen2:
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
} as const;

export type PreTokenizerName = keyof typeof SPLIT_REGEX;

let byteTable: string[] | null = null;

/**
 * GPT-2's reversible byte -> printable character map: printable Latin-1 bytes map to themselves, the
 * other 68 bytes to U+0100 onwards in byte order. Index is the byte value.
 */
export function bytesToUnicode(): readonly string[] {
  if (byteTable) return byteTable;
  const table = new Array<string>(256);
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable(b) ? b : next++);
  byteTable = table;
  return table;
}

/** The byte-level form of a piece of text: its UTF-8 bytes, each as its mapped character. */
export function toByteLevel(text: string): string {
  const table = bytesToUnicode();
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) out += table[b];
  return out;
}

/** Splits text into pre-tokens with a split regex; pieces between matches are kept ("Isolated"). */
export function preTokenize(text: string, regex: string): string[] {
  const re = new RegExp(regex, 'gu');
  const out: string[] = [];
  let prev = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > prev) out.push(text.slice(prev, m.index));
    if (m[0].length > 0) out.push(m[0]);
    prev = m.index + m[0].length;
  }
  if (prev < text.length) out.push(text.slice(prev));
  return out;
}

export interface TrainedBpe {
  /** Token strings in id order: 256 byte symbols, then one per distinct merged string. */
  tokens: string[];
  /** Merges in rank order, as [left, right] token strings. */
  merges: [string, string][];
}

const KEY_BASE = 2 ** 21; // symbol ids stay far below this, so a * KEY_BASE + b is an exact number key

/**
 * Learns up to `merges` merges from `corpus`. Stops early (returning fewer) only when no adjacent pair
 * is left anywhere in the corpus.
 */
export function trainByteLevelBpe(corpus: string, opts: { merges: number; splitRegex: string }): TrainedBpe {
  if (!Number.isInteger(opts.merges) || opts.merges < 0) {
    throw new RangeError(`merges must be a non-negative integer, got ${opts.merges}`);
  }
  const tokens = [...bytesToUnicode()].sort((x, y) => x.charCodeAt(0) - y.charCodeAt(0));
  const idOf = new Map<string, number>(tokens.map((t, i) => [t, i]));

  // Distinct words (byte-level pre-tokens) with their frequencies, in first-seen order.
  const freq = new Map<string, number>();
  for (const piece of preTokenize(corpus, opts.splitRegex)) {
    const w = toByteLevel(piece);
    freq.set(w, (freq.get(w) ?? 0) + 1);
  }
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, c] of freq) {
    words.push(Array.from(w, (ch) => idOf.get(ch)!));
    counts.push(c);
  }

  const pairCount = new Map<number, number>(); // pair key -> weighted occurrences
  const pairWords = new Map<number, Set<number>>(); // pair key -> words that contain (or did contain) it
  const addWordPairs = (wi: number, sign: 1 | -1) => {
    const w = words[wi];
    for (let i = 0; i + 1 < w.length; i++) {
      const key = w[i] * KEY_BASE + w[i + 1];
      const n = (pairCount.get(key) ?? 0) + sign * counts[wi];
      if (n > 0) pairCount.set(key, n);
      else pairCount.delete(key);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addWordPairs(wi, 1);

  const merges: [string, string][] = [];
  while (merges.length < opts.merges) {
    let bestKey = -1;
    let bestCount = 0;
    for (const [key, n] of pairCount) {
      if (n > bestCount || (n === bestCount && key < bestKey)) {
        bestKey = key;
        bestCount = n;
      }
    }
    if (bestKey < 0) break;
    const a = Math.floor(bestKey / KEY_BASE);
    const b = bestKey - a * KEY_BASE;
    const merged = tokens[a] + tokens[b];
    let c = idOf.get(merged);
    if (c === undefined) {
      c = tokens.length;
      tokens.push(merged);
      idOf.set(merged, c);
    }
    merges.push([tokens[a], tokens[b]]);

    const affected = [...(pairWords.get(bestKey) ?? [])].sort((x, y) => x - y);
    pairWords.delete(bestKey);
    for (const wi of affected) {
      const w = words[wi];
      addWordPairs(wi, -1);
      const out: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          out.push(c);
          i++;
        } else {
          out.push(w[i]);
        }
      }
      words[wi] = out;
      addWordPairs(wi, 1);
    }
    pairCount.delete(bestKey);
  }
  return { tokens, merges };
}
