// Loading a Hugging Face model directory: config.json, generation_config.json, and the weights in
// model.safetensors or the shards named by model.safetensors.index.json. Every tensor the config
// implies must be present with the implied shape; anything else is an error naming file and tensor.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidModelError } from '../errors.js';
import { parseModelConfig, type ModelConfig } from './config.js';
import { readSafetensorsHeader, readTensorF32, type SafetensorsHeader } from './safetensors.js';
import { assembleWeights, isIgnorableTensor, tensorSpecs, type ModelWeights } from './weights.js';

export interface GenerationDefaults {
  eosTokenIds: number[];
  bosTokenId: number | null;
  temperature?: number;
  topK?: number;
  topP?: number;
  doSample?: boolean;
}

export function readJsonFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InvalidModelError(code === 'ENOENT' ? `${file} does not exist` : `${file}: cannot read (${code})`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new InvalidModelError(`${file}: not a valid JSON object (${(err as Error).message})`);
  }
}

export function loadModelConfig(dir: string): ModelConfig {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new InvalidModelError(`model directory ${dir} does not exist`);
  }
  const file = path.join(dir, 'config.json');
  return parseModelConfig(readJsonFile(file), file);
}

export function loadGenerationDefaults(dir: string, config: ModelConfig): GenerationDefaults {
  const file = path.join(dir, 'generation_config.json');
  const defaults: GenerationDefaults = { eosTokenIds: [...config.eosTokenIds], bosTokenId: config.bosTokenId };
  if (!fs.existsSync(file)) return defaults;
  const g = readJsonFile(file);
  const eos = g.eos_token_id;
  if (typeof eos === 'number') defaults.eosTokenIds = [eos];
  else if (Array.isArray(eos)) defaults.eosTokenIds = eos.filter((x): x is number => typeof x === 'number');
  if (typeof g.bos_token_id === 'number') defaults.bosTokenId = g.bos_token_id;
  if (typeof g.temperature === 'number') defaults.temperature = g.temperature;
  if (typeof g.top_k === 'number') defaults.topK = g.top_k;
  if (typeof g.top_p === 'number') defaults.topP = g.top_p;
  if (typeof g.do_sample === 'boolean') defaults.doSample = g.do_sample;
  return defaults;
}

/** Safetensors headers of the model's weight files, and which file holds each tensor. */
export function openWeightFiles(dir: string): { headers: SafetensorsHeader[]; byTensor: Map<string, SafetensorsHeader> } {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  let files: string[];
  if (fs.existsSync(single)) files = [single];
  else if (fs.existsSync(index)) {
    const weightMap = readJsonFile(index).weight_map;
    if (typeof weightMap !== 'object' || weightMap === null) throw new InvalidModelError(`${index}: field "weight_map" is missing`);
    files = [...new Set(Object.values(weightMap as Record<string, string>))].map((f) => path.join(dir, f));
    for (const f of files) if (!fs.existsSync(f)) throw new InvalidModelError(`${index} names shard ${path.basename(f)}, which does not exist`);
  } else {
    throw new InvalidModelError(`${dir}: no model.safetensors or model.safetensors.index.json`);
  }
  const headers = files.map(readSafetensorsHeader);
  const byTensor = new Map<string, SafetensorsHeader>();
  for (const h of headers) for (const name of h.tensors.keys()) byTensor.set(name, h);
  return { headers, byTensor };
}

export function loadModelWeights(dir: string, config: ModelConfig): ModelWeights {
  const { byTensor } = openWeightFiles(dir);
  const specs = tensorSpecs(config);
  const expected = new Set(specs.map((s) => s.name));
  for (const [name, header] of byTensor) {
    if (!expected.has(name) && !isIgnorableTensor(name, config)) {
      throw new InvalidModelError(`${header.file}: unexpected tensor "${name}" (config.json describes no such weight for ${config.architecture})`);
    }
  }
  return assembleWeights(config, (spec) => {
    const header = byTensor.get(spec.name);
    if (!header) throw new InvalidModelError(`${dir}: tensor "${spec.name}" is missing from the weights (expected shape [${spec.shape.join(', ')}])`);
    const info = header.tensors.get(spec.name)!;
    if (info.shape.length !== spec.shape.length || info.shape.some((d, i) => d !== spec.shape[i])) {
      throw new InvalidModelError(`${header.file}: tensor "${spec.name}" has shape [${info.shape.join(', ')}] but config.json implies [${spec.shape.join(', ')}]`);
    }
    return readTensorF32(header, spec.name);
  });
}
