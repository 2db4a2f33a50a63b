// The weights of a decoder-only transformer, and the table that maps them to Hugging Face tensor names
// and shapes. The table is the single source of truth for loading, saving (tiny checkpoints, merges)
// and export; other code asks it rather than spelling tensor names again.
// Dimension letters: V vocab, C hidden, F intermediate, NH/NKV heads, HD head dim.

import type { ModelConfig } from './config.js';

export interface LayerWeights {
  attnNorm: Float32Array; // (C) input_layernorm
  q: Float32Array; // (NH*HD, C)
  k: Float32Array; // (NKV*HD, C)
  v: Float32Array; // (NKV*HD, C)
  o: Float32Array; // (C, NH*HD)
  qNorm?: Float32Array; // (HD) Qwen3, Gemma3
  kNorm?: Float32Array; // (HD) Qwen3, Gemma3
  postAttnNorm?: Float32Array; // (C) Gemma3 post_attention_layernorm
  ffnNorm: Float32Array; // (C) post_attention_layernorm (Llama/Qwen) or pre_feedforward_layernorm (Gemma)
  postFfnNorm?: Float32Array; // (C) Gemma3
  gate: Float32Array; // (F, C)
  up: Float32Array; // (F, C)
  down: Float32Array; // (C, F)
}

export type LayerSlot = keyof LayerWeights;

export interface ModelWeights {
  embed: Float32Array; // (V, C)
  finalNorm: Float32Array; // (C)
  /** (V, C); the same array as embed when the embeddings are tied. */
  lmHead: Float32Array;
  layers: LayerWeights[];
}

export interface TensorSpec {
  /** Hugging Face tensor name. */
  name: string;
  shape: number[];
  /** Layer index and slot, or a model-level slot. */
  layer: number | null;
  slot: LayerSlot | 'embed' | 'finalNorm' | 'lmHead';
  kind: 'norm' | 'linear' | 'embedding';
}

/** Every tensor a checkpoint of this config holds, in a stable order. */
export function tensorSpecs(config: ModelConfig): TensorSpec[] {
  const { vocabSize: V, hiddenSize: C, intermediateSize: F, numHeads: NH, numKvHeads: NKV, headDim: HD } = config;
  const specs: TensorSpec[] = [
    { name: 'model.embed_tokens.weight', shape: [V, C], layer: null, slot: 'embed', kind: 'embedding' },
  ];
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const add = (suffix: string, shape: number[], slot: LayerSlot, kind: TensorSpec['kind']) =>
      specs.push({ name: p + suffix, shape, layer: l, slot, kind });
    add('input_layernorm.weight', [C], 'attnNorm', 'norm');
    add('self_attn.q_proj.weight', [NH * HD, C], 'q', 'linear');
    add('self_attn.k_proj.weight', [NKV * HD, C], 'k', 'linear');
    add('self_attn.v_proj.weight', [NKV * HD, C], 'v', 'linear');
    add('self_attn.o_proj.weight', [C, NH * HD], 'o', 'linear');
    if (config.qkNorm) {
      add('self_attn.q_norm.weight', [HD], 'qNorm', 'norm');
      add('self_attn.k_norm.weight', [HD], 'kNorm', 'norm');
    }
    if (config.sandwichNorms) {
      add('post_attention_layernorm.weight', [C], 'postAttnNorm', 'norm');
      add('pre_feedforward_layernorm.weight', [C], 'ffnNorm', 'norm');
      add('post_feedforward_layernorm.weight', [C], 'postFfnNorm', 'norm');
    } else {
      add('post_attention_layernorm.weight', [C], 'ffnNorm', 'norm');
    }
    add('mlp.gate_proj.weight', [F, C], 'gate', 'linear');
    add('mlp.up_proj.weight', [F, C], 'up', 'linear');
    add('mlp.down_proj.weight', [C, F], 'down', 'linear');
  }
  specs.push({ name: 'model.norm.weight', shape: [C], layer: null, slot: 'finalNorm', kind: 'norm' });
  if (!config.tieWordEmbeddings) specs.push({ name: 'lm_head.weight', shape: [V, C], layer: null, slot: 'lmHead', kind: 'linear' });
  return specs;
}

/** Tensors some checkpoints carry that hold nothing the model needs. */
export function isIgnorableTensor(name: string, config: ModelConfig): boolean {
  return name.endsWith('.rotary_emb.inv_freq') || (config.tieWordEmbeddings && name === 'lm_head.weight');
}

export function getTensor(weights: ModelWeights, spec: TensorSpec): Float32Array {
  if (spec.layer === null) return weights[spec.slot as 'embed' | 'finalNorm' | 'lmHead'];
  const t = weights.layers[spec.layer]![spec.slot as LayerSlot];
  if (!t) throw new Error(`internal: layer ${spec.layer} has no ${spec.slot}`);
  return t;
}

/** Builds ModelWeights from a name -> tensor lookup (already shape-checked by the caller). */
export function assembleWeights(config: ModelConfig, lookup: (spec: TensorSpec) => Float32Array): ModelWeights {
  const layers: Partial<LayerWeights>[] = Array.from({ length: config.numLayers }, () => ({}));
  let embed: Float32Array | undefined;
  let finalNorm: Float32Array | undefined;
  let lmHead: Float32Array | undefined;
  for (const spec of tensorSpecs(config)) {
    const data = lookup(spec);
    if (spec.layer !== null) layers[spec.layer]![spec.slot as LayerSlot] = data;
    else if (spec.slot === 'embed') embed = data;
    else if (spec.slot === 'finalNorm') finalNorm = data;
    else lmHead = data;
  }
  return { embed: embed!, finalNorm: finalNorm!, lmHead: lmHead ?? embed!, layers: layers as LayerWeights[] };
}
