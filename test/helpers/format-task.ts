// A small format task for learning tests: each user message is a few filler words around one keyword;
// the model must answer with a JSON object naming the keyword's class, and stop. Held-out examples
// use unseen word orders, so passing needs the rule, not memory.

import * as fs from 'node:fs';
import { Random } from '../../src/engine/random.js';

export interface FormatExample { input: string; output: string }

const CLASSES: Record<string, string> = { red: 'warm', blue: 'cold', green: 'cold', orange: 'warm' };
const FILLER = ['the', 'sky', 'is', 'a', 'nice', 'day', 'we', 'saw', 'it', 'very', 'today', 'and', 'then', 'my', 'house'];

export function formatTask(n: number, seed: number): FormatExample[] {
  const rng = new Random(seed);
  const pick = <T>(a: T[]): T => a[Math.floor(rng.next() * a.length)]!;
  return Array.from({ length: n }, () => {
    const words = Array.from({ length: 4 + Math.floor(rng.next() * 4) }, () => pick(FILLER));
    const key = pick(Object.keys(CLASSES));
    words.splice(Math.floor(rng.next() * (words.length + 1)), 0, key);
    return { input: words.join(' '), output: `{"tone": "${CLASSES[key]}"}` };
  });
}

/** Writes examples as Vertex `contents` JSONL. */
export function writeVertexJsonl(file: string, examples: FormatExample[]): void {
  fs.writeFileSync(file, examples.map((e) => JSON.stringify({
    contents: [{ role: 'user', parts: [{ text: e.input }] }, { role: 'model', parts: [{ text: e.output }] }],
  })).join('\n') + '\n');
}
