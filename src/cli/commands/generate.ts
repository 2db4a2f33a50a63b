// `tunekit generate`: text from a model directory or a Hugging Face Hub id.

import type { Command } from 'commander';
import { resolveModelDir } from '../../hub/hub.js';
import { loadModel } from '../../models/model.js';
import { applyAdapterForInference } from '../../lora/apply.js';
import { generateStream } from '../../generate/generate.js';
import { describeGemm } from '../../engine/blas.js';
import { floatOption, intOption } from '../options.js';

interface GenerateCliOptions {
  model: string;
  adapter?: string;
  prompt: string;
  chat?: boolean;
  system?: string;
  maxTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed?: number;
  thinkingBudget?: number;
  showThoughts?: boolean;
  stop: string[];
  stream?: boolean;
  verbose?: boolean;
}

export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('generate text with a model')
    .requiredOption('--model <dir|org/name>', 'model directory, or a Hugging Face Hub id')
    .option('--adapter <dir>', 'PEFT LoRA adapter directory to apply to the model')
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--chat', 'wrap the prompt in the model\'s chat template as a user turn')
    .option('--system <text>', 'system instruction (with --chat)')
    .option('--max-tokens <n>', 'tokens to generate at most', intOption('--max-tokens', 1), 128)
    .option('--temperature <t>', '0 for greedy', floatOption('--temperature', 0, 100), 0)
    .option('--top-k <k>', 'sample among the k most likely tokens', intOption('--top-k', 0))
    .option('--top-p <p>', 'nucleus sampling mass', floatOption('--top-p', 0, 1))
    .option('--seed <n>', 'sampling seed (same seed, same text)', intOption('--seed'))
    .option('--thinking-budget <n>', 'thinking tokens at most (0: no thinking, -1: the model decides)', intOption('--thinking-budget', -1))
    .option('--show-thoughts', 'print the model\'s thinking (to stderr) as well as its answer')
    .option('--stop <text>', 'stop sequence (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--stream', 'print tokens as they are generated')
    .option('--verbose', 'print timing and the matrix library in use')
    .action(async (o: GenerateCliOptions) => {
      const dir = await resolveModelDir(o.model, { onProgress: (m) => process.stderr.write(`${m}\n`) });
      const base = await loadModel(dir);
      const model = o.adapter ? applyAdapterForInference(base, o.adapter) : base;
      const tk = model.tokenizer;
      const promptIds = o.chat
        ? tk.encode(tk.applyChatTemplate([
          ...(o.system ? [{ role: 'system', content: o.system }] : []),
          { role: 'user', content: o.prompt },
        ], { addGenerationPrompt: true, ...(o.thinkingBudget === 0 ? { enableThinking: false } : {}) }), { addSpecialTokens: false })
        : tk.encode(o.prompt);
      const it = generateStream(model, promptIds, {
        maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed, stopSequences: o.stop,
        thinkingBudget: o.thinkingBudget,
      });
      let text = '';
      for (;;) {
        const r = await it.next();
        if (r.done) {
          if (!o.stream) process.stdout.write(text);
          process.stdout.write('\n');
          if (o.verbose) {
            const v = r.value;
            process.stderr.write(`${describeGemm()}; prompt ${v.promptTokens} tokens in ${v.promptSeconds.toFixed(3)} s; ` +
              `${v.tokenIds.length} tokens (${v.thoughtTokens} thinking) in ${v.generateSeconds.toFixed(3)} s; finish: ${v.finishReason}\n`);
          }
          return;
        }
        if (r.value.thought) {
          if (o.showThoughts) process.stderr.write(r.value.text);
        } else if (o.stream) process.stdout.write(r.value.text);
        else text += r.value.text;
      }
    });
}
