// Every name tunekit reads or writes in a PEFT adapter directory, in one place: the two file names,
// the adapter_config.json fields (as PEFT 0.19 writes them, sorted), and the safetensors tensor names.
// Each config field says how the loader treats it:
// - 'core': read into LoraConfig (r, lora_alpha, lora_dropout, target_modules, ...).
// - 'must-be-default': changes what the adapter computes (DoRA, rsLoRA, per-layer ranks, biases, ...);
//   any value other than its default is refused, since merging or serving it as plain LoRA would be wrong.
// - 'informational': affects only training-time initialisation or bookkeeping; read and ignored.
// A field not listed here is accepted when it holds an "unset" value (null, false, {}, []) and refused
// otherwise, so a newer PEFT release that adds an inert field still loads.

import type { LoraTarget } from './lora.js';
import { TARGET_MODULE } from './lora.js';

export const PEFT_FILES = {
  config: 'adapter_config.json',
  weights: 'adapter_model.safetensors',
  /** Older PEFT (and torch.save) output, which tunekit does not read. */
  legacyWeights: 'adapter_model.bin',
} as const;

/** The PEFT release whose adapter_config.json layout tunekit writes; written as peft_version. */
export const PEFT_SCHEMA_VERSION = '0.19.1';

export const PEFT_TYPE_LORA = 'LORA';
export const PEFT_TASK_CAUSAL_LM = 'CAUSAL_LM';
/** PEFT's target_modules shorthand for every linear layer except the output head. */
export const PEFT_ALL_LINEAR = 'all-linear';

type FieldRole = 'core' | 'must-be-default' | 'informational';

interface FieldSpec {
  role: FieldRole;
  /** The value tunekit writes (core fields are filled from the adapter instead). */
  default: unknown;
}

/** adapter_config.json, field by field, in PEFT's (alphabetical) order. */
export const PEFT_CONFIG_FIELDS = {
  alora_invocation_tokens: { role: 'must-be-default', default: null },
  alpha_pattern: { role: 'must-be-default', default: {} },
  arrow_config: { role: 'must-be-default', default: null },
  auto_mapping: { role: 'informational', default: null },
  base_model_name_or_path: { role: 'core', default: null },
  bias: { role: 'must-be-default', default: 'none' },
  corda_config: { role: 'informational', default: null },
  ensure_weight_tying: { role: 'informational', default: false },
  eva_config: { role: 'informational', default: null },
  exclude_modules: { role: 'must-be-default', default: null },
  fan_in_fan_out: { role: 'must-be-default', default: false },
  inference_mode: { role: 'informational', default: true },
  init_lora_weights: { role: 'informational', default: true },
  layer_replication: { role: 'must-be-default', default: null },
  layers_pattern: { role: 'must-be-default', default: null },
  layers_to_transform: { role: 'must-be-default', default: null },
  loftq_config: { role: 'informational', default: {} },
  lora_alpha: { role: 'core', default: null },
  lora_bias: { role: 'must-be-default', default: false },
  lora_dropout: { role: 'core', default: null },
  lora_ga_config: { role: 'informational', default: null },
  megatron_config: { role: 'must-be-default', default: null },
  megatron_core: { role: 'informational', default: 'megatron.core' },
  modules_to_save: { role: 'must-be-default', default: null },
  peft_type: { role: 'core', default: PEFT_TYPE_LORA },
  peft_version: { role: 'informational', default: PEFT_SCHEMA_VERSION },
  qalora_group_size: { role: 'informational', default: 16 },
  r: { role: 'core', default: null },
  rank_pattern: { role: 'must-be-default', default: {} },
  revision: { role: 'informational', default: null },
  target_modules: { role: 'core', default: null },
  target_parameters: { role: 'must-be-default', default: null },
  task_type: { role: 'core', default: PEFT_TASK_CAUSAL_LM },
  trainable_token_indices: { role: 'must-be-default', default: null },
  use_bdlora: { role: 'must-be-default', default: null },
  use_dora: { role: 'must-be-default', default: false },
  use_qalora: { role: 'must-be-default', default: false },
  use_rslora: { role: 'must-be-default', default: false },
} as const satisfies Record<string, FieldSpec>;

export type PeftConfigField = keyof typeof PEFT_CONFIG_FIELDS;

/** Fields PEFT releases other than 0.19 write that carry nothing for a plain LoRA at inference. */
export const PEFT_INFORMATIONAL_EXTRA_FIELDS: ReadonlySet<string> = new Set(['runtime_config', 'velora_config', 'monteclora_config']);

/** Prefix PEFT puts before the base model's own module path when it saves a CausalLM adapter. */
const PEFT_PREFIX = 'base_model.model.';

/** A tensor name's parts: `base_model.model.model.layers.{l}.{module}.lora_{A|B}.weight`. */
export const PEFT_LORA_SUFFIX = { A: 'lora_A.weight', B: 'lora_B.weight' } as const;

/** The safetensors name of one matrix of a layer's adapter pair, e.g. ...layers.3.self_attn.q_proj.lora_A.weight. */
export function peftTensorName(layer: number, target: LoraTarget, which: 'A' | 'B'): string {
  return `${PEFT_PREFIX}model.layers.${layer}.${TARGET_MODULE[target]}.${PEFT_LORA_SUFFIX[which]}`;
}
