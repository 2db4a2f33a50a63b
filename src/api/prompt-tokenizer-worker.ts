// Worker thread of prompt-tokenizer.ts: loads each tokenizer directory once (the two most recent are
// kept) and answers one task at a time with runPromptTask's result.

import { parentPort } from 'node:worker_threads';
import { TunekitError } from '../errors.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { runPromptTask } from './prompt-tasks.js';
import type { WorkerReply, WorkerTask } from './prompt-tokenizer.js';

const tokenizers = new Map<string, Tokenizer>();

function tokenizerOf(dir: string): Tokenizer {
  let t = tokenizers.get(dir);
  if (t) {
    tokenizers.delete(dir);
  } else {
    t = Tokenizer.loadSync(dir);
    if (tokenizers.size >= 2) tokenizers.delete(tokenizers.keys().next().value as string);
  }
  tokenizers.set(dir, t);
  return t;
}

parentPort!.on('message', (msg: WorkerTask) => {
  let reply: WorkerReply;
  try {
    const result = runPromptTask(tokenizerOf(msg.dir), msg.task);
    reply = { id: msg.id, ok: true, result };
  } catch (err) {
    reply = err instanceof TunekitError
      ? { id: msg.id, ok: false, code: err.code, message: err.message }
      : { id: msg.id, ok: false, message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined };
  }
  parentPort!.postMessage(reply);
});
