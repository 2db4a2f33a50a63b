// Folding a LoRA adapter into its base weights: W' = W + (alpha/r)·B·A for every targeted linear layer.
// Rules it keeps:
// - The base weights are never modified; the merged ModelWeights shares every untouched tensor with the
//   base and holds fresh arrays for the changed ones only.
// - A fresh adapter (B = 0) merges to exactly the base weights (one GEMM with beta = 1 adds exact zeros).
// - writeMergedModel writes a complete Hugging Face directory into a staging directory beside `out` and
//   renames it into place, so `out` either does not exist or holds the whole model.
// Dimension letters: OUT/IN features of the wrapped layer, R rank.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { InvalidModelError, InvalidRequestError } from '../errors.js';
import { gemm } from '../engine/blas.js';
import type { ModelConfig } from '../models/config.js';
import { loadModelConfig, loadModelWeights, readJsonFile } from '../models/loader.js';
import { writeSafetensors, type SafetensorsDtype } from '../models/safetensors.js';
import { getTensor, tensorSpecs, type LayerWeights, type ModelWeights } from '../models/weights.js';
import { OPTIONAL_FILES, REQUIRED_FILES, SINGLE_WEIGHTS } from '../hub/model-files.js';
import { TARGET_SLOT, targetShape, type LoraAdapter, type LoraTarget } from './lora.js';
import { loadAdapter } from './peft.js';

/** The scale PEFT (and llama.cpp) apply to B·A. */
export function loraScale(adapter: LoraAdapter): number {
  return adapter.config.alpha / adapter.config.rank;
}

/** Base weights with the adapter folded in; the base arrays are left untouched. */
export function mergeAdapter(weights: ModelWeights, config: ModelConfig, adapter: LoraAdapter): ModelWeights {
  if (adapter.layers.length !== config.numLayers) {
    throw new InvalidModelError(`the adapter has ${adapter.layers.length} layers but the model has ${config.numLayers}`);
  }
  const R = adapter.config.rank;
  const scale = loraScale(adapter);
  const layers = weights.layers.map((lw, l) => {
    const merged: LayerWeights = { ...lw };
    for (const [t, pair] of Object.entries(adapter.layers[l]!) as [LoraTarget, NonNullable<LoraAdapter['layers'][number][LoraTarget]>][]) {
      const { inFeatures: IN, outFeatures: OUT } = targetShape(config, t);
      if (pair.A.length !== R * IN || pair.B.length !== OUT * R) {
        throw new InvalidModelError(`adapter layer ${l} ${t}: A has ${pair.A.length} and B ${pair.B.length} values, but rank ${R} and the model imply (${R}, ${IN}) and (${OUT}, ${R})`);
      }
      const slot = TARGET_SLOT[t] as 'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down';
      const w = lw[slot].slice(); // (OUT, IN)
      gemm().sgemm(false, false, OUT, IN, R, scale, pair.B, R, pair.A, IN, 1, w, IN);
      merged[slot] = w;
    }
    return merged;
  });
  return { ...weights, layers };
}

export interface MergedModelOptions {
  baseDir: string;
  adapterDir: string;
  out: string;
  /** Weight dtype of the merged model.safetensors. Default F32, whatever the base's torch_dtype. */
  dtype?: SafetensorsDtype;
  /** Told the bytes of model.safetensors written so far and its size. */
  onProgress?: (bytesWritten: number, bytes: number) => void;
}

export interface MergedModelSummary {
  dir: string;
  dtype: SafetensorsDtype;
  /** Linear layers that changed. */
  mergedTensors: number;
  copiedFiles: string[];
}

const TORCH_DTYPE: Record<SafetensorsDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** Tokenizer files some repos carry beside the ones tunekit reads; copied when present. */
const EXTRA_TOKENIZER_FILES = ['tokenizer.model', 'vocab.json', 'merges.txt', 'added_tokens.json'];

/** Writes base + adapter as a complete Hugging Face model directory at `out` (which must not hold files). */
export function writeMergedModel(opts: MergedModelOptions): MergedModelSummary {
  const dtype = opts.dtype ?? 'F32';
  const out = path.resolve(opts.out);
  if (fs.existsSync(out) && (!fs.statSync(out).isDirectory() || fs.readdirSync(out).length > 0)) {
    throw new InvalidRequestError(`--out ${opts.out} already exists and is not an empty directory; choose a new directory`);
  }
  const config = loadModelConfig(opts.baseDir);
  const adapter = loadAdapter(opts.adapterDir, config);
  const merged = mergeAdapter(loadModelWeights(opts.baseDir, config), config, adapter);

  const staging = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  fs.mkdirSync(staging, { recursive: true });
  try {
    const tensors = tensorSpecs(config).map((spec) => ({ name: spec.name, shape: spec.shape, data: getTensor(merged, spec) }));
    writeSafetensors(path.join(staging, SINGLE_WEIGHTS), tensors, dtype, undefined, { onProgress: opts.onProgress });
    const cfg = readJsonFile(path.join(opts.baseDir, 'config.json'));
    cfg[cfg.dtype !== undefined && cfg.torch_dtype === undefined ? 'dtype' : 'torch_dtype'] = TORCH_DTYPE[dtype];
    fs.writeFileSync(path.join(staging, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
    const copiedFiles: string[] = [];
    for (const name of [...REQUIRED_FILES, ...OPTIONAL_FILES, ...EXTRA_TOKENIZER_FILES]) {
      if (name === 'config.json') continue;
      const src = path.join(opts.baseDir, name);
      if (!fs.existsSync(src)) continue;
      fs.copyFileSync(src, path.join(staging, name));
      copiedFiles.push(name);
    }
    if (fs.existsSync(out)) fs.rmdirSync(out);
    fs.renameSync(staging, out);
    const mergedTensors = adapter.layers.reduce((n, pairs) => n + Object.keys(pairs).length, 0);
    return { dir: out, dtype, mergedTensors, copiedFiles };
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}
