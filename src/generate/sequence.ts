// What happens to one sequence between two forward passes, whoever runs the passes (generateStream for
// one sequence, the serving engine for many in one batch): pick the next token from its logits with
// the request's own sampler and seed, apply the thinking budget, decode the token to text, hold back
// text that may start a stop sequence, and decide whether the sequence is finished. The caller feeds
// `feed` to the model next and emits `chunks`.

import { Random } from '../engine/random.js';
import { InvalidRequestError } from '../errors.js';
import type { ModelConfig } from '../models/config.js';
import type { GenerationDefaults } from '../models/loader.js';
import type { StreamDecoder, Tokenizer } from '../tokenizer/tokenizer.js';
import { sampleToken, validateSampling, type SamplingOptions } from './sampler.js';
import { StopSequenceMatcher } from './stop-sequences.js';
import { ThinkingTracker } from './thinking.js';
import { TokenConstraint, type ResponseFormat } from '../structured/constraint.js';

export interface GenerateOptions extends SamplingOptions {
  maxTokens: number;
  seed?: number;
  stopSequences?: string[];
  /** Token ids that end generation; defaults to the model's end-of-sequence ids. */
  stopTokenIds?: number[];
  /** Context to allocate; defaults to prompt + maxTokens, capped by the model's maximum. */
  contextSize?: number;
  /** Vertex's thinkingBudget: -1 (default) the model decides, 0 no thinking, N at most N thinking tokens. */
  thinkingBudget?: number;
  /** Stops the generation (CancelledError) before the next prompt chunk or token once it fires. */
  signal?: AbortSignal;
  /**
   * Constrained decoding: every token keeps the text a prefix of a value of this format (JSON, JSON of
   * a schema, one of an enum's values), and the value closes within maxTokens when its shortest form fits.
   */
  responseFormat?: ResponseFormat;
  /**
   * OpenAI's / Vertex's penalties on tokens already generated: logit -= presencePenalty (once the token
   * occurred) + frequencyPenalty × its count. Prompt tokens are not counted.
   */
  presencePenalty?: number;
  frequencyPenalty?: number;
  /**
   * Record each sampled token's log probability and the `logprobs` most likely alternatives (0: none).
   * Log probabilities are of the distribution sampled from before temperature and top-k/top-p: the
   * model's logits after penalties and the response-format mask. Undefined: nothing recorded.
   */
  logprobs?: number;
  /** Sees the logits of every sampled position before sampling (tests, tools). */
  onLogits?: (logits: Float32Array) => void;
}

export interface TokenLogprob {
  tokenId: number;
  logprob: number;
  /** The most likely tokens at this step, most likely first (as many as `logprobs` asked for). */
  top: { tokenId: number; logprob: number }[];
}

export type FinishReason = 'stop' | 'stop_sequence' | 'length';

export interface GenerationResult {
  /** The answer, without the thinking. */
  text: string;
  /** What the model wrote inside its <think> block (markers and the layout newlines at both ends removed). */
  thoughtText: string;
  /** Generated tokens spent thinking (markers and a forced closing marker included). */
  thoughtTokens: number;
  tokenIds: number[];
  finishReason: FinishReason;
  promptTokens: number;
  /** Per sampled answer token (thoughts left out), when `logprobs` was given. */
  logprobs?: TokenLogprob[];
  /** Seconds spent on the prompt and on the generated tokens. */
  promptSeconds: number;
  generateSeconds: number;
}

export interface GenerationChunk {
  text: string;
  tokenId: number;
  /** Part of the model's thinking rather than its answer. */
  thought?: boolean;
  /**
   * With `logprobs`: the answer tokens sampled since the previous answer chunk (text held back by the
   * stream decoder or a possible stop sequence comes with a later chunk). Tokens whose text is never
   * emitted (a stop sequence) are only in the result's.
   */
  logprobs?: TokenLogprob[];
}

/** What a sequence needs of its model: tokenizer, defaults, shape. */
export interface SequenceModel {
  config: ModelConfig;
  tokenizer: Tokenizer;
  defaults: GenerationDefaults;
}

export class SequenceState {
  readonly contextSize: number;
  readonly tokenIds: number[] = [];
  private readonly stopIds: Set<number>;
  private readonly rng: Random;
  private readonly stops: StopSequenceMatcher;
  private readonly decoder: StreamDecoder;
  private readonly thoughtDecoder: StreamDecoder;
  private readonly thinking: ThinkingTracker;
  private readonly tokenizerSize: number;
  private readonly vocabSize: number;
  private text = '';
  private thoughtText = '';
  /** Newlines at the thought's end so far: emitted once more text follows, dropped when it ends. */
  private heldNewlines = '';
  private finishReason: FinishReason = 'length';
  private done = false;
  private readonly constraint: TokenConstraint | null;
  private readonly counts = new Map<number, number>();
  private readonly logprobs: TokenLogprob[] = [];
  /** Log probabilities already attached to a chunk. */
  private logprobsSent = 0;

  /** Checks the request (InvalidRequestError names what is wrong) and sets up its sampler and matchers. */
  constructor(model: SequenceModel, readonly promptIds: readonly number[], readonly opts: GenerateOptions) {
    validateSampling(opts);
    if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1) throw new InvalidRequestError(`maxTokens must be a positive integer, got ${opts.maxTokens}`);
    if (promptIds.length === 0) throw new InvalidRequestError('the prompt is empty');
    const maxContext = model.config.maxPositionEmbeddings;
    if (promptIds.length >= maxContext) {
      throw new InvalidRequestError(`the prompt is ${promptIds.length} tokens but the model's context is ${maxContext} tokens`);
    }
    this.contextSize = Math.min(opts.contextSize ?? promptIds.length + opts.maxTokens, maxContext);
    if (promptIds.length >= this.contextSize) {
      throw new InvalidRequestError(`the prompt is ${promptIds.length} tokens but the context is ${this.contextSize} tokens`);
    }
    this.stopIds = new Set(opts.stopTokenIds ?? model.defaults.eosTokenIds);
    this.rng = new Random(opts.seed ?? ((Math.random() * 2 ** 32) >>> 0));
    this.stops = new StopSequenceMatcher(opts.stopSequences ?? []);
    this.decoder = model.tokenizer.createStreamDecoder({ skipSpecialTokens: true });
    this.thoughtDecoder = model.tokenizer.createStreamDecoder({ skipSpecialTokens: true });
    this.thinking = new ThinkingTracker(model.tokenizer, opts.thinkingBudget ?? -1, [...promptIds]);
    this.tokenizerSize = Math.min(model.tokenizer.size, model.config.vocabSize);
    this.vocabSize = model.config.vocabSize;
    this.constraint = opts.responseFormat
      ? new TokenConstraint(model.tokenizer, this.tokenizerSize, opts.responseFormat, [...this.stopIds].filter((id) => id < this.tokenizerSize))
      : null;
  }

  /**
   * Takes the logits (V) of the sequence's next position (they may be modified). Returns the text pieces
   * to emit, and the tokens to run next — empty when the sequence is finished.
   */
  next(logits: Float32Array): { chunks: GenerationChunk[]; feed: number[] } {
    if (this.done) throw new Error('internal: next() on a finished sequence');
    this.opts.onLogits?.(logits);
    if (this.thinking.banned >= 0) logits[this.thinking.banned] = -Infinity;
    const presence = this.opts.presencePenalty ?? 0;
    const frequency = this.opts.frequencyPenalty ?? 0;
    if (presence !== 0 || frequency !== 0) {
      for (const [t, n] of this.counts) logits[t] -= presence + frequency * n;
    }
    let id: number;
    let pool: Float32Array;
    let poolIds: Int32Array | null = null;
    if (this.constraint && !this.thinking.thinking) {
      // The answer is constrained; a thinking block before it is not (it may open at the first token,
      // with an explicit positive thinkingBudget only: its tokens come out of maxTokens).
      const left = Math.min(this.opts.maxTokens - this.tokenIds.length, this.contextSize - this.promptIds.length - this.tokenIds.length);
      let ids = this.constraint.allowed(left);
      if (this.tokenIds.length === 0 && this.thinking.budget > 0 && this.thinking.mayOpen >= 0 && left > 1) {
        const more = new Int32Array(ids.length + 1);
        more.set(ids);
        more[ids.length] = this.thinking.mayOpen;
        ids = more;
      }
      const sub = new Float32Array(ids.length);
      for (let i = 0; i < ids.length; i++) sub[i] = logits[ids[i]!]!;
      id = ids[sampleToken(sub, this.opts, this.rng)]!;
      pool = sub;
      poolIds = ids;
    } else {
      id = sampleToken(logits, this.opts, this.rng, this.tokenizerSize);
      pool = logits.subarray(0, this.tokenizerSize);
    }
    return this.advance(id, () => tokenLogprob(pool, poolIds, id, this.opts.logprobs!));
  }

  /**
   * Whether the next step picks the most likely token of the model's distribution, less `excludedIds`,
   * and needs nothing else of it (greedy; no penalties, mask, alternatives or logits observer): an
   * engine may then pick it itself and call nextChosen.
   */
  get needsOnlyArgmax(): boolean {
    const o = this.opts;
    return (o.temperature === 0 || o.topK === 1) && !o.presencePenalty && !o.frequencyPenalty && !o.logprobs && !o.onLogits
      && !(this.constraint && !this.thinking.thinking);
  }

  /** Ids the next token may not be: rows past the tokenizer's, and the thinking marker the budget bans. */
  get excludedIds(): number[] {
    const ids: number[] = [];
    for (let t = this.tokenizerSize; t < this.vocabSize; t++) ids.push(t);
    if (this.thinking.banned >= 0) ids.push(this.thinking.banned);
    return ids;
  }

  /** Whether steps record the chosen token's log probability (nextChosen needs it then). */
  get recordsLogprobs(): boolean {
    return this.opts.logprobs !== undefined;
  }

  /**
   * A step whose token an engine picked under needsOnlyArgmax; `logprob` is its log probability
   * under the model's distribution with excludedIds removed (needed when recordsLogprobs).
   */
  nextChosen(id: number, logprob?: number): { chunks: GenerationChunk[]; feed: number[] } {
    if (this.done) throw new Error('internal: nextChosen() on a finished sequence');
    if (!this.needsOnlyArgmax) throw new Error('internal: nextChosen() on a step that needs the distribution');
    if (this.recordsLogprobs && logprob === undefined) throw new Error('internal: nextChosen() without the log probability this sequence records');
    return this.advance(id, () => ({ tokenId: id, logprob: logprob!, top: [] }));
  }

  /** Takes the chosen token: stop tokens, thinking, log probabilities, text, stop sequences, limits. */
  private advance(id: number, logprob: () => TokenLogprob): { chunks: GenerationChunk[]; feed: number[] } {
    const chunks: GenerationChunk[] = [];
    if (this.stopIds.has(id)) return this.finish('stop', chunks);
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
    const { kinds, feed } = this.thinking.accept(id);
    // Log probabilities are of the answer's tokens (what the candidate is).
    if (this.opts.logprobs !== undefined && kinds[0] === 'answer') this.logprobs.push(logprob());
    if (kinds[0] === 'answer') this.constraint?.accept(id);
    for (let k = 0; k < feed.length; k++) {
      const t = feed[k]!;
      this.tokenIds.push(t);
      if (kinds[k] === 'thought') {
        if (this.thinking.isMarker(t)) continue;
        const piece = this.thoughtLayout(this.thoughtDecoder.push(t));
        if (piece) {
          this.thoughtText += piece;
          chunks.push({ text: piece, tokenId: t, thought: true });
        }
        continue;
      }
      const { emit, stopped } = this.stops.push(this.decoder.push(t));
      if (emit) {
        this.text += emit;
        chunks.push(this.answerChunk(emit, t));
      }
      if (stopped) return this.finish('stop_sequence', chunks);
    }
    // A constrained value that is complete and admits no more bytes ends the text.
    if (this.constraint?.closed) return this.finish('stop', chunks);
    // The prompt and every token fed so far must fit the context.
    if (this.tokenIds.length >= this.opts.maxTokens || this.promptIds.length + this.tokenIds.length > this.contextSize) {
      return this.finish(this.constraint?.complete ? 'stop' : 'length', chunks);
    }
    return { chunks, feed };
  }

  /**
   * The thought as the template would store it: a chat template lays reasoning out as "<think>\n" +
   * reasoning + "\n</think>\n\n" and reads it back with its newlines stripped at both ends (Qwen3's
   * reasoning_content), so those newlines are layout, not thought. Leading ones are dropped; trailing ones
   * are held until more thought follows (an empty block gives no thought text at all).
   */
  private thoughtLayout(piece: string): string {
    const text = this.thoughtText === '' ? piece.replace(/^\n+/, '') : piece;
    const body = text.replace(/\n+$/, '');
    if (body === '') {
      if (this.thoughtText !== '') this.heldNewlines += text;
      return '';
    }
    const out = this.heldNewlines + body;
    this.heldNewlines = text.slice(body.length);
    return out;
  }

  get finished(): boolean {
    return this.done;
  }

  /** Text still held back by the stream decoders and the stop matcher, emitted when the sequence ends. */
  private finish(reason: FinishReason, chunks: GenerationChunk[]): { chunks: GenerationChunk[]; feed: number[] } {
    this.done = true;
    this.finishReason = reason;
    const last = this.tokenIds[this.tokenIds.length - 1] ?? -1;
    const thoughtRest = this.thoughtLayout(this.thoughtDecoder.flush());
    if (thoughtRest) {
      this.thoughtText += thoughtRest;
      chunks.push({ text: thoughtRest, tokenId: last, thought: true });
    }
    if (reason !== 'stop_sequence') {
      const { emit, stopped } = this.stops.push(this.decoder.flush());
      const rest = emit + (stopped ? '' : this.stops.flush());
      if (stopped) this.finishReason = 'stop_sequence';
      if (rest) {
        this.text += rest;
        chunks.push(this.answerChunk(rest, last));
      }
    }
    return { chunks, feed: [] };
  }

  private answerChunk(text: string, tokenId: number): GenerationChunk {
    if (this.opts.logprobs === undefined) return { text, tokenId };
    const logprobs = this.logprobs.slice(this.logprobsSent);
    this.logprobsSent = this.logprobs.length;
    return { text, tokenId, logprobs };
  }

  /** The result of a finished sequence. */
  result(promptSeconds: number, generateSeconds: number): GenerationResult {
    return {
      text: this.text,
      thoughtText: this.thoughtText,
      thoughtTokens: this.thinking.thoughtTokens,
      tokenIds: this.tokenIds,
      finishReason: this.finishReason,
      promptTokens: this.promptIds.length,
      ...(this.opts.logprobs !== undefined ? { logprobs: this.logprobs } : {}),
      promptSeconds,
      generateSeconds,
    };
  }
}

/**
 * The log probability of `id` under softmax(pool) and the k most likely entries (ids mapped through
 * `ids` when the pool is a masked subset).
 */
export function tokenLogprob(pool: Float32Array, ids: Int32Array | null, id: number, k: number): TokenLogprob {
  let max = -Infinity;
  for (let i = 0; i < pool.length; i++) if (pool[i]! > max) max = pool[i]!;
  let sum = 0;
  for (let i = 0; i < pool.length; i++) sum += Math.exp(pool[i]! - max);
  const lse = max + Math.log(sum);
  const idOf = (i: number) => (ids ? ids[i]! : i);
  let chosen = -Infinity;
  if (ids) {
    for (let i = 0; i < ids.length; i++) if (ids[i] === id) { chosen = pool[i]! - lse; break; }
  } else {
    chosen = pool[id]! - lse;
  }
  // The k largest, kept sorted (k is small).
  const top: number[] = [];
  if (k > 0) {
    for (let i = 0; i < pool.length; i++) {
      const v = pool[i]!;
      if (top.length === k && v <= pool[top[k - 1]!]!) continue;
      let j = top.length < k ? top.length : k - 1;
      if (top.length < k) top.push(i);
      while (j > 0 && pool[top[j - 1]!]! < v) {
        top[j] = top[j - 1]!;
        j--;
      }
      top[j] = i;
    }
  }
  return { tokenId: id, logprob: chosen, top: top.map((i) => ({ tokenId: idOf(i), logprob: pool[i]! - lse })) };
}
