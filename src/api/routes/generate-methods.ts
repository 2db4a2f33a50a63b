// The generation methods shared by publisher models and endpoints: :generateContent,
// :streamGenerateContent (alt=sse), :countTokens, :computeTokens on a ServedModel. The caller has
// already authenticated, authorised and found the model; this file parses the body, checks that the
// contents can fit the model's context before tokenizing them (large prompts are tokenized off the
// event loop), queues the generation on the model's serving engine (batched with the model's other
// requests), and renders the response. Everything stops when the request's signal fires (client gone,
// server shutting down): a queued request leaves the queue, a running one frees its slot at the next token.

import type { GenerationChunk, GenerationResult } from '../../generate/generate.js';
import { CancelledError } from '../../errors.js';
import type { ServedModel } from '../catalog.js';
import { errorResponse, type ApiContext } from '../context.js';
import {
  assertMayFit, refuseUnsupported, requestTemplateTools, candidateOptions, candidatesResponseJson, chunkPart, computeTokensJson, generateResponseJson, logprobsJson, parseGenerateRequest, parsePrompt, responseHeader,
  streamCandidateJson, candidatesUsageJson, userTextOf, promptBlockedJson, judgedCandidate, type GenerationRequest, type OutputPart,
} from '../generation.js';
import type { PromptTask } from '../prompt-tasks.js';
import { parseMessage, type ApiVersion, type Message } from '../proto-json.js';
import { invalidArgument } from '../errors.js';
import { safetyCheck, type RequestScope } from '../../safety/resolve.js';
import type { SafetyCheck } from '../../safety/evaluate.js';

export type Verb = 'generateContent' | 'streamGenerateContent' | 'countTokens' | 'computeTokens';
const VERBS: readonly string[] = ['generateContent', 'streamGenerateContent', 'countTokens', 'computeTokens'];

/** `name:verb` split, or null when the verb is not a generation method. */
export function splitVerb(call: string): { name: string; verb: Verb } | null {
  const colon = call.lastIndexOf(':');
  const verb = call.slice(colon + 1);
  if (colon < 0 || !VERBS.includes(verb)) return null;
  return { name: call.slice(0, colon), verb: verb as Verb };
}

const REQUEST_TYPES: Record<Verb, string> = {
  generateContent: 'GenerateContentRequest', streamGenerateContent: 'GenerateContentRequest',
  countTokens: 'CountTokensRequest', computeTokens: 'ComputeTokensRequest',
};

/** The prompt task of a generation request: template messages and tools when it has them. */
export function promptTask(req: GenerationRequest, context: number): Extract<PromptTask, { kind: 'prompt' }> {
  const tools = requestTemplateTools(req);
  return { kind: 'prompt', dialogue: req.dialogue, enableThinking: req.enableThinking, context, ...(req.messages ? { messages: req.messages } : {}), ...(tools ? { tools } : {}) };
}

export async function handle(
  api: ApiContext, verb: Verb, served: ServedModel, body: Message, alt: string | undefined, signal: AbortSignal, version: ApiVersion, scope?: RequestScope,
): Promise<Response> {
  const { model } = served;
  // Strict proto3 JSON of the API version: unknown fields, top-level or nested, are 400 naming their path.
  const request = parseMessage(body.value, REQUEST_TYPES[verb], version);
  if (verb === 'countTokens' || verb === 'computeTokens') refuseUnsupported(request);
  const context = model.config.maxPositionEmbeddings;
  const tokenize = <T extends PromptTask>(task: T) => api.tokenizer.run(model.tokenizer, served.registration.dir, task, signal);
  switch (verb) {
    case 'countTokens': {
      const prompt = parsePrompt(request, false);
      assertMayFit(model.tokenizer, prompt, context, 0);
      if (prompt.dialogue.turns[prompt.dialogue.turns.length - 1]?.role === 'user') {
        // One definition: what generateContent would bill as promptTokenCount for the same request —
        // the same prompt task, with what generationConfig changes in the rendering (thinking off).
        const asGeneration = request.has('generationConfig') || request.has('tools') || prompt.messages ? parseGenerateRequest(request, model) : undefined;
        const ids = await tokenize(asGeneration ? promptTask(asGeneration, context) : { kind: 'prompt' as const, dialogue: prompt.dialogue, context });
        return Response.json({ totalTokens: ids.length });
      }
      return Response.json({ totalTokens: await tokenize({ kind: 'count', dialogue: prompt.dialogue, context }) });
    }
    case 'computeTokens': {
      const prompt = parsePrompt(request);
      assertMayFit(model.tokenizer, prompt, context, 0);
      return Response.json(computeTokensJson(model.tokenizer, prompt, await tokenize({ kind: 'compute', dialogue: prompt.dialogue, context }), context));
    }
    case 'generateContent': {
      const req = parseGenerateRequest(request, model);
      const safety = await safetyCheck(api, scope, req.safetySettings);
      assertMayFit(model.tokenizer, req, context, 1);
      const ids = Array.from(await tokenize(promptTask(req, context)));
      const header = responseHeader(served.modelVersion);
      const userText = userTextOf(req);
      if (safety.active) {
        const verdict = await safety.judge(userText, undefined, signal);
        if (verdict.blocked) return Response.json(promptBlockedJson(header, ids.length, verdict));
      }
      // Each candidate's response judged (ratings; content withheld when blocked).
      const judged = async (json: Record<string, unknown>, results: GenerationResult[]): Promise<Response> => {
        if (!safety.active) return Response.json(json);
        const candidates = json.candidates as Record<string, unknown>[];
        const verdicts = await Promise.all(results.map((r) => safety.judge(userText, r.text, signal)));
        return Response.json({ ...json, candidates: candidates.map((c, i) => judgedCandidate(c, verdicts[i]!)) });
      };
      if ((req.candidateCount ?? 1) > 1) {
        // One prefill; the other candidates fork from it in the engine (KV rows copied).
        const streams = served.engine.submitCandidates(ids, candidateOptions(req).map((o) => ({ ...o, adapterDir: served.adapterDir, signal })));
        let results: GenerationResult[];
        try {
          results = await Promise.all(streams.map(async (it) => {
            for (;;) {
              const r = await it.next();
              if (r.done) return r.value;
            }
          }));
        } catch (err) {
          // One failed: the others leave the engine too.
          await Promise.all(streams.map((it) => it.return(undefined as never).catch(() => undefined)));
          throw err;
        }
        return judged(candidatesResponseJson(header, results, req.includeThoughts, results.map((r) => logprobsJson(model.tokenizer, r, req.responseLogprobs === true)), req), results);
      }
      const parts = outputParts(served, ids, req, signal);
      for (;;) {
        const r = await parts.next();
        if (r.done) return judged(generateResponseJson(header, r.value, req.includeThoughts, logprobsJson(model.tokenizer, r.value, req.responseLogprobs === true), req), [r.value]);
      }
    }
    case 'streamGenerateContent':
      return stream(api, served, request, alt, signal, scope);
  }
}

/**
 * The parts the caller sees (thoughts it did not ask for left out), generated by the model's engine.
 * The request leaves the engine when the generation ends, fails, is cancelled by `signal` (out of the
 * queue at once, out of the batch at the next token), or when the caller returns the iterator early.
 */
async function* outputParts(
  served: ServedModel, ids: number[], req: GenerationRequest, signal: AbortSignal,
): AsyncGenerator<OutputPart, GenerationResult> {
  const it = served.generate(ids, req.options, signal);
  try {
    for (;;) {
      const r: IteratorResult<GenerationChunk, GenerationResult> = await it.next();
      if (r.done) return r.value;
      const part = chunkPart(r.value, req.includeThoughts);
      if (part) yield part;
    }
  } finally {
    await it.return(undefined as never);
  }
}

const encoder = new TextEncoder();
const event = (json: unknown): Uint8Array => encoder.encode(`data: ${JSON.stringify(json)}\r\n\r\n`);

/** A chunk or the result of one of several candidate streams. */
export type Merged<T, R> = { index: number; done: false; value: T } | { index: number; done: true; value: R };

/**
 * The chunks of several candidate streams as they come, each tagged with its candidate's index, and
 * each candidate's result when it ends. One failing fails the whole; when the merge ends early (its
 * caller returned, or one failed) every stream still open is returned, so the engine drops it.
 */
export async function* mergeStreams<T, R>(streams: AsyncGenerator<T, R>[]): AsyncGenerator<Merged<T, R>, void> {
  type Settled = { index: number; r?: IteratorResult<T, R>; err?: unknown };
  // Never rejects: a rejection not raced any more would be unhandled.
  const next = (index: number): Promise<Settled> => streams[index]!.next().then((r) => ({ index, r }), (err: unknown) => ({ index, err }));
  const pending = new Map<number, Promise<Settled>>(streams.map((_, i) => [i, next(i)]));
  try {
    while (pending.size > 0) {
      const s = await Promise.race(pending.values());
      if (s.err !== undefined || !s.r) throw s.err;
      if (s.r.done) {
        pending.delete(s.index);
        yield { index: s.index, done: true, value: s.r.value };
      } else {
        pending.set(s.index, next(s.index));
        yield { index: s.index, done: false, value: s.r.value };
      }
    }
  } finally {
    for (const i of pending.keys()) void streams[i]!.return(undefined as never).catch(() => undefined);
  }
}

/**
 * The GenerateContentResponse chunks of a streamed generation, one candidate per chunk (several
 * candidates interleave, each with its index). Each chunk carries only its candidate's new text and,
 * with responseLogprobs, the logprobsResult of the tokens that wrote it; one part per candidate is
 * held back so that its last chunk carries text as well as finishReason and avgLogprobs; the last
 * chunk of all carries usageMetadata. With functions declared, a candidate's answer may be a call,
 * known only at its end: it is held and sent as one chunk with the parsed functionCall parts.
 * With a safety check, the prompt is judged first (blocked: one chunk with promptFeedback), then each
 * candidate's text so far before each of its chunks goes out: chunks carry safetyRatings, and the first
 * one that is blocked is replaced by a last chunk for that candidate (finishReason SAFETY or BLOCKLIST,
 * no content) and its generation stops.
 */
async function* streamEvents(served: ServedModel, ids: number[], req: GenerationRequest, safety: SafetyCheck, signal: AbortSignal): AsyncGenerator<Record<string, unknown>, void> {
  const { tokenizer } = served.model;
  const header = responseHeader(served.modelVersion);
  const userText = userTextOf(req);
  if (safety.active) {
    const verdict = await safety.judge(userText, undefined, signal);
    if (verdict.blocked) {
      yield promptBlockedJson(header, ids.length, verdict);
      return;
    }
  }
  const streams = served.engine.submitCandidates(ids, candidateOptions(req).map((o) => ({ ...o, adapterDir: served.adapterDir, signal })));
  const n = streams.length;
  const held: (OutputPart | null)[] = new Array(n).fill(null);
  const sentLogprobs: number[] = new Array(n).fill(0);
  const text: string[] = new Array(n).fill('');
  const stopped: boolean[] = new Array(n).fill(false);
  const results: GenerationResult[] = [];
  const withTools = req.tools !== undefined && req.tools.mode !== 'NONE';
  const lp = req.responseLogprobs === true;
  let finished = 0;
  const last = (candidate: Record<string, unknown>) => (finished === n
    ? { candidates: [candidate], usageMetadata: candidatesUsageJson(results, ids.length), ...header }
    : { candidates: [candidate], ...header });
  /** The candidate judged on `answer` (its text so far): ratings added, or its blocked last chunk. */
  const judge = async (i: number, candidate: Record<string, unknown>, answer: string): Promise<Record<string, unknown>> => {
    if (!safety.active) return candidate;
    const verdict = await safety.judge(userText, answer, signal);
    if (!verdict.blocked) return judgedCandidate(candidate, verdict);
    stopped[i] = true;
    void streams[i]!.return(undefined as never).catch(() => undefined);
    const { content: _, logprobsResult: __, ...rest } = candidate;
    return judgedCandidate({ ...rest, finishReason: 'STOP' }, verdict);
  };
  for await (const m of mergeStreams(streams)) {
    const i = m.index;
    if (stopped[i]) continue; // counted finished when it was stopped
    if (!m.done) {
      const part = chunkPart(m.value, req.includeThoughts);
      if (!part || withTools) continue;
      const previous = held[i];
      held[i] = part;
      if (previous) {
        sentLogprobs[i] += previous.logprobs?.length ?? 0;
        if (!previous.thought) text[i] += previous.text;
        const candidate = await judge(i, streamCandidateJson(tokenizer, i, [previous], lp), text[i]!);
        if (stopped[i]) finished++;
        yield stopped[i] ? last(candidate) : { candidates: [candidate], ...header };
      }
      continue;
    }
    const r = m.value;
    if (r === undefined) throw new CancelledError(); // returned early
    results[i] = r;
    finished++;
    let candidate: Record<string, unknown>;
    if (withTools) {
      const whole = generateResponseJson(header, r, req.includeThoughts, logprobsJson(tokenizer, r, lp), req) as { candidates: Record<string, unknown>[] };
      candidate = i > 0 ? { index: i, ...whole.candidates[0]! } : whole.candidates[0]!;
    } else {
      const held_ = held[i];
      const seen = sentLogprobs[i]! + (held_?.logprobs?.length ?? 0);
      candidate = streamCandidateJson(tokenizer, i, held_ ? [held_] : [], lp, r, (r.logprobs ?? []).slice(seen));
    }
    yield last(await judge(i, candidate, r.text));
  }
}

/**
 * Server-sent events, one GenerateContentResponse per event (streamEvents). The first chunk is produced
 * before the response starts, so errors found then (prompt too long) are ordinary status responses;
 * later errors are a bare {"error": ...} event. A client that disconnects — while queued for the model,
 * during the prompt, or mid-stream — stops the generation at the next token and frees its slots: the
 * request's signal, not the stream's cancel() (which is not called when the socket closed first),
 * drives that. Without alt=sse Vertex streams a JSON array; this server answers that form as one array
 * at the end.
 */
async function stream(api: ApiContext, served: ServedModel, request: Message, alt: string | undefined, signal: AbortSignal, scope: RequestScope | undefined): Promise<Response> {
  const { model } = served;
  const req = parseGenerateRequest(request, model);
  const safety = await safetyCheck(api, scope, req.safetySettings);
  assertMayFit(model.tokenizer, req, model.config.maxPositionEmbeddings, 1);
  const ids = Array.from(await api.tokenizer.run(model.tokenizer, served.registration.dir, promptTask(req, model.config.maxPositionEmbeddings), signal));
  const events = streamEvents(served, ids, req, safety, signal);
  const stop = (): void => void events.return().catch(() => undefined);
  signal.addEventListener('abort', stop, { once: true });
  let first: IteratorResult<Record<string, unknown>, void>;
  try {
    first = await events.next();
  } catch (err) {
    signal.removeEventListener('abort', stop);
    throw err;
  }

  if (alt !== 'sse') {
    try {
      const chunks: Record<string, unknown>[] = [];
      for (let r = first; !r.done; r = await events.next()) chunks.push(r.value);
      if (signal.aborted) throw new CancelledError(); // returned early by stop()
      return Response.json(chunks);
    } finally {
      signal.removeEventListener('abort', stop);
      stop();
    }
  }

  let pending: IteratorResult<Record<string, unknown>, void> | null = first;
  let open = true;
  // The client may be gone by the time an event is ready: writing then is a no-op, not an error.
  const send = (controller: ReadableStreamDefaultController<Uint8Array>, json: unknown | null, last: boolean): void => {
    if (!open) return;
    try {
      if (json !== null) controller.enqueue(event(json));
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
        const r = pending ?? await events.next();
        pending = null;
        if (r.done && signal.aborted) throw new CancelledError(); // returned early by stop()
        send(controller, r.done ? null : r.value, r.done === true);
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
