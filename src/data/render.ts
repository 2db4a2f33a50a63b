// A Conversation rendered with the model's own chat template, tokenized, with the tokens that carry
// loss marked: what the model writes in every model turn (unless its weight is 0), i.e. everything
// after the generation prompt up to and including the end-of-turn token that closes the turn
// (<|eot_id|>, <|im_end|>, <end_of_turn>), so the tuned model learns to stop. Nothing else is
// trained: not the system or user text, not role headers, not what follows the end-of-turn token.
// Method: render the whole conversation once; find each message's text in the rendered string with a
// moving cursor (guided by a skeleton: the same conversation rendered with placeholder texts, which
// shows where the template's markup ends); split the string at the loss-span boundaries and encode
// each piece with addSpecialTokens false. Encoding the prompt pieces alone is exactly how inference
// tokenizes a prompt before appending generated ids, so training sees the token boundaries inference
// will. For ordinary texts this equals encoding the whole string (tested for each family); it differs
// only where a kept text starts with whitespace that merges with the markup's, e.g. a Qwen3 reply
// "\nHi" after "<|im_start|>assistant\n" ("\n" + "\nHi" rather than "\n\n" + "Hi").
// Rules it keeps:
// - Roles map once, here: "model" -> "assistant" for the template (which may map it back, as Gemma's
//   does); the system instruction is a leading system message (Gemma's template folds it into the
//   first user turn; it is found there and stays untrained).
// - Templates may rewrite a message's text: Llama's and Gemma's trim it; Qwen3's keeps it as written
//   except that it drops the <think>...</think> reasoning of model turns before the last user message
//   and strips leading newlines from the replies after it. Each message is looked
//   up as written, trimmed, then (for reasoning) in the template's reasoning layout and as its answer
//   part; what the template kept is what is trained, whichever layout the data wrote reasoning in.
// - The loss span starts where the model starts writing at inference: at the end of the generation
//   prompt (what the template appends for add_generation_prompt with the same options, probed once
//   per tokenizer and options) found last in the markup between the previous message and the turn's
//   text. Template text between the two is trained: Qwen3's empty "<think>\n\n</think>\n\n" before
//   the final reply with thinking on (the template's default), which a prompt ending in
//   "<|im_start|>assistant\n" leaves the model to write. With enableThinking false that block ends the
//   prompt and is context. Llama's and Gemma's prompts end right before the text. Where the markup
//   does not hold the prompt (a template whose history differs from its prompt) it starts at the text.
// - It ends at the end of the turn's end-of-turn token, found as the first special token after the
//   text whose id is in tokenizer.eosTokenIds or is the template's turn terminator. Anything a
//   template put between the two would be trained too (the model must produce it before it can
//   stop); none of the three families puts anything there.
// Cost: linear in the size of the example. The template is rendered for the example, its skeleton is
// cached per layout (without tools), and repeated layouts reuse the render memo of chat-template.ts; each text and generation prompt is looked for only inside its own turn, and "the next
// end-of-turn token after position p" is answered from one index of every terminator occurrence
// (built in one pass), never by scanning the rest of the text again; so an example of many turns
// costs what its length costs.

import { InvalidRequestError, UnsupportedModelError } from '../errors.js';
import type { TemplateMessage, Tokenizer } from '../tokenizer/tokenizer.js';
import { toolCallStyle } from '../structured/tools.js';
import type { Conversation, Dialogue } from './conversation.js';
import { DatasetError } from './errors.js';

export interface RenderOptions {
  /** Passed to the template as enable_thinking (Qwen3); left undefined when not given. */
  enableThinking?: boolean;
}

export interface RenderedExample {
  tokens: number[];
  /** lossMask[t] = 1 when token t is a training target (predicted from tokens[0..t-1]). */
  lossMask: Uint8Array;
}

/**
 * The chat-template messages of a conversation, as transformers takes them: system first, "model" as
 * "assistant" (with its function calls as tool_calls, arguments as objects), a user turn's function
 * responses as "tool" messages before its text (a user turn of responses alone has no user message).
 */
export function toChatMessages(dialogue: Dialogue): TemplateMessage[] {
  return chatMessages(dialogue).messages;
}

/** toChatMessages, and for each turn the index of the message holding its text (-1: none). */
function chatMessages(dialogue: Dialogue): { messages: TemplateMessage[]; turnMessage: number[] } {
  const messages: TemplateMessage[] = [];
  const turnMessage: number[] = [];
  if (dialogue.systemInstruction !== undefined) messages.push({ role: 'system', content: dialogue.systemInstruction });
  for (const t of dialogue.turns) {
    if (t.role === 'model') {
      turnMessage.push(messages.length);
      const m: TemplateMessage = { role: 'assistant', content: t.text };
      if (t.calls?.length) m.tool_calls = t.calls.map((c) => ({ type: 'function', function: { name: c.name, arguments: c.args } }));
      messages.push(m);
      continue;
    }
    for (const r of t.responses ?? []) messages.push({ role: 'tool', ...(r.name ? { name: r.name } : {}), content: r.content });
    if (t.text !== '' || !t.responses?.length) {
      turnMessage.push(messages.length);
      messages.push({ role: 'user', content: t.text });
    } else {
      turnMessage.push(-1);
    }
  }
  return { messages, turnMessage };
}

/** Whether a dialogue has function calls, function responses or declarations (it needs a tool-capable template). */
export function usesTools(dialogue: Dialogue): boolean {
  return dialogue.tools !== undefined || dialogue.turns.some((t) => t.calls?.length || t.responses?.length);
}

/** The inference prompt for a dialogue that ends with a user turn: rendered text and its ids. */
export function renderPrompt(
  input: Dialogue | TemplateMessage[], tokenizer: Tokenizer, opts: RenderOptions = {},
): { text: string; tokens: number[] } {
  const text = renderPromptText(input, tokenizer, opts);
  return { text, tokens: tokenizer.encode(text, { addSpecialTokens: false }) };
}

/** The inference prompt's rendered text alone (renderPrompt without the tokenizing). */
export function renderPromptText(input: Dialogue | TemplateMessage[], tokenizer: Tokenizer, opts: RenderOptions = {}): string {
  const messages = Array.isArray(input) ? input : toChatMessages(input);
  const last = messages[messages.length - 1];
  if (!last || last.role !== 'user') {
    throw new InvalidRequestError('a prompt must end with a user turn (the model writes the next one)');
  }
  return tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true, enableThinking: opts.enableThinking });
}

/** A piece of the rendered example that is encoded on its own: loss-carrying or not. */
export interface RenderedSegment {
  text: string;
  loss: 0 | 1;
}

/** Tokens and loss mask for one training example. */
export function renderForTraining(conv: Conversation, tokenizer: Tokenizer, opts: RenderOptions = {}): RenderedExample {
  const tokens: number[] = [];
  const mask: number[] = [];
  for (const { text, loss } of renderSegments(conv, tokenizer, opts)) {
    for (const id of tokenizer.encode(text, { addSpecialTokens: false })) {
      tokens.push(id);
      mask.push(loss);
    }
  }
  return { tokens, lossMask: Uint8Array.from(mask) };
}

/**
 * The rendered example cut at the loss-span boundaries, in order, empty pieces left out; each piece
 * encodes to its tokens on its own (addSpecialTokens false). Token counting reads these.
 */
export function renderSegments(conv: Conversation, tokenizer: Tokenizer, opts: RenderOptions = {}): RenderedSegment[] {
  const fail = (message: string): DatasetError => new DatasetError({ ...conv.source, path: '', message });
  if (tokenizer.chatTemplate === null) {
    throw new UnsupportedModelError('the model has no chat template (tokenizer_config.json chat_template), so conversations cannot be rendered for training; use an instruction-tuned model');
  }
  const { messages, turnMessage } = chatMessages(conv);
  // Function parts need a template that renders them; where it does not, the example is refused at
  // its first function part or declaration.
  const tools = usesTools(conv);
  const style = tools ? toolCallStyle(tokenizer.chatTemplate) : null;
  if (tools && !style) {
    throw new DatasetError({
      ...conv.source, path: conv.toolsPath ?? '', kind: 'render_failed',
      message: 'this model\'s chat template has no tool support (it neither renders `tools` nor teaches a tool-call format), so examples with function calls, responses or declarations cannot be trained on it; use a model whose template supports tools (Qwen3, Llama 3.1 Instruct)',
    });
  }
  const templateOpts = { enableThinking: opts.enableThinking, ...(conv.tools ? { tools: conv.tools } : {}) };
  let text: string;
  try {
    text = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: false, ...templateOpts });
  } catch (e) {
    if (e instanceof InvalidRequestError) throw fail(e.message);
    throw e;
  }

  const terminators = endOfTurnTokens(tokenizer);
  const ends = new TerminatorIndex(text, terminators);
  const skeleton = tools ? renderSkeletonUncached(messages, tokenizer, templateOpts) : renderSkeleton(messages, tokenizer, opts);
  // Where a model turn's text is empty (it only calls functions), its span starts at its first call.
  const opener = style === 'hermes' ? '<tool_call>' : '{"name": ';
  const targets: Target[] = messages.map((m) => ({
    forms: candidates(String(m.content)),
    needed: m.role !== 'tool' && m.role !== 'system',
    ...(m.tool_calls ? { calls: true } : {}),
    ...(m.role === 'assistant' && m.content === '' && m.tool_calls ? { opener } : {}),
  }));
  const found = locateMessages(text, skeleton, ends, targets);
  const prompt = generationPrompt(tokenizer, opts);
  const spans: [number, number][] = [];
  let k = 0;
  let before = 0; // end of the located messages before message m, and of the last span
  conv.turns.forEach((turn, i) => {
    const m = turnMessage[i]!;
    if (m < 0) return; // function responses only: context, never trained, not looked for
    for (; k < m; k++) before = Math.max(before, found[k]?.end ?? 0);
    const at = found[m];
    const which = `${turn.role} turn ${i + 1} of ${conv.turns.length}`;
    if (!at) throw fail(`the chat template rewrote the text of ${which}${turn.calls?.length && turn.text ? ' (some templates, Llama 3.1\'s, drop the text beside a function call)' : ''}, so its tokens cannot be located for the loss mask`);
    if (turn.role !== 'model' || turn.weight === 0) return;
    const limit = found.slice(m + 1).find((f) => f)?.start ?? text.length;
    const end = ends.firstEnd(at.end, limit);
    if (end < 0) throw fail(`the chat template puts no end-of-turn token (${terminators.join(', ')}) after ${which}`);
    // The model writes from the end of the generation prompt: where the markup before the text holds
    // it, what lies between (Qwen3's empty think block with thinking on) is the model's to write too.
    const g = prompt === null ? -1 : text.slice(before, at.start).lastIndexOf(prompt);
    spans.push([g < 0 ? at.start : before + g + prompt!.length, end]);
    before = end;
  });

  const segments: RenderedSegment[] = [];
  const push = (piece: string, loss: 0 | 1): void => {
    if (piece !== '') segments.push({ text: piece, loss });
  };
  let cursor = 0;
  for (const [start, end] of spans) {
    push(text.slice(cursor, start), 0);
    push(text.slice(start, end), 1);
    cursor = end;
  }
  push(text.slice(cursor), 0);
  return segments;
}

const promptCache = new WeakMap<Tokenizer, Map<boolean | undefined, string | null>>();

/**
 * What the template appends for add_generation_prompt with these options, from a probe conversation
 * (Llama 3: "<|start_header_id|>assistant<|end_header_id|>\n\n"; Qwen3: "<|im_start|>assistant\n",
 * and "<think>\n\n</think>\n\n" after it with enable_thinking false); null when it appends nothing
 * or the probe fails. Remembered per tokenizer and options.
 */
export function generationPrompt(tokenizer: Tokenizer, opts: RenderOptions = {}): string | null {
  let cache = promptCache.get(tokenizer);
  if (!cache) promptCache.set(tokenizer, (cache = new Map()));
  const hit = cache.get(opts.enableThinking);
  if (hit !== undefined) return hit;
  const probe = [{ role: 'user', content: 'tunekit generation prompt probe' }];
  let prompt: string | null = null;
  try {
    const closed = tokenizer.applyChatTemplate(probe, { addGenerationPrompt: false, enableThinking: opts.enableThinking });
    const open = tokenizer.applyChatTemplate(probe, { addGenerationPrompt: true, enableThinking: opts.enableThinking });
    if (open.length > closed.length && open.startsWith(closed)) prompt = open.slice(closed.length);
  } catch {
    // A template that refuses the probe: spans start at the turns' texts.
  }
  cache.set(opts.enableThinking, prompt);
  return prompt;
}

const terminatorCache = new WeakMap<Tokenizer, string[]>();

/**
 * The strings of the tokens that can close a model turn: the generation eos tokens, plus the token a
 * probe conversation shows right after the assistant's text when that one is special.
 */
export function endOfTurnTokens(tokenizer: Tokenizer): string[] {
  const cached = terminatorCache.get(tokenizer);
  if (cached) return cached;
  const ids = new Set(tokenizer.eosTokenIds);
  const reply = 'tunekit end-of-turn probe';
  let probe = '';
  try {
    probe = tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }, { role: 'assistant', content: reply }]);
  } catch {
    // A template that refuses the probe still has the eos ids.
  }
  const at = probe.lastIndexOf(reply);
  const next = at < 0 ? undefined : tokenizer.encode(probe.slice(at + reply.length), { addSpecialTokens: false })[0];
  if (next !== undefined && tokenizer.isSpecial(next)) ids.add(next);
  const strings = [...ids].map((id) => tokenizer.idToToken(id)).filter((s): s is string => !!s);
  if (strings.length === 0) {
    throw new UnsupportedModelError('the tokenizer has no end-of-sequence token and its chat template closes turns with no special token; model turns cannot be trained to stop');
  }
  terminatorCache.set(tokenizer, strings);
  return strings;
}

/**
 * Every occurrence of the terminator strings in one rendered text, found in one pass per terminator,
 * so that "the end of the earliest terminator in text[from, limit)" costs a binary search instead of
 * an indexOf over the rest of the text (which, once per turn, made long examples quadratic).
 */
class TerminatorIndex {
  /** Per terminator: the start of each occurrence (overlapping ones included), ascending. */
  private readonly starts: number[][];

  constructor(text: string, private readonly needles: string[]) {
    this.starts = needles.map((n) => {
      const at: number[] = [];
      for (let i = text.indexOf(n); i >= 0; i = text.indexOf(n, i + 1)) at.push(i);
      return at;
    });
  }

  /**
   * End of the earliest occurrence of any terminator within text[from, limit), or -1: for each
   * terminator, its first occurrence at or after `from`, kept when it ends by `limit`.
   */
  firstEnd(from: number, limit: number): number {
    let best = -1;
    this.needles.forEach((n, k) => {
      const starts = this.starts[k]!;
      let lo = 0;
      let hi = starts.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (starts[mid]! < from) lo = mid + 1;
        else hi = mid;
      }
      if (lo === starts.length) return;
      const end = starts[lo]! + n.length;
      if (end <= limit && (best < 0 || end < best)) best = end;
    });
    return best;
  }

  /** Whether a terminator starts at position i. */
  startsAt(text: string, i: number): boolean {
    return this.needles.some((t) => text.startsWith(t, i));
  }
}

/**
 * The forms a template may have rendered a message's text in, most faithful first. A reply with
 * reasoning also has the form Qwen3's template gives it when it keeps the reasoning (the final turns):
 * "<think>\n" + reasoning without its surrounding newlines + "\n</think>\n\n" + answer without leading
 * newlines, whatever layout the data used ("<think>x</think>y" included), so the reasoning is trained
 * wherever it is rendered; where the template drops it (turns before the last user message), only the
 * answer part is found.
 */
function candidates(content: string): string[] {
  const forms = [content, content.trim()];
  const close = content.lastIndexOf('</think>');
  if (close >= 0) {
    const answer = content.slice(close + '</think>'.length).replace(/^\n+/, '');
    // As the template computes it: the text before the first </think>, after the last <think> in it.
    const before = content.slice(0, content.indexOf('</think>')).replace(/\n+$/, '');
    const open = before.lastIndexOf('<think>');
    const reasoning = (open >= 0 ? before.slice(open + '<think>'.length) : before).replace(/^\n+/, '').replace(/\n+$/, '');
    forms.push(`<think>\n${reasoning}\n</think>\n\n${answer}`, answer, answer.trim());
  }
  return [...new Set(forms)].filter((f) => f !== '');
}

/**
 * The template's markup around the messages: the conversation rendered with each text replaced by a
 * sentinel, cut at the sentinels (n messages give n + 1 pieces). null when a sentinel went missing.
 * This says exactly where the markup ends and a text begins, which the rendered string alone cannot
 * when a text starts or ends with whitespace the template may have trimmed.
 */
function renderSkeleton(messages: TemplateMessage[], tokenizer: Tokenizer, opts: RenderOptions): string[] | null {
  // The sentinel conversation depends only on the roles (and options), so its rendering is remembered
  // per tokenizer: datasets repeat a handful of role sequences. Long ones are rendered each time (it
  // costs what rendering the example costs), so the cache stays small whatever the dataset holds.
  if (messages.length > SKELETON_CACHE_MAX_MESSAGES) return renderSkeletonUncached(messages, tokenizer, opts);
  let cache = skeletonCache.get(tokenizer);
  if (!cache) skeletonCache.set(tokenizer, (cache = new Map()));
  const key = `${opts.enableThinking}:${messages.map((m) => m.role).join(',')}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const skeleton = renderSkeletonUncached(messages, tokenizer, opts);
  if (cache.size >= 1000) cache.clear();
  cache.set(key, skeleton);
  return skeleton;
}

const skeletonCache = new WeakMap<Tokenizer, Map<string, string[] | null>>();
const SKELETON_CACHE_MAX_MESSAGES = 256;

function renderSkeletonUncached(messages: TemplateMessage[], tokenizer: Tokenizer, opts: RenderOptions & { tools?: unknown[] }): string[] | null {
  const sentinel = (i: number): string => `\u27e6tunekit-${i}\u27e7`;
  let rendered: string;
  try {
    rendered = tokenizer.applyChatTemplate(messages.map((m, i) => ({ ...m, content: sentinel(i) })), {
      addGenerationPrompt: false, enableThinking: opts.enableThinking, ...(opts.tools ? { tools: opts.tools } : {}),
    });
  } catch {
    return null;
  }
  const pieces: string[] = [];
  let at = 0;
  for (let i = 0; i < messages.length; i++) {
    const s = rendered.indexOf(sentinel(i), at);
    if (s < 0) return null;
    pieces.push(rendered.slice(at, s));
    at = s + sentinel(i).length;
  }
  pieces.push(rendered.slice(at));
  return pieces;
}

type Span = { start: number; end: number };

/** A message to find: the forms its text may take, whether it must be found, and a call's opener. */
interface Target {
  forms: string[];
  needed: boolean;
  /** For a reply of function calls alone: the text its first call starts with (a zero-length span there). */
  opener?: string;
  /** The message makes function calls. */
  calls?: boolean;
}

/**
 * Where each message's text sits in the rendered string, in order, or null where it was not found.
 * Where the rendered string agrees with the skeleton up to a message, its text starts right after the
 * skeleton's markup, in the first form (as written, trimmed, answer part) that the next markup follows.
 * Where it does not (Qwen3's reasoning block changes the markup of the final reply), the text is
 * searched for from the cursor: first inside its own turn (up to the next end-of-turn token),
 * preferring a match directly followed by that token, so a short text that also occurs in the markup
 * before it (a reply "assistant" after Llama's "<|start_header_id|>assistant") is found in the right
 * place. Every needed message must be found (the caller fails on the first missing one), so after one
 * is missing the rest are left null unsearched; tool results (not needed) may be missing (Llama 3.1
 * renders them as JSON strings).
 */
function locateMessages(text: string, skeleton: string[] | null, ends: TerminatorIndex, targets: Target[]): (Span | null)[] {
  let cursor = 0;
  let missing = false;
  return targets.map((t, i) => {
    if (missing) return null;
    let found: Span | null;
    if (t.opener !== undefined) {
      // In the turn after the one the cursor is in: past its end-of-turn token, before the next.
      const from = ends.firstEnd(cursor, text.length);
      const limit = from < 0 ? -1 : ends.firstEnd(from, text.length);
      const j = from < 0 ? -1 : text.indexOf(t.opener, from);
      found = j >= 0 && (limit < 0 || j < limit) ? { start: j, end: j } : null;
    } else {
      found = (skeleton && alignWithSkeleton(text, cursor, t.forms, skeleton[i]!, skeleton[i + 1]!)) ?? search(text, cursor, t.forms, ends);
    }
    if (found) {
      // A turn with function calls: what follows is looked for after its end (its call JSON may hold
      // the next message's text, e.g. a tool result "[]").
      const end = t.calls ? ends.firstEnd(found.end, text.length) : -1;
      cursor = end >= 0 ? end : found.end;
    } else if (t.needed) {
      missing = true;
    }
    return found;
  });
}

function alignWithSkeleton(text: string, cursor: number, forms: string[], before: string, after: string): Span | null {
  if (!text.startsWith(before, cursor)) return null;
  const start = cursor + before.length;
  const form = forms.find((f) => text.startsWith(f, start) && text.startsWith(after, start + f.length)) ??
    forms.find((f) => text.startsWith(f, start));
  return form === undefined ? null : { start, end: start + form.length };
}

function search(text: string, cursor: number, forms: string[], ends: TerminatorIndex): Span | null {
  const turnEnd = ends.firstEnd(cursor, text.length);
  const limit = turnEnd < 0 ? text.length : turnEnd;
  // The turn alone: matches that end by `limit` are exactly the matches inside this slice (matches
  // further on start later, so end later too), and looking for them never reads past the turn.
  const turn = text.slice(cursor, limit);
  for (const form of forms) {
    for (let j = turn.indexOf(form); j >= 0; j = turn.indexOf(form, j + 1)) {
      if (ends.startsAt(text, cursor + j + form.length)) return { start: cursor + j, end: cursor + j + form.length };
    }
  }
  for (const form of forms) {
    const j = turn.indexOf(form);
    if (j >= 0) return { start: cursor + j, end: cursor + j + form.length };
  }
  for (const form of forms) {
    const i = text.indexOf(form, cursor);
    if (i >= 0) return { start: i, end: i + form.length };
  }
  return null;
}
