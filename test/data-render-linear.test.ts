// renderSegments stays linear in the turns of an example (issue 8: validate with 10k / 20k / 40k turns
// took 7 / 12 / 39 s, because the end-of-turn token after each turn was looked for with an indexOf
// over the rest of the rendered text) and gives exactly what the former definition gave:
// - the segments (and so tokens and loss mask) equal those of the reference below, the former code
//   kept verbatim (plus the later rules it notes), on long examples of every shape the locator
//   handles, for llama, qwen3 and gemma3;
// - counts, not timings: the characters that String.prototype.indexOf examines while rendering grow
//   linearly (4x the turns: at most 6x the characters; the former code read 16x), the chat template
//   is rendered twice per example and the tokenizer called at most once per segment.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer, type ChatMessage } from '../src/tokenizer/tokenizer.js';
import { endOfTurnTokens, renderForTraining, renderSegments, toChatMessages, type RenderedSegment } from '../src/data/render.js';
import { DatasetError } from '../src/data/errors.js';
import type { Conversation, Turn } from '../src/data/conversation.js';
import { InvalidRequestError } from '../src/errors.js';
import { FAMILIES, tinyModelDir } from './helpers/tiny-models.js';
import type { Family } from '../src/models/config.js';

const tokenizers = new Map<Family, Tokenizer>();
function tokenizer(family: Family): Tokenizer {
  let tok = tokenizers.get(family);
  if (!tok) tokenizers.set(family, (tok = Tokenizer.loadSync(tinyModelDir(family))));
  return tok;
}

// ---- The reference: renderSegments as it was before the linear locator (quadratic, exact). ----

function referenceSegments(conv: Conversation, tokenizer: Tokenizer): RenderedSegment[] {
  const fail = (message: string): DatasetError => new DatasetError({ ...conv.source, path: '', message });
  // Text turns only (this reference predates function parts): every content is a string.
  const messages = toChatMessages(conv) as ChatMessage[];
  let text: string;
  try {
    text = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: false });
  } catch (e) {
    if (e instanceof InvalidRequestError) throw fail(e.message);
    throw e;
  }
  const terminators = endOfTurnTokens(tokenizer);
  const skeleton = refSkeleton(messages, tokenizer);
  const found = refLocate(messages, text, skeleton, terminators);
  const spans: [number, number][] = [];
  const offset = messages.length - conv.turns.length;
  conv.turns.forEach((turn, i) => {
    const at = found[offset + i];
    const which = `${turn.role} turn ${i + 1} of ${conv.turns.length}`;
    if (!at) throw fail(`the chat template rewrote the text of ${which}, so its tokens cannot be located for the loss mask`);
    if (turn.role !== 'model' || turn.weight === 0) return;
    const limit = found[offset + i + 1]?.start ?? text.length;
    const end = refFirstOf(text, terminators, at.end, limit);
    if (end < 0) throw fail(`the chat template puts no end-of-turn token (${terminators.join(', ')}) after ${which}`);
    spans.push([refModelStart(tokenizer, messages, offset + i, text, at.start), end]);
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

/**
 * Where the model starts writing a turn (the rule since Qwen3's empty think block was found untrained):
 * at the end of the turn's inference prompt (the messages before it rendered with the generation
 * prompt) when the rendered text continues that prompt up to the turn's text; else at the text.
 * Rendering each prefix is quadratic in the turns, so on long examples it is done for the last four
 * messages only and the others keep their text's start, which for these templates is the same (only
 * Qwen3's final reply has markup after its prompt; were another turn to have some, the comparison
 * with renderSegments would fail).
 */
function refModelStart(tokenizer: Tokenizer, messages: ChatMessage[], m: number, text: string, start: number): number {
  if (messages.length > 8 && m < messages.length - 4) return start;
  const prompt = tokenizer.applyChatTemplate(messages.slice(0, m), { addGenerationPrompt: true });
  return prompt.length <= start && text.startsWith(prompt) ? prompt.length : start;
}

function refFirstOf(text: string, needles: string[], from: number, limit: number): number {
  let best = -1;
  for (const n of needles) {
    const i = text.indexOf(n, from);
    if (i >= 0 && i + n.length <= limit && (best < 0 || i + n.length < best)) best = i + n.length;
  }
  return best;
}

function refCandidates(content: string): string[] {
  const forms = [content, content.trim()];
  const close = content.lastIndexOf('</think>');
  if (close >= 0) {
    const answer = content.slice(close + '</think>'.length).replace(/^\n+/, '');
    // Since issue 9 a reply's reasoning is also looked for in the layout Qwen3's template renders it in
    // (test/data-render-reasoning.test.ts); the reference follows that definition.
    const before = content.slice(0, content.indexOf('</think>')).replace(/\n+$/, '');
    const open = before.lastIndexOf('<think>');
    const reasoning = (open >= 0 ? before.slice(open + '<think>'.length) : before).replace(/^\n+/, '').replace(/\n+$/, '');
    forms.push(`<think>\n${reasoning}\n</think>\n\n${answer}`, answer, answer.trim());
  }
  return [...new Set(forms)].filter((f) => f !== '');
}

function refSkeleton(messages: ChatMessage[], tokenizer: Tokenizer): string[] | null {
  const sentinel = (i: number): string => `\u27e6tunekit-${i}\u27e7`;
  let rendered: string;
  try {
    rendered = tokenizer.applyChatTemplate(messages.map((m, i) => ({ ...m, content: sentinel(i) })), { addGenerationPrompt: false });
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

function refLocate(messages: ChatMessage[], text: string, skeleton: string[] | null, terminators: string[]): (Span | null)[] {
  let cursor = 0;
  return messages.map((m, i) => {
    const forms = refCandidates(m.content);
    const found = (skeleton && refAlign(text, cursor, forms, skeleton[i], skeleton[i + 1])) ?? refSearch(text, cursor, forms, terminators);
    if (found) cursor = found.end;
    return found;
  });
}

function refAlign(text: string, cursor: number, forms: string[], before: string, after: string): Span | null {
  if (!text.startsWith(before, cursor)) return null;
  const start = cursor + before.length;
  const form = forms.find((f) => text.startsWith(f, start) && text.startsWith(after, start + f.length)) ??
    forms.find((f) => text.startsWith(f, start));
  return form === undefined ? null : { start, end: start + form.length };
}

function refSearch(text: string, cursor: number, forms: string[], terminators: string[]): Span | null {
  const turnEnd = refFirstOf(text, terminators, cursor, text.length);
  const limit = turnEnd < 0 ? text.length : turnEnd;
  const within = (start: number, form: string): boolean => start >= 0 && start + form.length <= limit;
  for (const form of forms) {
    for (let i = text.indexOf(form, cursor); within(i, form); i = text.indexOf(form, i + 1)) {
      if (terminators.some((t) => text.startsWith(t, i + form.length))) return { start: i, end: i + form.length };
    }
  }
  for (const form of forms) {
    const i = text.indexOf(form, cursor);
    if (within(i, form)) return { start: i, end: i + form.length };
  }
  for (const form of forms) {
    const i = text.indexOf(form, cursor);
    if (i >= 0) return { start: i, end: i + form.length };
  }
  return null;
}

// ---- Examples ----

const conv = (turns: Turn[], systemInstruction?: string): Conversation => ({
  ...(systemInstruction !== undefined ? { systemInstruction } : {}), turns, source: { file: 'long.jsonl', line: 3 },
});

/** n alternating turns; text(i) gives turn i's text. */
function alternating(n: number, text: (i: number) => string, opts: { system?: string; weight0?: (i: number) => boolean } = {}): Conversation {
  const turns: Turn[] = [];
  for (let i = 0; i < n; i++) {
    const role = i % 2 === 0 ? 'user' : 'model';
    turns.push({ role, text: text(i), ...(role === 'model' && opts.weight0?.(i) ? { weight: 0 as const } : {}) });
  }
  return conv(turns, opts.system);
}

const END: Record<Family, string> = { llama: '<|eot_id|>', qwen3: '<|im_end|>', gemma3: '<end_of_turn>' };

/** Long examples of every shape the locator handles: plain, whitespace the template trims, texts
 * that equal markup words, reasoning blocks (Qwen3 drops or keeps them), weight-0 replies, a system
 * prompt, repeated texts, and a text holding an end-of-turn token itself. */
function shapes(family: Family, n: number): [string, Conversation][] {
  return [
    ['plain', alternating(n, (i) => (i % 2 ? `answer ${i}` : `question ${i}`))],
    ['same texts', alternating(n, (i) => (i % 2 ? 'ok' : 'hi'))],
    ['whitespace', alternating(n, (i) => (i % 3 === 0 ? `\n  text ${i}  \n` : i % 3 === 1 ? ` ${i}` : `${i}\t`), { system: '  Be brief.  ' })],
    ['markup words', alternating(n, (i) => ['user', 'assistant', 'model', 'system', '\n', 'think'][i % 6]!.trim() || 'x')],
    ['reasoning', alternating(n, (i) => (i % 2 ? `<think>\nstep ${i}\n</think>\n\nanswer ${i}` : `q ${i}`))],
    ['reasoning last', alternating(n, (i) => (i === n - 1 ? `<think>why</think>\n\nlast ${i}` : `t ${i}`))],
    ['weight 0', alternating(n, (i) => `w ${i}`, { weight0: (i) => i % 4 === 1 })],
    ['terminator in text', alternating(n, (i) => (i % 10 === 3 ? `a ${END[family]} b ${i}` : `c ${i}`))],
  ];
}

function outcome(f: () => RenderedSegment[]): RenderedSegment[] | string {
  try {
    return f();
  } catch (e) {
    if (e instanceof DatasetError) return `DatasetError: ${e.message}`;
    throw e;
  }
}

for (const family of FAMILIES) {
  test(`${family}: long examples render to exactly the former segments`, () => {
    const tok = tokenizer(family);
    for (const n of [2, 6, 1200]) {
      for (const [name, c] of shapes(family, n)) {
        const expected = outcome(() => referenceSegments(c, tok));
        const actual = outcome(() => renderSegments(c, tok));
        assert.deepEqual(actual, expected, `${name}, ${n} turns`);
      }
    }
  });
}

// ---- Counts ----

interface Work { indexOfChars: number; renders: number; encodes: number }

/** Runs f counting the characters indexOf examines, chat-template renders and encode calls. */
function measure(tok: Tokenizer, f: () => void): Work {
  const work: Work = { indexOfChars: 0, renders: 0, encodes: 0 };
  const indexOf = String.prototype.indexOf;
  const apply = tok.applyChatTemplate;
  const encode = tok.encode;
  // eslint-disable-next-line no-extend-native
  String.prototype.indexOf = function (this: string, needle: string, from?: number): number {
    const start = Math.max(0, Math.min(from ?? 0, this.length));
    const at = indexOf.call(this, needle, from);
    work.indexOfChars += at >= 0 ? at - start + needle.length : this.length - start;
    return at;
  };
  tok.applyChatTemplate = function (...args: Parameters<Tokenizer['applyChatTemplate']>) {
    work.renders++;
    return apply.apply(this, args);
  };
  tok.encode = function (...args: Parameters<Tokenizer['encode']>) {
    work.encodes++;
    return encode.apply(this, args);
  };
  try {
    f();
  } finally {
    String.prototype.indexOf = indexOf; // eslint-disable-line no-extend-native
    tok.applyChatTemplate = apply;
    tok.encode = encode;
  }
  return work;
}

for (const family of FAMILIES) {
  test(`${family}: the work of rendering grows linearly with the turns`, () => {
    const tok = tokenizer(family);
    endOfTurnTokens(tok); // its one-time probes are not part of the example's work
    renderSegments(alternating(2, (i) => `${i}`), tok);
    const example = (n: number) => alternating(n, (i) => (i % 2 ? `answer number ${i}` : `question number ${i}`));
    const small = example(2000);
    const large = example(8000);
    const s = measure(tok, () => renderSegments(small, tok));
    const l = measure(tok, () => renderSegments(large, tok));
    assert.ok(l.indexOfChars <= 6 * s.indexOfChars, `indexOf read ${s.indexOfChars} characters for 2,000 turns, ${l.indexOfChars} for 8,000`);
    assert.ok(s.renders <= 2 && l.renders <= 2, `template rendered ${s.renders} / ${l.renders} times`);
    // The measure sees the former definition's quadratic reading (so it would see it come back).
    const ref = measure(tok, () => referenceSegments(small, tok));
    const refSmall = measure(tok, () => referenceSegments(example(500), tok));
    assert.ok(ref.indexOfChars > 10 * refSmall.indexOfChars, `reference: ${refSmall.indexOfChars} -> ${ref.indexOfChars}`);

    const segments = renderSegments(large, tok).length;
    const t = measure(tok, () => renderForTraining(large, tok));
    assert.ok(t.encodes <= segments, `${t.encodes} encode calls for ${segments} segments`);
    assert.ok(t.indexOfChars <= 6 * measure(tok, () => renderForTraining(small, tok)).indexOfChars);
  });
}
