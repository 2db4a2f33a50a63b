// The OpenAI-compatible API: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, for the
// official `openai` client with `baseURL: http://host:port/v1`. Same API keys (Authorization: Bearer)
// and permission (aiplatform.endpoints.predict in the key's project) as the Vertex routes; errors in
// OpenAI's shape {error: {message, type, param, code}}. A chat request is translated into the Vertex
// GenerateContentRequest it means and runs the same code: rendering, constrained decoding
// (response_format, tool_choice "required"), candidates (n), logprobs, penalties, the serving engine.
// Every request field is honoured or refused with 400 naming it (unknown fields included).
// `model` names a publisher model ("NAME" or "publishers/PUBLISHER/models/NAME") or an endpoint
// ("projects/P/locations/L/endpoints/E": a deployed tuned model, permission checked in P).

import { Hono, type Context } from 'hono';
import { randomBytes } from 'node:crypto';
import { guard, PERMISSIONS } from '../auth.js';
import type { EndpointResolver } from './endpoints.js';
import { body, checkLocation, requestSignal, type ApiContext } from '../context.js';
import { HttpError, invalidArgument, toStatus } from '../errors.js';
import {
  assertMayFit, candidateOptions, functionCallParts, parseGenerateRequest, userTextOf, type GenerationRequest,
} from '../generation.js';
import { safetyCheck, type RequestScope } from '../../safety/resolve.js';
import type { SafetyCheck } from '../../safety/evaluate.js';
import { Message } from '../proto-json.js';
import { mergeStreams, promptTask } from './generate-methods.js';
import type { ServedModel } from '../catalog.js';
import type { GenerationChunk, GenerationResult, TokenLogprob } from '../../generate/generate.js';
import type { Tokenizer } from '../../tokenizer/tokenizer.js';
import { CancelledError } from '../../errors.js';

type Json = Record<string, unknown>;

const CHAT_FIELDS = new Set([
  'model', 'messages', 'temperature', 'top_p', 'n', 'stream', 'stream_options', 'stop', 'max_tokens', 'max_completion_tokens',
  'presence_penalty', 'frequency_penalty', 'logprobs', 'top_logprobs', 'response_format', 'seed', 'tools', 'tool_choice', 'user',
]);
const COMPLETION_FIELDS = new Set([
  'model', 'prompt', 'temperature', 'top_p', 'n', 'stream', 'stream_options', 'stop', 'max_tokens', 'presence_penalty',
  'frequency_penalty', 'seed', 'user', 'echo', 'logprobs', 'suffix', 'best_of',
]);

/** 400 in OpenAI's words, naming the parameter. */
function badParam(param: string, message: string): HttpError {
  const e = invalidArgument(message);
  (e as unknown as { param: string }).param = param;
  return e;
}

function openaiError(api: ApiContext, err: unknown): Response {
  const e = err instanceof CancelledError && api.shutdown.aborted ? new HttpError('UNAVAILABLE', 'The server is shutting down; retry the request.') : err;
  const { httpStatus, body: status } = toStatus(e, api.log);
  const type = httpStatus === 401 ? 'authentication_error' : httpStatus === 403 ? 'permission_error' : httpStatus === 404 ? 'not_found_error'
    : httpStatus === 429 ? 'rate_limit_error' : httpStatus >= 500 ? 'server_error' : 'invalid_request_error';
  const param = (err as { param?: string } | null)?.param ?? null;
  const code = (err as { openaiCode?: string } | null)?.openaiCode ?? status.error.status.toLowerCase();
  return Response.json({ error: { message: status.error.message, type, param, code } }, { status: httpStatus });
}

export function openaiRoutes(api: ApiContext, endpoints: EndpointResolver): Hono {
  const app = new Hono();
  app.onError((err) => openaiError(api, err));

  /** The caller's project (the key's), after checking its permission there. */
  const authorize = async (c: Context): Promise<string> => {
    const principal = await api.auth.authenticate(c.req.raw.headers);
    const project = principal.email ? principal.email.split('@')[1]!.split('.')[0]! : 'express';
    await api.auth.authorize(principal, PERMISSIONS.predict, project);
    return project;
  };
  /** The served model `model` names, and the scope its safety configuration comes from. */
  const resolve = async (c: Context, model: unknown, project: string): Promise<{ served: ServedModel; scope: RequestScope }> => {
    if (typeof model !== 'string' || model === '') throw badParam('model', 'you must provide a model parameter');
    // An endpoint (a tuned model deployed, or a base model): the permission is checked in its project.
    const e = /^projects\/([^/]+)\/locations\/([^/]+)\/endpoints\/([^/]+)$/.exec(model);
    if (e) {
      const [, project, location, endpoint] = e as unknown as [string, string, string, string];
      await guard(api.auth, c.req.raw.headers, PERMISSIONS.predict, project);
      await checkLocation(api, location);
      const target = await endpoints.resolve(project, location, endpoint);
      const served = target.adapterDir === undefined
        ? await api.catalog.served(target.publisher, target.model)
        : await api.catalog.servedWithAdapter(target.publisher, target.model, target.adapterDir, target.modelVersion);
      return { served, scope: { project, endpoint } };
    }
    const m = /^publishers\/([^/]+)\/models\/([^/]+)$/.exec(model);
    const [publisher, name] = m ? [m[1]!, m[2]!] : ['google', model];
    await api.catalog.registration(publisher, name);
    return { served: await api.catalog.served(publisher, name), scope: { project } };
  };

  app.get('/models', async (c) => {
    await authorize(c);
    const data = (await api.catalog.store.list('google')).sort((a, b) => a.name.localeCompare(b.name))
      .map((r) => ({ id: r.name, object: 'model', created: Math.floor(Date.parse(r.createTime) / 1000) || 0, owned_by: r.publisher }));
    return c.json({ object: 'list', data });
  });

  app.post('/chat/completions', async (c) => {
    const project = await authorize(c);
    const req = (await body(api, c)).value;
    for (const k of Object.keys(req)) if (!CHAT_FIELDS.has(k)) throw badParam(k, `Unrecognized request argument supplied: ${k}`);
    const { served, scope } = await resolve(c, req.model, project);
    const vertex = chatToVertex(req);
    return run(c, served, scope, vertex, req, 'chat');
  });

  app.post('/completions', async (c) => {
    const project = await authorize(c);
    const req = (await body(api, c)).value;
    for (const k of Object.keys(req)) if (!COMPLETION_FIELDS.has(k)) throw badParam(k, `Unrecognized request argument supplied: ${k}`);
    for (const k of ['echo', 'suffix', 'best_of', 'logprobs'] as const) {
      if (req[k] !== undefined && req[k] !== null && req[k] !== false && !(k === 'best_of' && req[k] === 1)) throw badParam(k, `${k} is not supported by tunekit's /v1/completions`);
    }
    if (typeof req.prompt !== 'string') throw badParam('prompt', 'prompt must be one string');
    const { served, scope } = await resolve(c, req.model, project);
    const vertex = { contents: [{ role: 'user', parts: [{ text: req.prompt || ' ' }] }], generationConfig: commonConfig(req) };
    return run(c, served, scope, vertex, req, 'completion');
  });

  /** Generation for both endpoints: one response, or SSE chunks ending in [DONE]. */
  async function run(c: Context, served: ServedModel, scope: RequestScope, vertex: Json, req: Json, kind: 'chat' | 'completion'): Promise<Response> {
    const { model } = served;
    const signal = requestSignal(api, c);
    const context = model.config.maxPositionEmbeddings;
    const g: GenerationRequest = parseGenerateRequest(new Message(vertex, ''), model);
    // The project's (or endpoint's) safety configuration applies: OpenAI requests carry no settings.
    const safety = await safetyCheck(api, scope, new Map());
    const userText = userTextOf(g);
    if (safety.active) {
      const verdict = await safety.judge(userText, undefined, signal);
      // As Azure OpenAI answers a filtered prompt: 400 with code content_filter.
      if (verdict.blocked) throw Object.assign(badParam('messages', `${verdict.message} (${verdict.blocked})`), { openaiCode: 'content_filter' });
    }
    assertMayFit(model.tokenizer, g, context, 1);
    const ids = kind === 'completion'
      ? model.tokenizer.encode(req.prompt as string)
      : Array.from(await api.tokenizer.run(model.tokenizer, served.registration.dir, promptTask(g, context), signal));
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const modelName = req.model as string;
    const opts = candidateOptions(g).map((o) => ({ ...o, adapterDir: served.adapterDir, signal }));
    if (req.stream === true) {
      const so = req.stream_options as Json | undefined;
      return stream(served.engine.submitCandidates(ids, opts), g, model.tokenizer, {
        id, created, model: modelName, kind, includeUsage: so?.include_usage === true, signal, logprobs: req.logprobs === true ? Number(req.top_logprobs ?? 0) : null,
        promptTokens: ids.length, safety, userText,
      });
    }
    const streams = served.engine.submitCandidates(ids, opts);
    let results: GenerationResult[];
    try {
      results = await Promise.all(streams.map(drain));
    } catch (err) {
      await Promise.all(streams.map((it) => it.return(undefined as never).catch(() => undefined)));
      throw err;
    }
    const verdicts = safety.active ? await Promise.all(results.map((r) => safety.judge(userText, r.text, signal))) : [];
    const usage = { prompt_tokens: ids.length, completion_tokens: 0, total_tokens: ids.length };
    const choices = results.map((r, index) => {
      if (verdicts[index]?.blocked) {
        // A filtered response: finish_reason content_filter, no content.
        usage.completion_tokens += r.tokenIds.length;
        return kind === 'completion'
          ? { index, text: '', logprobs: null, finish_reason: 'content_filter' }
          : { index, message: { role: 'assistant', content: null, refusal: null }, logprobs: null, finish_reason: 'content_filter' };
      }
      usage.completion_tokens += r.tokenIds.length;
      const finish = r.finishReason === 'length' ? 'length' : 'stop';
      if (kind === 'completion') return { index, text: r.text, logprobs: null, finish_reason: finish };
      const message: Json = { role: 'assistant', ...choiceMessage(g, r.text) };
      const finishReason = message.tool_calls ? 'tool_calls' : finish;
      return { index, message, logprobs: req.logprobs === true ? chatLogprobs(model.tokenizer, r.logprobs ?? [], Number(req.top_logprobs ?? 0)) : null, finish_reason: finishReason };
    });
    usage.total_tokens += usage.completion_tokens;
    return c.json({ id, object: kind === 'chat' ? 'chat.completion' : 'text_completion', created, model: modelName, choices, usage });
  }

  return app;
}

async function drain<T, R>(it: AsyncGenerator<T, R>): Promise<R> {
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

/** generationConfig fields both endpoints share. */
function commonConfig(req: Json): Json {
  const g: Json = {};
  const num = (k: string) => {
    const v = req[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw badParam(k, `${k} must be a number`);
    return v;
  };
  const set = (from: string, to: string) => {
    const v = num(from);
    if (v !== undefined) g[to] = v;
  };
  set('temperature', 'temperature');
  set('top_p', 'topP');
  set('presence_penalty', 'presencePenalty');
  set('frequency_penalty', 'frequencyPenalty');
  set('seed', 'seed');
  set('n', 'candidateCount');
  set('max_tokens', 'maxOutputTokens');
  set('max_completion_tokens', 'maxOutputTokens');
  if (req.stop !== undefined && req.stop !== null) {
    const stops = typeof req.stop === 'string' ? [req.stop] : req.stop;
    if (!Array.isArray(stops) || stops.some((s) => typeof s !== 'string')) throw badParam('stop', 'stop must be a string or a list of strings');
    g.stopSequences = stops;
  }
  if (req.stream !== undefined && typeof req.stream !== 'boolean') throw badParam('stream', 'stream must be true or false');
  if (req.stream_options !== undefined && req.stream_options !== null) {
    const so = req.stream_options as Json;
    if (typeof so !== 'object' || Object.keys(so).some((k) => k !== 'include_usage')) throw badParam('stream_options', 'stream_options takes include_usage only');
    if (req.stream !== true) throw badParam('stream_options', 'stream_options is only allowed with stream: true');
  }
  return g;
}

function textOf(content: unknown, param: string): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((p, i) => {
      const part = p as Json;
      if (part?.type !== 'text' || typeof part.text !== 'string') throw badParam(`${param}[${i}]`, 'only text content parts are supported');
      return part.text;
    }).join('');
  }
  throw badParam(param, 'content must be a string or a list of text parts');
}

/** A chat completion request as the Vertex GenerateContentRequest it means. */
function chatToVertex(req: Json): Json {
  const messages = req.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw badParam('messages', 'messages must be a non-empty list');
  const system: string[] = [];
  const contents: Json[] = [];
  const callNames = new Map<string, string>();
  const push = (role: 'user' | 'model', part: Json) => {
    const last = contents[contents.length - 1];
    if (last && last.role === role) (last.parts as Json[]).push(part);
    else contents.push({ role, parts: [part] });
  };
  messages.forEach((m, i) => {
    const msg = m as Json;
    const at = `messages[${i}]`;
    switch (msg?.role) {
      case 'system': case 'developer':
        system.push(textOf(msg.content, `${at}.content`));
        break;
      case 'user':
        push('user', { text: textOf(msg.content, `${at}.content`) || ' ' });
        break;
      case 'assistant': {
        const text = textOf(msg.content, `${at}.content`);
        if (text) push('model', { text });
        const calls = Array.isArray(msg.tool_calls) ? msg.tool_calls as Json[] : [];
        for (const call of calls) {
          const fn = call.function as Json;
          let args: unknown = {};
          try {
            args = JSON.parse(String(fn?.arguments ?? '{}'));
          } catch {
            throw badParam(`${at}.tool_calls`, 'tool call arguments must be JSON');
          }
          callNames.set(String(call.id), String(fn?.name));
          push('model', { functionCall: { name: String(fn?.name), args } });
        }
        if (!text && calls.length === 0) push('model', { text: ' ' });
        break;
      }
      case 'tool': {
        const name = callNames.get(String(msg.tool_call_id));
        if (!name) throw badParam(`${at}.tool_call_id`, 'tool messages must answer a tool call of an earlier assistant message');
        const content = textOf(msg.content, `${at}.content`);
        let response: unknown;
        try {
          response = JSON.parse(content);
        } catch {
          response = { content };
        }
        push('user', { functionResponse: { name, response: response !== null && typeof response === 'object' && !Array.isArray(response) ? response : { content: response } } });
        break;
      }
      default:
        throw badParam(`${at}.role`, `unsupported role ${JSON.stringify(msg?.role)}`);
    }
  });
  const g = commonConfig(req);
  if (req.logprobs === true) {
    g.responseLogprobs = true;
    if (req.top_logprobs !== undefined) g.logprobs = req.top_logprobs;
  } else if (req.top_logprobs !== undefined && req.top_logprobs !== null) {
    throw badParam('top_logprobs', 'top_logprobs requires logprobs: true');
  }
  const rf = req.response_format as Json | undefined;
  if (rf !== undefined && rf !== null) {
    if (rf.type === 'json_object') {
      g.responseMimeType = 'application/json';
      g.responseJsonSchema = { type: 'object' };
    } else if (rf.type === 'json_schema') {
      const js = rf.json_schema as Json | undefined;
      if (!js || typeof js.schema !== 'object') throw badParam('response_format.json_schema.schema', 'json_schema needs a schema');
      g.responseMimeType = 'application/json';
      g.responseJsonSchema = js.schema;
    } else if (rf.type !== 'text') {
      throw badParam('response_format.type', `response_format type ${JSON.stringify(rf.type)} is not supported (text, json_object, json_schema)`);
    }
  }
  const out: Json = { contents, generationConfig: g };
  if (system.length) out.systemInstruction = { parts: [{ text: system.join('\n') }] };
  if (Array.isArray(req.tools) && req.tools.length > 0) {
    out.tools = [{
      functionDeclarations: (req.tools as Json[]).map((t, i) => {
        const fn = t.function as Json | undefined;
        if (t.type !== 'function' || !fn) throw badParam(`tools[${i}].type`, 'only function tools are supported');
        return { name: fn.name, ...(fn.description ? { description: fn.description } : {}), ...(fn.parameters ? { parametersJsonSchema: fn.parameters } : {}) };
      }),
    }];
  }
  const choice = req.tool_choice;
  if (choice !== undefined && choice !== null) {
    let mode: Json;
    if (choice === 'auto') mode = { mode: 'AUTO' };
    else if (choice === 'none') mode = { mode: 'NONE' };
    else if (choice === 'required') mode = { mode: 'ANY' };
    else if (typeof choice === 'object' && (choice as Json).type === 'function') mode = { mode: 'ANY', allowedFunctionNames: [String(((choice as Json).function as Json)?.name)] };
    else throw badParam('tool_choice', 'tool_choice must be "auto", "none", "required" or {type: "function", function: {name}}');
    if (out.tools) out.toolConfig = { functionCallingConfig: mode };
  }
  return out;
}

/**
 * The message of a finished choice: its text, or, when the model called declared functions, the calls
 * as tool_calls (content: the text beside them, or null).
 */
function choiceMessage(g: GenerationRequest, text: string): Json {
  const calls = functionCallParts(g, text);
  if (!calls || calls.malformed) return { content: text, refusal: null };
  const toolCalls = calls.parts.filter((p) => p.functionCall).map((p) => {
    const fc = p.functionCall as { name: string; args: unknown };
    return { id: `call_${randomBytes(9).toString('hex')}`, type: 'function', function: { name: fc.name, arguments: JSON.stringify(fc.args) } };
  });
  return { content: calls.parts.filter((p) => typeof p.text === 'string').map((p) => p.text).join('') || null, refusal: null, tool_calls: toolCalls };
}

function chatLogprobs(tokenizer: { decode(ids: number[]): string }, lp: readonly TokenLogprob[], top: number): Json {
  const entry = (tokenId: number, logprob: number) => {
    const token = tokenizer.decode([tokenId]);
    return { token, logprob, bytes: Array.from(Buffer.from(token, 'utf8')) };
  };
  return {
    content: lp.map((t) => ({ ...entry(t.tokenId, t.logprob), top_logprobs: t.top.slice(0, top).map((c) => entry(c.tokenId, c.logprob)) })),
    refusal: null,
  };
}

const encoder = new TextEncoder();

/**
 * SSE chunks in OpenAI's shape, `data: [DONE]` last. Each chunk carries one choice (several interleave,
 * by index): its first a role delta, then content deltas, each with the logprobs of the tokens that
 * wrote it when asked for, then an empty delta with finish_reason (and the logprobs of tokens whose
 * text never showed, a stop sequence's). With functions declared, a choice's answer may be a call,
 * known only at its end: it is held and sent as one delta (tool_calls, or content). With a safety
 * check, a choice's text so far is judged before each delta: the first blocked one is not sent, the
 * choice ends with finish_reason content_filter and its generation stops. include_usage adds a last
 * chunk with the usage of all choices (tokens of stopped choices not counted). A client that leaves
 * stops the generation.
 */
function stream(
  its: AsyncGenerator<GenerationChunk, GenerationResult>[], g: GenerationRequest, tokenizer: Tokenizer,
  m: {
    id: string; created: number; model: string; kind: 'chat' | 'completion'; includeUsage: boolean; signal: AbortSignal; logprobs: number | null;
    promptTokens: number; safety: SafetyCheck; userText: string;
  },
): Response {
  const base = { id: m.id, object: m.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created: m.created, model: m.model };
  const lp = (tokens: readonly TokenLogprob[]) => (m.logprobs === null ? null : chatLogprobs(tokenizer, tokens, m.logprobs));
  const choice = (index: number, delta: Json | null, finish: string | null, tokens: readonly TokenLogprob[] = []) => (m.kind === 'chat'
    ? { index, delta: delta ?? {}, logprobs: lp(tokens), finish_reason: finish }
    : { index, text: (delta?.content as string | undefined) ?? '', logprobs: null, finish_reason: finish });
  const withTools = g.tools !== undefined && g.tools.mode !== 'NONE';
  const n = its.length;
  const sent: number[] = new Array(n).fill(0);
  const text: string[] = new Array(n).fill('');
  const stopped: boolean[] = new Array(n).fill(false);
  /** With a safety check: whether choice i's text so far is blocked (then it ends content_filter and stops). */
  const blocked = async (i: number, answer: string): Promise<boolean> => {
    if (!m.safety.active || !(await m.safety.judge(m.userText, answer, m.signal)).blocked) return false;
    stopped[i] = true;
    void its[i]!.return(undefined as never).catch(() => undefined);
    return true;
  };
  const results: GenerationResult[] = [];
  const merged = mergeStreams(its);
  const stop = () => void merged.return().catch(() => undefined);
  m.signal.addEventListener('abort', stop, { once: true });
  let started = false;
  let open = true;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const send = (json: unknown) => open && controller.enqueue(encoder.encode(`data: ${typeof json === 'string' ? json : JSON.stringify(json)}\n\n`));
      try {
        if (!started && m.kind === 'chat') {
          for (let i = 0; i < n; i++) send({ ...base, choices: [choice(i, { role: 'assistant', content: '', refusal: null }, null)] });
        }
        started = true;
        for (;;) {
          const r = await merged.next();
          if (r.done) {
            if (m.signal.aborted) throw new CancelledError();
            if (m.includeUsage) {
              const p = m.promptTokens;
              const c = results.reduce((a, x) => a + x.tokenIds.length, 0);
              send({ ...base, choices: [], usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c } });
            }
            send('[DONE]');
            open = false;
            m.signal.removeEventListener('abort', stop);
            controller.close();
            return;
          }
          const i = r.value.index;
          if (stopped[i]) continue; // ended content_filter
          if (!r.value.done) {
            const chunk = r.value.value;
            if (chunk.thought || !chunk.text || withTools) continue;
            text[i] += chunk.text;
            if (await blocked(i, text[i]!)) {
              send({ ...base, choices: [choice(i, null, 'content_filter')] });
              return;
            }
            sent[i] += chunk.logprobs?.length ?? 0;
            send({ ...base, choices: [choice(i, { content: chunk.text }, null, chunk.logprobs ?? [])] });
            return;
          }
          const result = r.value.value;
          if (result === undefined) throw new CancelledError(); // returned early
          results[i] = result;
          if (withTools && await blocked(i, result.text)) {
            send({ ...base, choices: [choice(i, null, 'content_filter')] });
            return;
          }
          const finish = result.finishReason === 'length' ? 'length' : 'stop';
          const rest = (result.logprobs ?? []).slice(sent[i]);
          if (withTools && m.kind === 'chat') {
            const msg = choiceMessage(g, result.text);
            const calls = msg.tool_calls as Json[] | undefined;
            const delta: Json = calls ? { content: msg.content, tool_calls: calls.map((c, k) => ({ index: k, ...c })) } : { content: msg.content };
            send({ ...base, choices: [choice(i, delta, null, rest)] });
            send({ ...base, choices: [choice(i, null, calls ? 'tool_calls' : finish)] });
          } else {
            send({ ...base, choices: [choice(i, null, finish, rest)] });
          }
          return;
        }
      } catch (err) {
        if (open) {
          const { body: status } = toStatus(err);
          send({ error: { message: status.error.message, type: 'server_error', param: null, code: status.error.status.toLowerCase() } });
          open = false;
          try {
            controller.close();
          } catch {
            // closed by a disconnect
          }
        }
      }
    },
    cancel() {
      open = false;
      stop();
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
}
