// Tiny checkpoints for tests, written once per process into a temporary directory.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initTinyModel } from '../../src/models/tiny.js';
import type { Family } from '../../src/models/config.js';
import type { SafetensorsDtype } from '../../src/models/safetensors.js';

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
