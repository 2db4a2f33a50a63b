// One generation request inside the serving engine, from the queue to its last token: its explicit
// state (queued → prompt → generating → done), its sequence in the KV store, its adapter, its
// SequenceState (sampler, seed, stop sequences, thinking budget, stream decoding) and the channel its
// caller reads chunks from. The engine writes; the caller's async iterator reads.

import { CancelledError } from '../errors.js';
import type { GenerationChunk, GenerationResult } from '../generate/sequence.js';
import { SequenceState } from '../generate/sequence.js';
import { NO_ADAPTER } from '../core/batch.js';

export type RequestPhase = 'queued' | 'prompt' | 'forked' | 'generating' | 'done';

export class EngineRequest {
  phase: RequestPhase = 'queued';
  /** Sequence id in the KV store (while it has one). */
  seq = -1;
  /** Adapter id in the engine's adapter cache, pinned while running. */
  adapterId = NO_ADAPTER;
  /** Prompt tokens already run. */
  fed = 0;
  /** Tokens to run in the next pass while generating. */
  feed: number[] = [];
  readonly queuedAt = performance.now();
  startedAt = 0;
  firstTokenAt = 0;
  /**
   * The other candidates of the same request (candidateCount > 1): they never read the prompt; when
   * this one has, each gets a copy of its KV rows and of its first logits ('forked' until then).
   */
  followers: EngineRequest[] = [];

  private readonly items: GenerationChunk[] = [];
  private result: GenerationResult | undefined;
  private error: unknown;
  private wake: (() => void) | null = null;

  constructor(readonly state: SequenceState, readonly adapterDir: string | undefined, readonly signal: AbortSignal | undefined) {}

  get promptIds(): readonly number[] {
    return this.state.promptIds;
  }

  /** Finished, failed or cancelled: the engine must not run it any more. */
  get over(): boolean {
    return this.phase === 'done';
  }

  push(chunks: GenerationChunk[]): void {
    if (this.over || chunks.length === 0) return;
    this.items.push(...chunks);
    this.notify();
  }

  complete(): void {
    if (this.over) return;
    const now = performance.now();
    const first = this.firstTokenAt || now;
    this.result = this.state.result((first - this.startedAt) / 1000, (now - first) / 1000);
    this.phase = 'done';
    this.notify();
  }

  fail(err: unknown): void {
    if (this.over) return;
    this.error = err;
    this.phase = 'done';
    this.notify();
  }

  cancel(): void {
    const s = this.signal;
    this.fail(new CancelledError(typeof s?.reason === 'string' ? s.reason : undefined));
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** The caller's side: chunks as they come, then the result or the error. */
  async *read(onLeave: () => void): AsyncGenerator<GenerationChunk, GenerationResult> {
    try {
      for (;;) {
        const item = this.items.shift();
        if (item) {
          yield item;
          continue;
        }
        if (this.error !== undefined) throw this.error;
        if (this.result) return this.result;
        await new Promise<void>((resolve) => { this.wake = resolve; });
      }
    } finally {
      // The caller stopped reading (returned early, or threw): the engine drops the request.
      if (!this.over) {
        this.cancel();
        onLeave();
      }
    }
  }
}
