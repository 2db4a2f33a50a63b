// A Hugging Face tokenizer directory (tokenizer.json, tokenizer_config.json, optional
// generation_config.json / special_tokens_map.json / chat_template.jinja) behind one small class.
// Rules it keeps:
// - Encoding and decoding are delegated to @huggingface/tokenizers; this file owns every reading of the
//   files' fields, so callers see ids, flags and a template, never the JSON.
// - Special/added tokens written in text always encode to their single id (HF's default,
//   split_special_tokens=false). Rendered chat prompts already hold BOS: encode them with
//   addSpecialTokens: false.
// - decode never applies clean_up_tokenization_spaces (HF's " ." -> "." rewrite): decoded text is what
//   the tokens spell, so decode(encode(s)) === s for byte-level tokenizers and streaming stays additive.
// - The stream decoder emits only settled text: never a trailing U+FFFD that a later token could still
//   complete, and all pushes plus flush concatenate to decode(all ids) with the same options.
// - Malformed files are InvalidModelError naming the file and field; unknown components are
//   UnsupportedModelError.
// - maxCharsPerToken bounds how much text one token can stand for, so a caller can tell that a text
//   cannot fit a context without tokenizing it (null where the normalizer could delete text).
// - Chat templates render as transformers renders them (Jinja2 with Python's string semantics; see
//   ./chat-template.ts), with the same variables: the *_token strings, messages, tools (None when not
//   given), documents (None), add_generation_prompt, and any extra keyword arguments.
// - With vocabSize (the model's embedding rows), a tokenizer may define more ids than the model has only
//   when every extra id is a special added token that is not BOS/EOS/PAD/UNK (published Gemma 3 checkpoints:
//   <image_soft_token> is id 262144 of a 262144-row embedding). The model never emits them (generation
//   samples below min(size, vocabSize)); encode() refuses text that spells one, naming it, and the
//   tolerance is announced once per process on the notice channel (stderr by default).

import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ChatTemplate } from './chat-template.js';
import { InvalidModelError, InvalidRequestError, NotFoundError, UnsupportedModelError } from '../errors.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'model' | string;
  content: string;
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  /** Passed to the template only when given (Qwen3 tests `enable_thinking is defined`). */
  enableThinking?: boolean;
  /** JSON schemas of the tools the model may call (transformers' `tools`); None when not given. */
  tools?: unknown[] | null;
  /** Further template variables (transformers' **kwargs of apply_chat_template: date_string, ...). */
  variables?: Record<string, unknown>;
}

/**
 * A message as a chat template sees it: role and content, and whatever else the template reads
 * (tool_calls, reasoning_content, ...). Content may be null or a list of parts, as in transformers.
 */
export interface TemplateMessage {
  role: string;
  content?: unknown;
  [key: string]: unknown;
}

let notify: (message: string) => void = (message) => process.stderr.write(`tunekit: warning: ${message}\n`);
const announced = new Set<string>();

/** Where one-time notices about loaded tokenizers go (stderr by default; tests capture them). */
export function setTokenizerNotices(fn: (message: string) => void): void {
  notify = fn;
}

function noticeOnce(message: string): void {
  if (announced.has(message)) return;
  announced.add(message);
  notify(message);
}

export interface StreamDecoder {
  /** Text completed by this token (may be empty). */
  push(id: number): string;
  /** Whatever is still held back (an incomplete character renders as U+FFFD). */
  flush(): string;
}

/** The parsed JSON files of a tokenizer directory. */
export interface TokenizerFiles {
  tokenizer: Record<string, unknown>;
  config?: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
  specialTokensMap?: Record<string, unknown>;
  /** chat_template.jinja, used when tokenizer_config.json has no chat_template. */
  chatTemplateFile?: string;
}

// The part of @huggingface/tokenizers' Tokenizer this file calls (its bundled types do not resolve
// under NodeNext, so the shape is stated here).
interface HfLike {
  encode(text: string, opts: { add_special_tokens: boolean }): { ids: number[] };
  decode(ids: number[], opts: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
}

type Json = Record<string, unknown>;

// transformers' LlamaTokenizerFast / GemmaTokenizerFast rebuild the post-processor from add_bos_token /
// add_eos_token at load time; every other class uses tokenizer.json's post-processor as written.
const FLAG_DRIVEN_CLASSES = new Set([
  'LlamaTokenizer', 'LlamaTokenizerFast', 'CodeLlamaTokenizer', 'CodeLlamaTokenizerFast', 'GemmaTokenizer', 'GemmaTokenizerFast',
]);

function readJson(dir: string, name: string, required: true): Json;
function readJson(dir: string, name: string, required: false): Json | undefined;
function readJson(dir: string, name: string, required: boolean): Json | undefined {
  const file = path.join(dir, name);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      if (!required) return undefined;
      throw new InvalidModelError(`${file} is missing: a tokenizer directory needs ${name}`);
    }
    throw e;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InvalidModelError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidModelError(`${file} must hold a JSON object`);
  }
  return value as Json;
}

/** bos_token etc. are a string, null, or an AddedToken object {content, ...}. */
function tokenContent(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as Json).content === 'string') return (value as Json).content as string;
  throw new InvalidModelError(`tokenizer_config.json ${field} must be a string or {"content": ...}, got ${JSON.stringify(value)}`);
}

function pickChatTemplate(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.find((t) => t && typeof t === 'object' && (t as Json).name === 'default');
    if (named && typeof (named as Json).template === 'string') return (named as Json).template as string;
    throw new InvalidModelError('tokenizer_config.json chat_template is a list without a {"name": "default"} entry');
  }
  throw new InvalidModelError(`tokenizer_config.json chat_template must be a string or a list of {name, template}`);
}

/** Highest id the tokenizer defines, plus one. */
function countIds(tokenizer: Json): number {
  let max = -1;
  const model = tokenizer.model as Json | undefined;
  const vocab = model?.vocab;
  if (Array.isArray(vocab)) max = vocab.length - 1; // Unigram: [[piece, score], ...]
  else if (vocab && typeof vocab === 'object') {
    for (const id of Object.values(vocab as Json)) if (typeof id === 'number' && id > max) max = id;
  }
  for (const t of (tokenizer.added_tokens as Json[] | undefined) ?? []) {
    if (typeof t.id === 'number' && t.id > max) max = t.id;
  }
  return max + 1;
}

/**
 * How many input UTF-16 units a normalizer can turn into one (1: none or one-for-one replacements,
 * 4: Unicode composition), or null for normalizers that can remove text.
 */
function contraction(normalizer: unknown): number | null {
  if (normalizer === undefined || normalizer === null) return 1;
  if (typeof normalizer !== 'object') return null;
  const n = normalizer as Json;
  switch (n.type) {
    case 'Sequence': {
      let factor = 1;
      for (const part of Array.isArray(n.normalizers) ? n.normalizers : [null]) {
        const f = contraction(part);
        if (f === null || part === null) return null;
        factor *= f;
      }
      return factor;
    }
    case 'NFC': case 'NFKC': case 'NFD': case 'NFKD':
      return 4;
    case 'Prepend': case 'Lowercase': case 'BertNormalizer':
      return n.type === 'BertNormalizer' ? null : 1;
    case 'Replace': {
      const pattern = n.pattern as Json | undefined;
      const from = typeof pattern?.String === 'string' ? pattern.String : null;
      const to = typeof n.content === 'string' ? n.content : null;
      if (from === null || to === null || to.length === 0) return null;
      return Math.max(1, Math.ceil(from.length / to.length));
    }
    default:
      return null;
  }
}

export class Tokenizer {
  readonly size: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: number[];
  readonly padTokenId: number | null;
  readonly chatTemplate: string | null;
  /**
   * Ids below this are ones the model has embedding rows for: min(size, vocabSize) when vocabSize was
   * given, else size. encode() never returns an id at or above it.
   */
  readonly embeddingSize: number;

  private readonly hf: HfLike;
  private readonly special: Set<number>;
  /** Token strings handed to the chat template (bos_token, eos_token, ...). */
  private readonly templateTokens: Record<string, string>;
  /** Set for flag-driven classes: which of BOS/EOS encode() adds; null means the post-processor decides. */
  private readonly addFlags: { bos: boolean; eos: boolean } | null;
  private readonly eosTokenId: number | null;
  private template: ChatTemplate | null = null;
  /** How many input UTF-16 units the normalizer can fold into one; null when it may delete text. */
  private readonly normalizerContraction: number | null;
  private maxChars: number | null | undefined;

  /** Reads a tokenizer directory. Async for the callers' sake; the work is synchronous. */
  static async load(dir: string, opts: { vocabSize?: number } = {}): Promise<Tokenizer> {
    return Tokenizer.loadSync(dir, opts);
  }

  static loadSync(dir: string, opts: { vocabSize?: number } = {}): Tokenizer {
    if (!fs.existsSync(dir)) throw new NotFoundError(`tokenizer directory ${dir} does not exist`);
    if (!fs.statSync(dir).isDirectory()) throw new InvalidModelError(`${dir} is not a directory (expected a tokenizer directory)`);
    const chatTemplatePath = path.join(dir, 'chat_template.jinja');
    const files: TokenizerFiles = {
      tokenizer: readJson(dir, 'tokenizer.json', true),
      config: readJson(dir, 'tokenizer_config.json', false),
      generationConfig: readJson(dir, 'generation_config.json', false),
      specialTokensMap: readJson(dir, 'special_tokens_map.json', false),
      chatTemplateFile: fs.existsSync(chatTemplatePath) ? fs.readFileSync(chatTemplatePath, 'utf8') : undefined,
    };
    return new Tokenizer(files, opts);
  }

  /** Builds a tokenizer from already-parsed files (tests, generated tokenizers). */
  static fromFiles(files: TokenizerFiles, opts: { vocabSize?: number } = {}): Tokenizer {
    return new Tokenizer(files, opts);
  }

  private constructor(files: TokenizerFiles, opts: { vocabSize?: number }) {
    const tj = files.tokenizer;
    const config = files.config ?? {};
    const stm = files.specialTokensMap ?? {};
    if (!tj.model || typeof tj.model !== 'object') throw new InvalidModelError('tokenizer.json has no "model" object');

    this.size = countIds(tj);
    this.embeddingSize = opts.vocabSize === undefined ? this.size : Math.min(this.size, opts.vocabSize);

    // tokenizers.js insists on these keys being present; tokenizer.json may omit the null ones.
    const normalized = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, added_tokens: [], ...tj };
    try {
      // Our own decode() decides about clean-up; specials come from the config only for the model.
      this.hf = new HfTokenizer(normalized, { ...config, clean_up_tokenization_spaces: false }) as unknown as HfLike;
    } catch (e) {
      const msg = (e as Error).message;
      if (/^Unknown /.test(msg)) throw new UnsupportedModelError(`tokenizer.json: ${msg} (not implemented by @huggingface/tokenizers)`);
      throw new InvalidModelError(`tokenizer.json could not be loaded: ${msg}`);
    }

    const idOf = (field: string): number | null => {
      const content = tokenContent(config[field] !== undefined ? config[field] : stm[field], field);
      if (content === null) return null;
      const id = this.hf.token_to_id(content);
      if (id === undefined) throw new InvalidModelError(`tokenizer_config.json ${field} ${JSON.stringify(content)} is not a token of tokenizer.json`);
      return id;
    };
    this.bosTokenId = idOf('bos_token');
    this.eosTokenId = idOf('eos_token');
    this.padTokenId = idOf('pad_token');
    const unkId = idOf('unk_token');

    const eos: number[] = this.eosTokenId === null ? [] : [this.eosTokenId];
    const genEos = files.generationConfig?.eos_token_id;
    for (const id of Array.isArray(genEos) ? genEos : genEos === undefined || genEos === null ? [] : [genEos]) {
      if (!Number.isInteger(id) || id < 0 || id >= this.size) {
        throw new InvalidModelError(`generation_config.json eos_token_id ${JSON.stringify(id)} is not a token id below ${this.size}`);
      }
      if (!eos.includes(id)) eos.push(id);
    }
    this.eosTokenIds = eos;

    this.special = new Set<number>();
    for (const t of tj.added_tokens as Json[] | undefined ?? []) if (t.special === true && typeof t.id === 'number') this.special.add(t.id);
    for (const id of [this.bosTokenId, this.eosTokenId, this.padTokenId, unkId]) if (id !== null) this.special.add(id);
    const extra = config.additional_special_tokens ?? stm.additional_special_tokens;
    for (const t of Array.isArray(extra) ? extra : []) {
      const content = tokenContent(t, 'additional_special_tokens');
      const id = content === null ? undefined : this.hf.token_to_id(content);
      if (id !== undefined) this.special.add(id);
    }

    this.templateTokens = {};
    for (const [key, value] of Object.entries({ ...stm, ...config })) {
      if (!key.endsWith('_token')) continue;
      const content = typeof value === 'string' ? value : value && typeof value === 'object' ? (value as Json).content : undefined;
      if (typeof content === 'string') this.templateTokens[key] = content;
    }

    const cls = typeof config.tokenizer_class === 'string' ? config.tokenizer_class : '';
    this.addFlags = FLAG_DRIVEN_CLASSES.has(cls)
      ? { bos: config.add_bos_token !== false, eos: config.add_eos_token === true }
      : null;

    this.chatTemplate = pickChatTemplate(config.chat_template) ?? files.chatTemplateFile ?? null;
    this.normalizerContraction = contraction(tj.normalizer);
    if (this.embeddingSize < this.size) this.checkTokensBeyondEmbedding(tj, opts.vocabSize!, unkId);
  }

  /**
   * A tokenizer with more ids than the model's embedding: acceptable only when each extra id is a special
   * added token the model is never asked to produce or read (not BOS/EOS/PAD/UNK, not a generation stop id).
   */
  private checkTokensBeyondEmbedding(tj: Json, vocabSize: number, unkId: number | null): void {
    const added = new Map<number, Json>();
    for (const t of (tj.added_tokens as Json[] | undefined) ?? []) if (typeof t.id === 'number') added.set(t.id, t);
    const roles = new Map<number, string>();
    for (const [id, role] of [[this.bosTokenId, 'bos_token'], [this.padTokenId, 'pad_token'], [unkId, 'unk_token']] as const) if (id !== null) roles.set(id, role);
    for (const id of this.eosTokenIds) roles.set(id, 'an end-of-sequence token');
    const extra: string[] = [];
    for (let id = vocabSize; id < this.size; id++) {
      const t = added.get(id);
      const name = t ? JSON.stringify(t.content) : JSON.stringify(this.hf.id_to_token(id) ?? null);
      const why = !t ? 'a vocabulary token, not an added one'
        : t.special !== true ? 'an added token that is not special'
          : roles.has(id) ? `the tokenizer's ${roles.get(id)}` : null;
      if (why !== null) {
        throw new InvalidModelError(`tokenizer.json defines ${this.size} tokens but config.json vocab_size is ${vocabSize}, and id ${id} (${name}) is ${why}: the model has no embedding row for it`);
      }
      extra.push(`${name} (${id})`);
    }
    const shown = extra.length > 4 ? `${extra.slice(0, 4).join(', ')} and ${extra.length - 4} more` : extra.join(', ');
    noticeOnce(`tokenizer.json defines ${this.size} tokens but config.json vocab_size is ${vocabSize}; the special token${extra.length > 1 ? 's' : ''} ${shown} ` +
      `beyond the embedding ${extra.length > 1 ? 'are' : 'is'} never generated, and text that spells ${extra.length > 1 ? 'one' : 'it'} is refused`);
  }

  /**
   * The most UTF-16 units of input text one token can cover: the longest piece in the vocabulary
   * (byte-level pieces spell one byte per character, so a piece of n characters covers at most n input
   * characters), times what the normalizer can fold into one character (NFC composes at most 4 code
   * points into one). A text of L characters is therefore at least L / maxCharsPerToken tokens. Null
   * when the normalizer can delete text (strip, arbitrary replacements): then no such bound holds.
   */
  get maxCharsPerToken(): number | null {
    if (this.maxChars !== undefined) return this.maxChars;
    if (this.normalizerContraction === null) return (this.maxChars = null);
    let longest = 1;
    for (let id = 0; id < this.size; id++) {
      const piece = this.hf.id_to_token(id);
      if (piece !== undefined && piece.length > longest) longest = piece.length;
    }
    return (this.maxChars = longest * this.normalizerContraction);
  }

  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    const add = opts.addSpecialTokens ?? true;
    const ids = this.hf.encode(text, { add_special_tokens: add && !this.addFlags }).ids;
    if (add && this.addFlags?.bos && this.bosTokenId !== null) ids.unshift(this.bosTokenId);
    if (add && this.addFlags?.eos && this.eosTokenId !== null) ids.push(this.eosTokenId);
    // A piece with no id and no unk_token comes back undefined: the vocabulary is incomplete.
    if (ids.some((id) => id === undefined)) {
      throw new InvalidModelError(`tokenizer.json cannot encode ${JSON.stringify(text.slice(0, 40))}: a piece has no id and there is no unk_token`);
    }
    if (this.embeddingSize < this.size) {
      const beyond = ids.find((id) => id >= this.embeddingSize);
      if (beyond !== undefined) {
        throw new InvalidRequestError(`the text contains ${JSON.stringify(this.hf.id_to_token(beyond))}, a special token (id ${beyond}) that this model ` +
          `has no embedding for (config.json vocab_size ${this.embeddingSize}); remove it from the text`);
      }
    }
    return ids;
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.size) {
        throw new InvalidRequestError(`token id ${id} is outside the tokenizer's 0..${this.size - 1}`);
      }
    }
    const kept = opts.skipSpecialTokens ? ids.filter((id) => !this.special.has(id)) : ids;
    if (kept.length === 0) return '';
    return this.hf.decode(kept, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  isSpecial(id: number): boolean {
    return this.special.has(id);
  }

  applyChatTemplate(messages: readonly (ChatMessage | TemplateMessage)[], opts: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === null) {
      throw new InvalidRequestError('this model has no chat template (tokenizer_config.json chat_template is not set); send a plain prompt instead');
    }
    if (!this.template) {
      try {
        this.template = new ChatTemplate(this.chatTemplate);
      } catch (e) {
        throw new InvalidModelError(`tokenizer_config.json chat_template does not parse: ${(e as Error).message}`);
      }
    }
    const context: Record<string, unknown> = {
      ...this.templateTokens,
      messages: messages.map((m) => ({ ...m })),
      tools: opts.tools ?? null,
      documents: null,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      ...opts.variables,
    };
    if (opts.enableThinking !== undefined) context.enable_thinking = opts.enableThinking;
    try {
      return this.template.render(context);
    } catch (e) {
      throw new InvalidRequestError(`tokenizer_config.json chat_template failed to render these messages: ${(e as Error).message}`);
    }
  }

  createStreamDecoder(opts: { skipSpecialTokens?: boolean } = {}): StreamDecoder {
    // Window ids[prefix..] is decoded on each push; ids[prefix..read] is context already emitted, kept
    // so decoders that depend on the previous token (leading-space stripping) see it. Every window
    // boundary sits where the text was complete, so window texts concatenate to the full decode.
    const ids: number[] = [];
    let prefix = 0;
    let read = 0;
    const skip = opts.skipSpecialTokens ?? false;
    const settle = (force: boolean): string => {
      const before = this.decode(ids.slice(prefix, read));
      const after = this.decode(ids.slice(prefix));
      if (after.length <= before.length || (!force && after.endsWith('\uFFFD'))) {
        if (force) prefix = read = ids.length;
        return '';
      }
      prefix = read;
      read = ids.length;
      return after.slice(before.length);
    };
    return {
      push: (id: number): string => {
        if (!Number.isInteger(id) || id < 0 || id >= this.size) {
          throw new InvalidRequestError(`token id ${id} is outside the tokenizer's 0..${this.size - 1}`);
        }
        if (skip && this.special.has(id)) return '';
        ids.push(id);
        return settle(false);
      },
      flush: (): string => settle(true),
    };
  }
}
