// Whole training runs: two runs with one seed give bit-identical adapters; a run resumed from its
// epoch-1 checkpoint ends with the adapter of the uninterrupted run; metrics carry Vertex's names;
// full fine-tuning writes a loadable model whose training loss went down; the CLI drives it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tune, tokenizeDataset, batchingOf, DEFAULT_TUNE_OPTIONS, type StepMetrics, type TuneOptions } from '../src/train/trainer.js';
import { runSteps } from '../src/train/batches.js';
import { learningRateAt } from '../src/train/schedule.js';
import { loadModel } from '../src/models/model.js';
import { loadAdapter } from '../src/lora/peft.js';
import { InvalidRequestError } from '../src/errors.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import { formatTask, writeVertexJsonl } from './helpers/format-task.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-runs-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const trainFile = path.join(tmp, 'train.jsonl');
const validationFile = path.join(tmp, 'validation.jsonl');
writeVertexJsonl(trainFile, formatTask(40, 1));
writeVertexJsonl(validationFile, formatTask(10, 2));

function options(out: string, extra: Partial<TuneOptions> = {}): TuneOptions {
  return {
    ...DEFAULT_TUNE_OPTIONS, baseDir: tinyModelDir('qwen3'), trainFile, validationFile, outDir: out,
    adapterSize: 4, epochs: 3, learningRate: 5e-3, batchTokens: 256, maxSeqLen: 128, seed: 3, ...extra,
  };
}

const adapterBytes = (dir: string) => fs.readFileSync(path.join(dir, 'adapter_model.safetensors'));

test('two runs with the same seed write bit-identical adapters; resume from a checkpoint ends identically', async () => {
  const a = path.join(tmp, 'a');
  const b = path.join(tmp, 'b');
  await tune(options(a));
  await tune(options(b));
  assert.ok(adapterBytes(a).equals(adapterBytes(b)));
  // Recomputing activations in the backward pass changes memory, not results.
  let recomputed = -1;
  const r = path.join(tmp, 'r');
  await tune(options(r, { recompute: 'all', onEvent: (e) => { if (e.type === 'start') recomputed = e.recomputedLayers; } }));
  assert.equal(recomputed, 2);
  assert.ok(adapterBytes(r).equals(adapterBytes(a)));

  const c = path.join(tmp, 'c');
  await tune(options(c, { stopAfterEpochs: 1 }));
  assert.ok(!fs.existsSync(path.join(c, 'adapter_model.safetensors')), 'an interrupted run has no final adapter');
  const ckpt = path.join(c, 'checkpoints', 'epoch-1');
  for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'trainer_state.json']) assert.ok(fs.existsSync(path.join(ckpt, f)), f);
  await tune(options(c, { resume: ckpt }));
  assert.ok(adapterBytes(c).equals(adapterBytes(a)), 'resumed run must end with the uninterrupted adapter');

  // Checkpoints are deployable adapters in their own right.
  const m = await loadModel(tinyModelDir('qwen3'));
  assert.equal(loadAdapter(ckpt, m.config).config.rank, 4);
  // A checkpoint from other options is refused.
  await assert.rejects(tune(options(path.join(tmp, 'd'), { resume: ckpt, seed: 4 })), (e: Error) => e instanceof InvalidRequestError && /resume/.test(e.message));
});

test('metrics.jsonl has Vertex metric names for every step and an eval line per epoch', async () => {
  const out = path.join(tmp, 'a');
  const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  const steps = lines.filter((l) => 'train_total_loss' in l);
  const evals = lines.filter((l) => 'eval_total_loss' in l);
  assert.ok(steps.length >= 3);
  assert.equal(evals.length, 3);
  for (const s of steps) {
    for (const k of ['train_total_loss', 'train_fraction_of_correct_next_step_preds', 'train_num_predictions', 'learning_rate', 'tokens_per_second', 'elapsed_seconds']) {
      assert.equal(typeof s[k], 'number', k);
    }
  }
  assert.ok(steps[steps.length - 1]!.train_total_loss < steps[0]!.train_total_loss, 'loss went down');
  assert.ok(evals[2]!.eval_total_loss < evals[0]!.eval_total_loss, 'validation loss went down');
  assert.ok(evals.every((e) => e.eval_num_predictions > 0));
});

test('full fine-tuning writes a complete model directory with lower loss', async () => {
  const out = path.join(tmp, 'full');
  const r = await tune(options(out, { mode: 'full', epochs: 2, learningRate: 1e-3 }));
  const m = await loadModel(out);
  assert.equal(m.config.family, 'qwen3');
  const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  const first = lines.find((l) => 'train_total_loss' in l)!;
  assert.ok(r.finalLoss! < first.train_total_loss!);
});

test('bad options are clear errors', async () => {
  await assert.rejects(tune(options(path.join(tmp, 'x'), { adapterSize: 3 })), /adapter size 3 is not supported/);
  await assert.rejects(tune(options(path.join(tmp, 'x'), { epochs: 0 })), /epochs/);
  const bad = path.join(tmp, 'bad.jsonl');
  fs.writeFileSync(bad, '{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}\n{oops\n');
  await assert.rejects(tune(options(path.join(tmp, 'x'), { trainFile: bad })), /bad\.jsonl:1/);
});

test('tunekit tune prints progress lines and writes the adapter', () => {
  const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
  const out = path.join(tmp, 'cli');
  const r = spawnSync(process.execPath, [cli, 'tune', '--base', tinyModelDir('llama'), '--train', trainFile, '--validation', validationFile,
    '--out', out, '--epochs', '2', '--adapter-size', '4', '--batch-tokens', '256', '--max-seq-len', '128', '--recompute'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /training [\d,]+ parameters on 40 examples/);
  assert.match(r.stderr, /activations of 2 of 2 layers recomputed/);
  assert.match(r.stderr, /step 1\/\d+ epoch 1 loss \d/);
  assert.match(r.stderr, /eval at step \d+: loss/);
  assert.match(r.stdout, /wrote /);
  assert.ok(fs.existsSync(path.join(out, 'adapter_model.safetensors')));
  const bad = spawnSync(process.execPath, [cli, 'tune', '--base', tinyModelDir('llama'), '--train', trainFile, '--out', out, '--adapter-size', '5'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^tunekit: error: adapter size 5 is not supported/);
  const badRecompute = spawnSync(process.execPath, [cli, 'tune', '--base', tinyModelDir('llama'), '--train', trainFile, '--out', out, '--recompute', 'some'], { encoding: 'utf8' });
  assert.notEqual(badRecompute.status, 0);
  assert.match(badRecompute.stderr, /--recompute must be one of auto, all, none, got "some"/);
});

test('epochs that pack into different numbers of steps: total_steps and the schedule count every epoch\'s steps', async () => {
  // 16 examples of 1-50 words, rows of 128 tokens: first-fit packing of each epoch's shuffled order
  // gives 10, 11 and 10 steps (the total was once the first epoch's 10 x 3 = 30, so the schedule ran
  // past its end and total_steps disagreed with the job's tuningStepCount).
  const file = path.join(tmp, 'uneven.jsonl');
  fs.writeFileSync(file, Array.from({ length: 16 }, (_, i) => JSON.stringify({
    contents: [{ role: 'user', parts: [{ text: 'word '.repeat(1 + ((i * 37) % 50)) }] }, { role: 'model', parts: [{ text: 'ok' }] }],
  })).join('\n') + '\n');
  const o = options(path.join(tmp, 'uneven'), { trainFile: file, validationFile: undefined, batchTokens: 128, maxSeqLen: 128, epochs: 3, warmupRatio: 0, decay: 'linear' });
  const steps: StepMetrics[] = [];
  await tune({ ...o, onEvent: (e) => { if (e.type === 'step') steps.push(e.metrics); } });
  const model = await loadModel(o.baseDir);
  const perEpoch = [0, 1, 2].map((e) => steps.filter((s) => s.epoch === e + 1).length);
  assert.notEqual(new Set(perEpoch).size, 1, `the epochs should pack differently: ${perEpoch}`);
  assert.equal(runSteps(await tokenizeDataset(file, model.tokenizer), 3, batchingOf(o)), steps.length);
  assert.ok(steps.every((s) => s.total_steps === steps.length), 'total_steps is the number of steps run');
  const peak = o.learningRate!;
  steps.forEach((s, i) => assert.equal(s.learning_rate, learningRateAt(i + 1, steps.length, peak, 0, 'linear')));
  assert.ok(steps.at(-1)!.learning_rate > 0 && steps.at(-1)!.learning_rate < steps.at(-2)!.learning_rate, 'the last step is the end of the decay');
});
