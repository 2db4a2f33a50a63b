// Running a loaded model with a LoRA adapter: for now the adapter is merged into a copy of the targeted
// weights and a new Transformer runs them (one adapter per model; serving several unmerged adapters in
// one batch is a later step). The base LoadedModel is left as it was and stays usable.

import type { LoadedModel } from '../models/model.js';
import { Transformer } from '../models/transformer.js';
import { mergeAdapter } from './merge.js';
import { loadAdapter } from './peft.js';

/** `model` with the PEFT adapter in `adapterDir` applied (checked against the model's config). */
export function applyAdapterForInference(model: LoadedModel, adapterDir: string): LoadedModel {
  const adapter = loadAdapter(adapterDir, model.config);
  const weights = mergeAdapter(model.weights, model.config, adapter);
  return { ...model, weights, transformer: new Transformer(model.config, weights) };
}
