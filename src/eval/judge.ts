// The judge: any model that turns a prompt into text. One interface, `Judge.complete`; this file has
// the client for OpenAI-compatible chat-completions servers (vLLM, llama.cpp server, OpenAI itself, or
// `tunekit serve`'s OpenAI routes), given a base URL (…/v1), an API key and a model name. A transport
// failure (connection refused, 429, 5xx) throws a JudgeTransportError, which judged.ts retries like an
// unparseable answer; a 4xx other than 429 is the caller's configuration (wrong model, bad key) and
// fails the run at once.

import { InvalidRequestError, TunekitError } from '../errors.js';

export interface JudgeRequest {
  temperature: number;
  seed?: number;
  maxTokens?: number;
  /** The JSON Schema of the answer: local judges decode under it; remote ones get it in the prompt only. */
  jsonSchema?: object;
  signal?: AbortSignal;
}

export interface Judge {
  /** What the report calls it (URL and model, or model directory). */
  readonly description: string;
  complete(prompt: string, req: JudgeRequest): Promise<string>;
}

/** The judge could not be reached or answered 429/5xx: worth another try. */
export class JudgeTransportError extends TunekitError {
  constructor(message: string) {
    super('UNAVAILABLE', message);
  }
}

export interface OpenAiJudgeOptions {
  /** Base URL ending in /v1 (…/chat/completions is appended). */
  url: string;
  apiKey?: string;
  model: string;
  /** Per request; default 120 s. */
  timeoutMs?: number;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** One chat completion from an OpenAI-compatible server (the judge's and the remote sides' transport). */
export async function openAiChat(opts: OpenAiJudgeOptions, messages: ChatMessage[], req: JudgeRequest): Promise<string> {
  const endpoint = `${opts.url.replace(/\/+$/, '')}/chat/completions`;
  const body: Record<string, unknown> = { model: opts.model, messages, temperature: req.temperature };
  if (req.seed !== undefined) body.seed = req.seed;
  if (req.maxTokens !== undefined) body.max_tokens = req.maxTokens;
  const signals = [AbortSignal.timeout(opts.timeoutMs ?? 120_000)];
  if (req.signal) signals.push(req.signal);
  let res: Response;
  try {
    res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}) },
      body: JSON.stringify(body),
      signal: AbortSignal.any(signals),
    });
  } catch (e) {
    if (req.signal?.aborted) throw e;
    throw new JudgeTransportError(`${endpoint} unreachable: ${(e as Error).message}`);
  }
  const text = await res.text();
  if (res.status === 429 || res.status >= 500) throw new JudgeTransportError(`${endpoint} answered ${res.status}: ${text.slice(0, 200)}`);
  if (!res.ok) throw new InvalidRequestError(`${endpoint} refused the request (${res.status}): ${text.slice(0, 300)}`);
  let json: { choices?: { message?: { content?: unknown } }[] };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    throw new JudgeTransportError(`${endpoint} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  const content = json.choices?.[0]?.message?.content;
  if (typeof content !== 'string') throw new JudgeTransportError(`${endpoint} answered without choices[0].message.content: ${text.slice(0, 200)}`);
  return content;
}

export function openAiJudge(opts: OpenAiJudgeOptions): Judge {
  return {
    description: `${opts.model} at ${opts.url}`,
    complete: (prompt, req) => openAiChat(opts, [{ role: 'user', content: prompt }], req),
  };
}
