// Writes tiny checkpoints and our Transformer's logits on them, for selftest.py to compare with the
// independent PyTorch model (tools/torch-reference/model.py):
//   node dist/tools/torch-reference/dump-logits.js DIR
// DIR/manifest.json lists the cases [{name, family, model, tokens}]; DIR/<name>/ holds the HF model
// directory and ts_logits.safetensors ("logits", (T, V) float32, every position). The variants cover
// each config path: llama3 and linear RoPE scaling, untied embeddings, Gemma's sliding window (8, passed
// several times by 40 tokens) and scaled full-attention layers.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initTinyModel } from '../../src/models/tiny.js';
import { loadModelConfig, loadModelWeights } from '../../src/models/loader.js';
import { Transformer } from '../../src/models/transformer.js';
import { readSafetensorsHeader, readTensorF32, writeSafetensors } from '../../src/models/safetensors.js';
import { Random } from '../../src/engine/random.js';
import type { Family } from '../../src/models/config.js';

export interface LogitCase { name: string; family: Family; model: string; tokens: number[] }

interface Variant {
  name: string;
  family: Family;
  /** Changes to config.json. */
  config?: Record<string, unknown>;
  /** Adds a separate lm_head.weight and unties the embeddings. */
  untie?: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'llama', family: 'llama' },
  { name: 'llama-linear-rope', family: 'llama', config: { rope_scaling: { rope_type: 'linear', factor: 4 } } },
  { name: 'qwen3', family: 'qwen3' },
  { name: 'qwen3-untied', family: 'qwen3', untie: true },
  { name: 'gemma3', family: 'gemma3' },
  { name: 'gemma3-linear-rope', family: 'gemma3', config: { rope_scaling: { rope_type: 'linear', factor: 8 } } },
];

const SEED = 3;
const TOKENS = 40;

function untie(dir: string, seed: number): void {
  const file = path.join(dir, 'model.safetensors');
  const header = readSafetensorsHeader(file);
  const tensors = [...header.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, data: readTensorF32(header, t.name) }));
  const embed = tensors.find((t) => t.name === 'model.embed_tokens.weight')!;
  const head = new Random(seed).fillNormal(new Float32Array(embed.data.length), 0, 1 / Math.sqrt(embed.shape[1]!));
  tensors.push({ name: 'lm_head.weight', shape: embed.shape, data: head });
  writeSafetensors(file, tensors);
}

/** Writes every variant's model and logits under dir; returns the cases (also in dir/manifest.json). */
export function dumpLogits(dir: string): LogitCase[] {
  const cases: LogitCase[] = [];
  for (const v of VARIANTS) {
    const modelDir = path.join(dir, v.name);
    initTinyModel({ family: v.family, size: 'tiny', seed: SEED, out: modelDir });
    const configFile = path.join(modelDir, 'config.json');
    const raw = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    Object.assign(raw, v.config ?? {}, v.untie ? { tie_word_embeddings: false } : {});
    fs.writeFileSync(configFile, JSON.stringify(raw, null, 2) + '\n');
    if (v.untie) untie(modelDir, SEED + 1);

    const config = loadModelConfig(modelDir);
    const transformer = new Transformer(config, loadModelWeights(modelDir, config));
    const rng = new Random(5);
    const tokens = Array.from({ length: TOKENS }, () => Math.floor(rng.next() * config.vocabSize));
    const logits = transformer.forward(tokens, transformer.createCache(TOKENS), { allLogits: true });
    writeSafetensors(path.join(modelDir, 'ts_logits.safetensors'), [{ name: 'logits', shape: [TOKENS, config.vocabSize], data: logits }]);
    cases.push({ name: v.name, family: v.family, model: v.name, tokens });
  }
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(cases, null, 1) + '\n');
  return cases;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node dist/tools/torch-reference/dump-logits.js DIR');
    process.exitCode = 2;
  } else {
    const cases = dumpLogits(path.resolve(dir));
    console.log(`wrote ${cases.length} cases to ${path.resolve(dir)}: ${cases.map((c) => c.name).join(', ')}`);
  }
}
