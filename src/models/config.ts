// config.json -> ModelConfig: the one place where Hugging Face field names are read and derived values
// are filled in. Each family lists the fields it understands; a field it does not handle (or handles
// only with certain values) is an UnsupportedModelError naming it, never silently wrong output.

import { InvalidModelError, UnsupportedModelError } from '../errors.js';

export type Family = 'llama' | 'qwen3' | 'gemma3';
export type LayerType = 'full_attention' | 'sliding_attention';

export type RopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

export interface ModelConfig {
  family: Family;
  /** HF class name, e.g. "LlamaForCausalLM". */
  architecture: string;
  modelType: string;
  vocabSize: number; // V
  hiddenSize: number; // C
  intermediateSize: number; // F
  numLayers: number; // L
  numHeads: number; // NH
  numKvHeads: number; // NKV
  headDim: number; // HD
  rmsNormEps: number;
  maxPositionEmbeddings: number;
  ropeTheta: number;
  /** RoPE base of sliding-window layers (Gemma 3's rope_local_base_freq); equals ropeTheta elsewhere. */
  ropeLocalTheta: number;
  /** Applies to full-attention layers only (as in Gemma 3), to every layer for the others. */
  ropeScaling: RopeScaling | null;
  tieWordEmbeddings: boolean;
  hiddenAct: 'silu' | 'gelu_tanh';
  /** Gemma's RMSNorm multiplies by (1 + w). */
  normWeightOffset: 0 | 1;
  qkNorm: boolean;
  /** Gemma 3 sandwich norms: post-attention and pre/post-feedforward. */
  sandwichNorms: boolean;
  /** Input embeddings are multiplied by this (sqrt(hidden) for Gemma). */
  embedScale: number;
  /** Scale of q·k before softmax. */
  attnScale: number;
  slidingWindow: number | null;
  layerTypes: LayerType[];
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** torch_dtype / dtype as the checkpoint states it, for export. */
  dtype: string | null;
}

const ARCHITECTURES: Record<string, Family> = {
  LlamaForCausalLM: 'llama',
  Qwen3ForCausalLM: 'qwen3',
  Gemma3ForCausalLM: 'gemma3',
};

const MODEL_TYPES: Record<Family, string[]> = {
  llama: ['llama'],
  qwen3: ['qwen3'],
  gemma3: ['gemma3_text'],
};

// Fields that carry no meaning for inference or training in float32 on CPU.
const HARMLESS = new Set([
  'architectures', 'model_type', 'torch_dtype', 'dtype', 'transformers_version', 'use_cache', 'initializer_range',
  'attention_dropout', 'bos_token_id', 'eos_token_id', 'pad_token_id', '_name_or_path', 'name_or_path',
  'tie_word_embeddings', 'max_window_layers', 'use_sliding_window', 'pretraining_tp', 'mlp_bias', 'attention_bias',
  'hidden_act', 'hidden_activation', 'rope_scaling', 'rope_theta', 'head_dim', 'is_llama_config', 'rope_interleaved',
  'unsloth_fixed', 'quantization_config', 'id2label', 'label2id', 'output_attentions', 'output_hidden_states',
  'return_dict', 'task_specific_params', 'problem_type', 'sliding_window_pattern', '_sliding_window_pattern',
  'cache_implementation', 'final_logit_softcapping', 'attn_logit_softcapping', 'use_bidirectional_attention',
  'query_pre_attn_scalar', 'rope_local_base_freq', 'layer_types', 'sliding_window', 'vocab_size', 'hidden_size',
  'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'rms_norm_eps',
  'max_position_embeddings',
]);

type Json = Record<string, unknown>;

/**
 * What Hugging Face's config class assumes for a field the file leaves out, where that differs from
 * what the code below falls back to. Published Gemma 3 4B/12B/27B text configs state only a few fields
 * and rely on Gemma3TextConfig's defaults for the rest.
 */
const HF_DEFAULTS: Record<Family, Json> = {
  llama: { tie_word_embeddings: false, rope_theta: 10000, rms_norm_eps: 1e-6, max_position_embeddings: 2048 },
  qwen3: { tie_word_embeddings: false, rope_theta: 10000, rms_norm_eps: 1e-6, max_position_embeddings: 32768, head_dim: 128 },
  gemma3: {
    tie_word_embeddings: true, vocab_size: 262208, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 256,
    rms_norm_eps: 1e-6, rope_theta: 1000000, rope_local_base_freq: 10000, max_position_embeddings: 131072,
    query_pre_attn_scalar: 256, sliding_window: 4096, hidden_activation: 'gelu_pytorch_tanh',
  },
};

function num(cfg: Json, key: string, where: string, fallback?: number): number {
  const v = cfg[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new InvalidModelError(`${where}: required field "${key}" is missing`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new InvalidModelError(`${where}: field "${key}" must be a number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function posInt(cfg: Json, key: string, where: string, fallback?: number): number {
  const v = num(cfg, key, where, fallback);
  if (!Number.isInteger(v) || v <= 0) throw new InvalidModelError(`${where}: field "${key}" must be a positive integer, got ${v}`);
  return v;
}

function unsupported(where: string, key: string, value: unknown, family: Family, why: string): never {
  throw new UnsupportedModelError(`${where}: field "${key}" = ${JSON.stringify(value)} is not supported for ${family} models (${why})`);
}

function parseRopeScaling(cfg: Json, where: string, family: Family): RopeScaling | null {
  const raw = cfg.rope_scaling as Json | null | undefined;
  if (raw === undefined || raw === null) return null;
  const type = raw.rope_type ?? raw.type;
  if (type === 'default') return null;
  if (type === 'linear') return { type: 'linear', factor: num(raw, 'factor', `${where} rope_scaling`) };
  if (type === 'llama3' && family === 'llama') {
    const w = `${where} rope_scaling`;
    return {
      type: 'llama3',
      factor: num(raw, 'factor', w),
      lowFreqFactor: num(raw, 'low_freq_factor', w),
      highFreqFactor: num(raw, 'high_freq_factor', w),
      originalMaxPositionEmbeddings: posInt(raw, 'original_max_position_embeddings', w),
    };
  }
  return unsupported(where, 'rope_scaling', raw, family, 'supported: linear, llama3 (Llama only)');
}

function tokenIds(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

/** Normalises a parsed config.json. `where` names the file in error messages. */
export function parseModelConfig(cfg: Json, where = 'config.json'): ModelConfig {
  const archs = cfg.architectures;
  if (!Array.isArray(archs) || archs.length === 0 || typeof archs[0] !== 'string') {
    throw new InvalidModelError(`${where}: field "architectures" is missing or empty`);
  }
  const architecture = archs[0] as string;
  const family = ARCHITECTURES[architecture];
  if (!family) {
    throw new UnsupportedModelError(`${where}: architecture "${architecture}" is not supported (supported: ${Object.keys(ARCHITECTURES).join(', ')})`);
  }
  const modelType = String(cfg.model_type ?? '');
  if (!MODEL_TYPES[family].includes(modelType)) {
    throw new UnsupportedModelError(`${where}: model_type "${modelType}" does not match architecture ${architecture} (expected ${MODEL_TYPES[family].join(' or ')})`);
  }
  for (const key of Object.keys(cfg)) {
    if (!HARMLESS.has(key)) unsupported(where, key, cfg[key], family, 'tunekit does not implement this field');
  }
  cfg = { ...HF_DEFAULTS[family], ...Object.fromEntries(Object.entries(cfg).filter(([k, v]) => v !== null || !(k in HF_DEFAULTS[family]))) };
  if (typeof cfg.attention_dropout === 'number' && cfg.attention_dropout !== 0) {
    unsupported(where, 'attention_dropout', cfg.attention_dropout, family, 'dropout on attention probabilities is not implemented');
  }
  if (cfg.attention_bias === true) unsupported(where, 'attention_bias', true, family, 'bias terms on attention projections');
  if (cfg.mlp_bias === true) unsupported(where, 'mlp_bias', true, family, 'bias terms on MLP projections');
  if (cfg.pretraining_tp !== undefined && cfg.pretraining_tp !== 1) unsupported(where, 'pretraining_tp', cfg.pretraining_tp, family, 'only 1');
  if (cfg.quantization_config !== undefined) unsupported(where, 'quantization_config', cfg.quantization_config, family, 'quantized checkpoints');
  if (cfg.use_bidirectional_attention === true) unsupported(where, 'use_bidirectional_attention', true, family, 'causal attention only');
  for (const key of ['final_logit_softcapping', 'attn_logit_softcapping']) {
    if (cfg[key] !== undefined && cfg[key] !== null) unsupported(where, key, cfg[key], family, 'soft-capping is not implemented');
  }

  const hiddenSize = posInt(cfg, 'hidden_size', where);
  const numHeads = posInt(cfg, 'num_attention_heads', where);
  const numKvHeads = posInt(cfg, 'num_key_value_heads', where, numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new InvalidModelError(`${where}: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  }
  const headDim = posInt(cfg, 'head_dim', where, hiddenSize / numHeads);
  if (headDim % 2 !== 0) throw new InvalidModelError(`${where}: head_dim (${headDim}) must be even for RoPE`);
  const numLayers = posInt(cfg, 'num_hidden_layers', where);

  const act = String(cfg.hidden_activation ?? cfg.hidden_act ?? (family === 'gemma3' ? 'gelu_pytorch_tanh' : 'silu'));
  let hiddenAct: ModelConfig['hiddenAct'];
  if (act === 'silu' && family !== 'gemma3') hiddenAct = 'silu';
  else if ((act === 'gelu_pytorch_tanh' || act === 'gelu_tanh') && family === 'gemma3') hiddenAct = 'gelu_tanh';
  else unsupported(where, cfg.hidden_activation !== undefined ? 'hidden_activation' : 'hidden_act', act, family, family === 'gemma3' ? 'expected gelu_pytorch_tanh' : 'expected silu');

  const ropeTheta = num(cfg, 'rope_theta', where, 10000);
  let slidingWindow: number | null = null;
  let layerTypes: LayerType[] = Array.from({ length: numLayers }, () => 'full_attention' as LayerType);
  let attnScale = 1 / Math.sqrt(headDim);
  let ropeLocalTheta = ropeTheta;
  if (family === 'gemma3') {
    slidingWindow = posInt(cfg, 'sliding_window', where, 4096);
    ropeLocalTheta = num(cfg, 'rope_local_base_freq', where, 10000);
    attnScale = 1 / Math.sqrt(num(cfg, 'query_pre_attn_scalar', where, headDim));
    if (Array.isArray(cfg.layer_types)) {
      layerTypes = parseLayerTypes(cfg.layer_types, numLayers, where);
      for (const key of ['sliding_window_pattern', '_sliding_window_pattern']) {
        const n = cfg[key];
        if (typeof n !== 'number') continue;
        const implied = layerTypes.map((_, i) => ((i + 1) % n === 0 ? 'full_attention' : 'sliding_attention'));
        if (implied.some((t, i) => t !== layerTypes[i])) {
          throw new InvalidModelError(`${where}: ${key} = ${n} contradicts layer_types (layer ${implied.findIndex((t, i) => t !== layerTypes[i])}); remove one of them`);
        }
      }
    } else {
      const pattern = posInt(cfg, 'sliding_window_pattern', where, Number(cfg._sliding_window_pattern ?? 6));
      layerTypes = layerTypes.map((_, i) => ((i + 1) % pattern === 0 ? 'full_attention' : 'sliding_attention'));
    }
  } else {
    if (cfg.use_sliding_window === true) unsupported(where, 'use_sliding_window', true, family, 'sliding windows are implemented for Gemma 3 only');
    if (cfg.layer_types !== undefined) {
      layerTypes = parseLayerTypes(cfg.layer_types, numLayers, where);
      if (layerTypes.some((t) => t !== 'full_attention')) unsupported(where, 'layer_types', cfg.layer_types, family, 'only full_attention');
    }
  }
  const eosTokenIds = tokenIds(cfg.eos_token_id);
  return {
    family,
    architecture,
    modelType,
    vocabSize: posInt(cfg, 'vocab_size', where),
    hiddenSize,
    intermediateSize: posInt(cfg, 'intermediate_size', where),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: num(cfg, 'rms_norm_eps', where, 1e-6),
    maxPositionEmbeddings: posInt(cfg, 'max_position_embeddings', where, 2048),
    ropeTheta,
    ropeLocalTheta,
    ropeScaling: parseRopeScaling(cfg, where, family),
    tieWordEmbeddings: cfg.tie_word_embeddings === true,
    hiddenAct,
    normWeightOffset: family === 'gemma3' ? 1 : 0,
    qkNorm: family !== 'llama',
    sandwichNorms: family === 'gemma3',
    embedScale: family === 'gemma3' ? Math.fround(Math.sqrt(hiddenSize)) : 1,
    attnScale,
    slidingWindow,
    layerTypes,
    bosTokenId: typeof cfg.bos_token_id === 'number' ? cfg.bos_token_id : null,
    eosTokenIds,
    padTokenId: typeof cfg.pad_token_id === 'number' ? cfg.pad_token_id : null,
    dtype: typeof (cfg.torch_dtype ?? cfg.dtype) === 'string' ? String(cfg.torch_dtype ?? cfg.dtype) : null,
  };
}

function parseLayerTypes(raw: unknown, numLayers: number, where: string): LayerType[] {
  if (!Array.isArray(raw) || raw.length !== numLayers) {
    throw new InvalidModelError(`${where}: layer_types must list ${numLayers} entries (num_hidden_layers)`);
  }
  return raw.map((t, i) => {
    if (t !== 'full_attention' && t !== 'sliding_attention') {
      throw new UnsupportedModelError(`${where}: layer_types[${i}] = ${JSON.stringify(t)} is not supported (full_attention, sliding_attention)`);
    }
    return t;
  });
}
