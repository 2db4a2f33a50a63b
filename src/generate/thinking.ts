// The thinking budget as a hard cap. Models with <think> … </think> blocks (Qwen3) decide how long to
// think; Vertex's thinkingBudget bounds it: 0 = no thinking (the opening marker is never sampled),
// -1 = the model decides, N = at most N tokens inside the block, after which the closing marker
// ("</think>\n\n", as the chat template writes it) is forced into the sequence and the answer follows.
// Tokens are classified as they go: 'thought' (inside the block, markers included, and the "\n\n"
// the template writes after the closing marker, whether it was forced or the model wrote it) or 'answer'.

import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { InvalidRequestError } from '../errors.js';

export type TokenKind = 'thought' | 'answer';

export class ThinkingTracker {
  private readonly open: number | undefined;
  private readonly close: number | undefined;
  private readonly closing: number[];
  private inside = false;
  private used = 0;
  /** After a closing marker the model wrote: the rest of the template's closing still to come ("\n\n"). */
  private rest: number[] = [];
  /** Tokens spent thinking so far (markers and forced tokens included). */
  thoughtTokens = 0;

  constructor(tokenizer: Tokenizer, readonly budget: number, promptIds: number[]) {
    if (!Number.isInteger(budget) || budget < -1) throw new InvalidRequestError(`thinkingBudget must be -1, 0 or a positive integer, got ${budget}`);
    this.open = tokenizer.tokenToId('<think>');
    this.close = tokenizer.tokenToId('</think>');
    this.closing = this.close === undefined ? [] : tokenizer.encode('</think>\n\n', { addSpecialTokens: false });
    // A prompt may end inside an open block (templates that pre-fill "<think>\n").
    for (const id of promptIds) {
      if (id === this.open) this.inside = true;
      else if (id === this.close) this.inside = false;
    }
  }

  /** Whether this model thinks in marked blocks at all. */
  get supported(): boolean {
    return this.open !== undefined && this.close !== undefined;
  }

  /** Inside a thinking block now. */
  get thinking(): boolean {
    return this.inside;
  }

  /** The opening marker's id when a block may open now (supported, budget not 0, not inside), else -1. */
  get mayOpen(): number {
    return this.supported && this.budget !== 0 && !this.inside ? this.open! : -1;
  }

  /** Token id never to sample (the opening marker when thinking is off), or -1. */
  get banned(): number {
    return this.supported && this.budget === 0 && !this.inside ? this.open! : -1;
  }

  /**
   * Classifies a sampled token and returns the tokens to feed the model next: the token itself, plus the
   * forced closing marker when the budget has just run out.
   */
  accept(id: number): { kinds: TokenKind[]; feed: number[] } {
    if (!this.supported) return { kinds: ['answer'], feed: [id] };
    if (this.rest.length > 0) {
      if (id === this.rest.shift()) {
        this.thoughtTokens++;
        return { kinds: ['thought'], feed: [id] };
      }
      this.rest = [];
    }
    if (!this.inside && id === this.open) {
      this.inside = true;
      this.used = 0;
    }
    if (!this.inside) return { kinds: ['answer'], feed: [id] };
    this.thoughtTokens++;
    this.used++;
    if (id === this.close) {
      this.inside = false;
      if (this.closing[0] === id) this.rest = this.closing.slice(1);
      return { kinds: ['thought'], feed: [id] };
    }
    if (this.budget >= 0 && this.used >= this.budget) {
      this.inside = false;
      this.thoughtTokens += this.closing.length;
      return { kinds: ['thought', ...this.closing.map((): TokenKind => 'thought')], feed: [id, ...this.closing] };
    }
    return { kinds: ['thought'], feed: [id] };
  }

  isMarker(id: number): boolean {
    return id === this.open || id === this.close;
  }
}
