// The generation methods shared by publisher models and endpoints: :generateContent,
// :streamGenerateContent (alt=sse), :countTokens, :computeTokens on a ServedModel. The caller has
// already authenticated, authorised and found the model; this file parses the body, checks that the
// contents can fit the model's context before tokenizing them (large prompts are tokenized off the
// event loop), takes the model's lock for generation, and renders the response. Everything stops when
// the request's signal fires (client gone, server shutting down).

import { generateStream, type GenerationChunk, type GenerationResult } from '../../generate/generate.js';
import { CancelledError } from '../../errors.js';
import type { ServedModel } from '../catalog.js';
import { errorResponse, type ApiContext } from '../context.js';
import {
  assertMayFit, chunkPart, computeTokensJson, generateResponseJson, parseGenerateRequest, parsePrompt, responseHeader,
  streamChunkJson, type GenerationRequest, type OutputPart,
} from '../generation.js';
import type { PromptTask } from '../prompt-tasks.js';
import type { Message } from '../proto-json.js';

export type Verb = 'generateContent' | 'streamGenerateContent' | 'countTokens' | 'computeTokens';
const VERBS: readonly string[] = ['generateContent', 'streamGenerateContent', 'countTokens', 'computeTokens'];

/** `name:verb` split, or null when the verb is not a generation method. */
export function splitVerb(call: string): { name: string; verb: Verb } | null {
  const colon = call.lastIndexOf(':');
  const verb = call.slice(colon + 1);
  if (colon < 0 || !VERBS.includes(verb)) return null;
  return { name: call.slice(0, colon), verb: verb as Verb };
}

export async function handle(
  api: ApiContext, verb: Verb, served: ServedModel, request: Message, alt: string | undefined, signal: AbortSignal,
): Promise<Response> {
  const { model } = served;
  const context = model.config.maxPositionEmbeddings;
  const tokenize = <T extends PromptTask>(task: T) => api.tokenizer.run(model.tokenizer, served.registration.dir, task, signal);
  switch (verb) {
    case 'countTokens': {
      const prompt = parsePrompt(request, false);
      assertMayFit(model.tokenizer, prompt, context, 0);
      return Response.json({ totalTokens: await tokenize({ kind: 'count', dialogue: prompt.dialogue }) });
    }
    case 'computeTokens': {
      const prompt = parsePrompt(request);
      assertMayFit(model.tokenizer, prompt, context, 0);
      return Response.json(computeTokensJson(model.tokenizer, prompt, await tokenize({ kind: 'compute', dialogue: prompt.dialogue }), context));
    }
    case 'generateContent': {
      const req = parseGenerateRequest(request, model);
      assertMayFit(model.tokenizer, req, context, 1);
      const ids = Array.from(await tokenize({ kind: 'prompt', dialogue: req.dialogue, enableThinking: req.enableThinking }));
      const header = responseHeader(served.modelVersion);
      const parts = outputParts(served, ids, req, signal);
      for (;;) {
        const r = await parts.next();
        if (r.done) return Response.json(generateResponseJson(header, r.value, req.includeThoughts));
      }
    }
    case 'streamGenerateContent':
      return stream(api, served, request, alt, signal);
  }
}

/**
 * The parts the caller sees (thoughts it did not ask for left out), generated while holding the
 * model's lock. The lock is released when the generation ends, fails, is cancelled by `signal` (at the
 * next token), or when the caller returns the iterator early.
 */
async function* outputParts(
  served: ServedModel, ids: number[], req: GenerationRequest, signal: AbortSignal,
): AsyncGenerator<OutputPart, GenerationResult> {
  const release = await served.lock(signal);
  try {
    const it = generateStream(served.model, ids, { ...req.options, signal });
    for (;;) {
      const r: IteratorResult<GenerationChunk, GenerationResult> = await it.next();
      if (r.done) return r.value;
      const part = chunkPart(r.value, req.includeThoughts);
      if (part) yield part;
    }
  } finally {
    release();
  }
}

const encoder = new TextEncoder();
const event = (json: unknown): Uint8Array => encoder.encode(`data: ${JSON.stringify(json)}\r\n\r\n`);

/**
 * Server-sent events, one GenerateContentResponse per event. The first token is produced before the
 * response starts, so errors found then (prompt too long) are ordinary status responses; later errors
 * are a bare {"error": ...} event. One chunk is held back so the last event carries text as well as
 * finishReason and usageMetadata. A client that disconnects — while queued for the model, during the
 * prompt, or mid-stream — stops the generation at the next token and frees the model: the request's
 * signal, not the stream's cancel() (which is not called when the socket closed first), drives that.
 * Without alt=sse Vertex streams a JSON array; this server answers that form as one array at the end.
 */
async function stream(api: ApiContext, served: ServedModel, request: Message, alt: string | undefined, signal: AbortSignal): Promise<Response> {
  const { model } = served;
  const req = parseGenerateRequest(request, model);
  assertMayFit(model.tokenizer, req, model.config.maxPositionEmbeddings, 1);
  const ids = Array.from(await api.tokenizer.run(model.tokenizer, served.registration.dir, { kind: 'prompt', dialogue: req.dialogue, enableThinking: req.enableThinking }, signal));
  const header = responseHeader(served.modelVersion);
  const parts = outputParts(served, ids, req, signal);
  const stop = (): void => void parts.return(undefined as never).catch(() => undefined);
  signal.addEventListener('abort', stop, { once: true });
  let first: IteratorResult<OutputPart, GenerationResult>;
  try {
    first = await parts.next();
  } catch (err) {
    signal.removeEventListener('abort', stop);
    throw err;
  }

  if (alt !== 'sse') {
    try {
      const chunks: Record<string, unknown>[] = [];
      let r = first;
      for (; !r.done; r = await parts.next()) chunks.push(streamChunkJson(header, [r.value]));
      if (r.value === undefined) throw new CancelledError(); // returned early by stop()
      chunks.push(streamChunkJson(header, [], r.value));
      return Response.json(chunks);
    } finally {
      signal.removeEventListener('abort', stop);
      stop();
    }
  }

  let held: OutputPart | null = null;
  let pending: IteratorResult<OutputPart, GenerationResult> | null = first;
  let open = true;
  // The client may be gone by the time an event is ready: writing then is a no-op, not an error.
  const send = (controller: ReadableStreamDefaultController<Uint8Array>, json: unknown, last: boolean): void => {
    if (!open) return;
    try {
      controller.enqueue(event(json));
      if (last) controller.close();
    } catch {
      // closed by a disconnect
    }
    if (last) {
      open = false;
      signal.removeEventListener('abort', stop);
    }
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        for (;;) {
          const r = pending ?? await parts.next();
          pending = null;
          if (r.done && r.value === undefined) throw new CancelledError(); // returned early by stop()
          if (r.done) {
            send(controller, streamChunkJson(header, held ? [held] : [], r.value), true);
            return;
          }
          const previous = held;
          held = r.value;
          if (previous !== null) {
            send(controller, streamChunkJson(header, [previous]), false);
            return;
          }
        }
      } catch (err) {
        if (!signal.aborted || api.shutdown.aborted) send(controller, await errorResponse(api, err).json(), true);
        open = false;
      }
    },
    cancel() {
      open = false;
      stop();
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
}
