// PieceCounter (fast exact token counts for validation and statistics) against the tokenizer itself:
// the same count as encode() on varied text for every family, and countExample's tokens and output
// tokens equal renderForTraining's token count and loss mask. The same for the published Gemma 3, Qwen3
// and Llama 3.1 tokenizers (below), on a multilingual corpus (bench/multilingual.ts) and adversarial text.

import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as hfTokenizers from '@huggingface/tokenizers';
import { Random } from '../src/engine/random.js';
import { PieceCounter, rewriteSplitRegex } from '../src/data/piece-counter.js';
import { cachedCounting, TokenCounterPool } from '../src/data/token-pool.js';
import { countExample, textCounter, type TextCounter, type TokenCount } from '../src/data/tokens.js';
import { ADVERSARIAL, multilingualText } from '../bench/multilingual.js';
import { realTokenizerDir, REAL_TOKENIZER_NAMES, type RealTokenizerName } from './helpers/real-tokenizers.js';
import { renderForTraining } from '../src/data/render.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import type { Conversation } from '../src/data/conversation.js';
import { FAMILIES, tinyModelDir } from './helpers/tiny-models.js';

const ATOMS = ['the', 'The', ' ', '  ', '   ', '\n', '\n\n', '\r\n', '\t', "'s", "'LL", "don't", '123', '4567890', '3.14', 'café', 'naïve',
  '東京', 'データ', '🙂', '🙂🙂', 'ответ', '...', '!?', 'x+y=z', '<|eot_id|>', '<|im_end|>', '<end_of_turn>', '<think>', '</think>', '--', '$', '\u00a0', 'A1b2'];

function randomText(rng: Random, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ATOMS[Math.floor(rng.next() * ATOMS.length)];
  return s;
}

for (const family of FAMILIES) {
  test(`${family}: PieceCounter counts exactly what encode() produces`, async () => {
    const dir = tinyModelDir(family);
    const tokenizer = await Tokenizer.load(dir);
    const counter = PieceCounter.forTokenizer(dir, tokenizer);
    assert.ok(counter, 'the tiny tokenizers are byte-level BPE with a Split regex');
    const rng = new Random(7);
    for (let i = 0; i < 400; i++) {
      const text = randomText(rng, 1 + Math.floor(rng.next() * 40));
      assert.equal(counter.count(text), tokenizer.encode(text, { addSpecialTokens: false }).length, JSON.stringify(text));
    }
    assert.equal(counter.count(''), 0);
  });

  test(`${family}: countExample agrees with renderForTraining`, async () => {
    const dir = tinyModelDir(family);
    const tokenizer = await Tokenizer.load(dir);
    const counter = textCounter(tokenizer, dir);
    const rng = new Random(11);
    for (let i = 0; i < 60; i++) {
      const turns: Conversation['turns'] = [];
      const exchanges = 1 + (i % 3);
      for (let e = 0; e < exchanges; e++) {
        turns.push({ role: 'user', text: `q${i} ${randomText(rng, 8)}`.trim() || 'q' });
        turns.push({ role: 'model', text: `a${i} ${randomText(rng, 12)}`.trim() || 'a', ...(e === 0 && exchanges > 1 ? { weight: 0 as const } : {}) });
      }
      const conv: Conversation = { ...(i % 2 ? { systemInstruction: 'Be brief.' } : {}), turns, source: { file: 'x', line: i + 1 } };
      let r;
      try {
        r = renderForTraining(conv, tokenizer);
      } catch {
        continue; // a template that refuses the texts is reported as render_failed, tested elsewhere
      }
      const c = countExample(conv, i + 1, tokenizer, 1 << 20, counter);
      assert.equal(c.tokens, r.tokens.length);
      assert.equal(c.output, r.lossMask.reduce((a, b) => a + b, 0));
      // Truncation at every limit keeps exactly the loss tokens the mask has before it.
      for (const limit of [2, 10, Math.floor(r.tokens.length / 2), r.tokens.length - 1]) {
        if (limit < 2 || limit >= r.tokens.length) continue;
        const t = countExample(conv, i + 1, tokenizer, limit, counter);
        const kept: number = r.lossMask.subarray(0, limit).reduce((a, b) => a + b, 0);
        const targets: number = r.lossMask.subarray(1, limit).reduce((a, b) => a + b, 0);
        assert.equal(t.fate, targets > 0 ? 'truncated' : 'dropped', `limit ${limit}`);
        assert.equal(t.keptOutput, targets > 0 ? kept : 0);
        assert.equal(t.keptTokens, targets > 0 ? limit : 0);
      }
    }
  });
}

// The published tokenizers: the fast counter must be the one used (not the encode fallback) and give
// encode()'s counts on a multilingual corpus and adversarial text; the rewritten Split regex must cut
// exactly where the library's compiled pattern cuts; the worker pool (shared tables, render-only
// tokenizers) must report what full encoding gives per example.

// The compiled tables' disk cache goes to a directory of this test's own (cold first, then warm).
const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-counter-cache-'));
process.env.TUNEKIT_CACHE_DIR = cacheRoot;
process.on('exit', () => fs.rmSync(cacheRoot, { recursive: true, force: true }));
const cachedFiles = (): string[] => (fs.existsSync(path.join(cacheRoot, 'token-counters')) ? fs.readdirSync(path.join(cacheRoot, 'token-counters')) : []);

describe('published tokenizers', () => {
  const dirs = {} as Record<RealTokenizerName, string>;
  const tokenizers = {} as Record<RealTokenizerName, Tokenizer>;
  before(() => {
    for (const name of REAL_TOKENIZER_NAMES) {
      dirs[name] = realTokenizerDir(name);
      tokenizers[name] = Tokenizer.loadSync(dirs[name]);
    }
  });

  const corpus = (seed: number, chars: number): string => multilingualText(new Random(seed), chars);

  for (const name of REAL_TOKENIZER_NAMES) {
    test(`${name}: PieceCounter is used and counts exactly what encode() produces (multilingual corpus, adversarial text)`, () => {
      const tokenizer = tokenizers[name];
      const counter = PieceCounter.forTokenizer(dirs[name], tokenizer);
      assert.ok(counter, `${name}: the fast counter mirrors this pipeline`);
      const encoded = (t: string): number => tokenizer.encode(t, { addSpecialTokens: false }).length;
      for (const t of ADVERSARIAL) assert.equal(counter.count(t), encoded(t), JSON.stringify(t));
      // Adversarial texts glued together (boundaries between them) and to the corpus.
      const rng = new Random(3);
      for (let i = 0; i < 300; i++) {
        let t = '';
        for (let k = 0; k < 1 + Math.floor(rng.next() * 6); k++) t += ADVERSARIAL[Math.floor(rng.next() * ADVERSARIAL.length)];
        assert.equal(counter.count(t), encoded(t), JSON.stringify(t));
      }
      const text = corpus(17, 400_000);
      let at = 0;
      let total = 0;
      while (at < text.length) {
        const len = 1 + Math.floor(rng.next() * 4000);
        const t = text.slice(at, at + len);
        const n = counter.count(t);
        assert.equal(n, encoded(t), `corpus at ${at}: ${JSON.stringify(t.slice(0, 80))}`);
        total += n;
        at += len;
      }
      assert.ok(total > 50_000);
      const whole = text.slice(0, 100_000);
      assert.equal(counter.count(whole), encoded(whole), 'one 100,000-character text');
    });

    test(`${name}: the worker pool (shared tables, render-only tokenizer) reports full encoding's counts`, async () => {
      const tokenizer = tokenizers[name];
      const encodeCount: TextCounter = (t) => tokenizer.encode(t, { addSpecialTokens: false }).length;
      const rng = new Random(23);
      const convs: Conversation[] = [];
      for (let i = 0; i < 40; i++) {
        const turns: Conversation['turns'] = [];
        for (let e = 0; e < 1 + (i % 3); e++) {
          turns.push({ role: 'user', text: multilingualText(rng, 20 + Math.floor(rng.next() * 600)).trim() || 'q' });
          turns.push({ role: 'model', text: multilingualText(rng, 20 + Math.floor(rng.next() * 900)).trim() || 'a' });
        }
        convs.push({ ...(i % 2 ? { systemInstruction: 'Be brief. 簡潔に。' } : {}), turns, source: { file: 'x', line: i + 1 } });
      }
      const limit = 700;
      const before = cachedFiles().length;
      // 2 threads with the tables compiled on a thread of their own (and cached), 2 with the cached
      // tables, a cache file cut short (ignored: compiled again), inline.
      for (const [run, threads] of [2, 2, 2, 0].entries()) {
        if (run === 1) assert.equal(cachedFiles().length, before + 1, 'the compiled tables were cached');
        assert.ok(cachedCounting(dirs[name]) !== null || run === 0);
        if (run === 2) {
          const file = path.join(cacheRoot, 'token-counters', cachedFiles().find((f) => f.endsWith('.bin'))!);
          for (const f of cachedFiles()) {
            const p = path.join(cacheRoot, 'token-counters', f);
            if (cachedCounting(dirs[name]) && fs.statSync(p).size > 1000) fs.truncateSync(p, fs.statSync(p).size - 100);
          }
          assert.ok(fs.existsSync(file));
          assert.equal(cachedCounting(dirs[name]), null, 'a truncated cache file is not used');
        }
        const got = new Map<number, TokenCount>();
        const pool = new TokenCounterPool(dirs[name], limit, (c) => got.set(c.row, c), threads);
        try {
          for (const [i, conv] of convs.entries()) await pool.submit({ row: i + 1, conv });
          await pool.drain();
        } finally {
          await pool.close();
        }
        assert.equal(got.size, convs.length);
        for (const [i, conv] of convs.entries()) {
          assert.deepEqual(got.get(i + 1), countExample(conv, i + 1, tokenizer, limit, encodeCount), `${threads} threads, example ${i + 1}`);
        }
      }
    });
  }

  test('gemma3: counts stay exact after the piece table fills up and starts over', () => {
    const tokenizer = tokenizers.gemma3;
    const counter = PieceCounter.forTokenizer(dirs.gemma3, tokenizer)!;
    const encoded = (t: string): number => tokenizer.encode(t, { addSpecialTokens: false }).length;
    const entries = (): number => (counter as unknown as { entries: number }).entries;
    // Distinct space-separated pieces of 60 CJK characters: about 150,000 of them fill the table's text
    // arena (8M UTF-16 units) once.
    const rng = new Random(41);
    const chunk = (): string => {
      let t = '';
      for (let p = 0; p < 1000; p++) {
        t += ' ';
        for (let k = 0; k < 60; k++) t += String.fromCharCode(0x4e00 + Math.floor(rng.next() * 2000));
      }
      return t;
    };
    const first = chunk();
    const firstCount = counter.count(first);
    assert.equal(firstCount, encoded(first));
    let peak = entries();
    let restarted = false;
    for (let i = 0; i < 160 && !restarted; i++) {
      counter.count(chunk());
      restarted = entries() < peak;
      peak = Math.max(peak, entries());
    }
    assert.ok(restarted, 'the table started over');
    assert.equal(counter.count(first), firstCount, 'a text counted before the restart');
    const text = corpus(29, 40_000);
    assert.equal(counter.count(text), encoded(text));
    for (const t of ADVERSARIAL) assert.equal(counter.count(t), encoded(t), JSON.stringify(t));
  });

  for (const name of ['qwen3', 'llama3_1'] as const) {
    test(`${name}: the rewritten Split regex cuts where the library's compiled pattern cuts`, () => {
      const tj = JSON.parse(fs.readFileSync(path.join(dirs[name], 'tokenizer.json'), 'utf8')) as { pre_tokenizer: { pretokenizers: { pattern: { Regex: string } }[] } };
      const source = tj.pre_tokenizer.pretokenizers[0]!.pattern.Regex;
      assert.match(source, /\(\?i:/, 'the published pattern has a case-insensitive group');
      const ours = rewriteSplitRegex(source);
      assert.ok(ours, 'rewritten');
      assert.doesNotMatch(ours, /\(\?i/);
      const SplitPreTokenizer = (hfTokenizers as unknown as Record<string, unknown>).SplitPreTokenizer;
      const theirs = (new (SplitPreTokenizer as new (c: unknown) => { pattern: RegExp })({ type: 'Split', pattern: { Regex: source }, behavior: 'Isolated', invert: false })).pattern;
      const mine = new RegExp(ours, 'gu');
      const cuts = (re: RegExp, t: string): string[] => [...t.matchAll(re)].map((m) => `${m.index}:${m[0]}`);
      const texts = [...ADVERSARIAL, corpus(5, 200_000)];
      // Random strings over the characters the alternatives turn on.
      const alphabet = ["'", 's', 'S', 't', 'T', 'r', 'R', 'e', 'E', 'v', 'V', 'm', 'M', 'l', 'L', 'd', 'D', 'ſ', '\u212a', 'k', ' ', '\t', '\n', '\r', '\u00a0', '1', '٣', 'x', 'é', '東', '!', '🙂', '\u0301', '_',
        '\u0085', '\u3000', '\u2028', '\ud83d', '\udc00', '𝐀', '𝟙', '\u{20000}', '\ufeff', '\u200d', '  ', '\r\n', '(', '.'];
      const rng = new Random(9);
      for (let i = 0; i < 3000; i++) {
        let t = '';
        for (let k = 0; k < 1 + Math.floor(rng.next() * 12); k++) t += alphabet[Math.floor(rng.next() * alphabet.length)];
        texts.push(t);
      }
      for (const t of texts) assert.deepEqual(cuts(mine, t), cuts(theirs, t), JSON.stringify(t.slice(0, 80)));
      // PieceCounter cuts this pattern with a hand-written scanner: the same cuts.
      const counter = PieceCounter.forTokenizer(dirs[name], tokenizers[name])! as unknown as { scanDigits: number; splitEnd(s: string, i: number): number };
      assert.equal(counter.scanDigits, name === 'qwen3' ? 1 : 3, 'the scanner is used');
      const scanned = (t: string): string[] => {
        const out: string[] = [];
        for (let i = 0; i < t.length; ) {
          const end = counter.splitEnd(t, i);
          out.push(`${i}:${t.slice(i, end)}`);
          i = end;
        }
        return out;
      };
      for (let i = 0; i < 20000; i++) {
        let t = '';
        for (let k = 0; k < 1 + Math.floor(rng.next() * 12); k++) t += alphabet[Math.floor(rng.next() * alphabet.length)];
        texts.push(t);
      }
      for (const t of texts) assert.deepEqual(scanned(t), cuts(theirs, t), JSON.stringify(t.slice(0, 80)));
    });
  }

  test('rewriteSplitRegex: (?i:...) folds ASCII letters only; syntax the library rewrites otherwise is refused', () => {
    assert.equal(rewriteSplitRegex("(?i:'s|'ll)|\\p{L}+"), "(?:'[sS]|'[lL][lL])|\\p{L}+");
    assert.equal(rewriteSplitRegex('\\s+(?!\\S)|[^\\s\\d]'), '\\p{White_Space}+(?!\\P{White_Space})|[^\\p{White_Space}\\p{Nd}]');
    assert.equal(rewriteSplitRegex('(?i:x)y'), '(?:[xX])y');
    for (const refused of ['.+', '^a', 'a$', '(?i:[a-z])', '\\p{N}++', '(?>a)', '(?<n>a)', '[^(\\s|[a])]', 'a{1,3}+', '(a', 'a)']) {
      assert.equal(rewriteSplitRegex(refused), null, refused);
    }
  });
});
