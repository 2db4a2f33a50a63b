// A loaded model: config, weights, the transformer that runs them, the tokenizer and the generation
// defaults of a Hugging Face directory. The tokenizer is checked against the vocabulary size.

import type { ModelConfig } from './config.js';
import type { ModelWeights } from './weights.js';
import { loadGenerationDefaults, loadModelConfig, loadModelWeights, type GenerationDefaults } from './loader.js';
import { Transformer } from './transformer.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';

export interface LoadedModel {
  dir: string;
  config: ModelConfig;
  weights: ModelWeights;
  transformer: Transformer;
  tokenizer: Tokenizer;
  defaults: GenerationDefaults;
}

export async function loadModel(dir: string): Promise<LoadedModel> {
  const config = loadModelConfig(dir);
  const tokenizer = await Tokenizer.load(dir, { vocabSize: config.vocabSize });
  const weights = loadModelWeights(dir, config);
  const defaults = loadGenerationDefaults(dir, config);
  if (defaults.eosTokenIds.length === 0) defaults.eosTokenIds = [...tokenizer.eosTokenIds];
  return { dir, config, weights, transformer: new Transformer(config, weights), tokenizer, defaults };
}
