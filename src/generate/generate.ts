// Autoregressive generation on one sequence: prefill the prompt into a KV cache, then sample one
// token at a time until an end-of-turn token, a stop sequence or the token limit. Streaming is an
// async iterator of text pieces; the final result carries the whole text and why it ended. An abort
// signal stops it at the next prompt chunk or token (work for a client that left is not finished).

import { Random } from '../engine/random.js';
import { InvalidRequestError, throwIfAborted } from '../errors.js';
import type { LoadedModel } from '../models/model.js';
import { sampleToken, validateSampling, type SamplingOptions } from './sampler.js';
import { StopSequenceMatcher } from './stop-sequences.js';
import { ThinkingTracker } from './thinking.js';

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
}

/** Prompt tokens per forward call before yielding to the event loop. */
const PREFILL_CHUNK = 256;

export type FinishReason = 'stop' | 'stop_sequence' | 'length';

export interface GenerationResult {
  /** The answer, without the thinking. */
  text: string;
  /** What the model wrote inside its <think> block (markers removed). */
  thoughtText: string;
  /** Generated tokens spent thinking (markers and a forced closing marker included). */
  thoughtTokens: number;
  tokenIds: number[];
  finishReason: FinishReason;
  promptTokens: number;
  /** Seconds spent on the prompt and on the generated tokens. */
  promptSeconds: number;
  generateSeconds: number;
}

export interface GenerationChunk {
  text: string;
  tokenId: number;
  /** Part of the model's thinking rather than its answer. */
  thought?: boolean;
}

export async function* generateStream(
  model: LoadedModel, promptIds: number[], opts: GenerateOptions,
): AsyncGenerator<GenerationChunk, GenerationResult> {
  validateSampling(opts);
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1) throw new InvalidRequestError(`maxTokens must be a positive integer, got ${opts.maxTokens}`);
  if (promptIds.length === 0) throw new InvalidRequestError('the prompt is empty');
  const maxContext = model.config.maxPositionEmbeddings;
  if (promptIds.length >= maxContext) {
    throw new InvalidRequestError(`the prompt is ${promptIds.length} tokens but the model's context is ${maxContext} tokens`);
  }
  const contextSize = Math.min(opts.contextSize ?? promptIds.length + opts.maxTokens, maxContext);
  if (promptIds.length >= contextSize) {
    throw new InvalidRequestError(`the prompt is ${promptIds.length} tokens but the context is ${contextSize} tokens`);
  }
  const stopIds = new Set(opts.stopTokenIds ?? model.defaults.eosTokenIds);
  const rng = new Random(opts.seed ?? ((Math.random() * 2 ** 32) >>> 0));
  const stops = new StopSequenceMatcher(opts.stopSequences ?? []);
  const decoder = model.tokenizer.createStreamDecoder({ skipSpecialTokens: true });
  const thoughtDecoder = model.tokenizer.createStreamDecoder({ skipSpecialTokens: true });
  const thinking = new ThinkingTracker(model.tokenizer, opts.thinkingBudget ?? -1, promptIds);
  const tokenizerSize = Math.min(model.tokenizer.size, model.config.vocabSize);
  const cache = model.transformer.createCache(contextSize);

  const t0 = performance.now();
  // The prompt goes in chunks with a turn of the event loop between them, so a server stays responsive
  // while a long prompt is processed (chunked prefill gives the same logits; tested).
  let logits!: Float32Array;
  for (let i = 0; i < promptIds.length; i += PREFILL_CHUNK) {
    if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    throwIfAborted(opts.signal);
    logits = model.transformer.forward(promptIds.slice(i, i + PREFILL_CHUNK), cache);
  }
  const promptSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const tokenIds: number[] = [];
  let text = '';
  let thoughtText = '';
  let finishReason: FinishReason = 'length';
  generation: for (;;) {
    if (thinking.banned >= 0) logits[thinking.banned] = -Infinity;
    const id = sampleToken(logits, opts, rng, tokenizerSize);
    if (stopIds.has(id)) {
      finishReason = 'stop';
      break;
    }
    const { kinds, feed } = thinking.accept(id);
    for (let k = 0; k < feed.length; k++) {
      const t = feed[k]!;
      tokenIds.push(t);
      if (kinds[k] === 'thought') {
        if (thinking.isMarker(t)) continue;
        const piece = thoughtDecoder.push(t);
        if (piece) {
          thoughtText += piece;
          yield { text: piece, tokenId: t, thought: true };
        }
        continue;
      }
      const { emit, stopped } = stops.push(decoder.push(t));
      if (emit) {
        text += emit;
        yield { text: emit, tokenId: t };
      }
      if (stopped) {
        finishReason = 'stop_sequence';
        break generation;
      }
    }
    if (tokenIds.length >= opts.maxTokens || cache.length + feed.length > contextSize) break;
    await new Promise<void>((resolve) => setImmediate(resolve));
    throwIfAborted(opts.signal);
    logits = model.transformer.forward(feed, cache);
  }
  const thoughtRest = thoughtDecoder.flush();
  if (thoughtRest) {
    thoughtText += thoughtRest;
    yield { text: thoughtRest, tokenId: tokenIds[tokenIds.length - 1] ?? -1, thought: true };
  }
  if (finishReason !== 'stop_sequence') {
    const { emit, stopped } = stops.push(decoder.flush());
    const rest = emit + (stopped ? '' : stops.flush());
    if (stopped) finishReason = 'stop_sequence';
    if (rest) {
      text += rest;
      yield { text: rest, tokenId: tokenIds[tokenIds.length - 1] ?? -1 };
    }
  }
  return {
    text,
    thoughtText,
    thoughtTokens: thinking.thoughtTokens,
    tokenIds,
    finishReason,
    promptTokens: promptIds.length,
    promptSeconds,
    generateSeconds: (performance.now() - t1) / 1000,
  };
}

/** Runs generateStream to the end. */
export async function generate(model: LoadedModel, promptIds: number[], opts: GenerateOptions): Promise<GenerationResult> {
  const it = generateStream(model, promptIds, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
