// Worker thread for token counting: loads the tokenizer once, then answers batches of conversations
// with their TokenCounts. Spawned by token-pool.ts only.

import { parentPort, workerData } from 'node:worker_threads';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { countExample, textCounter } from './tokens.js';
import type { CountBatch, CountReply } from './token-pool.js';

const { tokenizerDir, limit } = workerData as { tokenizerDir: string; limit: number };
const tokenizer = Tokenizer.loadSync(tokenizerDir);
const counter = textCounter(tokenizer, tokenizerDir);

parentPort!.on('message', (batch: CountBatch) => {
  const reply: CountReply = { id: batch.id, counts: batch.items.map((it) => countExample(it.conv, it.row, tokenizer, limit, counter)) };
  parentPort!.postMessage(reply);
});
