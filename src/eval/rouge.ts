// ROUGE as Google's rouge-score package computes it (google-research/google-research, rouge/):
// its tokenizer (lowercase, every run of characters other than a-z0-9 is a space, tokens longer than
// three letters Porter-stemmed when asked — NLTK's stemmer, see porter.ts), rougeN from clipped n-gram
// counts, rougeL from the longest common subsequence, and rougeLsum as the summary-level LCS of
// ROUGE-1.5.5 (union LCS per reference sentence, each token counted at most as often as both sides
// hold it). Sentences for rougeLsum are lines; with splitSummaries they come from a sentence splitter
// (rouge-score uses nltk's punkt; ours is the rule-based splitter below, see splitSentences).
// Each score is precision, recall and F1 (rouge-score's fmeasure).

import { porterStem } from './porter.js';

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

/** rouge1..rouge9, rougeL, rougeLsum. */
export type RougeType = `rouge${1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9}` | 'rougeL' | 'rougeLsum';

export interface RougeOptions {
  useStemmer?: boolean;
  /** rougeLsum only: find sentences in the text instead of taking its lines. */
  splitSummaries?: boolean;
}

export function isRougeType(s: string): s is RougeType {
  return /^rouge[1-9]$/.test(s) || s === 'rougeL' || s === 'rougeLsum';
}

/** rouge-score's tokenize.tokenize(text, stemmer). */
export function rougeTokenize(text: string, useStemmer = false): string[] {
  const spaced = text.toLowerCase().replace(/[^a-z0-9]+/g, ' ');
  let tokens = spaced.split(/\s+/);
  if (useStemmer) tokens = tokens.map((t) => (t.length > 3 ? porterStem(t) : t));
  return tokens.filter((t) => /^[a-z0-9]+$/.test(t));
}

export function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

function score(precision: number, recall: number): RougeScore {
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

function ngramCounts(tokens: string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join(' ');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

export function scoreNgrams(target: string[], prediction: string[], n: number): RougeScore {
  const t = ngramCounts(target, n);
  const p = ngramCounts(prediction, n);
  let overlap = 0;
  for (const [gram, c] of t) overlap += Math.min(c, p.get(gram) ?? 0);
  let tTotal = 0;
  for (const c of t.values()) tTotal += c;
  let pTotal = 0;
  for (const c of p.values()) pTotal += c;
  return score(overlap / Math.max(pTotal, 1), overlap / Math.max(tTotal, 1));
}

/** The (|ref|+1) x (|can|+1) LCS length table, row-major. */
function lcsTable(ref: string[], can: string[]): Int32Array {
  const cols = can.length + 1;
  const t = new Int32Array((ref.length + 1) * cols);
  for (let i = 1; i <= ref.length; i++) {
    for (let j = 1; j <= can.length; j++) {
      t[i * cols + j] = ref[i - 1] === can[j - 1] ? t[(i - 1) * cols + j - 1] + 1 : Math.max(t[(i - 1) * cols + j], t[i * cols + j - 1]);
    }
  }
  return t;
}

/** Indices into `ref` of one LCS, read back as rouge-score's _backtrack_norec does. */
export function lcsIndices(ref: string[], can: string[]): number[] {
  const t = lcsTable(ref, can);
  const cols = can.length + 1;
  let i = ref.length;
  let j = can.length;
  const out: number[] = [];
  while (i > 0 && j > 0) {
    if (ref[i - 1] === can[j - 1]) {
      out.push(i - 1);
      i--;
      j--;
    } else if (t[i * cols + j - 1] > t[(i - 1) * cols + j]) {
      j--;
    } else {
      i--;
    }
  }
  return out.reverse();
}

export function scoreLcs(target: string[], prediction: string[]): RougeScore {
  if (target.length === 0 || prediction.length === 0) return score(0, 0);
  const t = lcsTable(target, prediction);
  const lcs = t[t.length - 1];
  return score(lcs / prediction.length, lcs / target.length);
}

/** Summary-level LCS (rouge-score's _summary_level_lcs): sentences of tokens on each side. */
export function summaryLevelLcs(refSents: string[][], canSents: string[][]): RougeScore {
  if (refSents.length === 0 || canSents.length === 0) return score(0, 0);
  const m = refSents.reduce((a, s) => a + s.length, 0);
  const n = canSents.reduce((a, s) => a + s.length, 0);
  if (m === 0 || n === 0) return score(0, 0);
  const countR = new Map<string, number>();
  const countC = new Map<string, number>();
  for (const s of refSents) for (const tok of s) countR.set(tok, (countR.get(tok) ?? 0) + 1);
  for (const s of canSents) for (const tok of s) countC.set(tok, (countC.get(tok) ?? 0) + 1);
  let hits = 0;
  for (const r of refSents) {
    const union = new Set<number>();
    for (const c of canSents) for (const i of lcsIndices(r, c)) union.add(i);
    for (const i of [...union].sort((a, b) => a - b)) {
      const tok = r[i];
      if ((countC.get(tok) ?? 0) > 0 && (countR.get(tok) ?? 0) > 0) {
        hits++;
        countC.set(tok, countC.get(tok)! - 1);
        countR.set(tok, countR.get(tok)! - 1);
      }
    }
  }
  return score(hits / n, hits / m);
}

// Abbreviations that end a word with a period without ending the sentence (a subset of what punkt's
// English model learned).
const ABBREVIATIONS = new Set([
  'mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'vs', 'etc', 'e.g', 'i.e', 'inc', 'ltd', 'co', 'corp',
  'jan', 'feb', 'mar', 'apr', 'jun', 'jul', 'aug', 'sep', 'sept', 'oct', 'nov', 'dec', 'no', 'vol', 'fig', 'u.s',
]);

/**
 * Sentences of a text for rougeLsum with splitSummaries: a sentence ends at '.', '!' or '?' (with any
 * closing quotes or brackets) followed by whitespace, unless the word before the period is a known
 * abbreviation or a single letter (an initial). This follows punkt's rules for ordinary prose; punkt's
 * learned statistics (rare abbreviations, ellipsis heuristics) are not reproduced.
 */
export function splitSentences(text: string): string[] {
  const out: string[] = [];
  const re = /[.!?]+["')\]]*(?=\s)/g;
  let start = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const end = m.index + m[0].length;
    if (m[0].startsWith('.') && m[0].length === 1) {
      const word = /([\p{L}\p{N}.]+)$/u.exec(text.slice(start, m.index))?.[1]?.toLowerCase() ?? '';
      if (ABBREVIATIONS.has(word) || /^\p{L}$/u.test(word)) continue;
    }
    out.push(text.slice(start, end).trim());
    start = end;
  }
  out.push(text.slice(start).trim());
  return out.filter((s) => s.length > 0);
}

/** rouge-score's RougeScorer([type], use_stemmer).score(target, prediction)[type]. */
export function rouge(type: RougeType, target: string, prediction: string, opts: RougeOptions = {}): RougeScore {
  const stem = opts.useStemmer ?? false;
  if (type === 'rougeLsum') {
    const sents = (text: string): string[] => (opts.splitSummaries ? splitSentences(text) : text.split('\n')).filter((s) => s.length > 0);
    return summaryLevelLcs(sents(target).map((s) => rougeTokenize(s, stem)), sents(prediction).map((s) => rougeTokenize(s, stem)));
  }
  const t = rougeTokenize(target, stem);
  const p = rougeTokenize(prediction, stem);
  if (type === 'rougeL') return scoreLcs(t, p);
  return scoreNgrams(t, p, Number(type.slice(5)));
}
