// A Hugging Face byte-level BPE tokenizer as llama.cpp's "gpt2" vocabulary: tokens padded with unused
// "[PAD{i}]" entries up to the embedding's rows, token types, merges, special ids, add-BOS/EOS
// behaviour and the chat template. llama.cpp re-implements the pre-tokenizer from its name, so the
// tokenizer's Split regex must be one it knows; anything else is an UnsupportedModelError rather than
// a GGUF that tokenizes differently.

import * as path from 'node:path';
import { UnsupportedModelError, InvalidModelError } from '../errors.js';
import { readJsonFile } from '../models/loader.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { gguf, type GgufMetadata } from './gguf-format.js';
import { GGUF_PRE_TOKENIZER, GGUF_TOKEN_TYPE, GGUF_TOKENIZER_MODEL_BPE, TOKENIZER_KEYS, paddingTokenText } from './gguf-keys.js';

export interface GgufVocab {
  tokens: string[];
  tokenTypes: number[];
  merges: string[];
  pre: string;
  bosId: number | null;
  eosId: number | null;
  eotId: number | null;
  padId: number | null;
  addBos: boolean;
  addEos: boolean;
  chatTemplate: string | null;
}

type Json = Record<string, unknown>;

/** Reads modelDir's tokenizer and lays it out for a vocabulary of vocabSize ids. */
export function buildGgufVocab(modelDir: string, vocabSize: number): GgufVocab {
  const file = path.join(modelDir, 'tokenizer.json');
  const tj = readJsonFile(file);
  const model = tj.model as Json | undefined;
  if (!model || model.type !== 'BPE') {
    throw new UnsupportedModelError(`${file}: model.type ${JSON.stringify(model?.type)} cannot be exported to GGUF (byte-level BPE only)`);
  }
  if (model.byte_fallback === true) throw new UnsupportedModelError(`${file}: byte_fallback BPE (SentencePiece-style) cannot be exported to GGUF yet`);
  // Qwen2/Qwen3 tokenizers NFC-normalise; llama.cpp does not, as its own converter accepts. Text that is
  // already NFC (nearly all text) tokenises identically; other normalisers change far more and are refused.
  const nfcOnly = (tj.normalizer as Json | null | undefined)?.type === 'NFC';
  if (tj.normalizer !== null && tj.normalizer !== undefined && !nfcOnly) {
    throw new UnsupportedModelError(`${file}: normalizer ${JSON.stringify((tj.normalizer as Json).type)} is not applied by llama.cpp's gpt2 vocabulary`);
  }
  const pre = preTokenizerName(file, tj.pre_tokenizer as Json | null | undefined, model.ignore_merges === true);

  const tokens: (string | undefined)[] = new Array(vocabSize);
  const tokenTypes: number[] = new Array(vocabSize).fill(GGUF_TOKEN_TYPE.normal);
  const put = (id: unknown, text: string) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new InvalidModelError(`${file}: token ${JSON.stringify(text)} has id ${JSON.stringify(id)}`);
    if (id >= vocabSize) throw new InvalidModelError(`${file}: token ${JSON.stringify(text)} has id ${id}, beyond config.json vocab_size ${vocabSize}`);
    tokens[id] = text;
  };
  for (const [text, id] of Object.entries((model.vocab ?? {}) as Record<string, unknown>)) put(id, text);
  for (const t of (tj.added_tokens ?? []) as Json[]) {
    put(t.id, String(t.content));
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
    return `${pair[0]} ${pair[1]}`;
  });

  // Behaviour, not fields: what our tokenizer adds around a text is what llama.cpp should add.
  const tok = Tokenizer.loadSync(modelDir, { vocabSize });
  const plain = tok.encode('a', { addSpecialTokens: false });
  const full = tok.encode('a', { addSpecialTokens: true });
  const addBos = tok.bosTokenId !== null && full[0] === tok.bosTokenId && plain[0] !== tok.bosTokenId;
  const eosId = tok.eosTokenIds[0] ?? null;
  const addEos = eosId !== null && full[full.length - 1] === eosId && plain[plain.length - 1] !== eosId;
  if (full.length !== plain.length + Number(addBos) + Number(addEos)) {
    throw new UnsupportedModelError(`${file}: the post-processor adds tokens other than BOS/EOS, which GGUF cannot express`);
  }

  return {
    tokens: tokens as string[],
    tokenTypes,
    merges,
    pre,
    bosId: tok.bosTokenId,
    eosId,
    eotId: endOfTurnId(tok),
    padId: tok.padTokenId,
    addBos,
    addEos,
    chatTemplate: tok.chatTemplate,
  };
}

/** The tokenizer.* metadata of a vocabulary. */
export function vocabMetadata(v: GgufVocab): GgufMetadata {
  const m: GgufMetadata = new Map();
  m.set(TOKENIZER_KEYS.model, gguf.str(GGUF_TOKENIZER_MODEL_BPE));
  m.set(TOKENIZER_KEYS.pre, gguf.str(v.pre));
  m.set(TOKENIZER_KEYS.tokens, gguf.strs(v.tokens));
  m.set(TOKENIZER_KEYS.tokenType, gguf.numbers('i32', v.tokenTypes));
  m.set(TOKENIZER_KEYS.merges, gguf.strs(v.merges));
  if (v.bosId !== null) m.set(TOKENIZER_KEYS.bosId, gguf.u32(v.bosId));
  if (v.eosId !== null) m.set(TOKENIZER_KEYS.eosId, gguf.u32(v.eosId));
  if (v.eotId !== null) m.set(TOKENIZER_KEYS.eotId, gguf.u32(v.eotId));
  if (v.padId !== null) m.set(TOKENIZER_KEYS.padId, gguf.u32(v.padId));
  // Always explicit: llama.cpp's default for llama-bpe is to add BOS.
  m.set(TOKENIZER_KEYS.addBos, gguf.bool(v.addBos));
  m.set(TOKENIZER_KEYS.addEos, gguf.bool(v.addEos));
  if (v.chatTemplate !== null) m.set(TOKENIZER_KEYS.chatTemplate, gguf.str(v.chatTemplate));
  return m;
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
