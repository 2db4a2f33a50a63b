// `tunekit export gguf`: a GGUF file llama.cpp loads, tokenizer and chat template inside.

import type { Command } from 'commander';
import { resolveModelDir } from '../../hub/hub.js';
import { choiceOption } from '../options.js';

export function registerExportCommands(program: Command): void {
  const exp = program.command('export').description('export models to other runtimes');
  exp
    .command('gguf')
    .description('write a GGUF file that llama.cpp loads')
    .requiredOption('--model <dir|org/name>', 'model directory, or a Hugging Face Hub id')
    .requiredOption('--out <file>', 'output .gguf file')
    .option('--dtype <dtype>', 'f32 | f16', choiceOption('--dtype', ['f32', 'f16'] as const), 'f32')
    .action(async (o: { model: string; out: string; dtype: 'f32' | 'f16' }) => {
      const modelDir = await resolveModelDir(o.model, { onProgress: (m) => process.stderr.write(`${m}\n`) });
      const { exportGguf } = await import('../../export/gguf.js');
      await exportGguf({ modelDir, out: o.out, dtype: o.dtype });
      process.stdout.write(`wrote ${o.out}\n`);
    });
}
