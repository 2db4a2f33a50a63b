// Worker thread of prompt-tokenizer.ts: loads each tokenizer directory once (the two most recent are
// kept) and answers one task at a time with runPromptTask's result.

import { parentPort } from 'node:worker_threads';
import { TunekitError, type ErrorCode } from '../errors.js';
import { HttpError } from './errors.js';
import { setTokenizerNotices, Tokenizer } from '../tokenizer/tokenizer.js';
import { runPromptTask } from './prompt-tasks.js';
import type { WorkerReply, WorkerTask } from './prompt-tokenizer.js';

const tokenizers = new Map<string, Tokenizer>();

// The main thread has already told the user what loading this tokenizer has to say.
setTokenizerNotices(() => undefined);

function tokenizerOf(dir: string, vocabSize: number): Tokenizer {
  const key = `${vocabSize}\u0000${dir}`;
  let t = tokenizers.get(key);
  if (t) {
    tokenizers.delete(key);
  } else {
    t = Tokenizer.loadSync(dir, { vocabSize });
    if (tokenizers.size >= 2) tokenizers.delete(tokenizers.keys().next().value as string);
  }
  tokenizers.set(key, t);
  return t;
}

parentPort!.on('message', (msg: WorkerTask) => {
  let reply: WorkerReply;
  try {
    const result = runPromptTask(tokenizerOf(msg.dir, msg.vocabSize), msg.task);
    reply = { id: msg.id, ok: true, result };
  } catch (err) {
    reply = err instanceof TunekitError || err instanceof HttpError
      ? { id: msg.id, ok: false, code: err instanceof HttpError ? err.status as ErrorCode : err.code, message: err.message }
      : { id: msg.id, ok: false, message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined };
  }
  parentPort!.postMessage(reply);
});
