// Local models for evaluation: generation of responses (the candidate and baseline sides) and a judge,
// both through the serving engine (src/serve), so many prompts share one continuous batch and several
// adapters share one base model. Prompts are rendered as one user turn with the model's chat template.
// The local judge decodes under the answer's JSON Schema (constrained decoding, src/structured), so its
// answers always parse; judged.ts still checks them.

import type { ModelInfo } from '../models/model.js';
import type { ServingEngine } from '../serve/engine.js';
import { compileSchema } from '../structured/schema.js';
import type { Judge } from './judge.js';

export interface LocalGenerateOptions {
  adapterDir?: string;
  system?: string;
  maxTokens: number;
  temperature: number;
  seed?: number;
  /** A JSON Schema the answer must satisfy (decoded under it). */
  jsonSchema?: object;
  signal?: AbortSignal;
}

/** Prompt ids for one user turn (and an optional system turn) in the model's chat template. */
export function chatPromptIds(model: ModelInfo, prompt: string, system?: string): number[] {
  const tk = model.tokenizer;
  const text = tk.applyChatTemplate([...(system ? [{ role: 'system', content: system }] : []), { role: 'user', content: prompt }], { addGenerationPrompt: true });
  return tk.encode(text, { addSpecialTokens: false });
}

/** One response from the engine (the answer, without any thinking). */
export async function generateLocal(engine: ServingEngine, model: ModelInfo, prompt: string, o: LocalGenerateOptions): Promise<string> {
  const it = engine.submit(chatPromptIds(model, prompt, o.system), {
    maxTokens: o.maxTokens, temperature: o.temperature, seed: o.seed, adapterDir: o.adapterDir, signal: o.signal,
    ...(o.jsonSchema ? { responseFormat: { kind: 'json' as const, schema: compileSchema(o.jsonSchema, 'json') } } : {}),
  });
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value.text;
  }
}

/** Tokens per answer of a local judge when the request sets none (an HTTP judge's server decides its own). */
export const LOCAL_JUDGE_MAX_TOKENS = 512;

/** A judge that is a local model (optionally with an adapter) on an engine. */
export function engineJudge(engine: ServingEngine, model: ModelInfo, o: { description: string; adapterDir?: string }): Judge {
  return {
    description: o.description,
    complete: (prompt, req) => generateLocal(engine, model, prompt, {
      adapterDir: o.adapterDir, maxTokens: req.maxTokens ?? LOCAL_JUDGE_MAX_TOKENS, temperature: req.temperature, seed: req.seed,
      jsonSchema: req.jsonSchema, signal: req.signal,
    }),
  };
}
