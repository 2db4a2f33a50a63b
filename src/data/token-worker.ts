// Worker thread for token counting: sets up its tokenizer once (render-only, counting with the
// process's shared tables, or loaded in full: token-pool.ts decides), then answers batches of
// conversations with their TokenCounts. With workerData { build: dir } it instead reads the shared
// counting tables of a tokenizer directory from the disk cache or compiles them (writing the cache),
// posts them and exits.
// Spawned by token-pool.ts only.

import { parentPort, workerData } from 'node:worker_threads';
import { countExample } from './tokens.js';
import { cachedCounting, counterFor, sharedCounting, type CountBatch, type CountReply, type WorkerSetup } from './token-pool.js';

if ('build' in (workerData as object)) {
  const dir = (workerData as { build: string }).build;
  parentPort!.postMessage({ shared: cachedCounting(dir) ?? sharedCounting(dir, true) });
} else {
  const setup = workerData as WorkerSetup;
  const { limit } = setup;
  const { tokenizer, counter } = counterFor(setup);
  parentPort!.on('message', (batch: CountBatch) => {
    const reply: CountReply = { id: batch.id, counts: batch.items.map((it) => countExample(it.conv, it.row, tokenizer, limit, counter)) };
    parentPort!.postMessage(reply);
  });
}
