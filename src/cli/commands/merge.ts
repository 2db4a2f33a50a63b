// `tunekit merge`: fold a PEFT LoRA adapter into its base model and write a Hugging Face directory.

import type { Command } from 'commander';
import { resolveModelDir } from '../../hub/hub.js';
import * as path from 'node:path';
import { choiceOption } from '../options.js';
import { progressTo, withProgress } from '../progress.js';

export function registerMergeCommand(program: Command): void {
  program
    .command('merge')
    .description('merge a LoRA adapter into its base model (W + alpha/r · B·A) and write a model directory')
    .requiredOption('--base <dir|org/name>', 'base model directory, or a Hugging Face Hub id')
    .requiredOption('--adapter <dir>', 'PEFT adapter directory (adapter_config.json, adapter_model.safetensors)')
    .requiredOption('--out <dir>', 'output model directory (must not exist, or be empty)')
    .option('--dtype <dtype>', 'weights of the merged model: f32 | bf16 | f16', choiceOption('--dtype', ['f32', 'bf16', 'f16'] as const), 'f32')
    .action(async (o: { base: string; adapter: string; out: string; dtype: 'f32' | 'bf16' | 'f16' }) => {
      const baseDir = await resolveModelDir(o.base, { onProgress: (m) => process.stderr.write(`${m}\n`) });
      const { writeMergedModel } = await import('../../lora/merge.js');
      const s = await withProgress({ label: `merge ${path.basename(o.out)}`, total: 0, unit: 'bytes' }, (p) =>
        writeMergedModel({ baseDir, adapterDir: o.adapter, out: o.out, dtype: ({ f32: 'F32', bf16: 'BF16', f16: 'F16' } as const)[o.dtype], onProgress: progressTo(p) }));
      process.stdout.write(`wrote ${s.dir} (${s.mergedTensors} weights merged, ${o.dtype})\n`);
    });
}
