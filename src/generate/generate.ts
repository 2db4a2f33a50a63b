// Autoregressive generation on one sequence: prefill the prompt into a KV cache, then one token per
// forward pass until an end-of-turn token, a stop sequence or the token limit (SequenceState decides;
// the serving engine runs the same SequenceState for many sequences in one batch). Streaming is an
// async iterator of text pieces; the final result carries the whole text and why it ended. An abort
// signal stops it at the next prompt chunk or token (work for a client that left is not finished).

import { throwIfAborted } from '../errors.js';
import type { LoadedModel } from '../models/model.js';
import { SequenceState, type GenerateOptions, type GenerationChunk, type GenerationResult } from './sequence.js';

export type { FinishReason, GenerateOptions, GenerationChunk, GenerationResult, TokenLogprob } from './sequence.js';

/** Prompt tokens per forward call before yielding to the event loop. */
export const PREFILL_CHUNK = 256;

export async function* generateStream(
  model: LoadedModel, promptIds: number[], opts: GenerateOptions,
): AsyncGenerator<GenerationChunk, GenerationResult> {
  const seq = new SequenceState(model, promptIds, opts);
  const cache = model.transformer.createCache(seq.contextSize);

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
  for (;;) {
    const { chunks, feed } = seq.next(logits);
    yield* chunks;
    if (seq.finished) break;
    await new Promise<void>((resolve) => setImmediate(resolve));
    throwIfAborted(opts.signal);
    logits = model.transformer.forward(feed, cache);
  }
  return seq.result(promptSeconds, (performance.now() - t1) / 1000);
}

/** Runs generateStream to the end. */
export async function generate(model: LoadedModel, promptIds: number[], opts: GenerateOptions): Promise<GenerationResult> {
  const it = generateStream(model, promptIds, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
