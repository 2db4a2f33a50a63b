// BLEU as sacreBLEU computes it (mjpost/sacrebleu, sacrebleu/metrics/bleu.py): the 13a tokenisation
// (mteval-v13a, what WMT uses), n-grams up to order 4 clipped by the most any one reference holds,
// the closest reference length for the brevity penalty (the shorter one on a tie), and the smoothing
// methods 'exp' (the default: NIST's, halving the credit of each further zero-match order), 'floor',
// 'add-k' and 'none'. Scores are sacreBLEU's 0..100; the Vertex metric reports score / 100.
// Corpus BLEU sums the sufficient statistics over segments before scoring, as sacreBLEU does.

export type BleuSmoothing = 'none' | 'floor' | 'add-k' | 'exp';
export type BleuTokenizer = '13a' | 'none';

export interface BleuOptions {
  smoothMethod?: BleuSmoothing;
  /** For 'floor' (default 0.1) and 'add-k' (default 1). */
  smoothValue?: number;
  /** Stop at the highest n-gram order the hypothesis has (sacreBLEU's effective_order). */
  effectiveOrder?: boolean;
  tokenize?: BleuTokenizer;
  lowercase?: boolean;
  maxNgramOrder?: number;
}

export interface BleuScore {
  /** 0..100, as sacreBLEU prints it. */
  score: number;
  counts: number[];
  totals: number[];
  precisions: number[];
  bp: number;
  sysLen: number;
  refLen: number;
}

const SMOOTH_DEFAULTS: Record<BleuSmoothing, number | undefined> = { none: undefined, floor: 0.1, 'add-k': 1, exp: undefined };

// Python's str.split() whitespace: \s plus the information separators U+001C..U+001F.
const PY_SPACE = /[\s\x1c-\x1f\x85]+/u;
const PY_TRAILING_SPACE = /[\s\x1c-\x1f\x85]+$/u;

/** Python's `' '.join(s.split())`. */
function squeeze(s: string): string {
  return s.split(PY_SPACE).filter((t) => t !== '').join(' ');
}

/** sacreBLEU's tokenizer_13a: mteval-v13a's rules, then the common regexp post-tokenizer. */
export function tokenize13a(line: string): string {
  line = line.replaceAll('<skipped>', '').replaceAll('-\n', '').replaceAll('\n', ' ');
  if (line.includes('&')) {
    line = line.replaceAll('&quot;', '"').replaceAll('&amp;', '&').replaceAll('&lt;', '<').replaceAll('&gt;', '>');
  }
  line = ` ${line} `;
  // tokenizer_re.py: punctuation and symbols become tokens; periods and commas unless inside a number;
  // a dash after a digit.
  line = line.replace(/([{-~[-` -&(-+:-@/])/g, ' $1 ');
  line = line.replace(/([^0-9])([.,])/g, '$1 $2 ');
  line = line.replace(/([.,])([^0-9])/g, ' $1 $2');
  line = line.replace(/([0-9])(-)/g, '$1 $2 ');
  return squeeze(line);
}

function preprocess(sentence: string, opts: BleuOptions): string {
  let s = opts.lowercase ? sentence.toLowerCase() : sentence;
  s = s.replace(PY_TRAILING_SPACE, '');
  return (opts.tokenize ?? '13a') === '13a' ? tokenize13a(s) : s;
}

/** All n-grams of orders 1..maxOrder with counts (keys joined by a separator no token holds) and the length. */
function ngrams(line: string, maxOrder: number): { counts: Map<string, number>; len: number } {
  const tokens = line.split(PY_SPACE).filter((t) => t !== '');
  const counts = new Map<string, number>();
  for (let n = 1; n <= maxOrder; n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      const key = `${n}\u0000${tokens.slice(i, i + n).join('\u0000')}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return { counts, len: tokens.length };
}

function closestRefLen(hypLen: number, refLens: number[]): number {
  let closestDiff = -1;
  let closestLen = -1;
  for (const refLen of refLens) {
    const diff = Math.abs(hypLen - refLen);
    if (closestDiff === -1 || diff < closestDiff) {
      closestDiff = diff;
      closestLen = refLen;
    } else if (diff === closestDiff && refLen < closestLen) {
      closestLen = refLen;
    }
  }
  return closestLen;
}

/** One segment's sufficient statistics: [hypLen, refLen, correct(1..N), total(1..N)]. */
export function bleuSegmentStats(hypothesis: string, references: string[], opts: BleuOptions = {}): number[] {
  const order = opts.maxNgramOrder ?? 4;
  const refCounts = new Map<string, number>();
  const refLens: number[] = [];
  for (const ref of references) {
    const { counts, len } = ngrams(preprocess(ref, opts), order);
    refLens.push(len);
    for (const [k, c] of counts) refCounts.set(k, Math.max(refCounts.get(k) ?? 0, c));
  }
  const hyp = ngrams(preprocess(hypothesis, opts), order);
  const correct = new Array<number>(order).fill(0);
  const total = new Array<number>(order).fill(0);
  for (const [k, c] of hyp.counts) {
    const n = Number(k.slice(0, k.indexOf('\u0000'))) - 1;
    total[n] += c;
    const r = refCounts.get(k);
    if (r !== undefined) correct[n] += Math.min(c, r);
  }
  return [hyp.len, closestRefLen(hyp.len, refLens), ...correct, ...total];
}

/** sacreBLEU's log with a floor: log(0) is -9999999999. */
function myLog(x: number): number {
  return x === 0 ? -9999999999 : Math.log(x);
}

/** BLEU from its statistics (sacreBLEU's BLEU.compute_bleu). */
export function computeBleu(
  correctIn: number[],
  totalIn: number[],
  sysLen: number,
  refLen: number,
  opts: BleuOptions = {},
): BleuScore {
  const method = opts.smoothMethod ?? 'exp';
  const smoothValue = opts.smoothValue ?? SMOOTH_DEFAULTS[method] ?? 0;
  const order = opts.maxNgramOrder ?? correctIn.length;
  const correct = correctIn.slice();
  const total = totalIn.slice();
  let bp = 1;
  if (sysLen < refLen) bp = sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0;
  const precisions = new Array<number>(order).fill(0);
  if (!correct.some((c) => c !== 0)) return { score: 0, counts: correct, totals: total, precisions, bp, sysLen, refLen };

  let smoothMteval = 1;
  let effOrder = order;
  for (let n = 1; n <= order; n++) {
    if (method === 'add-k' && n > 1) {
      correct[n - 1] += smoothValue;
      total[n - 1] += smoothValue;
    }
    if (total[n - 1] === 0) break;
    if (opts.effectiveOrder) effOrder = n;
    if (correct[n - 1] === 0) {
      if (method === 'exp') {
        smoothMteval *= 2;
        precisions[n - 1] = 100 / (smoothMteval * total[n - 1]);
      } else if (method === 'floor') {
        precisions[n - 1] = (100 * smoothValue) / total[n - 1];
      }
    } else {
      precisions[n - 1] = (100 * correct[n - 1]) / total[n - 1];
    }
  }
  let logSum = 0;
  for (const p of precisions.slice(0, effOrder)) logSum += myLog(p);
  const score = bp * Math.exp(logSum / effOrder);
  return { score, counts: correct, totals: total, precisions, bp, sysLen, refLen };
}

function fromStats(stats: number[], opts: BleuOptions): BleuScore {
  const order = opts.maxNgramOrder ?? 4;
  return computeBleu(stats.slice(2, 2 + order), stats.slice(2 + order), stats[0], stats[1], { ...opts, maxNgramOrder: order });
}

/** Sentence BLEU against one or more references (sacreBLEU's BLEU(...).sentence_score). */
export function sentenceBleu(hypothesis: string, references: string[], opts: BleuOptions = {}): BleuScore {
  return fromStats(bleuSegmentStats(hypothesis, references, opts), opts);
}

/**
 * Corpus BLEU (sacreBLEU's corpus_score): `references` is a list of reference streams, each with one
 * reference per hypothesis, as sacreBLEU takes them.
 */
export function corpusBleu(hypotheses: string[], references: string[][], opts: BleuOptions = {}): BleuScore {
  const order = opts.maxNgramOrder ?? 4;
  const sum = new Array<number>(2 + 2 * order).fill(0);
  hypotheses.forEach((hyp, i) => {
    const stats = bleuSegmentStats(hyp, references.map((stream) => stream[i]), opts);
    stats.forEach((v, j) => (sum[j] += v));
  });
  return fromStats(sum, opts);
}
