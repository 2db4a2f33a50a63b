// A Hugging Face BPE tokenizer as a llama.cpp vocabulary: tokens padded with unused "[PAD{i}]" entries
// up to the embedding's rows, token types, special ids, add-BOS/EOS behaviour and the chat template.
// - Byte-level BPE (Llama 3, Qwen3) becomes the "gpt2" vocabulary with its merges. llama.cpp
//   re-implements the pre-tokenizer from its name, so the Split regex must be one it knows.
// - Byte-fallback BPE in SentencePiece style (Gemma 3) becomes the "llama" vocabulary: scores that
//   order llama.cpp's pair joining as the merges are ordered, <0xXX> byte tokens, no space prefix.
// - Special added tokens past vocab_size (Gemma 3's <image_soft_token>) are left out, as llama.cpp's
//   converter leaves them out: the model has no row for them and tunekit refuses text that spells them.
// Anything else is an UnsupportedModelError rather than a GGUF that tokenizes differently.

import * as path from 'node:path';
import { UnsupportedModelError, InvalidModelError } from '../errors.js';
import { readJsonFile } from '../models/loader.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { gguf, type GgufMetadata } from './gguf-format.js';
import {
  GGUF_PRE_TOKENIZER, GGUF_PRE_TOKENIZER_SPM, GGUF_TOKEN_TYPE, GGUF_TOKENIZER_MODEL_BPE, GGUF_TOKENIZER_MODEL_SPM, TOKENIZER_KEYS, paddingTokenText,
} from './gguf-keys.js';

export interface GgufVocab {
  /** tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece-style byte-fallback BPE). */
  model: typeof GGUF_TOKENIZER_MODEL_BPE | typeof GGUF_TOKENIZER_MODEL_SPM;
  tokens: string[];
  tokenTypes: number[];
  /** gpt2 only. */
  merges: string[];
  /** llama only: higher merges first (see spmScores). */
  scores: number[] | null;
  pre: string;
  bosId: number | null;
  eosId: number | null;
  eotId: number | null;
  padId: number | null;
  unkId: number | null;
  addBos: boolean;
  addEos: boolean;
  chatTemplate: string | null;
  /** Special tokens past vocab_size that the GGUF leaves out (llama.cpp has no row for them either). */
  dropped: string[];
}

type Json = Record<string, unknown>;

/** Reads modelDir's tokenizer and lays it out for a vocabulary of vocabSize ids. */
export function buildGgufVocab(modelDir: string, vocabSize: number): GgufVocab {
  const file = path.join(modelDir, 'tokenizer.json');
  const tj = readJsonFile(file);
  const model = tj.model as Json | undefined;
  if (!model || model.type !== 'BPE') {
    throw new UnsupportedModelError(`${file}: model.type ${JSON.stringify(model?.type)} cannot be exported to GGUF (BPE only)`);
  }
  const spm = model.byte_fallback === true;
  // Checks ids past vocab_size: only special tokens the model never emits are tolerated (and left out).
  const tok = Tokenizer.loadSync(modelDir, { vocabSize });
  let pre: string;
  if (spm) {
    checkSentencePieceShape(file, tj);
    pre = GGUF_PRE_TOKENIZER_SPM;
  } else {
    // Qwen2/Qwen3 tokenizers NFC-normalise; llama.cpp does not, as its own converter accepts. Text that is
    // already NFC (nearly all text) tokenises identically; other normalisers change far more and are refused.
    const nfcOnly = (tj.normalizer as Json | null | undefined)?.type === 'NFC';
    if (tj.normalizer !== null && tj.normalizer !== undefined && !nfcOnly) {
      throw new UnsupportedModelError(`${file}: normalizer ${JSON.stringify((tj.normalizer as Json).type)} is not applied by llama.cpp's gpt2 vocabulary`);
    }
    pre = preTokenizerName(file, tj.pre_tokenizer as Json | null | undefined, model.ignore_merges === true);
  }

  const tokens: (string | undefined)[] = new Array(vocabSize);
  const tokenTypes: number[] = new Array(vocabSize).fill(GGUF_TOKEN_TYPE.normal);
  const dropped: string[] = [];
  const put = (id: unknown, text: string): boolean => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new InvalidModelError(`${file}: token ${JSON.stringify(text)} has id ${JSON.stringify(id)}`);
    if (id >= vocabSize) {
      // Tokenizer.loadSync accepted it, so it is a special added token the model never emits.
      dropped.push(`${text} (${id})`);
      return false;
    }
    tokens[id] = text;
    return true;
  };
  for (const [text, id] of Object.entries((model.vocab ?? {}) as Record<string, unknown>)) {
    if (!put(id, text)) throw new InvalidModelError(`${file}: model.vocab token ${JSON.stringify(text)} has id ${String(id)}, beyond config.json vocab_size ${vocabSize}`);
    if (spm && BYTE_TOKEN.test(text)) tokenTypes[id as number] = GGUF_TOKEN_TYPE.byte;
  }
  for (const t of (tj.added_tokens ?? []) as Json[]) {
    if (!put(t.id, String(t.content))) continue;
    // Special added tokens are control tokens; the others (Gemma's <unusedN>, HTML tags, whitespace runs)
    // are user-defined, which llama.cpp, like Hugging Face, matches in text whether or not specials are parsed.
    tokenTypes[t.id as number] = t.special === true ? GGUF_TOKEN_TYPE.control : GGUF_TOKEN_TYPE.userDefined;
  }
  const seen = new Map<string, number>();
  for (let id = 0; id < vocabSize; id++) {
    if (tokens[id] === undefined) {
      tokens[id] = paddingTokenText(id);
      tokenTypes[id] = GGUF_TOKEN_TYPE.unused;
    }
    const prev = seen.get(tokens[id]!);
    if (prev !== undefined) throw new InvalidModelError(`${file}: ids ${prev} and ${id} both spell ${JSON.stringify(tokens[id])}`);
    seen.set(tokens[id]!, id);
  }

  const merges = ((model.merges ?? []) as unknown[]).map((m, i) => {
    const pair = typeof m === 'string' ? m.split(' ') : m;
    if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((p) => typeof p === 'string' && p.length > 0 && !p.includes(' '))) {
      throw new InvalidModelError(`${file}: model.merges[${i}] = ${JSON.stringify(m)} is not a pair of tokens`);
    }
    return [pair[0] as string, pair[1] as string] as const;
  });

  // Behaviour, not fields: what our tokenizer adds around a text is what llama.cpp should add.
  const plain = tok.encode('a', { addSpecialTokens: false });
  const full = tok.encode('a', { addSpecialTokens: true });
  const addBos = tok.bosTokenId !== null && full[0] === tok.bosTokenId && plain[0] !== tok.bosTokenId;
  const eosId = tok.eosTokenIds[0] ?? null;
  const addEos = eosId !== null && full[full.length - 1] === eosId && plain[plain.length - 1] !== eosId;
  if (full.length !== plain.length + Number(addBos) + Number(addEos)) {
    throw new UnsupportedModelError(`${file}: the post-processor adds tokens other than BOS/EOS, which GGUF cannot express`);
  }
  const unkText = typeof model.unk_token === 'string' ? model.unk_token : null;
  const unkId = unkText !== null ? seen.get(unkText) ?? null : null;

  return {
    model: spm ? GGUF_TOKENIZER_MODEL_SPM : GGUF_TOKENIZER_MODEL_BPE,
    tokens: tokens as string[],
    tokenTypes,
    merges: spm ? [] : merges.map(([a, b]) => `${a} ${b}`),
    scores: spm ? spmScores(tokens as string[], merges) : null,
    pre,
    bosId: tok.bosTokenId,
    eosId,
    eotId: endOfTurnId(tok),
    padId: tok.padTokenId,
    unkId: spm ? unkId : null,
    addBos,
    addEos,
    chatTemplate: tok.chatTemplate,
    dropped,
  };
}

/** The tokenizer.* metadata of a vocabulary. */
export function vocabMetadata(v: GgufVocab): GgufMetadata {
  const m: GgufMetadata = new Map();
  m.set(TOKENIZER_KEYS.model, gguf.str(v.model));
  m.set(TOKENIZER_KEYS.pre, gguf.str(v.pre));
  m.set(TOKENIZER_KEYS.tokens, gguf.strs(v.tokens));
  if (v.scores !== null) m.set(TOKENIZER_KEYS.scores, gguf.numbers('f32', v.scores));
  m.set(TOKENIZER_KEYS.tokenType, gguf.numbers('i32', v.tokenTypes));
  if (v.model === GGUF_TOKENIZER_MODEL_BPE) m.set(TOKENIZER_KEYS.merges, gguf.strs(v.merges));
  if (v.bosId !== null) m.set(TOKENIZER_KEYS.bosId, gguf.u32(v.bosId));
  if (v.eosId !== null) m.set(TOKENIZER_KEYS.eosId, gguf.u32(v.eosId));
  if (v.eotId !== null) m.set(TOKENIZER_KEYS.eotId, gguf.u32(v.eotId));
  if (v.padId !== null) m.set(TOKENIZER_KEYS.padId, gguf.u32(v.padId));
  if (v.unkId !== null) m.set(TOKENIZER_KEYS.unkId, gguf.u32(v.unkId));
  // Always explicit: llama.cpp's default for llama-bpe and for "llama" vocabularies is to add BOS.
  m.set(TOKENIZER_KEYS.addBos, gguf.bool(v.addBos));
  m.set(TOKENIZER_KEYS.addEos, gguf.bool(v.addEos));
  // llama.cpp's "llama" vocabulary prepends a space by default; Hugging Face's Gemma 3 tokenizer does not.
  if (v.model === GGUF_TOKENIZER_MODEL_SPM) m.set(TOKENIZER_KEYS.addSpacePrefix, gguf.bool(false));
  if (v.chatTemplate !== null) m.set(TOKENIZER_KEYS.chatTemplate, gguf.str(v.chatTemplate));
  return m;
}

const BYTE_TOKEN = /^<0x[0-9A-F]{2}>$/;

/**
 * Scores for llama.cpp's SentencePiece tokenizer, which repeatedly joins the adjacent pair whose
 * concatenation is the highest-scoring token (leftmost on ties) until no pair forms a token. Hugging
 * Face's BPE applies the lowest-ranked merge instead. Scoring a token by minus the rank of the first
 * merge that produces it makes the two orders agree wherever each token's merges are contiguous in the
 * list and every split of a token into two tokens is a merge — as in SentencePiece-converted vocabularies
 * like Gemma 3's (its only non-contiguous tokens are whitespace runs; the corpus tests cover those).
 * Tokens no merge produces (single characters, bytes, added tokens) score 0: they are never formed.
 */
export function spmScores(tokens: string[], merges: ReadonlyArray<readonly [string, string]>): number[] {
  const index = new Map<string, number>();
  tokens.forEach((t, i) => index.set(t, i));
  const scores = new Array<number>(tokens.length).fill(0);
  const scored = new Uint8Array(tokens.length);
  merges.forEach(([a, b], rank) => {
    const id = index.get(a + b);
    if (id === undefined || scored[id]) return;
    scored[id] = 1;
    scores[id] = -rank;
  });
  return scores;
}

/**
 * The SentencePiece-style shape llama.cpp's "llama" vocabulary reproduces: spaces replaced by U+2581
 * (no prefix space, as in Gemma 3), no pre-tokenizer split beyond spaces that no longer exist, byte
 * fallback, no merges skipped. Anything else would tokenize differently and is refused.
 */
function checkSentencePieceShape(file: string, tj: Json): void {
  const model = tj.model as Json;
  const norm = tj.normalizer as Json | null | undefined;
  const replace = norm?.type === 'Replace' && (norm.pattern as Json | undefined)?.String === ' ' && norm.content === '\u2581';
  if (!replace) {
    throw new UnsupportedModelError(`${file}: normalizer ${JSON.stringify(norm ?? null)} has no llama.cpp equivalent for byte-fallback BPE (expected Replace " " -> "\u2581", as Gemma 3 writes it)`);
  }
  const pt = tj.pre_tokenizer as Json | null | undefined;
  const splitOnSpace = pt?.type === 'Split' && (pt.pattern as Json | undefined)?.String === ' ';
  if (pt !== null && pt !== undefined && !splitOnSpace) {
    throw new UnsupportedModelError(`${file}: pre_tokenizer ${JSON.stringify(pt)} has no llama.cpp equivalent for byte-fallback BPE`);
  }
  if (model.ignore_merges === true) throw new UnsupportedModelError(`${file}: model.ignore_merges = true has no llama.cpp equivalent for byte-fallback BPE`);
  if (model.continuing_subword_prefix || model.end_of_word_suffix) {
    throw new UnsupportedModelError(`${file}: model.continuing_subword_prefix / end_of_word_suffix have no llama.cpp equivalent`);
  }
}

function preTokenizerName(file: string, pt: Json | null | undefined, ignoreMerges: boolean): string {
  // Expected shape: Sequence[Split(Regex, Isolated), ByteLevel(use_regex=false, add_prefix_space=false)].
  const steps = pt?.type === 'Sequence' ? (pt.pretokenizers as Json[]) : pt ? [pt] : [];
  const split = steps.find((s) => s.type === 'Split');
  const byteLevel = steps.find((s) => s.type === 'ByteLevel');
  const regex = (split?.pattern as Json | undefined)?.Regex;
  const shapeOk = steps.length === 2 && split && byteLevel && typeof regex === 'string' && split.behavior === 'Isolated'
    && split.invert !== true && byteLevel.use_regex === false && byteLevel.add_prefix_space !== true;
  if (!shapeOk) {
    throw new UnsupportedModelError(`${file}: pre_tokenizer ${JSON.stringify(pt)} has no llama.cpp equivalent (expected a Split regex followed by ByteLevel)`);
  }
  const known = GGUF_PRE_TOKENIZER.find((p) => p.regexes.includes(regex as string));
  if (!known) {
    throw new UnsupportedModelError(`${file}: pre-tokenizer regex ${JSON.stringify(regex)} is not one llama.cpp implements (known: ${GGUF_PRE_TOKENIZER.map((p) => p.name).join(', ')})`);
  }
  if (known.ignoreMerges !== ignoreMerges) {
    throw new UnsupportedModelError(`${file}: model.ignore_merges is ${ignoreMerges} but llama.cpp's "${known.name}" pre-tokenizer ${known.ignoreMerges ? 'always ignores' : 'never ignores'} merges for whole-word tokens`);
  }
  return known.name;
}

/**
 * The token that closes an assistant turn in the chat template (Llama's <|eot_id|>, ChatML's
 * <|im_end|>, Gemma's <end_of_turn>), if it is one of the generation eos tokens; found by rendering
 * a two-turn conversation and reading the first token after the assistant's text.
 */
function endOfTurnId(tok: Tokenizer): number | null {
  if (tok.chatTemplate === null) return null;
  const reply = 'tunekit-end-of-turn-probe';
  let text: string;
  try {
    text = tok.applyChatTemplate([{ role: 'user', content: 'hi' }, { role: 'assistant', content: reply }]);
  } catch {
    return null;
  }
  const at = text.lastIndexOf(reply);
  if (at < 0) return null;
  const after = tok.encode(text.slice(at + reply.length), { addSpecialTokens: false });
  const id = after[0];
  return id !== undefined && tok.eosTokenIds.includes(id) ? id : null;
}
