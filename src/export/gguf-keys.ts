// Every GGUF key and tensor name tunekit writes, in one place. Keys are llama.cpp's dotted lowercase
// namespaces (general.*, {arch}.*, tokenizer.*); tensor names come from one template table per
// architecture, keyed by the slots of src/models/weights.ts, with {bid} standing for the block index.
// Value types matter: llama.cpp rejects a key whose type differs from the one it reads (u32 counts,
// f32 hyper-parameters), so each key's type is stated here next to its name.

import { UnsupportedModelError } from '../errors.js';
import type { Family } from '../models/config.js';
import type { TensorSpec } from '../models/weights.js';

export type GgufArch = 'llama' | 'qwen3' | 'gemma3';

/** general.architecture per model family. */
export const GGUF_ARCH: Record<Family, GgufArch> = { llama: 'llama', qwen3: 'qwen3', gemma3: 'gemma3' };

export const GENERAL_KEYS = {
  architecture: 'general.architecture', // string
  alignment: 'general.alignment', // u32
  name: 'general.name', // string
  fileType: 'general.file_type', // u32, llama_ftype
  quantizationVersion: 'general.quantization_version', // u32
} as const;

/** llama_ftype values for the files tunekit writes. */
export const GGUF_FILE_TYPE = { F32: 0, F16: 1 } as const;

/** Keys in the architecture's namespace, without the "{arch}." prefix. */
export const ARCH_KEY_SUFFIXES = {
  vocabSize: 'vocab_size', // u32
  contextLength: 'context_length', // u32
  embeddingLength: 'embedding_length', // u32
  blockCount: 'block_count', // u32
  feedForwardLength: 'feed_forward_length', // u32
  headCount: 'attention.head_count', // u32
  headCountKv: 'attention.head_count_kv', // u32
  keyLength: 'attention.key_length', // u32
  valueLength: 'attention.value_length', // u32
  rmsNormEps: 'attention.layer_norm_rms_epsilon', // f32
  slidingWindow: 'attention.sliding_window', // u32
  slidingWindowPattern: 'attention.sliding_window_pattern', // u32: every n-th layer is global
  ropeDimensionCount: 'rope.dimension_count', // u32
  ropeFreqBase: 'rope.freq_base', // f32
  ropeFreqBaseSwa: 'rope.freq_base_swa', // f32
  ropeScalingType: 'rope.scaling.type', // string: none | linear | yarn | longrope
  ropeScalingFactor: 'rope.scaling.factor', // f32
  ropeScalingOrigCtx: 'rope.scaling.original_context_length', // u32
} as const;

export type ArchKey = keyof typeof ARCH_KEY_SUFFIXES;

export function archKey(arch: GgufArch, key: ArchKey): string {
  return `${arch}.${ARCH_KEY_SUFFIXES[key]}`;
}

export const TOKENIZER_KEYS = {
  model: 'tokenizer.ggml.model', // string: "gpt2" for byte-level BPE, "llama" for SentencePiece-style BPE
  pre: 'tokenizer.ggml.pre', // string: pre-tokenizer regex set, see GGUF_PRE_TOKENIZER
  tokens: 'tokenizer.ggml.tokens', // string[]
  scores: 'tokenizer.ggml.scores', // f32[], "llama" vocabularies: higher joins first
  tokenType: 'tokenizer.ggml.token_type', // i32[], GGUF_TOKEN_TYPE
  merges: 'tokenizer.ggml.merges', // string[], "left right"
  bosId: 'tokenizer.ggml.bos_token_id', // u32
  eosId: 'tokenizer.ggml.eos_token_id', // u32
  eotId: 'tokenizer.ggml.eot_token_id', // u32
  padId: 'tokenizer.ggml.padding_token_id', // u32
  unkId: 'tokenizer.ggml.unknown_token_id', // u32
  addBos: 'tokenizer.ggml.add_bos_token', // bool
  addEos: 'tokenizer.ggml.add_eos_token', // bool
  addSpacePrefix: 'tokenizer.ggml.add_space_prefix', // bool, "llama" vocabularies (default true)
  chatTemplate: 'tokenizer.chat_template', // string
} as const;

/** llama_token_type values. */
export const GGUF_TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** tokenizer.ggml.model for byte-level BPE vocabularies. */
export const GGUF_TOKENIZER_MODEL_BPE = 'gpt2';
/** tokenizer.ggml.model for SentencePiece-style (byte-fallback) BPE vocabularies. */
export const GGUF_TOKENIZER_MODEL_SPM = 'llama';
/** tokenizer.ggml.pre for "llama" vocabularies, which have no pre-tokenizer regex. */
export const GGUF_PRE_TOKENIZER_SPM = 'default';

/** Name llama.cpp gives the unused tokens that pad a vocabulary up to the embedding's rows. */
export function paddingTokenText(id: number): string {
  return `[PAD${id}]`;
}

/**
 * Pre-tokenizer names llama.cpp knows (tokenizer.ggml.pre), with the Split regexes a tokenizer.json may
 * carry for each: the published spelling and llama.cpp's case-expanded equivalent. llama.cpp applies
 * its own copy of the regex for the name, so only these exact regexes can be exported.
 */
const CONTRACTIONS_HF = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
const CONTRACTIONS_LLAMACPP = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const LLAMA3_REST = "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REST = "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export const GGUF_PRE_TOKENIZER: ReadonlyArray<{ name: string; regexes: string[]; ignoreMerges: boolean }> = [
  // Llama 3: digits in runs of up to three; llama.cpp also skips merges for whole-vocabulary words.
  { name: 'llama-bpe', regexes: [CONTRACTIONS_HF + LLAMA3_REST, CONTRACTIONS_LLAMACPP + LLAMA3_REST], ignoreMerges: true },
  // Qwen2 / Qwen3: one digit per piece, merges always applied.
  { name: 'qwen2', regexes: [CONTRACTIONS_HF + QWEN2_REST, CONTRACTIONS_LLAMACPP + QWEN2_REST], ignoreMerges: false },
];

type GgufTensorSlot = TensorSpec['slot'] | 'ropeFreqs';

const COMMON_TENSORS: Partial<Record<GgufTensorSlot, string>> = {
  embed: 'token_embd.weight',
  finalNorm: 'output_norm.weight',
  lmHead: 'output.weight',
  attnNorm: 'blk.{bid}.attn_norm.weight',
  q: 'blk.{bid}.attn_q.weight',
  k: 'blk.{bid}.attn_k.weight',
  v: 'blk.{bid}.attn_v.weight',
  o: 'blk.{bid}.attn_output.weight',
  ffnNorm: 'blk.{bid}.ffn_norm.weight',
  gate: 'blk.{bid}.ffn_gate.weight',
  up: 'blk.{bid}.ffn_up.weight',
  down: 'blk.{bid}.ffn_down.weight',
};

/** Tensor name templates per architecture. */
export const GGUF_TENSOR_NAMES: Record<GgufArch, Partial<Record<GgufTensorSlot, string>>> = {
  llama: {
    ...COMMON_TENSORS,
    // llama3 rope scaling: per-frequency divisors (HD/2), read by every layer.
    ropeFreqs: 'rope_freqs.weight',
  },
  qwen3: {
    ...COMMON_TENSORS,
    qNorm: 'blk.{bid}.attn_q_norm.weight',
    kNorm: 'blk.{bid}.attn_k_norm.weight',
  },
  gemma3: {
    ...COMMON_TENSORS,
    qNorm: 'blk.{bid}.attn_q_norm.weight',
    kNorm: 'blk.{bid}.attn_k_norm.weight',
    postAttnNorm: 'blk.{bid}.post_attention_norm.weight',
    // ffnNorm is Gemma's pre_feedforward_layernorm, which llama.cpp calls ffn_norm.
    postFfnNorm: 'blk.{bid}.post_ffw_norm.weight',
  },
};

/** The llama.cpp name of a tensor slot (a layer slot needs its layer index). */
export function ggufTensorName(arch: GgufArch, slot: GgufTensorSlot, layer: number | null): string {
  const template = GGUF_TENSOR_NAMES[arch][slot];
  if (!template) throw new UnsupportedModelError(`GGUF architecture ${arch} has no tensor for weight slot "${slot}"`);
  if (template.includes('{bid}')) {
    if (layer === null) throw new Error(`internal: GGUF tensor ${template} needs a layer index`);
    return template.replace('{bid}', String(layer));
  }
  return template;
}
