// Token counts of one example as the trainer will see it, and what the token limit does to it.
// Definitions (the ones tuningDataStats reports):
// - tokens: the example rendered with the model's chat template and tokenized exactly as
//   renderForTraining does (system, every turn, the template's markup and special tokens), counted
//   segment by segment (renderSegments) with PieceCounter where the tokenizer allows.
// - output tokens: the tokens that carry loss (lossMask = 1): the text of each model turn whose weight
//   is not 0, and the end-of-turn token closing it. Input tokens: all the others (system prompt, user
//   turns, role headers, weight-0 model turns). input + output = tokens.
// - limit: an example over the limit keeps its first `limit` tokens (truncated) when a loss-carrying
//   target is left among them (packing.ts's rule; position 0 is never a target), else it is dropped.
//   An example with no target at all (every model turn weight 0) is dropped too.

import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { Conversation } from './conversation.js';
import { DatasetError, type DatasetProblem } from './errors.js';
import { PieceCounter } from './piece-counter.js';
import { renderSegments, type RenderedSegment } from './render.js';
import { TunekitError } from '../errors.js';

/** Vertex's per-example limit for Gemini tuning: input + output tokens. */
export const VERTEX_TOKEN_LIMIT = 131_072;

export type Fate = 'kept' | 'truncated' | 'dropped';

export interface TokenCount {
  /** 1-based example (row) number: the position among the file's non-blank lines. */
  row: number;
  line: number;
  tokens: number;
  output: number;
  /** Tokens and output tokens that remain after truncation; 0 when dropped. */
  keptTokens: number;
  keptOutput: number;
  fate: Fate;
  /** Why it was truncated or dropped, or why it could not be rendered (then fate is 'dropped'). */
  problem?: DatasetProblem;
}

/** Counts tokens of a text as tokenizer.encode(text, { addSpecialTokens: false }) would. */
export type TextCounter = (text: string) => number;

/** The fastest exact counter for a tokenizer: PieceCounter where its pipeline allows, else encode. */
export function textCounter(tokenizer: Tokenizer, dir?: string): TextCounter {
  const fast = dir ? PieceCounter.forTokenizer(dir, tokenizer) : null;
  if (fast) return (text) => fast.count(text);
  return (text) => tokenizer.encode(text, { addSpecialTokens: false }).length;
}

export function countExample(conv: Conversation, row: number, tokenizer: Tokenizer, limit: number, counter?: TextCounter): TokenCount {
  const { file, line } = conv.source;
  let segments: RenderedSegment[];
  try {
    segments = renderSegments(conv, tokenizer);
  } catch (e) {
    if (!(e instanceof TunekitError)) throw e;
    const message = e instanceof DatasetError ? e.reason : e.message;
    const path = e instanceof DatasetError ? e.path : '';
    return { row, line, tokens: 0, output: 0, keptTokens: 0, keptOutput: 0, fate: 'dropped', problem: { file, line, path, kind: 'render_failed', message } };
  }
  const count = counter ?? textCounter(tokenizer);
  // Loss-carrying tokens occupy [start, end) runs; targets are loss tokens at positions >= 1.
  const runs: [number, number][] = [];
  let n = 0;
  let output = 0;
  for (const seg of segments) {
    const k = count(seg.text);
    if (seg.loss) {
      runs.push([n, n + k]);
      output += k;
    }
    n += k;
  }
  const targetsWithin = (end: number): number => runs.reduce((a, [s, e]) => a + Math.max(0, Math.min(e, end) - Math.max(s, 1)), 0);
  const base = { row, line, tokens: n, output };
  if (targetsWithin(n) === 0) {
    return { ...base, keptTokens: 0, keptOutput: 0, fate: 'dropped', problem: { file, line, path: '', kind: 'nothing_to_train', message: 'no token carries loss (every model turn has weight 0); the example is dropped' } };
  }
  if (n <= limit) return { ...base, keptTokens: n, keptOutput: output, fate: 'kept' };
  if (targetsWithin(limit) === 0) {
    return {
      ...base, keptTokens: 0, keptOutput: 0, fate: 'dropped',
      problem: { file, line, path: '', kind: 'too_long_dropped', message: `${n} tokens, over the limit of ${limit}, and no model token falls within the first ${limit}: the example is dropped` },
    };
  }
  const keptOutput = runs.reduce((a, [s, e]) => a + Math.max(0, Math.min(e, limit) - s), 0);
  return {
    ...base, keptTokens: limit, keptOutput, fate: 'truncated',
    problem: { file, line, path: '', kind: 'too_long_truncated', message: `${n} tokens, over the limit of ${limit}: truncated to the first ${limit} (${keptOutput} of ${output} output tokens kept)` },
  };
}
