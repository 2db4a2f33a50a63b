// The tiny tokenizers against llama.cpp (node-llama-cpp's prebuilt CPU backend): each family's vocab
// and merges are written to a vocab-only GGUF under the pre-tokenizer name the GGUF exporter maps the
// family to (llama -> llama-bpe, qwen3 -> qwen2, gemma3 -> llama-bpe), and llama.cpp must produce the
// same ids as Tokenizer.encode (special tokens parsed, no BOS) on varied text. The minimal GGUF writer
// here is deliberately independent of src/export so this checks the tokenizer files alone.
// Skipped, with the reason, when node-llama-cpp cannot start on this machine.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateTokenizer, type Family } from '../src/tokenizer/tiny-tokenizers.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { TRAINING_CORPUS } from '../src/tokenizer/corpus.js';

type Kv = [string, 'u32', number] | [string, 'f32', number] | [string, 'bool', boolean] | [string, 'str', string]
  | [string, 'strs', string[]] | [string, 'i32s', number[]];

function vocabOnlyGguf(kvs: Kv[]): Buffer {
  const parts: Buffer[] = [];
  const num = (write: (b: Buffer) => void, n: number) => { const b = Buffer.alloc(n); write(b); parts.push(b); };
  const u32 = (v: number) => num((b) => b.writeUInt32LE(v), 4);
  const u64 = (v: number) => num((b) => b.writeBigUInt64LE(BigInt(v)), 8);
  const str = (s: string) => { const b = Buffer.from(s, 'utf8'); u64(b.length); parts.push(b); };
  parts.push(Buffer.from('GGUF'));
  u32(3); // version
  u64(0); // tensors
  u64(kvs.length);
  for (const kv of kvs) {
    str(kv[0]);
    switch (kv[1]) {
      case 'u32': u32(4); u32(kv[2]); break;
      case 'f32': u32(6); num((b) => b.writeFloatLE(kv[2]), 4); break;
      case 'bool': u32(7); parts.push(Buffer.from([kv[2] ? 1 : 0])); break;
      case 'str': u32(8); str(kv[2]); break;
      case 'strs': u32(9); u32(8); u64(kv[2].length); for (const s of kv[2]) str(s); break;
      case 'i32s': u32(9); u32(5); u64(kv[2].length); for (const v of kv[2]) num((b) => b.writeInt32LE(v), 4); break;
    }
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, Buffer.alloc((32 - (body.length % 32)) % 32)]);
}

const PRE: Record<Family, string> = { llama: 'llama-bpe', qwen3: 'qwen2', gemma3: 'llama-bpe' };

function ggufFor(family: Family, merges: number, dir: string): string {
  const g = generateTokenizer(family, { merges });
  const tj = g.files['tokenizer.json'] as { model: { vocab: Record<string, number>; merges: (string | string[])[] }; added_tokens: { id: number; content: string; special: boolean }[] };
  const tokens = new Array<string>(g.size);
  const types = new Array<number>(g.size).fill(1); // 1 normal, 3 control, 4 user-defined
  for (const [t, id] of Object.entries(tj.model.vocab)) tokens[id] = t;
  for (const a of tj.added_tokens) {
    tokens[a.id] = a.content;
    types[a.id] = a.special ? 3 : 4;
  }
  const file = path.join(dir, `${family}-${merges}.gguf`);
  fs.writeFileSync(file, vocabOnlyGguf([
    ['general.architecture', 'str', 'llama'],
    ['llama.context_length', 'u32', 256],
    ['llama.embedding_length', 'u32', 64],
    ['llama.block_count', 'u32', 1],
    ['llama.feed_forward_length', 'u32', 128],
    ['llama.attention.head_count', 'u32', 4],
    ['llama.attention.layer_norm_rms_epsilon', 'f32', 1e-5],
    ['tokenizer.ggml.model', 'str', 'gpt2'],
    ['tokenizer.ggml.pre', 'str', PRE[family]],
    ['tokenizer.ggml.tokens', 'strs', tokens],
    ['tokenizer.ggml.token_type', 'i32s', types],
    ['tokenizer.ggml.merges', 'strs', tj.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m))],
    ['tokenizer.ggml.eos_token_id', 'u32', g.eosTokenIds[0]!],
    ['tokenizer.ggml.add_bos_token', 'bool', false],
  ]));
  return file;
}

const TEXTS = [
  TRAINING_CORPUS,
  "Hello, world! café 🙂 你好 12345 it's  \n\n  x",
  "I'M SURE THEY'LL SAY IT'S FINE. We'Ve 'D 'lL",
  '   leading spaces\ttabs\r\nwindows lines\n\n\n   trailing   ',
  'numbers 1 12 123 1234 12345 3.14159 -42 1e10 0x1F ٣٤٥ ①② ½ ²',
  'emoji 👩‍👩‍👧‍👦 🇫🇷 ☀️ 🌧️ αβγ Ωmega привет мир こんにちは 한국어 עברית العربية',
  'code: for (let i=0;i<n;i++){x+=y[i]*2;} // done\n\tdef f(x):\n\t\treturn x**2',
  '<|im_start|>user\nHi<|im_end|>\n<think>\n\n</think>\n\n<start_of_turn>model\n<|eot_id|><bos>',
  'zero\u200bwidth non\u00a0breaking e\u0301 é ﬁ \u2028 sep \u0085 nel \u3000 ideographic',
];

// node-llama-cpp loads lazily so that a machine without its prebuilt binaries skips, not fails.
async function loadLlama(): Promise<{ llama: any } | { skip: string }> {
  try {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    const llama = await getLlama({
      gpu: false, build: 'never', skipDownload: true, usePrebuiltBinaries: true, progressLogs: false,
      logLevel: LlamaLogLevel.disabled, maxThreads: 1,
    });
    return { llama };
  } catch (e) {
    return { skip: `node-llama-cpp is unavailable: ${(e as Error).message.split('\n')[0]}` };
  }
}

const loaded = await loadLlama();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-tok-gguf-'));

for (const family of ['llama', 'qwen3', 'gemma3'] as const) {
  for (const merges of [400, 2000]) {
    test(`${family} (${merges} merges): llama.cpp tokenizes exactly like Tokenizer.encode`, { skip: 'skip' in loaded ? loaded.skip : false }, async () => {
      const llama = (loaded as { llama: any }).llama;
      const g = generateTokenizer(family, { merges });
      const tok = Tokenizer.fromFiles({ tokenizer: g.files['tokenizer.json'] as any, config: g.files['tokenizer_config.json'] as any });
      const model = await llama.loadModel({ modelPath: ggufFor(family, merges, dir), vocabOnly: true });
      try {
        for (const text of TEXTS) {
          const ours = tok.encode(text, { addSpecialTokens: false });
          const theirs = Array.from(model.tokenize(text, true) as number[]);
          assert.deepEqual(theirs, ours, JSON.stringify(text.slice(0, 60)));
        }
      } finally {
        await model.dispose();
      }
    });
  }
}
