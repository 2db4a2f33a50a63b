// Deterministic random checkpoints in the exact Hugging Face layout, for tests, benchmarks and the
// quickstart (no pretrained weights exist on machines without a network). `small` uses the published
// shapes of SmolLM2-135M, Qwen3-0.6B and Gemma-3-270M; `tiny` is a few hundred thousand parameters.
// Each comes with a real byte-level BPE tokenizer carrying the family's chat markers and template.
// Weights are drawn as Hugging Face's _init_weights draws them (`hf`, the default for `small`): linear
// and embedding weights normal(0, initializer_range), the padding row zero, norms at their neutral
// value (1 for Llama/Qwen3, 0 for Gemma's (1 + w)), so the first loss is about ln(V). `tiny` keeps
// wider weights (`wide`: embeddings 0.5, linears 1/sqrt(fan_in), norms ±0.1 around neutral) because
// the parity tests need distributions far from uniform to tell implementations apart.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Random } from '../engine/random.js';
import { InvalidRequestError } from '../errors.js';
import { generateTokenizer, type GeneratedTokenizer } from '../tokenizer/tiny-tokenizers.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { parseModelConfig, type Family, type ModelConfig } from './config.js';
import { writeSafetensors, type SafetensorsDtype } from './safetensors.js';
import { tensorSpecs } from './weights.js';

export type TinySize = 'tiny' | 'small';
export type InitScheme = 'hf' | 'wide';

/** Hugging Face's default initializer_range for all three families. */
export const INITIALIZER_RANGE = 0.02;

/** config.json fields per family and size, vocab_size and token ids excluded (the tokenizer sets them). */
const SHAPES: Record<Family, Record<TinySize, Record<string, unknown>>> = {
  llama: {
    tiny: {
      hidden_size: 64, intermediate_size: 176, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
      head_dim: 16, max_position_embeddings: 2048, rope_theta: 500000, rms_norm_eps: 1e-5,
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 256 },
    },
    small: { // SmolLM2-135M
      hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3,
      head_dim: 64, max_position_embeddings: 8192, rope_theta: 100000, rms_norm_eps: 1e-5, vocab_size: 49152,
    },
  },
  qwen3: {
    tiny: {
      hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
      head_dim: 32, max_position_embeddings: 4096, rope_theta: 1000000, rms_norm_eps: 1e-6,
    },
    small: { // Qwen3-0.6B
      hidden_size: 1024, intermediate_size: 3072, num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 8,
      head_dim: 128, max_position_embeddings: 40960, rope_theta: 1000000, rms_norm_eps: 1e-6, vocab_size: 151936,
    },
  },
  gemma3: {
    tiny: {
      hidden_size: 64, intermediate_size: 128, num_hidden_layers: 6, num_attention_heads: 2, num_key_value_heads: 1,
      head_dim: 32, query_pre_attn_scalar: 32, sliding_window: 8, max_position_embeddings: 4096,
      rope_theta: 1000000, rope_local_base_freq: 10000, rms_norm_eps: 1e-6,
    },
    small: { // Gemma-3-270M
      hidden_size: 640, intermediate_size: 2048, num_hidden_layers: 18, num_attention_heads: 4, num_key_value_heads: 1,
      head_dim: 256, query_pre_attn_scalar: 256, sliding_window: 512, max_position_embeddings: 32768,
      rope_theta: 1000000, rope_local_base_freq: 10000, rms_norm_eps: 1e-6, vocab_size: 262144,
    },
  },
};

const HF_CLASS: Record<Family, { architecture: string; modelType: string }> = {
  llama: { architecture: 'LlamaForCausalLM', modelType: 'llama' },
  qwen3: { architecture: 'Qwen3ForCausalLM', modelType: 'qwen3' },
  gemma3: { architecture: 'Gemma3ForCausalLM', modelType: 'gemma3_text' },
};

export interface TinyModelOptions {
  family: Family;
  size: TinySize;
  seed: number;
  out: string;
  dtype?: SafetensorsDtype;
  /** Overrides the vocabulary size (rows of the embedding); must hold the tokenizer. */
  vocabSize?: number;
  /** How weights are drawn; `hf` for `small`, `wide` for `tiny` unless given. */
  init?: InitScheme;
  /**
   * A published tokenizer (a directory with tokenizer.json and tokenizer_config.json) to carry instead of
   * the generated one; it may define special tokens past vocabSize, as published Gemma 3 does.
   */
  tokenizerDir?: string;
}

export interface TinyModelSummary {
  dir: string;
  parameters: number;
  vocabSize: number;
  tokenizerSize: number;
  notes: string[];
}

/** The config.json a tiny/small model gets, with its generated tokenizer; nothing is written. */
export function tinyModelSpec(opts: Omit<TinyModelOptions, 'out' | 'seed'>): {
  config: Record<string, unknown>; parsed: ModelConfig; tokenizer: GeneratedTokenizer; vocabSize: number; notes: string[];
} {
  const { family, size } = opts;
  if (!SHAPES[family]) throw new InvalidRequestError(`--arch ${family} is not one of ${Object.keys(SHAPES).join(', ')}`);
  if (!SHAPES[family][size]) throw new InvalidRequestError(`--size ${size} is not one of tiny, small`);
  const tokenizer = opts.tokenizerDir ? publishedTokenizer(opts.tokenizerDir) : generateTokenizer(family, { merges: size === 'tiny' ? 400 : 2000 });
  const shape = { ...SHAPES[family][size] };
  const notes: string[] = [];
  const vocabSize = opts.vocabSize ?? (shape.vocab_size as number | undefined) ?? Math.ceil(tokenizer.size / 64) * 64;
  delete shape.vocab_size;
  if (vocabSize < tokenizer.size) {
    if (!opts.tokenizerDir) throw new InvalidRequestError(`--vocab-size ${vocabSize} is smaller than the tokenizer (${tokenizer.size} tokens)`);
    Tokenizer.loadSync(opts.tokenizerDir, { vocabSize }); // only special tokens the model never emits may lie past it
  }
  if (tokenizer.size < vocabSize) notes.push(`the tokenizer defines ${tokenizer.size} tokens; embedding rows ${tokenizer.size}..${vocabSize - 1} are unused, as in checkpoints whose vocabulary is padded`);
  if (opts.vocabSize !== undefined && size === 'small') notes.push(`vocabulary reduced to ${vocabSize} from the published shape`);

  const layerTypes = family === 'gemma3'
    ? Array.from({ length: shape.num_hidden_layers as number }, (_, i) => ((i + 1) % 6 === 0 ? 'full_attention' : 'sliding_attention'))
    : undefined;
  const config: Record<string, unknown> = {
    architectures: [HF_CLASS[family].architecture],
    model_type: HF_CLASS[family].modelType,
    vocab_size: vocabSize,
    ...shape,
    ...(layerTypes ? { layer_types: layerTypes, hidden_activation: 'gelu_pytorch_tanh' } : { hidden_act: 'silu' }),
    attention_bias: false,
    tie_word_embeddings: true,
    bos_token_id: tokenizer.bosTokenId,
    eos_token_id: tokenizer.eosTokenIds.length === 1 ? tokenizer.eosTokenIds[0] : tokenizer.eosTokenIds,
    pad_token_id: tokenizer.padTokenId,
    initializer_range: INITIALIZER_RANGE,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[opts.dtype ?? 'F32'],
  };
  return { config, parsed: parseModelConfig(config, 'generated config'), tokenizer, vocabSize, notes };
}

export function initTinyModel(opts: TinyModelOptions): TinyModelSummary {
  const { size, seed, out } = opts;
  const { config, parsed, tokenizer, vocabSize, notes } = tinyModelSpec(opts);
  const tensors = initialWeights(parsed, seed, opts.init ?? (size === 'small' ? 'hf' : 'wide'), INITIALIZER_RANGE);

  fs.mkdirSync(out, { recursive: true });
  const writeJson = (name: string, value: unknown) => fs.writeFileSync(path.join(out, name), JSON.stringify(value, null, 2) + '\n');
  writeJson('config.json', config);
  writeJson('generation_config.json', {
    bos_token_id: tokenizer.bosTokenId,
    eos_token_id: tokenizer.eosTokenIds,
    pad_token_id: tokenizer.padTokenId,
    do_sample: false,
  });
  for (const [name, value] of Object.entries(tokenizer.files)) writeJson(name, value);
  if (opts.tokenizerDir) for (const name of PUBLISHED_TOKENIZER_FILES) fs.copyFileSync(path.join(opts.tokenizerDir, name), path.join(out, name));
  writeSafetensors(path.join(out, 'model.safetensors'), tensors, opts.dtype ?? 'F32');
  return {
    dir: out,
    parameters: tensors.reduce((a, t) => a + t.data.length, 0),
    vocabSize,
    tokenizerSize: tokenizer.size,
    notes,
  };
}

const PUBLISHED_TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

/** A published tokenizer's ids, as a GeneratedTokenizer whose files are copied rather than written. */
function publishedTokenizer(dir: string): GeneratedTokenizer {
  const tok = Tokenizer.loadSync(dir);
  return { files: {}, size: tok.size, bosTokenId: tok.bosTokenId, eosTokenIds: [...tok.eosTokenIds], padTokenId: tok.padTokenId };
}

/**
 * Random tensors for every weight of `config`, in tensorSpecs order. `hf` follows Hugging Face's
 * _init_weights for these classes: normal(0, std) for linear and embedding weights, the embedding row
 * of pad_token_id zeroed, RMSNorm weights at their neutral value (1, or 0 where the norm is 1 + w).
 */
export function initialWeights(
  config: ModelConfig, seed: number, scheme: InitScheme, std = INITIALIZER_RANGE,
): { name: string; shape: number[]; data: Float32Array }[] {
  const rng = new Random(seed);
  const neutral = config.normWeightOffset === 1 ? 0 : 1;
  return tensorSpecs(config).map((spec) => {
    const data = new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
    if (scheme === 'hf') {
      if (spec.kind === 'norm') data.fill(neutral);
      else rng.fillNormal(data, 0, std);
      const pad = config.padTokenId;
      if (spec.kind === 'embedding' && pad !== null && pad >= 0 && pad < config.vocabSize) {
        data.fill(0, pad * config.hiddenSize, (pad + 1) * config.hiddenSize);
      }
    } else if (spec.kind === 'norm') rng.fillNormal(data, neutral, 0.1);
    else if (spec.kind === 'embedding') rng.fillNormal(data, 0, 0.5);
    else rng.fillNormal(data, 0, 1 / Math.sqrt(spec.shape[1]!));
    return { name: spec.name, shape: spec.shape, data };
  });
}
