// npm run bench:data — dataset validation speed and memory. Generates a deterministic ~200 MB JSONL
// file of Vertex-layout conversations under .cache/bench/ (once; reused while its size matches), then
// validates it in fresh child processes: without a model (parsing and every check) and with token
// counting by the tiny Llama model (chat template + tokenizer in worker threads, one per core).
// Prints MB/s, CPU seconds (all threads; MB per CPU second is what a busy shared machine cannot
// distort) and peak RSS (the child's maxRSS: main thread and workers together).
// Goals (issue 4): >= 50 MB/s without a model, >= 10 MB/s with token counting, peak RSS < 300 MB.
// BENCH_DATA_MB sets the file size; BENCH_DATA_WORKERS the worker count (default: all cores).

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Random } from '../src/engine/random.js';

const MB = Number(process.env.BENCH_DATA_MB ?? 200);
const WORKERS = process.env.BENCH_DATA_WORKERS !== undefined ? Number(process.env.BENCH_DATA_WORKERS) : os.availableParallelism();
const cacheDir = path.resolve('.cache/bench');
const dataFile = path.join(cacheDir, `data-${MB}mb.jsonl`);
const modelDir = path.join(cacheDir, 'tiny-llama');

const WORDS = ('the of and to in is that for it as with was on be by this are from at or an which have not but they ' +
  'model data train example token answer question system user value result number function return error file line ' +
  'café naïve größe 東京 データ ответ 🙂 résumé über señor').split(' ');
const SYSTEMS = ['You are a helpful assistant.', 'Answer in one short paragraph.', 'You are a support agent for a software product; be precise.'];

function sentence(rng: Random, words: number): string {
  let s = '';
  for (let i = 0; i < words; i++) {
    let w = WORDS[Math.floor(rng.next() * WORDS.length)];
    if (i === 0) w = w[0].toUpperCase() + w.slice(1);
    s += (i ? ' ' : '') + w;
    if (rng.next() < 0.03) s += `${Math.floor(rng.next() * 1000)}`;
  }
  return s + (rng.next() < 0.2 ? '?\n' : '. ');
}

function text(rng: Random, words: number): string {
  let s = '';
  while (words > 0) {
    const n = Math.min(words, 6 + Math.floor(rng.next() * 14));
    s += sentence(rng, n);
    words -= n;
  }
  return s.trim();
}

/** Deterministic ~MB megabytes of valid examples, 1-3 exchanges each, ~1.5 KB a line on average. */
function generate(file: string, bytes: number): void {
  const rng = new Random(2026);
  const fd = fs.openSync(file, 'w');
  let written = 0;
  let chunk: string[] = [];
  let chunkBytes = 0;
  while (written + chunkBytes < bytes) {
    const exchanges = 1 + Math.floor(rng.next() * 3);
    const contents = [];
    for (let e = 0; e < exchanges; e++) {
      contents.push({ role: 'user', parts: [{ text: text(rng, 10 + Math.floor(rng.next() * 60)) }] });
      contents.push({ role: 'model', parts: [{ text: text(rng, 20 + Math.floor(rng.next() * 120)) }] });
    }
    const line = JSON.stringify({ systemInstruction: { parts: [{ text: SYSTEMS[Math.floor(rng.next() * SYSTEMS.length)] }] }, contents }) + '\n';
    chunk.push(line);
    chunkBytes += Buffer.byteLength(line);
    if (chunkBytes > 1 << 20) {
      fs.writeSync(fd, chunk.join(''));
      written += chunkBytes;
      chunk = [];
      chunkBytes = 0;
    }
  }
  fs.writeSync(fd, chunk.join(''));
  fs.closeSync(fd);
}

interface Run { seconds: number; cpuSeconds: number; maxRssMB: number; examples: number; errors: number; warnings: number }

/** In the child: validate once and print the timing as JSON. */
async function child(withModel: boolean): Promise<void> {
  const { validateDataset } = await import('../src/data/validate.js');
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const { report } = await validateDataset(dataFile, withModel ? { model: { dir: modelDir, threads: WORKERS } } : {});
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0); // all threads of the process, workers included
  const run: Run = { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, maxRssMB: process.resourceUsage().maxRSS / 1024, examples: report.files[0].validExamples, errors: report.errors, warnings: report.warnings };
  process.stdout.write(JSON.stringify(run) + '\n');
}

function measure(withModel: boolean): Run {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), withModel ? '--child-model' : '--child'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`benchmark child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Run;
}

async function main(): Promise<void> {
  fs.mkdirSync(cacheDir, { recursive: true });
  const bytes = MB * 1e6;
  if (!fs.existsSync(dataFile) || fs.statSync(dataFile).size < bytes) {
    process.stderr.write(`generating ${dataFile} (${MB} MB)...\n`);
    generate(dataFile, bytes);
  }
  if (!fs.existsSync(path.join(modelDir, 'config.json'))) {
    const { initTinyModel } = await import('../src/models/tiny.js');
    initTinyModel({ family: 'llama', size: 'tiny', seed: 1, out: modelDir });
  }
  const size = fs.statSync(dataFile).size / 1e6;
  process.stdout.write(`dataset validation, ${size.toFixed(1)} MB (${dataFile}), ${os.availableParallelism()} cores, node ${process.version}\n`);
  const report = (label: string, run: Run, goal: number): void => {
    const speed = size / run.seconds;
    process.stdout.write(`${label.padEnd(34)} ${run.seconds.toFixed(2).padStart(7)} s ${speed.toFixed(1).padStart(7)} MB/s ` +
      `(goal >= ${goal}), ${run.cpuSeconds.toFixed(1)} CPU s (${(size / run.cpuSeconds).toFixed(1)} MB per CPU s)  peak RSS ${run.maxRssMB.toFixed(0)} MB (goal < 300)  ${run.examples} examples, ${run.errors} errors, ${run.warnings} warnings\n`);
  };
  report('validate, no model', measure(false), 50);
  report(`validate + token counts (${WORKERS} workers)`, measure(true), 10);
}

const arg = process.argv[2];
if (arg === '--child' || arg === '--child-model') await child(arg === '--child-model');
else await main();
