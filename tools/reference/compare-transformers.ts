// Checks tunekit against Hugging Face transformers on the same tiny checkpoints (run where PyTorch and
// transformers are installed, e.g. the GPU machine; this machine has neither).
//   node dist/tools/reference/compare-transformers.js prepare DIR      writes models + DIR/cases.json
//   python3 tools/reference/transformers_check.py DIR OUT.json         (on the machine with transformers)
//   node dist/tools/reference/compare-transformers.js compare DIR OUT.json
//   node dist/tools/reference/compare-transformers.js fixture DIR OUT.json   writes test/fixtures/transformers-reference.json
// compare prints, per model, the max |Δlogit| at the last position, the argmax agreement over all
// positions, whether the greedy continuations, tokenizations and chat renders are identical.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTinyModel } from '../../src/models/tiny.js';
import { loadModel } from '../../src/models/model.js';
import { argmax } from '../../src/generate/sampler.js';
import { Random } from '../../src/engine/random.js';
import type { Family } from '../../src/models/config.js';

const FAMILIES: Family[] = ['llama', 'qwen3', 'gemma3'];
const SEED = 3;
const TEXTS = ['Hello, world! The weather is 23°C today.', '  leading spaces and\nnew lines\n\n', 'emoji 🎉 and ünïcödé', '{"key": [1, 2, 3]}'];
const CHATS = [[
  { role: 'system', content: 'You answer in one word.' },
  { role: 'user', content: 'What colour is the sky?' },
  { role: 'assistant', content: 'Blue.' },
  { role: 'user', content: 'And grass?' },
]];

interface Case { model: string; prompt_ids: number[]; greedy_tokens: number; texts: string[]; chats: typeof CHATS }

async function prepare(dir: string): Promise<void> {
  const cases: Case[] = [];
  for (const family of FAMILIES) {
    const name = `${family}-tiny`;
    initTinyModel({ family, size: 'tiny', seed: SEED, out: path.join(dir, name) });
    const model = await loadModel(path.join(dir, name));
    const rng = new Random(5);
    // Long enough to pass Gemma's tiny sliding window (8) several times.
    const prompt = Array.from({ length: 40 }, () => Math.floor(rng.next() * model.tokenizer.size));
    cases.push({ model: name, prompt_ids: prompt, greedy_tokens: 32, texts: TEXTS, chats: CHATS });
  }
  fs.writeFileSync(path.join(dir, 'cases.json'), JSON.stringify(cases));
}

async function compare(dir: string, outFile: string): Promise<void> {
  const cases = JSON.parse(fs.readFileSync(path.join(dir, 'cases.json'), 'utf8')) as Case[];
  const ref = JSON.parse(fs.readFileSync(outFile, 'utf8')) as Array<{
    model: string; last_logits: number[]; argmax_all: number[]; greedy: number[]; encodings: number[][]; chat_renders: string[];
    transformers_version: string; torch_version: string; device: string;
  }>;
  let ok = true;
  for (const c of cases) {
    const r = ref.find((x) => x.model === c.model)!;
    const model = await loadModel(path.join(dir, c.model));
    const V = model.config.vocabSize;
    const cache = model.transformer.createCache(c.prompt_ids.length + c.greedy_tokens + 1);
    const all = model.transformer.forward(c.prompt_ids, cache, { allLogits: true });
    const last = all.subarray((c.prompt_ids.length - 1) * V);
    let maxDiff = 0;
    for (let i = 0; i < V; i++) maxDiff = Math.max(maxDiff, Math.abs(last[i]! - r.last_logits[i]!));
    let argmaxAgree = 0;
    for (let t = 0; t < c.prompt_ids.length; t++) if (argmax(all.subarray(t * V, (t + 1) * V)) === r.argmax_all[t]) argmaxAgree++;
    const greedy: number[] = [];
    let logits: Float32Array = last.slice();
    for (let i = 0; i < c.greedy_tokens; i++) {
      const id = argmax(logits);
      greedy.push(id);
      logits = model.transformer.forward([id], cache);
    }
    const greedySame = greedy.every((t, i) => t === r.greedy[i]);
    const encSame = c.texts.map((t, i) => JSON.stringify(model.tokenizer.encode(t)) === JSON.stringify(r.encodings[i]));
    const chatSame = c.chats.map((m, i) => model.tokenizer.applyChatTemplate(m, { addGenerationPrompt: true }) === r.chat_renders[i]);
    const pass = maxDiff < 1e-3 && argmaxAgree === c.prompt_ids.length && greedySame && encSame.every(Boolean) && chatSame.every(Boolean);
    ok &&= pass;
    console.log(`${c.model}: max|Δlogit| ${maxDiff.toExponential(2)} (logit range ±${Math.max(...r.last_logits.map(Math.abs)).toFixed(1)}), ` +
      `argmax ${argmaxAgree}/${c.prompt_ids.length}, greedy 32 ${greedySame ? 'identical' : 'DIFFERENT'}, ` +
      `tokenization ${encSame.filter(Boolean).length}/${encSame.length}, chat template ${chatSame.filter(Boolean).length}/${chatSame.length} ` +
      `[transformers ${r.transformers_version}, torch ${r.torch_version}, ${r.device}] ${pass ? 'PASS' : 'FAIL'}`);
    if (!greedySame) console.log(`  ours   ${greedy.join(' ')}\n  theirs ${r.greedy.join(' ')}`);
    encSame.forEach((s, i) => { if (!s) console.log(`  text ${JSON.stringify(c.texts[i])}: ours ${JSON.stringify(model.tokenizer.encode(c.texts[i]!))} theirs ${JSON.stringify(r.encodings[i])}`); });
    chatSame.forEach((s, i) => { if (!s) console.log(`  chat ${i}: ours ${JSON.stringify(model.tokenizer.applyChatTemplate(c.chats[i]!, { addGenerationPrompt: true }))}\n  theirs ${JSON.stringify(r.chat_renders[i])}`); });
  }
  process.exitCode = ok ? 0 : 1;
}

/** The cases and transformers' answers in one file that test/transformers-reference.test.ts reads. */
function fixture(dir: string, outFile: string): void {
  const cases = JSON.parse(fs.readFileSync(path.join(dir, 'cases.json'), 'utf8')) as Case[];
  const ref = JSON.parse(fs.readFileSync(outFile, 'utf8')) as Array<Record<string, unknown> & { model: string; last_logits: number[] }>;
  const entries = cases.map((c) => {
    const r = ref.find((x) => x.model === c.model)!;
    return {
      ...c,
      family: c.model.replace(/-tiny$/, ''),
      seed: SEED,
      reference: { ...r, last_logits: r.last_logits.map((x) => Number(x.toPrecision(8))) },
    };
  });
  const file = path.resolve('test/fixtures/transformers-reference.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(entries) + '\n');
  console.log(`wrote ${file}`);
}

const [mode, dir, out] = process.argv.slice(2);
if (mode === 'prepare' && dir) await prepare(dir);
else if (mode === 'compare' && dir && out) await compare(dir, out);
else if (mode === 'fixture' && dir && out) fixture(dir, out);
else {
  console.error('usage: compare-transformers prepare DIR | compare DIR OUT.json | fixture DIR OUT.json');
  process.exitCode = 2;
}
