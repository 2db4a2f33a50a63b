// Running a loaded model with a LoRA adapter, unmerged: the returned model shares the base weights and
// decoder, and its transformer adds the adapter's low-rank update after each base product
// (src/lora/adapter-linear.ts). No weights are copied, so any number of adapted models cost the size of
// their adapters only. Merging into the weights stays for export (`tunekit merge`, GGUF).

import type { LoadedModel } from '../models/model.js';
import { loadAdapter } from './peft.js';

/** `model` with the PEFT adapter in `adapterDir` applied (checked against the model's config). */
export function applyAdapterForInference(model: LoadedModel, adapterDir: string): LoadedModel {
  const adapter = loadAdapter(adapterDir, model.config);
  return { ...model, transformer: model.transformer.withAdapter(adapter) };
}
