// Token counts of one example as the trainer will see it, and what the token limit does to it.
// Definitions (the ones tuningDataStats reports):
// - tokens: the example rendered with the model's chat template and tokenized exactly as
//   renderForTraining does (system, every turn, the template's markup and special tokens).
// - output tokens: the tokens that carry loss (lossMask = 1): the text of each model turn whose weight
//   is not 0, and the end-of-turn token closing it. Input tokens: all the others (system prompt, user
//   turns, role headers, weight-0 model turns). input + output = tokens.
// - limit: an example over the limit keeps its first `limit` tokens (truncated) when a loss-carrying
//   target is left among them (packing.ts's rule; position 0 is never a target), else it is dropped.
//   An example with no target at all (every model turn weight 0) is dropped too.

import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { Conversation } from './conversation.js';
import { DatasetError, type DatasetProblem } from './errors.js';
import { countTargets } from './packing.js';
import { renderForTraining } from './render.js';
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

export function countExample(conv: Conversation, row: number, tokenizer: Tokenizer, limit: number): TokenCount {
  const { file, line } = conv.source;
  let rendered;
  try {
    rendered = renderForTraining(conv, tokenizer);
  } catch (e) {
    if (!(e instanceof TunekitError)) throw e;
    const message = e instanceof DatasetError ? e.reason : e.message;
    return { row, line, tokens: 0, output: 0, keptTokens: 0, keptOutput: 0, fate: 'dropped', problem: { file, line, path: '', kind: 'render_failed', message } };
  }
  const { tokens, lossMask } = rendered;
  let output = 0;
  for (let t = 0; t < lossMask.length; t++) output += lossMask[t];
  const n = tokens.length;
  const base = { row, line, tokens: n, output };
  if (countTargets(lossMask) === 0) {
    return { ...base, keptTokens: 0, keptOutput: 0, fate: 'dropped', problem: { file, line, path: '', kind: 'nothing_to_train', message: 'no token carries loss (every model turn has weight 0); the example is dropped' } };
  }
  if (n <= limit) return { ...base, keptTokens: n, keptOutput: output, fate: 'kept' };
  if (countTargets(lossMask, limit) === 0) {
    return {
      ...base, keptTokens: 0, keptOutput: 0, fate: 'dropped',
      problem: { file, line, path: '', kind: 'too_long_dropped', message: `${n} tokens, over the limit of ${limit}, and no model token falls within the first ${limit}: the example is dropped` },
    };
  }
  let keptOutput = 0;
  for (let t = 0; t < limit; t++) keptOutput += lossMask[t];
  return {
    ...base, keptTokens: limit, keptOutput, fate: 'truncated',
    problem: { file, line, path: '', kind: 'too_long_truncated', message: `${n} tokens, over the limit of ${limit}: truncated to the first ${limit} (${keptOutput} of ${output} output tokens kept)` },
  };
}
