// npm run bench:structured — what constrained decoding costs per token on a 262,144-token vocabulary.
// The mask is computed against the published Gemma 3 tokenizer (fetched once into .cache/tokenizers)
// while random logits pick among the allowed tokens, for a JSON schema and for plain JSON mode: the
// time per step of TokenConstraint.allowed() + accept(), split by state (inside a free string: a copy
// of the precomputed plain-token list plus the non-plain tokens checked one by one; elsewhere: the
// trie walk). Beside it, the decode time per token of the `small` Gemma 3 (Gemma-3-270M shapes,
// random weights, 262,144 embedding rows), 2 threads, measured in the same run.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Random } from '../src/engine/random.js';
import { generate } from '../src/generate/generate.js';
import { loadModel } from '../src/models/model.js';
import { initTinyModel } from '../src/models/tiny.js';
import { inFreeString } from '../src/structured/automaton.js';
import { TokenConstraint } from '../src/structured/constraint.js';
import { ANY, compileSchema } from '../src/structured/schema.js';
import { vocabularyOf } from '../src/structured/vocabulary.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { ensureRealTokenizer } from '../tools/fetch-tokenizers.js';

const STEPS = Number(process.env.BENCH_STEPS ?? 300);
const DECODE = Number(process.env.BENCH_DECODE ?? 16);
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
process.env.TUNEKIT_THREADS ??= String(THREADS);
const MASK_ONLY = process.env.BENCH_MASK_ONLY === '1';

const tokenizer = Tokenizer.loadSync(ensureRealTokenizer('gemma3'));
let t = performance.now();
const vocab = vocabularyOf(tokenizer, tokenizer.embeddingSize);
const buildMs = performance.now() - t;
console.log(`vocabulary: ${tokenizer.size} tokens, trie ${vocab.nodes} nodes, ${vocab.plain.length} plain, ${vocab.special.length} checked one by one in strings, built once in ${buildMs.toFixed(0)} ms`);

const SCHEMA = compileSchema({
  type: 'object',
  properties: {
    name: { type: 'string' }, age: { type: 'integer' }, email: { type: ['string', 'null'] },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 4 },
    address: { type: 'object', properties: { city: { type: 'string' }, zip: { type: 'string' } }, required: ['city'] },
    when: { type: 'string', format: 'date-time' },
  },
  required: ['name', 'age', 'tags', 'address'],
}, 'json');

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return `n=${s.length} mean ${mean.toFixed(2)} ms, p50 ${(s[Math.floor(s.length / 2)] ?? 0).toFixed(2)}, p95 ${(s[Math.floor(s.length * 0.95)] ?? 0).toFixed(2)}, max ${(s[s.length - 1] ?? 0).toFixed(2)}`;
};

for (const [label, schema] of [['schema', SCHEMA], ['plain JSON', ANY]] as const) {
  const rng = new Random(7);
  const inString: number[] = [];
  const walk: number[] = [];
  let steps = 0;
  for (let run = 0; steps < STEPS; run++) {
    const c = new TokenConstraint(tokenizer, vocab.size, { kind: 'json', schema }, [1]);
    for (let left = 120; left > 0 && steps < STEPS; left--) {
      const free = inFreeString((c as unknown as { state: Parameters<typeof inFreeString>[0] }).state);
      t = performance.now();
      const ids = c.allowed(left);
      const pick = ids[Math.floor(rng.next() * ids.length)]!;
      if (pick === 1) break;
      c.accept(pick);
      (free ? inString : walk).push(performance.now() - t);
      steps++;
      if (c.closed) break;
    }
  }
  console.log(`mask ${label}: inside free strings ${stats(inString)}; elsewhere (trie walk) ${stats(walk)}`);
}

if (MASK_ONLY) process.exit(0);
const dir = path.resolve('.cache/bench/gemma3-small');
if (!fs.existsSync(path.join(dir, 'config.json'))) initTinyModel({ family: 'gemma3', size: 'small', seed: 1, out: dir });
const model = await loadModel(dir);
const prompt = model.tokenizer.encode('The weather today is');
await generate(model, prompt, { maxTokens: 2, temperature: 0, stopTokenIds: [] });
t = performance.now();
const r = await generate(model, prompt, { maxTokens: DECODE, temperature: 0, stopTokenIds: [] });
console.log(`decode, small Gemma 3 (262,144 rows), ${THREADS} threads: ${(r.generateSeconds * 1000 / (r.tokenIds.length - 1 || 1)).toFixed(1)} ms/token (${r.tokenIds.length} tokens)`);
