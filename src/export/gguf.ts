// Hugging Face model directory -> GGUF that llama.cpp loads and runs as our Transformer does.
// Rules it keeps:
// - A config llama.cpp cannot represent exactly (Gemma 3 layer patterns other than "every n-th layer
//   global", an attention scale other than the one llama.cpp hard-codes, ...) is an
//   UnsupportedModelError naming the field, never a file that runs a different model.
// - Weights are rewritten only where llama.cpp's conventions differ from Hugging Face's: Llama's Q/K
//   rows are permuted for llama.cpp's interleaved (non-NEOX) rope; Gemma's norm weights are stored as
//   1+w; llama3 rope scaling becomes the rope_freqs tensor of per-frequency divisors.
// - Weights stream from the safetensors files one tensor at a time; F16 export keeps norms and other
//   1-D tensors in F32, as llama.cpp expects.

import * as path from 'node:path';
import { InvalidModelError, InvalidRequestError, UnsupportedModelError } from '../errors.js';
import type { ModelConfig, RopeScaling } from '../models/config.js';
import { loadModelConfig, openWeightFiles } from '../models/loader.js';
import { readTensorF32 } from '../models/safetensors.js';
import { tensorSpecs, type TensorSpec } from '../models/weights.js';
import { gguf, type GgufMetadata } from './gguf-format.js';
import { GENERAL_KEYS, GGUF_ARCH, GGUF_FILE_TYPE, archKey, ggufTensorName, type GgufArch } from './gguf-keys.js';
import { buildGgufVocab, vocabMetadata } from './gguf-vocab.js';
import { writeGguf, type GgufTensorInput, type GgufWriteSummary } from './gguf-writer.js';

export type GgufExportDtype = 'f32' | 'f16';

export interface GgufExportOptions {
  modelDir: string;
  out: string;
  dtype: GgufExportDtype;
  /** general.name; defaults to the model directory's name. */
  name?: string;
  /** Told the bytes written so far and the file's size. */
  onProgress?: (bytesWritten: number, bytes: number) => void;
}

export interface GgufExportSummary extends GgufWriteSummary {
  architecture: GgufArch;
  vocabSize: number;
  /** Special tokens past vocab_size left out of the GGUF (Gemma 3's <image_soft_token>). */
  droppedTokens: string[];
}

export async function exportGguf(opts: GgufExportOptions): Promise<GgufExportSummary> {
  if (opts.dtype !== 'f32' && opts.dtype !== 'f16') throw new InvalidRequestError(`--dtype ${String(opts.dtype)} is not one of f32, f16`);
  const config = loadModelConfig(opts.modelDir);
  const arch = GGUF_ARCH[config.family];
  const layout = llamaCppLayout(config);
  const vocab = buildGgufVocab(opts.modelDir, config.vocabSize);

  const meta: GgufMetadata = new Map();
  meta.set(GENERAL_KEYS.architecture, gguf.str(arch));
  meta.set(GENERAL_KEYS.name, gguf.str(opts.name ?? path.basename(path.resolve(opts.modelDir))));
  meta.set(GENERAL_KEYS.fileType, gguf.u32(opts.dtype === 'f16' ? GGUF_FILE_TYPE.F16 : GGUF_FILE_TYPE.F32));
  for (const [k, v] of hparamMetadata(config, arch, layout)) meta.set(k, v);
  for (const [k, v] of vocabMetadata(vocab)) meta.set(k, v);

  const { byTensor } = openWeightFiles(opts.modelDir);
  const tensors: GgufTensorInput[] = [];
  if (config.ropeScaling?.type === 'llama3') {
    const factors = llama3RopeFactors(config.headDim, config.ropeTheta, config.ropeScaling);
    tensors.push({ name: ggufTensorName(arch, 'ropeFreqs', null), shape: [factors.length], type: 'F32', data: () => factors });
  }
  for (const spec of tensorSpecs(config)) {
    const header = byTensor.get(spec.name);
    if (!header) throw new InvalidModelError(`${opts.modelDir}: tensor "${spec.name}" is missing from the weights (expected shape [${spec.shape.join(', ')}])`);
    const stored = header.tensors.get(spec.name)!.shape;
    if (stored.length !== spec.shape.length || stored.some((d, i) => d !== spec.shape[i])) {
      throw new InvalidModelError(`${header.file}: tensor "${spec.name}" has shape [${stored.join(', ')}] but config.json implies [${spec.shape.join(', ')}]`);
    }
    tensors.push({
      name: ggufTensorName(arch, spec.slot, spec.layer),
      shape: spec.shape,
      type: opts.dtype === 'f16' && spec.shape.length > 1 ? 'F16' : 'F32',
      data: () => toLlamaCpp(config, spec, readTensorF32(header, spec.name)),
    });
  }
  const summary = await writeGguf(opts.out, meta, tensors, { onProgress: opts.onProgress });
  return { ...summary, architecture: arch, vocabSize: config.vocabSize, droppedTokens: vocab.dropped };
}

/** How the config maps onto llama.cpp's fixed model code; throws where it cannot. */
interface LlamaCppLayout {
  /** Gemma 3: every n-th layer is global (0: all layers sliding); null when no layer slides. */
  slidingWindowPattern: number | null;
}

function llamaCppLayout(config: ModelConfig): LlamaCppLayout {
  const where = `config.json (${config.architecture})`;
  if (config.family !== 'gemma3') {
    if (config.layerTypes.some((t) => t !== 'full_attention')) {
      throw new UnsupportedModelError(`${where}: sliding-window layers are not exportable for ${config.family}`);
    }
    if (Math.abs(config.attnScale * Math.sqrt(config.headDim) - 1) > 1e-6) {
      throw new UnsupportedModelError(`${where}: attention scale ${config.attnScale} is not 1/sqrt(head_dim), which llama.cpp assumes for ${config.family}`);
    }
    return { slidingWindowPattern: null };
  }
  // llama.cpp's Gemma 3 scales queries by 1/sqrt(head_dim), or 1/sqrt(hidden/heads) for the 62-layer 27B.
  const llamaCppScale = config.numLayers === 62
    ? 1 / Math.sqrt(config.hiddenSize / config.numHeads)
    : 1 / Math.sqrt(config.headDim);
  if (Math.abs(config.attnScale / llamaCppScale - 1) > 1e-6) {
    throw new UnsupportedModelError(
      `${where}: query_pre_attn_scalar = ${1 / config.attnScale ** 2} gives an attention scale llama.cpp does not use for this shape ` +
      `(it hard-codes 1/sqrt(${config.numLayers === 62 ? 'hidden_size/num_attention_heads' : 'head_dim'}) = ${llamaCppScale})`,
    );
  }
  return { slidingWindowPattern: gemma3SlidingPattern(config, where) };
}

/** The n for which "layer i is global iff i % n == n-1" reproduces layer_types, as llama.cpp computes it. */
function gemma3SlidingPattern(config: ModelConfig, where: string): number | null {
  const types = config.layerTypes;
  if (types.every((t) => t === 'full_attention')) return null;
  const firstGlobal = types.indexOf('full_attention');
  const n = firstGlobal < 0 ? 0 : firstGlobal + 1;
  types.forEach((t, i) => {
    const global = n !== 0 && i % n === n - 1;
    if (global !== (t === 'full_attention')) {
      throw new UnsupportedModelError(
        `${where}: layer_types = ${JSON.stringify(types)} is not a repeating "every ${n}-th layer global" pattern, ` +
        `the only one llama.cpp's gemma3 architecture can express (layer ${i} is ${t})`,
      );
    }
  });
  return n;
}

function hparamMetadata(config: ModelConfig, arch: GgufArch, layout: LlamaCppLayout): GgufMetadata {
  const m: GgufMetadata = new Map();
  const key = (k: Parameters<typeof archKey>[1]) => archKey(arch, k);
  m.set(key('vocabSize'), gguf.u32(config.vocabSize));
  m.set(key('contextLength'), gguf.u32(config.maxPositionEmbeddings));
  m.set(key('embeddingLength'), gguf.u32(config.hiddenSize));
  m.set(key('blockCount'), gguf.u32(config.numLayers));
  m.set(key('feedForwardLength'), gguf.u32(config.intermediateSize));
  m.set(key('headCount'), gguf.u32(config.numHeads));
  m.set(key('headCountKv'), gguf.u32(config.numKvHeads));
  m.set(key('keyLength'), gguf.u32(config.headDim));
  m.set(key('valueLength'), gguf.u32(config.headDim));
  m.set(key('rmsNormEps'), gguf.f32(config.rmsNormEps));
  m.set(key('ropeDimensionCount'), gguf.u32(config.headDim));
  m.set(key('ropeFreqBase'), gguf.f32(config.ropeTheta));
  if (config.ropeScaling?.type === 'linear') {
    // On Gemma 3, llama.cpp applies this to the global layers only, as Hugging Face does.
    m.set(key('ropeScalingType'), gguf.str('linear'));
    m.set(key('ropeScalingFactor'), gguf.f32(config.ropeScaling.factor));
  }
  if (layout.slidingWindowPattern !== null) {
    m.set(key('slidingWindow'), gguf.u32(config.slidingWindow!));
    m.set(key('slidingWindowPattern'), gguf.u32(layout.slidingWindowPattern));
    m.set(key('ropeFreqBaseSwa'), gguf.f32(config.ropeLocalTheta));
  }
  return m;
}

/** Rewrites one Hugging Face tensor into llama.cpp's convention for it. */
function toLlamaCpp(config: ModelConfig, spec: TensorSpec, data: Float32Array): Float32Array {
  if (config.family === 'llama' && (spec.slot === 'q' || spec.slot === 'k')) {
    return permuteForInterleavedRope(data, spec.slot === 'q' ? config.numHeads : config.numKvHeads, config.headDim, config.hiddenSize);
  }
  if (spec.kind === 'norm' && config.normWeightOffset !== 0) {
    const out = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = data[i]! + config.normWeightOffset;
    return out;
  }
  return data;
}

/**
 * Hugging Face rotates dimension pairs (i, i+HD/2) of each head; llama.cpp's normal rope rotates
 * (2i, 2i+1). Reordering the rows of W_q and W_k per head (row 2i <- i, row 2i+1 <- i+HD/2) makes the
 * two agree, and leaves q·k unchanged because both sides move together.
 */
export function permuteForInterleavedRope(w: Float32Array, heads: number, HD: number, C: number): Float32Array {
  const out = new Float32Array(w.length); // (heads*HD, C)
  const half = HD / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let a = 0; a < 2; a++) {
        const src = (h * HD + a * half + i) * C;
        const dst = (h * HD + 2 * i + a) * C;
        out.set(w.subarray(src, src + C), dst);
      }
    }
  }
  return out;
}

/**
 * llama3 rope scaling as llama.cpp's rope_freqs: the divisor of each frequency (HD/2). Long
 * wavelengths are divided by `factor`, short ones kept, the band between interpolated smoothly.
 */
export function llama3RopeFactors(HD: number, theta: number, s: Extract<RopeScaling, { type: 'llama3' }>): Float32Array {
  const out = new Float32Array(HD / 2);
  const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  for (let i = 0; i < HD / 2; i++) {
    const freq = 1 / theta ** ((2 * i) / HD);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highFreqWavelen) out[i] = 1;
    else if (wavelen > lowFreqWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}
