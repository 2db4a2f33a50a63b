// LoRA adapters on disk in PEFT's layout, so that `PeftModel.from_pretrained` reads what we write and we
// read what PEFT writes: adapter_config.json plus adapter_model.safetensors with PEFT's tensor names
// (src/lora/peft-keys.ts holds every name). Rules it keeps:
// - Loading checks the adapter against the base model's config: every tensor the config implies is
//   present with its shape, nothing else is; errors name the file and the field or tensor.
// - Anything that changes what the adapter computes and that plain LoRA cannot express (DoRA, rsLoRA,
//   per-layer ranks or alphas, a subset of layers, biases, extra trained modules) is refused, never
//   silently run as plain LoRA.
// - Writes are atomic: the weights first, then the config, each through a temporary file and a rename,
//   so a directory holding an adapter_config.json holds a complete adapter.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidModelError, InvalidRequestError, UnsupportedModelError } from '../errors.js';
import type { ModelConfig } from '../models/config.js';
import { readJsonFile } from '../models/loader.js';
import { readSafetensorsHeader, readTensorF32, writeSafetensors, type SafetensorsDtype, type SafetensorsHeader, type TensorToWrite } from '../models/safetensors.js';
import { LORA_TARGETS, TARGET_MODULE, loraParameterCount, targetShape, type LoraAdapter, type LoraConfig, type LoraPair, type LoraTarget } from './lora.js';
import {
  PEFT_ALL_LINEAR, PEFT_CONFIG_FIELDS, PEFT_FILES, PEFT_INFORMATIONAL_EXTRA_FIELDS, PEFT_TASK_CAUSAL_LM, PEFT_TYPE_LORA,
  peftTensorName, type PeftConfigField,
} from './peft-keys.js';

export interface SaveAdapterOptions {
  /** base_model_name_or_path; defaults to adapter.baseModel. */
  baseModel?: string;
  /** inference_mode as PEFT records it (true for a finished adapter, false for a training checkpoint). */
  inferenceMode?: boolean;
  /** Tensor dtype in adapter_model.safetensors. Default F32. */
  dtype?: SafetensorsDtype;
}

/** What adapter_config.json says, checked on its own (no model needed). */
export interface PeftAdapterConfig {
  lora: LoraConfig;
  baseModel?: string;
}

/** Writes `adapter` to `dir` (created when missing) as adapter_config.json and adapter_model.safetensors. */
export function saveAdapter(dir: string, adapter: LoraAdapter, opts: SaveAdapterOptions = {}): void {
  const { config } = adapter;
  const tensors: TensorToWrite[] = [];
  adapter.layers.forEach((pairs, l) => {
    for (const t of orderedTargets(config.targets)) {
      const pair = pairs[t];
      if (!pair) throw new InvalidRequestError(`saving adapter to ${dir}: layer ${l} has no ${t} pair although the config targets it`);
      checkPairLength(pair, config.rank, `layer ${l} ${t}`, dir);
      tensors.push({ name: peftTensorName(l, t, 'A'), shape: [config.rank, pair.inFeatures], data: pair.A });
      tensors.push({ name: peftTensorName(l, t, 'B'), shape: [pair.outFeatures, config.rank], data: pair.B });
    }
  });
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, PEFT_FILES.weights), tensors, opts.dtype ?? 'F32');
  writeJsonAtomic(path.join(dir, PEFT_FILES.config), peftConfigJson(config, opts.baseModel ?? adapter.baseModel ?? null, opts.inferenceMode ?? true));
}

/** adapter_config.json as PEFT writes it: every field, alphabetical. */
export function peftConfigJson(config: LoraConfig, baseModel: string | null, inferenceMode: boolean): Record<string, unknown> {
  const json: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(PEFT_CONFIG_FIELDS)) json[key] = structuredClone(spec.default);
  const core: Partial<Record<PeftConfigField, unknown>> = {
    base_model_name_or_path: baseModel,
    inference_mode: inferenceMode,
    lora_alpha: config.alpha,
    lora_dropout: config.dropout,
    r: config.rank,
    target_modules: orderedTargets(config.targets),
  };
  return Object.assign(json, core);
}

/** Reads and checks adapter_config.json of `dir`. */
export function readAdapterConfig(dir: string): PeftAdapterConfig {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new InvalidModelError(`adapter directory ${dir} does not exist`);
  const file = path.join(dir, PEFT_FILES.config);
  if (!fs.existsSync(file)) throw new InvalidModelError(`${dir}: no ${PEFT_FILES.config}; a PEFT LoRA adapter directory holds ${PEFT_FILES.config} and ${PEFT_FILES.weights}`);
  return parsePeftConfig(readJsonFile(file), file);
}

/** Parses an adapter_config.json object; `file` names it in errors. */
export function parsePeftConfig(json: Record<string, unknown>, file: string): PeftAdapterConfig {
  const field = (k: string, v: unknown) => `${file}: field "${k}" = ${JSON.stringify(v)}`;
  if (json.peft_type !== PEFT_TYPE_LORA) {
    throw new UnsupportedModelError(`${field('peft_type', json.peft_type)} is not supported; tunekit reads LoRA adapters (peft_type "${PEFT_TYPE_LORA}")`);
  }
  if (json.task_type !== undefined && json.task_type !== null && json.task_type !== PEFT_TASK_CAUSAL_LM) {
    throw new UnsupportedModelError(`${field('task_type', json.task_type)} is not supported; expected "${PEFT_TASK_CAUSAL_LM}"`);
  }
  for (const [key, value] of Object.entries(json)) {
    const spec = (PEFT_CONFIG_FIELDS as Record<string, { role: string; default: unknown }>)[key];
    if (spec) {
      if (spec.role === 'must-be-default' && !isDefault(value, spec.default)) {
        throw new UnsupportedModelError(`${field(key, value)} is not supported: ${REFUSAL_REASON[key] ?? 'it changes what the adapter computes'}; tunekit runs plain LoRA only (expected ${JSON.stringify(spec.default)})`);
      }
    } else if (!PEFT_INFORMATIONAL_EXTRA_FIELDS.has(key) && !isUnset(value)) {
      throw new UnsupportedModelError(`${field(key, value)} is not a PEFT LoRA field tunekit understands; remove it or set it to null`);
    }
  }
  const rank = json.r;
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 1) throw new InvalidModelError(`${field('r', rank)} must be a positive integer`);
  const alpha = json.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !(alpha > 0) || !Number.isFinite(alpha)) throw new InvalidModelError(`${field('lora_alpha', alpha)} must be a positive number`);
  const dropout = json.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw new InvalidModelError(`${field('lora_dropout', dropout)} must be a number in [0, 1)`);
  const targets = parseTargetModules(json.target_modules, file);
  const base = json.base_model_name_or_path;
  return {
    lora: { rank, alpha, dropout, targets },
    ...(typeof base === 'string' && base !== '' ? { baseModel: base } : {}),
  };
}

/** An adapter whose files are checked against a model and whose tensors are not read yet. */
export interface OpenedAdapter {
  dir: string;
  config: LoraConfig;
  baseModel?: string;
  /** Bytes its float32 tensors take once read. */
  bytes: number;
  header: SafetensorsHeader;
  model: ModelConfig;
}

/**
 * Checks the adapter in `dir` against a model of `model`'s shape (config, every tensor name and
 * shape), reading no tensor data; errors name the file and the field or tensor.
 */
export function openAdapter(dir: string, model: ModelConfig): OpenedAdapter {
  const { lora, baseModel } = readAdapterConfig(dir);
  const file = path.join(dir, PEFT_FILES.weights);
  if (!fs.existsSync(file)) {
    const legacy = fs.existsSync(path.join(dir, PEFT_FILES.legacyWeights));
    throw (legacy
      ? new UnsupportedModelError(`${dir}: the adapter's weights are in ${PEFT_FILES.legacyWeights}, which tunekit does not read; save it with safe_serialization=True to get ${PEFT_FILES.weights}`)
      : new InvalidModelError(`${dir}: no ${PEFT_FILES.weights}`));
  }
  const header = readSafetensorsHeader(file);
  const expected = new Map<string, number[]>();
  for (let l = 0; l < model.numLayers; l++) {
    for (const t of lora.targets) {
      const { inFeatures, outFeatures } = targetShape(model, t);
      expected.set(peftTensorName(l, t, 'A'), [lora.rank, inFeatures]);
      expected.set(peftTensorName(l, t, 'B'), [outFeatures, lora.rank]);
    }
  }
  for (const name of header.tensors.keys()) {
    if (!expected.has(name)) throw new InvalidModelError(`${file}: unexpected tensor "${name}" (${whyUnexpected(name, lora, model)})`);
  }
  for (const [name, shape] of expected) {
    const info = header.tensors.get(name);
    if (!info) {
      throw new InvalidModelError(`${file}: tensor "${name}" is missing (${PEFT_FILES.config} targets ${lora.targets.join(', ')} and the model has ${model.numLayers} layers; expected shape [${shape.join(', ')}])`);
    }
    if (info.shape.length !== 2 || info.shape[0] !== shape[0] || info.shape[1] !== shape[1]) {
      throw new InvalidModelError(`${file}: tensor "${name}" has shape [${info.shape.join(', ')}] but r = ${lora.rank} and the model's ${model.architecture} config imply [${shape.join(', ')}] (is this adapter for another base model?)`);
    }
  }
  return { dir, config: lora, ...(baseModel !== undefined ? { baseModel } : {}), bytes: 4 * loraParameterCount(model, lora), header, model };
}

/** Layer l's pairs of an opened adapter, read as float32. */
export function readAdapterLayer(a: OpenedAdapter, l: number): Partial<Record<LoraTarget, LoraPair>> {
  const pairs: Partial<Record<LoraTarget, LoraPair>> = {};
  for (const t of a.config.targets) {
    const { inFeatures, outFeatures } = targetShape(a.model, t);
    pairs[t] = {
      A: readTensorF32(a.header, peftTensorName(l, t, 'A')),
      B: readTensorF32(a.header, peftTensorName(l, t, 'B')),
      inFeatures,
      outFeatures,
    };
  }
  return pairs;
}

/**
 * Loads the adapter in `dir` for a model of `model`'s shape: every layer, every target module, A (r, in)
 * and B (out, r), as float32.
 */
export function loadAdapter(dir: string, model: ModelConfig): LoraAdapter {
  const a = openAdapter(dir, model);
  const layers = Array.from({ length: model.numLayers }, (_, l) => readAdapterLayer(a, l));
  return { config: a.config, layers, ...(a.baseModel !== undefined ? { baseModel: a.baseModel } : {}) };
}

/** What each refused field does, for the error message. */
const REFUSAL_REASON: Partial<Record<string, string>> = {
  use_dora: 'DoRA adds a magnitude vector and normalises the merged weight',
  use_rslora: 'rsLoRA scales by lora_alpha / sqrt(r) instead of lora_alpha / r',
  rank_pattern: 'per-module ranks',
  alpha_pattern: 'per-module alphas',
  layers_to_transform: 'the adapter covers only some layers',
  layers_pattern: 'the adapter covers only some layers',
  bias: 'the adapter trains bias terms',
  lora_bias: 'lora_B carries a bias',
  modules_to_save: 'whole modules are trained and saved beside the adapter',
  fan_in_fan_out: 'weights stored transposed (Conv1D layers)',
  exclude_modules: 'some matching modules are excluded',
  trainable_token_indices: 'embedding rows are trained',
  target_parameters: 'parameters, not linear modules, are targeted',
  layer_replication: 'layers are replicated',
  use_qalora: 'QA-LoRA pools the adapter input',
  alora_invocation_tokens: 'activated LoRA applies only after invocation tokens',
};

/** target_modules -> our targets: PEFT module names (q_proj), module paths (self_attn.q_proj) or "all-linear". */
function parseTargetModules(raw: unknown, file: string): LoraTarget[] {
  if (raw === PEFT_ALL_LINEAR) return [...LORA_TARGETS];
  if (typeof raw === 'string') {
    throw new UnsupportedModelError(`${file}: field "target_modules" = ${JSON.stringify(raw)} is a regular expression; tunekit needs a list of module names (${LORA_TARGETS.join(', ')})`);
  }
  if (!Array.isArray(raw) || raw.length === 0 || !raw.every((m): m is string => typeof m === 'string')) {
    throw new InvalidModelError(`${file}: field "target_modules" must be a non-empty list of module names, got ${JSON.stringify(raw)}`);
  }
  const found = new Set<LoraTarget>();
  for (const m of raw) {
    const t = LORA_TARGETS.find((x) => m === x || m === TARGET_MODULE[x]);
    if (!t) {
      throw new UnsupportedModelError(`${file}: field "target_modules" lists "${m}", which tunekit cannot adapt (supported: ${LORA_TARGETS.join(', ')})`);
    }
    found.add(t);
  }
  return orderedTargets([...found]);
}

function orderedTargets(targets: readonly LoraTarget[]): LoraTarget[] {
  return LORA_TARGETS.filter((t) => targets.includes(t));
}

function whyUnexpected(name: string, lora: LoraConfig, model: ModelConfig): string {
  if (name.includes('lora_magnitude_vector')) return 'a DoRA magnitude vector; tunekit runs plain LoRA only';
  if (/lora_embedding_[AB]/.test(name)) return 'an embedding adapter; tunekit adapts linear layers only';
  if (/\.lora_[AB]\.[^.]+\.weight$/.test(name)) return 'PEFT names saved tensors without the adapter name; this one still has it';
  const layer = /\.layers\.(\d+)\./.exec(name);
  if (layer && Number(layer[1]) >= model.numLayers) return `the base model has ${model.numLayers} layers`;
  const t = LORA_TARGETS.find((x) => name.includes(`.${TARGET_MODULE[x]}.`));
  if (t && !lora.targets.includes(t)) return `${PEFT_FILES.config} does not list ${t} in target_modules`;
  return `expected names like "${peftTensorName(0, lora.targets[0]!, 'A')}"`;
}

function checkPairLength(pair: LoraPair, rank: number, what: string, dir: string): void {
  if (pair.A.length !== rank * pair.inFeatures || pair.B.length !== pair.outFeatures * rank) {
    throw new InvalidRequestError(`saving adapter to ${dir}: ${what} has A of ${pair.A.length} and B of ${pair.B.length} values, not (${rank}, ${pair.inFeatures}) and (${pair.outFeatures}, ${rank})`);
  }
}

/** null, false, an empty list or object: what PEFT writes for an option left unset. */
function isUnset(v: unknown): boolean {
  if (v === undefined || v === null || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && Object.keys(v as object).length === 0;
}

function isDefault(v: unknown, def: unknown): boolean {
  if (v === undefined) return true;
  if (isUnset(def)) return isUnset(v);
  return JSON.stringify(v) === JSON.stringify(def);
}

function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  fs.renameSync(tmp, file);
}
