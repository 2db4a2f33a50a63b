// Parity of the trl executor with tunekit's own trainer: the quickstart's job (examples/data, the tone
// task: 120 training and 20 validation examples, 20 epochs, adapter size 8, learning-rate multiplier
// 25) on a tiny model of each architecture, trained from the same initial adapter (the seed's) by
// tunekit's trainer and by executors/trl/train.py with each asked backend. Prints, per architecture and
// executor, the final eval loss and its relative difference from tunekit's, and how many of the 40
// held-out prompts (examples/data/tone-test.jsonl) get the same greedy answer as tunekit's adapter
// (every adapter served by tunekit's engine), plus exact match against the expected answers.
// Exits 1 when an eval loss differs by more than TOLERANCE or an answer differs.
// Usage (tools/trl-parity/run.sh builds first):
//   node dist/tools/trl-parity/parity.js [--backends trl,torch] [--arch llama,qwen3,gemma3] [--epochs 20] [--out DIR]
// TUNEKIT_PYTHON names the Python (default python3); the trl backend needs torch, transformers, peft, trl.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { initTinyModel } from '../../src/models/tiny.js';
import { loadModel } from '../../src/models/model.js';
import { applyAdapterForInference } from '../../src/lora/apply.js';
import { generate } from '../../src/generate/generate.js';
import { renderPrompt } from '../../src/data/render.js';
import { readDataset } from '../../src/data/dataset.js';
import { DEFAULT_TUNE_OPTIONS, tune, type TrainEvent, type TuneOptions } from '../../src/train/trainer.js';
import { TRL_BACKENDS, trlRunOptionsFromEnv, tuneWithTrl, type TrlBackend } from '../../src/train/trl-executor.js';
import type { Family } from '../../src/models/config.js';

/** |eval loss (trl) − eval loss (tunekit)| / eval loss (tunekit) allowed: float32 on both sides, other kernels and summation orders. */
const TOLERANCE = 1e-3;
const DATA = fileURLToPath(new URL('../../../examples/data/', import.meta.url));
const MAX_TOKENS = 16;

const { values } = parseArgs({
  options: {
    backends: { type: 'string', default: 'trl' },
    arch: { type: 'string', default: 'llama,qwen3,gemma3' },
    epochs: { type: 'string', default: '20' },
    out: { type: 'string' },
  },
});
const backends = values.backends.split(',') as TrlBackend[];
for (const b of backends) if (!(TRL_BACKENDS as readonly string[]).includes(b) || b === 'auto') throw new Error(`--backends: ${b} is not trl or torch`);
const families = values.arch.split(',') as Family[];
const out = values.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-trl-parity-'));
const { python } = trlRunOptionsFromEnv();

const test = (await readDataset(path.join(DATA, 'tone-test.jsonl'))).conversations;
const rows: string[][] = [['arch', 'executor', 'eval loss', 'rel. diff', 'same greedy answers', 'exact match', 'seconds']];
let ok = true;

for (const family of families) {
  const baseDir = path.join(out, family, 'base');
  if (!fs.existsSync(path.join(baseDir, 'config.json'))) initTinyModel({ family, size: 'tiny', seed: 1, out: baseDir });
  const options: TuneOptions = {
    ...DEFAULT_TUNE_OPTIONS, mode: 'lora', adapterSize: 8, epochs: Number(values.epochs), learningRateMultiplier: 25,
    baseDir, trainFile: path.join(DATA, 'tone-train.jsonl'), validationFile: path.join(DATA, 'tone-validation.jsonl'), outDir: '',
  };
  const base = await loadModel(baseDir);
  const answersOf = async (adapterDir: string): Promise<string[]> => {
    const tuned = applyAdapterForInference(base, adapterDir);
    const said: string[] = [];
    for (const c of test) {
      const ids = renderPrompt({ turns: c.turns.slice(0, -1) }, tuned.tokenizer).tokens;
      said.push((await generate(tuned, ids, { maxTokens: MAX_TOKENS, temperature: 0 })).text);
    }
    return said;
  };
  const run = async (name: string, train: (o: TuneOptions) => Promise<unknown>) => {
    const outDir = path.join(out, family, name);
    let evalLoss = NaN;
    const t0 = performance.now();
    await train({ ...options, outDir, onEvent: (e: TrainEvent) => { if (e.type === 'eval') evalLoss = e.metrics.eval_total_loss; } });
    return { evalLoss, answers: await answersOf(outDir), seconds: (performance.now() - t0) / 1000 };
  };
  const ref = await run('tunekit', tune);
  // A tuned Qwen3 writes the empty think block its template trains before each answer; generate()
  // returns it as thought, not as text, so the text is compared as it is.
  const exact = (a: string[]) => a.filter((s, i) => s === test[i]!.turns.at(-1)!.text).length;
  rows.push([family, 'tunekit', ref.evalLoss.toFixed(6), '', '', `${exact(ref.answers)}/${test.length}`, ref.seconds.toFixed(1)]);
  for (const backend of backends) {
    const r = await run(`trl-${backend}`, (o) => tuneWithTrl(o, { python, backend, log: (m) => process.stderr.write(`${family}: ${m}\n`) }));
    const rel = Math.abs(r.evalLoss - ref.evalLoss) / ref.evalLoss;
    const same = r.answers.filter((a, i) => a === ref.answers[i]).length;
    ok &&= rel <= TOLERANCE && same === test.length;
    rows.push([family, `trl (${backend})`, r.evalLoss.toFixed(6), rel.toExponential(2), `${same}/${test.length}`, `${exact(r.answers)}/${test.length}`, r.seconds.toFixed(1)]);
  }
}

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
console.log(`tolerance: relative eval-loss difference <= ${TOLERANCE}, every greedy answer the same; outputs in ${out}`);
console.log(ok ? 'PARITY OK' : 'PARITY FAILED');
process.exit(ok ? 0 : 1);
