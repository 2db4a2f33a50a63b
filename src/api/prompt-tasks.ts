// The tokenizer work a generation request needs, as plain data in and out so that it can run on a
// worker thread (prompt-tokenizer.ts) or inline with the same code: render and tokenize a prompt, count
// the tokens of contents (countTokens), tokenize each content (computeTokens).

import type { Dialogue } from '../data/conversation.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { countPromptTokens, promptIds } from './generation.js';

export type PromptTask =
  | { kind: 'prompt'; dialogue: Dialogue; enableThinking?: boolean }
  | { kind: 'count'; dialogue: Dialogue }
  | { kind: 'compute'; dialogue: Dialogue };

export interface PromptTaskResults {
  /** Prompt ids exactly as generation sees them. */
  prompt: Int32Array;
  /** countTokens' totalTokens. */
  count: number;
  /** The ids of each turn's text, tokenized on its own. */
  compute: Int32Array[];
}

export type PromptTaskResult<T extends PromptTask> = PromptTaskResults[T['kind']];

export function runPromptTask<T extends PromptTask>(tokenizer: Tokenizer, task: T): PromptTaskResult<T> {
  switch (task.kind) {
    case 'prompt':
      return Int32Array.from(promptIds(tokenizer, { dialogue: task.dialogue, enableThinking: task.enableThinking })) as PromptTaskResult<T>;
    case 'count':
      return countPromptTokens(tokenizer, { dialogue: task.dialogue }) as PromptTaskResult<T>;
    case 'compute':
      return task.dialogue.turns.map((t) => Int32Array.from(tokenizer.encode(t.text, { addSpecialTokens: false }))) as PromptTaskResult<T>;
  }
}

/** UTF-16 units of text in the dialogue. */
export function dialogueChars(dialogue: Dialogue): number {
  let n = dialogue.systemInstruction?.length ?? 0;
  for (const t of dialogue.turns) n += t.text.length;
  return n;
}
