// Tiny checkpoints for tests, written once per process into a temporary directory.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initTinyModel } from '../../src/models/tiny.js';
import type { Family } from '../../src/models/config.js';
import { readSafetensorsHeader, readTensorF32, writeSafetensors, type SafetensorsDtype } from '../../src/models/safetensors.js';
import { Random } from '../../src/engine/random.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-test-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
const made = new Map<string, string>();

export function tinyModelDir(family: Family, opts: { seed?: number; dtype?: SafetensorsDtype } = {}): string {
  const key = `${family}-${opts.seed ?? 1}-${opts.dtype ?? 'F32'}`;
  let dir = made.get(key);
  if (!dir) {
    dir = path.join(root, key);
    initTinyModel({ family, size: 'tiny', seed: opts.seed ?? 1, out: dir, dtype: opts.dtype });
    made.set(key, dir);
  }
  return dir;
}

/** A fresh copy of a tiny model directory that a test may damage. */
export function scratchCopy(dir: string): string {
  const copy = fs.mkdtempSync(path.join(root, 'scratch-'));
  fs.cpSync(dir, copy, { recursive: true });
  return copy;
}

export const FAMILIES: Family[] = ['llama', 'qwen3', 'gemma3'];

/** A tiny checkpoint with tie_word_embeddings false and a random lm_head, so greedy paths wander. */
export function untiedTinyModel(family: Family, seed: number, out: string): void {
  initTinyModel({ family, size: 'tiny', seed, out });
  const cfgFile = path.join(out, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  cfg.tie_word_embeddings = false;
  fs.writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));
  const file = path.join(out, 'model.safetensors');
  const h = readSafetensorsHeader(file);
  const tensors = [...h.tensors.values()].map((i) => ({ name: i.name, shape: i.shape, data: readTensorF32(h, i.name) }));
  const [V, C] = h.tensors.get('model.embed_tokens.weight')!.shape as [number, number];
  tensors.push({ name: 'lm_head.weight', shape: [V, C], data: new Random(seed + 100).fillNormal(new Float32Array(V * C), 0, 1 / Math.sqrt(C)) });
  writeSafetensors(file, tensors);
}
