// `tunekit validate` and `tunekit data stats|show|convert|split`: datasets checked, measured, shown
// token by token, converted and split before any compute is spent. Library code is in src/data.
// validate and stats show the progress bar (bytes read) on a terminal.

import path from 'node:path';
import type { Command } from 'commander';
import { validateDataset, formatValidationReport } from '../../data/validate.js';
import { formatStats, tuningDataStats } from '../../data/stats.js';
import { formatShownExample, showExample } from '../../data/show.js';
import { convertDataset, splitDataset } from '../../data/convert.js';
import { choiceOption, floatOption, intOption } from '../options.js';
import { progressTo, withProgress } from '../progress.js';

const modelHelp = 'model directory: its chat template and tokenizer count tokens, its context sets the limit';

export function registerDataCommands(program: Command): void {
  program
    .command('validate <file>')
    .description('check a JSONL dataset: every problem with its line and JSON path; exit 1 on errors')
    .option('--model <dir>', `${modelHelp} (without it token limits are not checked)`)
    .option('--validation <file>', 'validation dataset (checked too, and for overlap with the training file)')
    .option('--max-tokens <n>', 'per-example token limit (default: min(131072, the model context))', intOption('--max-tokens', 2))
    .option('--workers <n>', 'worker threads for token counting (default: all cores for files over 4 MB)', intOption('--workers', 0))
    .option('--show <n>', 'problems listed per kind', intOption('--show', 0), 5)
    .option('--json', 'machine-readable report')
    .action(async (file: string, o: { model?: string; validation?: string; maxTokens?: number; workers?: number; show: number; json?: boolean }) => {
      const model = o.model ? { dir: o.model, limit: o.maxTokens, threads: o.workers } : undefined;
      const { report } = await withProgress({ label: `validate ${path.basename(file)}`, total: 0, unit: 'bytes' }, (p) =>
        validateDataset(file, { validationFile: o.validation, model, maxPerKind: Math.max(o.show, 1), onProgress: progressTo(p) }));
      process.stdout.write(o.json ? JSON.stringify(report, null, 2) + '\n' : formatValidationReport(report, { show: o.show }));
      if (!report.ok) process.exitCode = 1;
    });

  const data = program.command('data').description('dataset statistics, rendering, conversion and splitting');
  data
    .command('stats <file>')
    .description("Vertex's supervisedTuningDataStats for a dataset (what tuningJob.tuningDataStats reports)")
    .requiredOption('--model <dir>', modelHelp)
    .option('--epochs <n>', 'epochs, for the tuning step count', intOption('--epochs', 1), 3)
    .option('--batch-size <n>', 'examples per step, for the tuning step count', intOption('--batch-size', 1), 8)
    .option('--max-tokens <n>', 'per-example token limit (default: min(131072, the model context))', intOption('--max-tokens', 2))
    .option('--workers <n>', 'worker threads for token counting', intOption('--workers', 0))
    .option('--json', 'the tuningDataStats object as proto3 JSON')
    .action(async (file: string, o: { model: string; epochs: number; batchSize: number; maxTokens?: number; workers?: number; json?: boolean }) => {
      const stats = await withProgress({ label: `stats ${path.basename(file)}`, total: 0, unit: 'bytes' }, (p) =>
        tuningDataStats(file, { model: { dir: o.model, limit: o.maxTokens, threads: o.workers }, epochs: o.epochs, batchSize: o.batchSize, onProgress: progressTo(p) }));
      process.stdout.write(o.json ? JSON.stringify(stats, null, 2) + '\n' : formatStats(stats, file));
    });
  data
    .command('show <file>')
    .description('one example rendered with the chat template, token by token, loss-carrying tokens marked')
    .requiredOption('--model <dir>', modelHelp)
    .requiredOption('--line <n>', 'line number of the example', intOption('--line', 1))
    .option('--no-table', 'leave out the per-token table')
    .option('--json', 'tokens as JSON')
    .action(async (file: string, o: { model: string; line: number; table: boolean; json?: boolean }) => {
      const shown = await showExample(file, o.line, o.model);
      process.stdout.write(o.json ? JSON.stringify(shown, null, 2) + '\n' : formatShownExample(shown, { color: process.stdout.isTTY === true, table: o.table }));
    });
  data
    .command('convert <file>')
    .description('rewrite a dataset in the Vertex or OpenAI layout')
    .requiredOption('--to <layout>', 'vertex | openai', choiceOption('--to', ['vertex', 'openai'] as const))
    .requiredOption('--out <file>', 'output JSONL file')
    .action(async (file: string, o: { to: 'vertex' | 'openai'; out: string }) => {
      const { examples } = await convertDataset(file, o.to, o.out);
      process.stdout.write(`wrote ${examples} examples to ${o.out}\n`);
    });
  data
    .command('split <file>')
    .description('deterministic training/validation split; identical examples stay on one side')
    .option('--validation-fraction <x>', 'share of examples for validation', floatOption('--validation-fraction', 0, 1), 0.1)
    .option('--seed <n>', 'seed of the split', intOption('--seed', 0), 0)
    .option('--out-train <file>', 'training output (default FILE.train.jsonl)')
    .option('--out-validation <file>', 'validation output (default FILE.validation.jsonl)')
    .action(async (file: string, o: { validationFraction: number; seed: number; outTrain?: string; outValidation?: string }) => {
      const stem = path.join(path.dirname(file), path.basename(file).replace(/\.jsonl?$/, ''));
      const outTrain = o.outTrain ?? `${stem}.train.jsonl`;
      const outValidation = o.outValidation ?? `${stem}.validation.jsonl`;
      const counts = await splitDataset(file, { validationFraction: o.validationFraction, seed: o.seed, outTrain, outValidation });
      process.stdout.write(`wrote ${counts.train} examples to ${outTrain} and ${counts.validation} to ${outValidation}\n`);
    });
}
