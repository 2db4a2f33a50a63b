// The `small` Llama checkpoint (SmolLM2-135M shapes, random weights) and its f32 GGUF that the
// generation and serving benchmarks share, written once under .cache/bench.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTinyModel } from '../src/models/tiny.js';
import { exportGguf } from '../src/export/gguf.js';

export const BENCH_CACHE = path.resolve('.cache/bench');
export const SMALL_LLAMA_DIR = path.join(BENCH_CACHE, 'llama-small');
export const SMALL_LLAMA_GGUF = path.join(BENCH_CACHE, 'llama-small-f32.gguf');

/** Writes the checkpoint and its GGUF unless they exist. */
export async function prepareSmallLlama(): Promise<void> {
  fs.mkdirSync(BENCH_CACHE, { recursive: true });
  if (!fs.existsSync(path.join(SMALL_LLAMA_DIR, 'model.safetensors'))) {
    console.log('writing the small llama checkpoint (SmolLM2-135M shapes) ...');
    initTinyModel({ family: 'llama', size: 'small', seed: 0, out: SMALL_LLAMA_DIR });
  }
  if (!fs.existsSync(SMALL_LLAMA_GGUF)) {
    console.log('exporting it to GGUF f32 ...');
    await exportGguf({ modelDir: SMALL_LLAMA_DIR, out: SMALL_LLAMA_GGUF, dtype: 'f32' });
  }
}
