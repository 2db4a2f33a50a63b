// npm run bench:data — dataset validation speed and memory. Generates a deterministic ~200 MB JSONL
// file of Vertex-layout conversations under .cache/bench/ (once; reused while its size matches), then
// validates it in fresh child processes: without a model (parsing and every check) and with token
// counting by the tiny Llama model (chat template + tokenizer in worker threads, one per core).
// Prints MB/s, CPU seconds (all threads; MB per CPU second is what a busy shared machine cannot
// distort) and peak RSS (the child's maxRSS: main thread and workers together).
// Goals (issue 4): >= 50 MB/s without a model, >= 10 MB/s with token counting, peak RSS < 300 MB.
// BENCH_DATA_MB sets the file size; BENCH_DATA_WORKERS the worker count (default: all cores).
//
// npm run bench:data -- --real — token counting with the published Gemma 3, Qwen3 and Llama 3.1
// tokenizers (fetched once by tools/fetch-tokenizers.ts; each beside a tiny model's config.json) on a
// deterministic multilingual file (bench/multilingual.ts; BENCH_DATA_REAL_MB, default 32), each in a
// fresh child: the fast path (shared counting tables, exact; first with the tables compiled from
// tokenizer.json, then read from the disk cache as later runs do) and, in the same run, the full-encoding
// path (TUNEKIT_COUNT_WITH_ENCODE=1: every worker loads the tokenizer and encodes every text) on the
// file's first BENCH_DATA_FULL_MB (default 3) MB. Prints MB/s, MB per CPU second, peak RSS, the
// speed ratio, and checks that both paths report the same tokens on the shared prefix.
// Goals (issue 9): >= 10 MB/s on 2 cores with each tokenizer, peak RSS < 400 MB.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Random } from '../src/engine/random.js';
import { multilingualText } from './multilingual.js';

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

interface Run { seconds: number; cpuSeconds: number; maxRssMB: number; examples: number; errors: number; warnings: number; tokens?: number }

/** In the child: validate once and print the timing as JSON. */
async function child(file: string, model: string | null): Promise<void> {
  const { validateDataset } = await import('../src/data/validate.js');
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const { report, scans } = await validateDataset(file, model ? { model: { dir: model, threads: WORKERS } } : {});
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0); // all threads of the process, workers included
  const run: Run = { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, maxRssMB: process.resourceUsage().maxRSS / 1024, examples: report.files[0].validExamples, errors: report.errors, warnings: report.warnings };
  if (model) {
    const col = scans[0]!.columns.tokens;
    let tokens = 0;
    for (let row = 1; row <= scans[0]!.rows; row++) tokens += col.get(row);
    run.tokens = tokens;
  }
  process.stdout.write(JSON.stringify(run) + '\n');
}

function measure(file: string, model: string | null, env: Record<string, string> = {}): Run {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', file, model ?? ''], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
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
  report('validate, no model', measure(dataFile, null), 50);
  report(`validate + token counts (${WORKERS} workers)`, measure(dataFile, modelDir), 10);
}

/** Deterministic multilingual examples (Vertex layout), about `bytes` bytes. */
function generateMultilingual(file: string, bytes: number): void {
  const rng = new Random(909);
  const vocab = new Map<string, string[]>();
  const fd = fs.openSync(file, 'w');
  let written = 0;
  while (written < bytes) {
    const contents = [];
    for (let e = 0; e < 1 + Math.floor(rng.next() * 3); e++) {
      contents.push({ role: 'user', parts: [{ text: multilingualText(rng, 40 + Math.floor(rng.next() * 400), vocab).trim() || 'q' }] });
      contents.push({ role: 'model', parts: [{ text: multilingualText(rng, 80 + Math.floor(rng.next() * 1200), vocab).trim() || 'a' }] });
    }
    const line = JSON.stringify({ systemInstruction: { parts: [{ text: SYSTEMS[Math.floor(rng.next() * SYSTEMS.length)] }] }, contents }) + '\n';
    written += fs.writeSync(fd, line);
  }
  fs.closeSync(fd);
}

/** The first lines of `from` up to about `bytes`, into `to`. */
function prefixFile(from: string, to: string, bytes: number): void {
  const text = fs.readFileSync(from, 'utf8');
  let end = 0;
  while (end < text.length && Buffer.byteLength(text.slice(0, end)) < bytes) {
    const nl = text.indexOf('\n', end + Math.max(1, Math.floor(bytes / 50)));
    end = nl < 0 ? text.length : nl + 1;
  }
  fs.writeFileSync(to, text.slice(0, end));
}

async function mainReal(): Promise<void> {
  const { ensureRealTokenizer } = await import('../tools/fetch-tokenizers.js');
  const { initTinyModel } = await import('../src/models/tiny.js');
  fs.mkdirSync(cacheDir, { recursive: true });
  const realMB = Number(process.env.BENCH_DATA_REAL_MB ?? 32);
  const fullMB = Number(process.env.BENCH_DATA_FULL_MB ?? 3);
  const file = path.join(cacheDir, `multilingual-${realMB}mb.jsonl`);
  if (!fs.existsSync(file) || fs.statSync(file).size < realMB * 1e6) {
    process.stderr.write(`generating ${file} (${realMB} MB)...\n`);
    generateMultilingual(file, realMB * 1e6);
  }
  const prefix = path.join(cacheDir, `multilingual-${realMB}mb-first-${fullMB}mb.jsonl`);
  if (!fs.existsSync(prefix)) prefixFile(file, prefix, fullMB * 1e6);
  const size = fs.statSync(file).size / 1e6;
  const prefixSize = fs.statSync(prefix).size / 1e6;
  process.stdout.write(`token counting with the published tokenizers, ${size.toFixed(1)} MB multilingual (${file}); full encoding on its first ${prefixSize.toFixed(1)} MB; ` +
    `${WORKERS} workers, ${os.availableParallelism()} cores, node ${process.version}\n`);
  const families = { gemma3: 'gemma3', qwen3: 'qwen3', llama3_1: 'llama' } as const;
  for (const [name, family] of Object.entries(families) as [keyof typeof families, 'gemma3' | 'qwen3' | 'llama'][]) {
    // The published tokenizer beside a tiny model's config.json (the context length; no weights are read).
    const dir = path.join(cacheDir, `real-${name}`);
    if (!fs.existsSync(path.join(dir, 'config.json'))) {
      const tiny = path.join(cacheDir, `tiny-${family}`);
      if (!fs.existsSync(path.join(tiny, 'config.json'))) initTinyModel({ family, size: 'tiny', seed: 1, out: tiny });
      fs.mkdirSync(dir, { recursive: true });
      const config = JSON.parse(fs.readFileSync(path.join(tiny, 'config.json'), 'utf8')) as Record<string, unknown>;
      config.max_position_embeddings = 131_072;
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
      const src = ensureRealTokenizer(name);
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(src, f), path.join(dir, f));
    }
    // Cold: the tables compiled from tokenizer.json (on a thread of their own) into an empty cache
    // directory; warm: read back from it, as every later run does.
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-bench-cache-'));
    let cold: Run;
    let fast: Run;
    let fastPrefix: Run;
    try {
      cold = measure(file, dir, { TUNEKIT_CACHE_DIR: cache });
      fast = measure(file, dir, { TUNEKIT_CACHE_DIR: cache });
      fastPrefix = measure(prefix, dir, { TUNEKIT_CACHE_DIR: cache });
    } finally {
      fs.rmSync(cache, { recursive: true, force: true });
    }
    if (cold.tokens !== fast.tokens) throw new Error(`${name}: cold run ${cold.tokens} tokens, warm run ${fast.tokens}`);
    const full = measure(prefix, dir, { TUNEKIT_COUNT_WITH_ENCODE: '1' });
    if (fastPrefix.tokens !== full.tokens || fastPrefix.errors !== full.errors || fastPrefix.warnings !== full.warnings) {
      throw new Error(`${name}: the fast path reports ${fastPrefix.tokens} tokens, ${fastPrefix.errors} errors, ${fastPrefix.warnings} warnings; full encoding ${full.tokens}, ${full.errors}, ${full.warnings}`);
    }
    const line = (label: string, run: Run, mb: number): string =>
      `  ${label.padEnd(32)} ${(mb / run.seconds).toFixed(2).padStart(6)} MB/s  ${(mb / run.cpuSeconds).toFixed(2).padStart(6)} MB per CPU s  peak RSS ${run.maxRssMB.toFixed(0).padStart(5)} MB  (${run.seconds.toFixed(1)} s, ${run.cpuSeconds.toFixed(1)} CPU s, ${run.tokens} tokens)\n`;
    process.stdout.write(`${name}:\n`);
    process.stdout.write(line(`fast, ${size.toFixed(0)} MB, first run`, cold, size));
    process.stdout.write(line(`fast, ${size.toFixed(0)} MB, cached tables`, fast, size));
    process.stdout.write(line(`fast, first ${prefixSize.toFixed(0)} MB`, fastPrefix, prefixSize));
    process.stdout.write(line(`full encoding, first ${prefixSize.toFixed(0)} MB`, full, prefixSize));
    process.stdout.write(`  fast / full: ${((size / fast.seconds) / (prefixSize / full.seconds)).toFixed(1)}x MB/s, ${((size / fast.cpuSeconds) / (prefixSize / full.cpuSeconds)).toFixed(1)}x MB per CPU s; ` +
      `same tokens on the prefix (${full.tokens}); goals >= 10 MB/s, peak RSS < 400 MB\n`);
  }
}

const arg = process.argv[2];
if (arg === '--child') await child(process.argv[3]!, process.argv[4] || null);
else if (arg === '--real') await mainReal();
else await main();
