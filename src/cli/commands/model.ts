// `tunekit model init`: write a deterministic random checkpoint in Hugging Face layout.

import type { Command } from 'commander';
import { initTinyModel } from '../../models/tiny.js';
import { choiceOption, intOption } from '../options.js';

export function registerModelCommands(program: Command): void {
  const model = program.command('model').description('model directories');
  model
    .command('init')
    .description('write a random-weight checkpoint (Hugging Face layout) with a real BPE tokenizer')
    .requiredOption('--arch <arch>', 'llama | qwen3 | gemma3', choiceOption('--arch', ['llama', 'qwen3', 'gemma3'] as const))
    .option('--size <size>', 'tiny | small (small = SmolLM2-135M, Qwen3-0.6B, Gemma-3-270M shapes)', choiceOption('--size', ['tiny', 'small'] as const), 'tiny')
    .option('--seed <n>', 'random seed', intOption('--seed'), 0)
    .option('--dtype <dtype>', 'f32 | f16 | bf16', choiceOption('--dtype', ['f32', 'f16', 'bf16'] as const), 'f32')
    .option('--vocab-size <n>', 'embedding rows (default: the published size, or the tokenizer rounded up)', intOption('--vocab-size', 1))
    .option('--tokenizer <dir>', 'a published tokenizer (tokenizer.json, tokenizer_config.json) to carry instead of the generated one')
    .requiredOption('--out <dir>', 'output directory')
    .action((o: { arch: 'llama' | 'qwen3' | 'gemma3'; size: 'tiny' | 'small'; seed: number; dtype: 'f32' | 'f16' | 'bf16'; vocabSize?: number; tokenizer?: string; out: string }) => {
      const summary = initTinyModel({
        family: o.arch, size: o.size, seed: o.seed, out: o.out, vocabSize: o.vocabSize, tokenizerDir: o.tokenizer,
        dtype: ({ f32: 'F32', f16: 'F16', bf16: 'BF16' } as const)[o.dtype],
      });
      process.stdout.write(`wrote ${o.arch} ${o.size} (${(summary.parameters / 1e6).toFixed(2)}M parameters, vocabulary ${summary.vocabSize}) to ${summary.dir}\n`);
      for (const note of summary.notes) process.stdout.write(`note: ${note}\n`);
    });
}
