// A PEFT LoRA adapter -> a GGUF LoRA adapter that llama.cpp applies on top of the base model's GGUF
// (tunekit export gguf of the same base). What llama.cpp expects (src/llama-adapter.cpp):
// - general.type "adapter", adapter.type "lora", adapter.lora.alpha (f32) and a general.architecture
//   equal to the base GGUF's; it scales B·A by alpha / rank, the rank read from lora_b's shape.
// - per adapted weight, "<base tensor name>.lora_a" and ".lora_b", e.g. blk.3.attn_q.weight.lora_a. In
//   ggml order lora_a is [in, r] and lora_b [r, out], i.e. PEFT's row-major A (r, in) and B (out, r)
//   written as they are, with no transpose.
// - Llama's Q/K weights are row-permuted in the base GGUF for llama.cpp's interleaved rope; since
//   (P·W) + s·(P·B)·A = P·(W + s·B·A), the same row permutation is applied to lora_b of q and k.
// Tensors are F32, as convert_lora_to_gguf.py writes them by default.

import * as path from 'node:path';
import type { ModelConfig } from '../models/config.js';
import { loadModelConfig } from '../models/loader.js';
import { TARGET_SLOT, type LoraPair, type LoraTarget } from '../lora/lora.js';
import { loadAdapter } from '../lora/peft.js';
import { gguf, type GgufMetadata } from './gguf-format.js';
import { permuteForInterleavedRope } from './gguf.js';
import { GENERAL_KEYS, GGUF_ARCH, GGUF_FILE_TYPE, ggufTensorName, type GgufArch } from './gguf-keys.js';
import { writeGguf, type GgufTensorInput, type GgufWriteSummary } from './gguf-writer.js';

/** GGUF keys and tensor-name suffixes of LoRA adapter files, as llama.cpp reads them. */
export const GGUF_ADAPTER_KEYS = {
  type: 'general.type', // string: "adapter" (a model file says "model" or nothing)
  adapterType: 'adapter.type', // string: "lora"
  loraAlpha: 'adapter.lora.alpha', // f32
} as const;

export const GGUF_ADAPTER_VALUES = { type: 'adapter', adapterType: 'lora' } as const;

/** Appended to the base tensor's name: blk.{bid}.attn_q.weight.lora_a. */
export const GGUF_LORA_SUFFIX = { A: '.lora_a', B: '.lora_b' } as const;

export interface GgufLoraExportOptions {
  /** The base model's Hugging Face directory (config only is read). */
  modelDir: string;
  /** The PEFT adapter directory. */
  adapterDir: string;
  out: string;
  /** general.name; defaults to the adapter directory's name. */
  name?: string;
  /** Told the bytes written so far and the file's size. */
  onProgress?: (bytesWritten: number, bytes: number) => void;
}

export interface GgufLoraExportSummary extends GgufWriteSummary {
  architecture: GgufArch;
  rank: number;
  alpha: number;
}

export async function exportGgufLora(opts: GgufLoraExportOptions): Promise<GgufLoraExportSummary> {
  const config = loadModelConfig(opts.modelDir);
  const arch = GGUF_ARCH[config.family];
  const adapter = loadAdapter(opts.adapterDir, config);

  const meta: GgufMetadata = new Map();
  meta.set(GENERAL_KEYS.architecture, gguf.str(arch));
  meta.set(GGUF_ADAPTER_KEYS.type, gguf.str(GGUF_ADAPTER_VALUES.type));
  meta.set(GENERAL_KEYS.name, gguf.str(opts.name ?? path.basename(path.resolve(opts.adapterDir))));
  meta.set(GENERAL_KEYS.fileType, gguf.u32(GGUF_FILE_TYPE.F32));
  meta.set(GGUF_ADAPTER_KEYS.adapterType, gguf.str(GGUF_ADAPTER_VALUES.adapterType));
  meta.set(GGUF_ADAPTER_KEYS.loraAlpha, gguf.f32(adapter.config.alpha));

  const R = adapter.config.rank;
  const tensors: GgufTensorInput[] = [];
  adapter.layers.forEach((pairs, l) => {
    for (const [t, pair] of Object.entries(pairs) as [LoraTarget, LoraPair][]) {
      const base = ggufTensorName(arch, TARGET_SLOT[t], l);
      tensors.push({ name: base + GGUF_LORA_SUFFIX.A, shape: [R, pair.inFeatures], type: 'F32', data: () => pair.A });
      tensors.push({ name: base + GGUF_LORA_SUFFIX.B, shape: [pair.outFeatures, R], type: 'F32', data: () => loraBForLlamaCpp(config, t, pair.B, R) });
    }
  });
  const summary = await writeGguf(opts.out, meta, tensors, { onProgress: opts.onProgress });
  return { ...summary, architecture: arch, rank: R, alpha: adapter.config.alpha };
}

/** B (out, R) with the row order llama.cpp's base tensor has (see exportGguf's toLlamaCpp). */
function loraBForLlamaCpp(config: ModelConfig, t: LoraTarget, B: Float32Array, R: number): Float32Array {
  if (config.family === 'llama' && (t === 'q_proj' || t === 'k_proj')) {
    return permuteForInterleavedRope(B, t === 'q_proj' ? config.numHeads : config.numKvHeads, config.headDim, R);
  }
  return B;
}
