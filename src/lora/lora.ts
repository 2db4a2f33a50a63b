// LoRA adapters: low-rank pairs (A, B) beside frozen linear layers, out = x·Wᵀ + (alpha/r)·(x·Aᵀ)·Bᵀ.
// Names follow PEFT (target modules q_proj … down_proj); shapes follow PEFT too: A is (r, in), B is
// (out, r). B starts at zero, so a fresh adapter leaves the base model's outputs exactly unchanged.

import type { ModelConfig } from '../models/config.js';
import type { LayerSlot } from '../models/weights.js';
import { InvalidRequestError } from '../errors.js';
import { Random } from '../engine/random.js';

export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

/** The linear layer each target wraps. */
export const TARGET_SLOT: Record<LoraTarget, LayerSlot> = {
  q_proj: 'q', k_proj: 'k', v_proj: 'v', o_proj: 'o', gate_proj: 'gate', up_proj: 'up', down_proj: 'down',
};

/** The HF module path of a target inside a decoder layer. */
export const TARGET_MODULE: Record<LoraTarget, string> = {
  q_proj: 'self_attn.q_proj', k_proj: 'self_attn.k_proj', v_proj: 'self_attn.v_proj', o_proj: 'self_attn.o_proj',
  gate_proj: 'mlp.gate_proj', up_proj: 'mlp.up_proj', down_proj: 'mlp.down_proj',
};

/** Vertex's adapterSize values. */
export const ADAPTER_SIZES = [1, 2, 4, 8, 16, 32] as const;

export interface LoraConfig {
  rank: number;
  /** Scale of the update is alpha / rank. Default: 2 × rank (documented in README). */
  alpha: number;
  /** Dropout on the adapter's input during training only. */
  dropout: number;
  targets: LoraTarget[];
}

export interface LoraPair {
  A: Float32Array; // (r, in)
  B: Float32Array; // (out, r)
  inFeatures: number;
  outFeatures: number;
}

export interface LoraAdapter {
  config: LoraConfig;
  /** Per decoder layer, the pairs of the targeted layers. */
  layers: Array<Partial<Record<LoraTarget, LoraPair>>>;
  /** base_model_name_or_path, when known. */
  baseModel?: string;
}

export function defaultLoraConfig(rank = 8, overrides: Partial<LoraConfig> = {}): LoraConfig {
  return { rank, alpha: 2 * rank, dropout: 0, targets: [...LORA_TARGETS], ...overrides };
}

export function validateLoraConfig(c: LoraConfig): void {
  if (!Number.isInteger(c.rank) || c.rank < 1 || c.rank > 256) throw new InvalidRequestError(`LoRA rank must be an integer in 1..256, got ${c.rank}`);
  if (!(c.alpha > 0)) throw new InvalidRequestError(`LoRA alpha must be positive, got ${c.alpha}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new InvalidRequestError(`LoRA dropout must be in [0, 1), got ${c.dropout}`);
  if (c.targets.length === 0) throw new InvalidRequestError('LoRA needs at least one target module');
  for (const t of c.targets) {
    if (!(LORA_TARGETS as readonly string[]).includes(t)) throw new InvalidRequestError(`unknown LoRA target "${t}" (known: ${LORA_TARGETS.join(', ')})`);
  }
}

/** (out, in) features of a target's linear layer. */
export function targetShape(config: ModelConfig, t: LoraTarget): { inFeatures: number; outFeatures: number } {
  const { hiddenSize: C, intermediateSize: F, numHeads: NH, numKvHeads: NKV, headDim: HD } = config;
  switch (t) {
    case 'q_proj': return { inFeatures: C, outFeatures: NH * HD };
    case 'k_proj': case 'v_proj': return { inFeatures: C, outFeatures: NKV * HD };
    case 'o_proj': return { inFeatures: NH * HD, outFeatures: C };
    case 'gate_proj': case 'up_proj': return { inFeatures: C, outFeatures: F };
    case 'down_proj': return { inFeatures: F, outFeatures: C };
  }
}

/** Number of trainable parameters: r · (in + out) summed over targets and layers. */
export function loraParameterCount(config: ModelConfig, lora: LoraConfig): number {
  let per = 0;
  for (const t of lora.targets) {
    const { inFeatures, outFeatures } = targetShape(config, t);
    per += lora.rank * (inFeatures + outFeatures);
  }
  return per * config.numLayers;
}

/**
 * A fresh adapter: A drawn as PEFT does (Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in))),
 * B zero. Views into one Float32Array (`storage`) when given, so an optimizer can treat them as one vector.
 */
export function initLoraAdapter(config: ModelConfig, lora: LoraConfig, seed: number, storage?: Float32Array): LoraAdapter {
  validateLoraConfig(lora);
  const total = loraParameterCount(config, lora);
  const flat = storage ?? new Float32Array(total);
  if (flat.length < total) throw new Error(`internal: LoRA storage of ${flat.length} < ${total}`);
  const rng = new Random(seed);
  let offset = 0;
  const layers: LoraAdapter['layers'] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const pairs: Partial<Record<LoraTarget, LoraPair>> = {};
    for (const t of LORA_TARGETS) {
      if (!lora.targets.includes(t)) continue;
      const { inFeatures, outFeatures } = targetShape(config, t);
      const A = flat.subarray(offset, offset + lora.rank * inFeatures);
      offset += A.length;
      const B = flat.subarray(offset, offset + outFeatures * lora.rank);
      offset += B.length;
      const bound = 1 / Math.sqrt(inFeatures);
      for (let i = 0; i < A.length; i++) A[i] = (2 * rng.next() - 1) * bound;
      B.fill(0);
      pairs[t] = { A, B, inFeatures, outFeatures };
    }
    layers.push(pairs);
  }
  return { config: { ...lora, targets: [...lora.targets] }, layers };
}
