// Deterministic multilingual text for token-counting benchmarks and exactness tests: many scripts
// (Latin with diacritics, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Thai, Chinese, Japanese, Korean),
// emoji (ZWJ sequences, skin tones, flags), whitespace runs (spaces, tabs, CRLF, NBSP, ideographic
// space), code, numbers, control-token look-alikes, Unicode that NFC changes (combining accents,
// conjoining Hangul jamo, Angstrom and Kelvin signs, CJK compatibility ideographs) and the contractions
// Llama 3's case-insensitive group matches ('S, 'LL, 'Re, and 'ſ / 'K, which only Unicode folding would).
// Words are drawn Zipf-like from per-script vocabularies of generated syllable words, so pieces repeat
// as in real text while thousands stay distinct.

import { Random } from '../src/engine/random.js';

const SYLLABLES: Record<string, string[]> = {
  latin: 'ka,lo,re,mi,sta,tion,ment,der,ung,ção,é,è,ñ,ü,ö,ß,ø,å,ł,ş,ğ,ı,the,and,ing,er,es,qu,ie,ou'.split(','),
  cyrillic: 'при,вет,ка,ни,ро,ста,ль,ой,ый,ще,жи,бу,дет,ю,ём'.split(','),
  greek: 'κα,λη,μέ,ρα,σου,το,πο,λύ,ευ,χα,ρι,στώ'.split(','),
  arabic: 'ال,سل,ام,عل,يك,كت,اب,مد,رس,ة,ون,ين'.split(','),
  hebrew: 'של,ום,תו,דה,בי,ת,ספ,ר,ים,ות'.split(','),
  devanagari: 'न,म,स्,ते,हि,न्दी,भा,षा,क्ष,त्र,ज्ञ,ों,ीं'.split(','),
  thai: 'สวั,สดี,ครับ,ภา,ษา,ไทย,กา,ร,เรี,ยน'.split(','),
  chinese: '的,一,是,在,不,了,有,和,人,这,中,大,为,上,个,国,我,以,要,他,时,来,用,们,生,到,作,地,于,出,就,分,对,成,会,可,主,发,年,动'.split(','),
  japanese: 'こ,ん,に,ち,は,デ,ー,タ,カ,タ,ナ,ひ,ら,が,な,東,京,学,習,す,る,ま,し,た'.split(','),
  korean: '한,국,어,텍,스,트,안,녕,하,세,요,데,이,터,학,습'.split(','),
};
const SCRIPTS = Object.keys(SYLLABLES);
const SPACED = new Set(['latin', 'cyrillic', 'greek', 'arabic', 'hebrew', 'devanagari', 'korean']);

const EMOJI = ['🙂', '🙂🙂', '👍🏽', '👩‍💻', '👨‍👩‍👧‍👦', '🇯🇵', '🇫🇷', '❤️', '✅', '🔥🔥🔥', '🤖'];
const WHITESPACE = [' ', '  ', '   ', '\t', '\t\t', '\n', '\n\n', '\r\n', '\u00a0', '\u3000', ' \n ', '    \n', '\u2003'];
const LOOKALIKES = ['<start_of_turn', '<end_of_turn >', '<|im_end', '|im_start|>', '<|eot_id', '<unused', '<unused12 >', '</s', '<think', '[multimodal', '<0x41>', '▁', '▁▁', '> </', '>▁</'];
const UNNORMALIZED = ['e\u0301', 'Cafe\u0301', 'n\u0303', 'A\u030a', '\u212b', '\u212a', '\u1112\u1161\u11ab', '\u1100\u1161', '\uf900', '\uf9d2', 'o\u0308\u0304', 'ﬁ', '①', 'Ⅻ', '\u0041\u0301\u0323'];
const CONTRACTIONS = ["'S", "'s", "'LL", "'ll", "'Re", "'RE", "'ve", "'VE", "'m", "'M", "'D", "'t", "'T", "'ſ", "'\u212a", "DON'T", "it's", "WE'LL", "they'Re"];
const CODE = [
  'function f(x) {\n  return x ** 2;\n}\n', 'for (let i = 0; i < n; i++) sum += a[i];', 'if (a <= b && c != d) { throw new Error("x"); }',
  'def main():\n    print(f"{x:>10}")\n', 'SELECT id, name FROM users WHERE age > 42;', '<div class="x">\n  <b>bold</b> </div>',
  '{"key": [1, 2.5, -3e10, null]}', 'x+y=z', 'a_b.c->d::e', '#include <stdio.h>', '$ npm run build && ./a.out --flag=1',
];

/** A word of `script` from its generated vocabulary (Zipf-like: small indices far more often). */
function word(rng: Random, script: string, vocab: Map<string, string[]>): string {
  let list = vocab.get(script);
  if (!list) {
    const r = new Random(script.length * 7919 + script.charCodeAt(0));
    const syl = SYLLABLES[script]!;
    list = [];
    for (let i = 0; i < 4000; i++) {
      let w = '';
      const n = 1 + Math.floor(r.next() * 4);
      for (let k = 0; k < n; k++) w += syl[Math.floor(r.next() * syl.length)];
      list.push(w);
    }
    vocab.set(script, list);
  }
  const u = rng.next();
  return list[Math.floor(list.length * u * u * u)]!;
}

/** Deterministic multilingual text of about `chars` UTF-16 units, from `rng`. */
export function multilingualText(rng: Random, chars: number, vocab = new Map<string, string[]>()): string {
  let s = '';
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rng.next() * a.length)]!;
  while (s.length < chars) {
    const r = rng.next();
    if (r < 0.62) {
      const script = pick(SCRIPTS);
      const n = 3 + Math.floor(rng.next() * 12);
      for (let i = 0; i < n; i++) {
        let w = word(rng, script, vocab);
        if (script === 'latin' && rng.next() < 0.15) w = w[0]!.toUpperCase() + w.slice(1);
        if (script === 'latin' && rng.next() < 0.03) w = w.toUpperCase();
        s += w + (SPACED.has(script) || rng.next() < 0.2 ? ' ' : '');
      }
      s = s.trimEnd() + pick(['. ', ', ', '? ', '! ', '。', '، ', '\n', '; ', ': ']);
    } else if (r < 0.7) s += pick(EMOJI) + ' ';
    else if (r < 0.76) s += pick(WHITESPACE);
    else if (r < 0.82) s += pick(CODE);
    else if (r < 0.87) s += `${Math.floor(rng.next() * 10 ** (1 + Math.floor(rng.next() * 12)))}${rng.next() < 0.3 ? `.${Math.floor(rng.next() * 1000)}` : ''} `;
    else if (r < 0.9) s += pick(LOOKALIKES) + ' ';
    else if (r < 0.95) s += pick(UNNORMALIZED) + (rng.next() < 0.5 ? ' ' : '');
    else s += pick(['he', 'SHE', 'it', 'WE', 'they', 'John', '']) + pick(CONTRACTIONS) + ' ';
  }
  return s;
}

/** Short texts aimed at the edges of the pipelines (whitespace runs, lone marks, token boundaries). */
export const ADVERSARIAL: string[] = [
  '', ' ', '  ', '\n', '\r\n\r\n', '\t \t', '\u00a0\u00a0', ' \u3000 ', '   x', 'x   ', '\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n',
  ' '.repeat(100), '\t'.repeat(40), '▁'.repeat(33), '▁ ▁', ' ▁x', 'x▁', '>▁</', '> </', '> </ >', 'a> </b',
  "'s", "'S", "'ſ", "'\u212a", "'ll'LL'lL", "''s", "x'", "'", "'re'", "I'M", 'DON\'T', "'\u0301s", "'s\u0301",
  '\u0301', 'e\u0301\u0301\u0301', '\u1100', '\u1100\u1161\u11a8', '\u212b\u212a', '\uf900\uf901', 'Å', 'ﬁ', '\u0300a',
  '🙂', '👨‍👩‍👧‍👦', '🇯🇵🇫🇷', '\u200d', '\ufeff', '\ud83d', 'x\udc00y', '\u0000', '\u007f', '\u0085', '\u2028\u2029',
  '123456789012345678901234567890', '1,234.56', '٣٤٥', '१२३', '𝟙𝟚𝟛', '½', 'Ⅻ',
  '<start_of_turn>', '<end_of_turn>', '<start_of_turn>user\nhi<end_of_turn>\n', '<|im_start|>', '<|im_end|>', '<|eot_id|>',
  '<|begin_of_text|>', '<unused0><unused1>', '<unused62410>', '<bos><eos>', '<<start_of_turn>>', '<|im_end|><|im_end|>',
  '<start_of_turn', 'start_of_turn>', '<|eot_id', '<think></think>', '<mask>', '[multimodal]', '<0x41>', '<0x41',
  'ǅ', 'ΣΑΣ', 'İstanbul', 'ß', 'ẞ', 'ﬀ', 'Ꭰ', 'ꭰ', 'x'.repeat(300), '東京'.repeat(200), 'ab'.repeat(500), '=-'.repeat(300),
];
