// `tunekit export gguf`: a GGUF file llama.cpp loads, tokenizer and chat template inside; with --adapter,
// a GGUF LoRA adapter for that base model instead.

import type { Command } from 'commander';
import { resolveModelDir } from '../../hub/hub.js';
import { InvalidRequestError } from '../../errors.js';
import * as path from 'node:path';
import { choiceOption } from '../options.js';
import { progressTo, withProgress } from '../progress.js';

export function registerExportCommands(program: Command): void {
  const exp = program.command('export').description('export models to other runtimes');
  exp
    .command('gguf')
    .description('write a GGUF file that llama.cpp loads')
    .requiredOption('--model <dir|org/name>', 'model directory, or a Hugging Face Hub id (the base, with --adapter)')
    .requiredOption('--out <file>', 'output .gguf file (the LoRA adapter, with --adapter)')
    .option('--dtype <dtype>', 'f32 | f16', choiceOption('--dtype', ['f32', 'f16'] as const), 'f32')
    .option('--adapter <dir>', 'write this PEFT LoRA adapter as a GGUF LoRA adapter for --model (F32)')
    .action(async (o: { model: string; out: string; dtype: 'f32' | 'f16'; adapter?: string }) => {
      const modelDir = await resolveModelDir(o.model, { onProgress: (m) => process.stderr.write(`${m}\n`) });
      if (o.adapter !== undefined) {
        if (o.dtype !== 'f32') throw new InvalidRequestError('--dtype applies to model exports; GGUF LoRA adapters are written in F32');
        const { exportGgufLora } = await import('../../export/gguf-lora.js');
        await withProgress({ label: `export ${path.basename(o.out)}`, total: 0, unit: 'bytes' }, (p) =>
          exportGgufLora({ modelDir, adapterDir: o.adapter!, out: o.out, onProgress: progressTo(p) }));
        process.stdout.write(`wrote ${o.out}\n`);
        return;
      }
      const { exportGguf } = await import('../../export/gguf.js');
      await withProgress({ label: `export ${path.basename(o.out)}`, total: 0, unit: 'bytes' }, (p) =>
        exportGguf({ modelDir, out: o.out, dtype: o.dtype, onProgress: progressTo(p) }));
      process.stdout.write(`wrote ${o.out}\n`);
    });
}
