// A safety classifier: a served model (a publisher model, or a tuned one with its adapter) asked the
// classifier question of each category (policies.ts); probabilityScore = P("Yes") / (P("Yes") + P("No"))
// from its next-token distribution after the question, read in one prefill on the serving engine
// (maxTokens 1; the logits are read before sampling). "Yes" and "No" are the first tokens of the two
// words in the classifier's vocabulary; a tokenizer where they coincide cannot be a classifier.

import type { ServedModel } from '../api/catalog.js';
import { InvalidRequestError } from '../errors.js';
import { classifierQuestion, type PromptFormat, type RatedCategory } from './policies.js';

export class SafetyClassifier {
  private readonly yes: number;
  private readonly no: number;

  constructor(readonly served: ServedModel, readonly format: PromptFormat) {
    const tok = served.model.tokenizer;
    const first = (w: string) => tok.encode(w, { addSpecialTokens: false })[0];
    const yes = first('Yes');
    const no = first('No');
    if (yes === undefined || no === undefined || yes === no) {
      throw new InvalidRequestError(`the safety classifier ${served.modelVersion} cannot tell "Yes" from "No": their first tokens are the same`);
    }
    this.yes = yes;
    this.no = no;
  }

  /** The prompt ids of one question, in the classifier's format. */
  private promptIds(question: string): number[] {
    const tok = this.served.model.tokenizer;
    if (this.format === 'shieldgemma') return tok.encode(question);
    const text = tok.applyChatTemplate([{ role: 'user', content: question }], { addGenerationPrompt: true, ...(tok.chatTemplate?.includes('enable_thinking') ? { enableThinking: false } : {}) });
    return tok.encode(text, { addSpecialTokens: false });
  }

  /** probabilityScore per category for a prompt (`response` undefined) or a response to it. */
  async score(categories: readonly RatedCategory[], userText: string, response: string | undefined, signal: AbortSignal): Promise<Map<RatedCategory, number>> {
    const scores = await Promise.all(categories.map(async (category) => {
      const ids = this.promptIds(classifierQuestion(category, userText, response));
      const context = this.served.model.config.maxPositionEmbeddings;
      if (ids.length >= context) {
        throw new InvalidRequestError(`the safety classifier's question about this ${response === undefined ? 'prompt' : 'response'} is ${ids.length} tokens, more than the classifier's context (${context} tokens) holds, so it cannot be rated; shorten it or configure a classifier with a longer context`);
      }
      let delta = NaN;
      const it = this.served.generate(ids, {
        maxTokens: 1, temperature: 0,
        onLogits: (logits) => { delta = logits[this.yes]! - logits[this.no]!; },
      }, signal);
      for (let r = await it.next(); !r.done; r = await it.next());
      return [category, 1 / (1 + Math.exp(-delta))] as const;
    }));
    return new Map(scores);
  }
}
