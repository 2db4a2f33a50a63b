// A loaded model: config, weights, the transformer that runs them, the tokenizer and the generation
// defaults of a Hugging Face directory. The tokenizer is checked against the vocabulary size.

import type { ModelConfig } from './config.js';
import type { ModelWeights } from './weights.js';
import { loadGenerationDefaults, loadModelConfig, loadModelWeights, type GenerationDefaults } from './loader.js';
import { Transformer } from './transformer.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';

/** What serving needs of a model besides its weights: the prompt side and the generation defaults. */
export interface ModelInfo {
  dir: string;
  config: ModelConfig;
  tokenizer: Tokenizer;
  defaults: GenerationDefaults;
}

export interface LoadedModel extends ModelInfo {
  weights: ModelWeights;
  transformer: Transformer;
}

/** The config, tokenizer and generation defaults of a model directory, without its weights. */
export async function loadModelInfo(dir: string): Promise<ModelInfo> {
  const config = loadModelConfig(dir);
  const tokenizer = await Tokenizer.load(dir, { vocabSize: config.vocabSize });
  const defaults = loadGenerationDefaults(dir, config);
  if (defaults.eosTokenIds.length === 0) defaults.eosTokenIds = [...tokenizer.eosTokenIds];
  return { dir, config, tokenizer, defaults };
}

export async function loadModel(dir: string): Promise<LoadedModel> {
  const info = await loadModelInfo(dir);
  const weights = loadModelWeights(dir, info.config);
  return { ...info, weights, transformer: new Transformer(info.config, weights) };
}
