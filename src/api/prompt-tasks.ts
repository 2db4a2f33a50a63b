// The tokenizer work a generation request needs, as plain data in and out so that it can run on a
// worker thread (prompt-tokenizer.ts) or inline with the same code: render and tokenize a prompt, count
// the tokens of contents (countTokens), tokenize each content (computeTokens).

import type { Dialogue } from '../data/conversation.js';
import type { TemplateMessage, Tokenizer } from '../tokenizer/tokenizer.js';
import { renderPromptText } from '../data/render.js';
import { assertTextMayFit, countTokensText } from './generation.js';

/**
 * `context`: the model's context in tokens. Rendered text that cannot fit it (judged from its length
 * alone, see assertTextMayFit) is refused before it is tokenized: this catches what the cheap check on
 * the raw request cannot, such as a huge model turn that the template keeps.
 */
export type PromptTask =
  | { kind: 'prompt'; dialogue: Dialogue; enableThinking?: boolean; context: number;
      /** Chat-template messages (tool calls, tool results) and tools, when the request has them. */
      messages?: TemplateMessage[]; tools?: unknown[] }
  | { kind: 'count'; dialogue: Dialogue; context: number }
  | { kind: 'compute'; dialogue: Dialogue; context: number };

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
  const encode = (text: string) => tokenizer.encode(text, { addSpecialTokens: false });
  switch (task.kind) {
    case 'prompt': {
      const text = task.messages
        ? tokenizer.applyChatTemplate(task.messages, { addGenerationPrompt: true, enableThinking: task.enableThinking, tools: task.tools ?? null })
        : renderPromptText(task.dialogue, tokenizer, { enableThinking: task.enableThinking });
      assertTextMayFit(tokenizer, text.length, task.context, 1);
      return Int32Array.from(encode(text)) as PromptTaskResult<T>;
    }
    case 'count': {
      const text = countTokensText(tokenizer, { dialogue: task.dialogue });
      assertTextMayFit(tokenizer, text.length, task.context, 0);
      return encode(text).length as PromptTaskResult<T>;
    }
    case 'compute':
      assertTextMayFit(tokenizer, dialogueChars({ turns: task.dialogue.turns }), task.context, 0);
      return task.dialogue.turns.map((t) => Int32Array.from(encode(t.text))) as PromptTaskResult<T>;
  }
}

/** UTF-16 units of text in the dialogue. */
export function dialogueChars(dialogue: Dialogue): number {
  let n = dialogue.systemInstruction?.length ?? 0;
  for (const t of dialogue.turns) n += t.text.length;
  return n;
}
