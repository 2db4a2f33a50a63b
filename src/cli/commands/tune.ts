// `tunekit tune`: supervised fine-tuning (LoRA or full) from a JSONL dataset, with the progress bar
// (src/cli/progress.ts) on a terminal and plain log lines otherwise.

import type { Command } from 'commander';
import { resolveModelDir } from '../../hub/hub.js';
import { DEFAULT_TUNE_OPTIONS, tune, type TrainEvent } from '../../train/trainer.js';
import { LORA_TARGETS, type LoraTarget } from '../../lora/lora.js';
import { RECOMPUTE_MODES, type RecomputeMode } from '../../train/memory.js';
import { choiceOption, floatOption, intOption } from '../options.js';
import { createProgress, type Progress } from '../progress.js';

interface TuneCliOptions {
  base: string; train: string; validation?: string; out: string; epochs: number; adapterSize: number;
  learningRateMultiplier: number; learningRate?: number; mode: 'lora' | 'full'; batchTokens: number; gradAccum: number;
  maxSeqLen: number; seed: number; resume?: string; loraAlpha?: number; loraDropout: number; targets?: string; warmupRatio: number;
  schedule: 'linear' | 'cosine' | 'constant'; weightDecay: number; clipNorm: number; evalEvery: number; recompute: RecomputeMode | true;
}

export function registerTuneCommand(program: Command): void {
  const d = DEFAULT_TUNE_OPTIONS;
  program
    .command('tune')
    .description('supervised fine-tuning of a base model on a JSONL dataset (Vertex contents, messages or OpenAI layout)')
    .requiredOption('--base <dir|org/name>', 'base model directory, or a Hugging Face Hub id')
    .requiredOption('--train <file.jsonl>', 'training dataset')
    .option('--validation <file.jsonl>', 'validation dataset (eval_* metrics)')
    .requiredOption('--out <dir>', 'output directory (adapter, metrics.jsonl, checkpoints/)')
    .option('--mode <mode>', 'lora | full', choiceOption('--mode', ['lora', 'full'] as const), d.mode)
    .option('--epochs <n>', 'passes over the training set', intOption('--epochs', 1), d.epochs)
    .option('--adapter-size <n>', 'LoRA rank: 1, 2, 4, 8, 16 or 32', intOption('--adapter-size', 1), d.adapterSize)
    .option('--lora-alpha <x>', 'LoRA alpha (default 2 x rank)', floatOption('--lora-alpha', 1e-6))
    .option('--lora-dropout <p>', 'dropout on the LoRA input while training', floatOption('--lora-dropout', 0, 0.9), 0)
    .option('--targets <list>', `comma-separated LoRA targets (default all: ${LORA_TARGETS.join(',')})`)
    .option('--learning-rate-multiplier <x>', 'multiplies the default learning rate (2e-4 LoRA, 2e-5 full)', floatOption('--learning-rate-multiplier', 1e-6, 100), d.learningRateMultiplier)
    .option('--learning-rate <x>', 'peak learning rate before the multiplier', floatOption('--learning-rate', 0, 1))
    .option('--warmup-ratio <x>', 'share of steps spent warming up', floatOption('--warmup-ratio', 0, 0.99), d.warmupRatio)
    .option('--schedule <kind>', 'linear | cosine | constant decay after warmup', choiceOption('--schedule', ['linear', 'cosine', 'constant'] as const), d.decay)
    .option('--weight-decay <x>', 'AdamW weight decay', floatOption('--weight-decay', 0, 1), d.weightDecay)
    .option('--clip-norm <x>', 'gradient clipping by global norm (0: off)', floatOption('--clip-norm', 0), d.clipNorm)
    .option('--batch-tokens <n>', 'tokens per forward/backward pass', intOption('--batch-tokens', 8), d.batchTokens)
    .option('--grad-accum <n>', 'forward/backward passes per optimizer step', intOption('--grad-accum', 1), d.gradAccum)
    .option('--max-seq-len <n>', 'longest packed sequence; longer examples are truncated', intOption('--max-seq-len', 8), d.maxSeqLen)
    .option('--eval-every <n>', 'evaluate every n steps (0: at epoch ends only)', intOption('--eval-every', 0), d.evalEverySteps)
    .option('--recompute [layers]', 'which layers recompute their activations in the backward pass: auto (as many as the memory budget needs), all (alone: --recompute), none',
      choiceOption('--recompute', RECOMPUTE_MODES), d.recompute)
    .option('--seed <n>', 'seed for initialisation and shuffling', intOption('--seed', 0), d.seed)
    .option('--resume <checkpoint>', 'continue from OUT/checkpoints/epoch-N')
    .action(async (o: TuneCliOptions) => {
      const baseDir = await resolveModelDir(o.base, { onProgress: (m) => process.stderr.write(`${m}\n`) });
      const targets = o.targets?.split(',').map((t) => t.trim()) as LoraTarget[] | undefined;
      const progress = createTuneProgress();
      try {
        await tune({
          baseDir, trainFile: o.train, validationFile: o.validation, outDir: o.out, mode: o.mode, adapterSize: o.adapterSize,
          loraAlpha: o.loraAlpha, loraDropout: o.loraDropout, targets, epochs: o.epochs, learningRateMultiplier: o.learningRateMultiplier, learningRate: o.learningRate,
          warmupRatio: o.warmupRatio, decay: o.schedule, weightDecay: o.weightDecay, clipNorm: o.clipNorm, batchTokens: o.batchTokens,
          gradAccum: o.gradAccum, maxSeqLen: o.maxSeqLen, seed: o.seed, evalEverySteps: o.evalEvery, recompute: o.recompute === true ? 'all' : o.recompute,
          resume: o.resume, onEvent: progress.onEvent,
        });
      } finally {
        progress.stop();
      }
    });
}

/**
 * Training progress on stderr: on a terminal the shared progress bar (step, epoch, loss, accuracy,
 * learning rate, tokens/s, ETA) with eval and checkpoint lines above it; otherwise one log line per step.
 */
function createTuneProgress(): { onEvent: (e: TrainEvent) => void; stop: () => void } {
  let bar: Progress | undefined;
  let total = 0;
  const log = (line: string) => (bar ? bar.log(line) : process.stderr.write(`${line}\n`));
  const onEvent = (e: TrainEvent): void => {
    switch (e.type) {
      case 'start':
        total = e.totalSteps;
        log(`training ${e.trainableParameters.toLocaleString('en-US')} parameters on ${e.examples} examples: ` +
          `${e.stepsPerEpoch} steps per epoch, ${e.totalSteps} in all` +
          (e.truncated.length ? `; ${e.truncated.length} examples truncated` : '') +
          (e.dropped.length ? `; ${e.dropped.length} dropped` : '') +
          (e.recomputedLayers ? `; activations of ${e.recomputedLayers} of ${e.layers} layers recomputed in the backward pass` : ''));
        bar = createProgress({ label: 'tune', total });
        break;
      case 'step': {
        const m = e.metrics;
        const detail = `epoch ${m.epoch} loss ${m.train_total_loss.toFixed(4)} ` +
          `acc ${m.train_fraction_of_correct_next_step_preds.toFixed(3)} lr ${m.learning_rate.toExponential(2)} ` +
          `${m.tokens_per_second.toFixed(0)} tok/s`;
        if (bar?.live) bar.update(m.step, detail);
        else {
          const eta = m.step < total ? ((m.elapsed_seconds / m.step) * (total - m.step)).toFixed(0) : '0';
          log(`step ${m.step}/${total} ${detail} ETA ${eta}s`);
        }
        break;
      }
      case 'eval':
        log(`eval at step ${e.metrics.step}: loss ${e.metrics.eval_total_loss.toFixed(4)} ` +
          `acc ${e.metrics.eval_fraction_of_correct_next_step_preds.toFixed(3)} (${e.metrics.eval_num_predictions} predictions)`);
        break;
      case 'checkpoint':
        log(`checkpoint: ${e.dir}`);
        break;
      case 'done':
        bar?.stop();
        process.stdout.write(`wrote ${e.outDir} in ${e.seconds.toFixed(1)} s\n`);
        break;
    }
  };
  return { onEvent, stop: () => bar?.stop() };
}
