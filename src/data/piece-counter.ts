// Fast exact token counts for byte-level BPE tokenizers with a regex pre-tokenizer (Llama 3, Qwen,
// GPT-2 style), for validation and statistics over large files. BPE never merges across the
// pre-tokenizer's pieces, so the count of a text is the sum of its pieces' counts, and pieces repeat a
// lot: each distinct piece is encoded once with the real tokenizer and remembered.
// Exactness rules:
// - Used only when tokenizer.json has exactly the pipeline this mirrors: no normalizer; pre-tokenizer
//   Split(Regex, Isolated) then ByteLevel(use_regex false, add_prefix_space false), or ByteLevel with
//   the GPT-2 regex alone is not mirrored (null); a BPE model without dropout; added tokens with no
//   lstrip/rstrip/single_word and not normalized. Anything else: forCounting returns null and callers
//   encode with the tokenizer itself.
// - Added tokens are cut out first, longest first, as the tokenizer does; each counts 1.
// - A piece whose regex split alone is not itself (so encoding it alone could differ) is encoded as
//   part of its whole section instead.
// test/data-piece-counter.test.ts checks counts against tokenizer.encode on varied text for each family.

import fs from 'node:fs';
import path from 'node:path';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

type Json = Record<string, unknown>;
const CACHE_LIMIT = 500_000;
const SELF_CHECK = "It's 12345 o'clock;  they'LL   go!\n\n\tTabs\r\n  café naïve 東京 データ 🙂🙂 ответ ... x+y=z  \n end  ";

export class PieceCounter {
  private readonly cache = new Map<string, number>();
  private readonly added: RegExp | null;
  private readonly pieces: RegExp;

  private constructor(private readonly tokenizer: Tokenizer, addedTokens: string[], pattern: string) {
    const escaped = addedTokens.sort((a, b) => b.length - a.length).map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.added = escaped.length ? new RegExp(escaped.join('|'), 'g') : null;
    this.pieces = new RegExp(pattern, 'gu');
  }

  /** A counter for the tokenizer in `dir`, or null when its pipeline is not one this mirrors exactly. */
  static forTokenizer(dir: string, tokenizer: Tokenizer): PieceCounter | null {
    let tj: Json;
    try {
      tj = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as Json;
    } catch {
      return null;
    }
    if (tj.normalizer !== null && tj.normalizer !== undefined) return null;
    const model = tj.model as Json | undefined;
    if (!model || model.type !== 'BPE' || (model.dropout !== null && model.dropout !== undefined)) return null;
    const pre = tj.pre_tokenizer as Json | undefined;
    if (!pre || pre.type !== 'Sequence' || !Array.isArray(pre.pretokenizers) || pre.pretokenizers.length !== 2) return null;
    const [split, byteLevel] = pre.pretokenizers as Json[];
    const regex = (split.pattern as Json | undefined)?.Regex;
    if (split.type !== 'Split' || typeof regex !== 'string' || split.behavior !== 'Isolated' || split.invert === true) return null;
    if (byteLevel.type !== 'ByteLevel' || byteLevel.use_regex !== false || byteLevel.add_prefix_space === true) return null;
    const added: string[] = [];
    for (const t of (tj.added_tokens as Json[] | undefined) ?? []) {
      if (t.lstrip || t.rstrip || t.single_word || (t.normalized && !t.special) || typeof t.content !== 'string') return null;
      added.push(t.content);
    }
    let counter: PieceCounter;
    try {
      counter = new PieceCounter(tokenizer, added, regex);
    } catch {
      return null; // a pattern JavaScript cannot compile as written
    }
    // The tokenizer library rewrites some regex syntax; a probe text that exercises the pattern's
    // branches must count the same both ways, else the fast path is not used.
    const probe = SELF_CHECK + added.join(' x ');
    return counter.count(probe) === counter.encodeLength(probe) ? counter : null;
  }

  /** Equals tokenizer.encode(text, { addSpecialTokens: false }).length. */
  count(text: string): number {
    if (!this.added) return this.countSection(text);
    let n = 0;
    let at = 0;
    this.added.lastIndex = 0;
    for (let m = this.added.exec(text); m; m = this.added.exec(text)) {
      if (m.index > at) n += this.countSection(text.slice(at, m.index));
      n++;
      at = m.index + m[0].length;
    }
    if (at < text.length) n += this.countSection(text.slice(at));
    return n;
  }

  private countSection(section: string): number {
    let n = 0;
    let at = 0;
    const re = this.pieces;
    re.lastIndex = 0;
    for (let m = re.exec(section); m; m = re.exec(section)) {
      if (m[0] === '') {
        re.lastIndex++;
        continue;
      }
      if (m.index > at) {
        const gap = this.piece(section.slice(at, m.index));
        if (gap < 0) return this.encodeLength(section);
        n += gap;
      }
      const c = this.piece(m[0]);
      if (c < 0) return this.encodeLength(section);
      n += c;
      at = m.index + m[0].length;
    }
    if (at < section.length) {
      const c = this.piece(section.slice(at));
      if (c < 0) return this.encodeLength(section);
      n += c;
    }
    return n;
  }

  /** Tokens of one piece, or -1 when the piece alone would split differently. */
  private piece(p: string): number {
    const hit = this.cache.get(p);
    if (hit !== undefined) return hit;
    const re = new RegExp(this.pieces.source, 'gu');
    const m = re.exec(p);
    const count = m && m.index === 0 && m[0] === p ? this.encodeLength(p) : -1;
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(p, count);
    return count;
  }

  encodeLength(text: string): number {
    return this.tokenizer.encode(text, { addSpecialTokens: false }).length;
  }
}
