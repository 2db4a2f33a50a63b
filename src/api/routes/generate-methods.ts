// The generation methods shared by publisher models and endpoints: :generateContent,
// :streamGenerateContent (alt=sse), :countTokens, :computeTokens on a ServedModel. The caller has
// already authenticated, authorised and found the model; this file parses the body, takes the model's
// lock for generation, and renders the response.

import { generate, generateStream, type GenerationChunk, type GenerationResult } from '../../generate/generate.js';
import type { ServedModel } from '../catalog.js';
import { errorResponse, type ApiContext } from '../context.js';
import {
  chunkPart, computeTokensJson, countPromptTokens, generateResponseJson, parseGenerateRequest, parsePrompt, promptIds,
  responseHeader, streamChunkJson, type OutputPart,
} from '../generation.js';
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

export async function handle(api: ApiContext, verb: Verb, served: ServedModel, request: Message, alt: string | undefined): Promise<Response> {
  const { model } = served;
  switch (verb) {
    case 'countTokens':
      return Response.json({ totalTokens: countPromptTokens(model.tokenizer, parsePrompt(request, false)) });
    case 'computeTokens':
      return Response.json(computeTokensJson(model.tokenizer, parsePrompt(request)));
    case 'generateContent': {
      const req = parseGenerateRequest(request, model);
      const ids = promptIds(model.tokenizer, req);
      const header = responseHeader(served.modelVersion);
      const release = await served.lock();
      try {
        return Response.json(generateResponseJson(header, await generate(model, ids, req.options), req.includeThoughts));
      } finally {
        release();
      }
    }
    case 'streamGenerateContent':
      return stream(api, served, request, alt);
  }
}

const encoder = new TextEncoder();
const event = (json: unknown): Uint8Array => encoder.encode(`data: ${JSON.stringify(json)}\r\n\r\n`);

/**
 * Server-sent events, one GenerateContentResponse per event. The first token is produced before the
 * response starts, so errors found then (prompt too long) are ordinary status responses; later errors
 * are a bare {"error": ...} event. One chunk is held back so the last event carries text as well as
 * finishReason and usageMetadata. A client that disconnects stops the generation.
 * Without alt=sse Vertex streams a JSON array; this server answers that form as one array at the end.
 */
async function stream(api: ApiContext, served: ServedModel, request: Message, alt: string | undefined): Promise<Response> {
  const { model } = served;
  const req = parseGenerateRequest(request, model);
  const ids = promptIds(model.tokenizer, req);
  const header = responseHeader(served.modelVersion);
  const release = await served.lock();
  const it = generateStream(model, ids, req.options);
  // The next chunk the caller sees (thoughts it did not ask for are skipped).
  const next = async (): Promise<IteratorResult<OutputPart, GenerationResult>> => {
    for (;;) {
      const r: IteratorResult<GenerationChunk, GenerationResult> = await it.next();
      if (r.done) return r;
      const part = chunkPart(r.value, req.includeThoughts);
      if (part) return { done: false, value: part };
    }
  };
  let first: IteratorResult<OutputPart, GenerationResult>;
  try {
    first = await next();
  } catch (err) {
    release();
    throw err;
  }

  if (alt !== 'sse') {
    try {
      const chunks: Record<string, unknown>[] = [];
      let r = first;
      for (; !r.done; r = await next()) chunks.push(streamChunkJson(header, [r.value]));
      chunks.push(streamChunkJson(header, [], r.value));
      return Response.json(chunks);
    } finally {
      release();
    }
  }

  let held: OutputPart | null = null;
  let pending: IteratorResult<OutputPart, GenerationResult> | null = first;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        for (;;) {
          const r = pending ?? await next();
          pending = null;
          if (r.done) {
            controller.enqueue(event(streamChunkJson(header, held ? [held] : [], r.value)));
            controller.close();
            release();
            return;
          }
          const previous = held;
          held = r.value;
          if (previous !== null) {
            controller.enqueue(event(streamChunkJson(header, [previous])));
            return;
          }
        }
      } catch (err) {
        const res = errorResponse(api, err);
        controller.enqueue(event(await res.json()));
        controller.close();
        release();
      }
    },
    async cancel() {
      try {
        await it.return(undefined as never);
      } catch {
        // The generation was already failing; the client is gone either way.
      } finally {
        release();
      }
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
}
