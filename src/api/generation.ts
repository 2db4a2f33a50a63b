// GenerateContent, CountTokens and ComputeTokens at the HTTP edge: Vertex JSON requests become typed
// values (a Dialogue, GenerateOptions, thinking switches) and typed results become Vertex JSON
// responses. Nothing past this file sees JSON; the prompt is rendered by data/render.ts, the one place
// Vertex roles meet chat templates.
// Rules it keeps:
// - Only what tunekit can honour is accepted: one candidate, at most 5 stop sequences, text parts;
//   options it cannot honour (response schemas, logprobs, penalties) are 400s naming the field, not
//   silently dropped. Safety settings are validated and accepted (there is no safety filter).
// - thinkingConfig.thinkingBudget is a hard cap enforced by generation (0: never opens a thinking
//   block, N: the block is closed after N tokens); 0 also renders the prompt with enable_thinking
//   false, as Qwen3's template expects. Thought text is returned only with includeThoughts, as
//   `{text, thought: true}` parts; thought tokens are counted in thoughtsTokenCount and the total,
//   never in candidatesTokenCount.

import { randomBytes } from 'node:crypto';
import type { Dialogue, FunctionCall, FunctionResponse, Turn } from '../data/conversation.js';
import { renderPromptText, toChatMessages } from '../data/render.js';
import { pythonJson } from '../tokenizer/chat-template.js';
import type { FinishReason, GenerateOptions, GenerationChunk, GenerationResult, TokenLogprob } from '../generate/generate.js';
import type { ModelInfo } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { fieldError, HttpError, invalidArgument } from './errors.js';
import { bytes, int64, timestamp, type Message } from './proto-json.js';
import { tokenBytes } from '../structured/vocabulary.js';
import type { ResponseFormat } from '../structured/constraint.js';
import { parseToolCalls, templateTools, toolCallFormat, toolCallStyle, vertexToJsonSchema, type FunctionDeclaration, type ToolCallStyle } from '../structured/tools.js';
import type { TemplateMessage } from '../tokenizer/tokenizer.js';
import { RATED_CATEGORIES } from '../safety/policies.js';
import { THRESHOLDS } from '../safety/config.js';
import type { RequestSettings } from '../safety/resolve.js';
import type { SafetyVerdict } from '../safety/evaluate.js';
import { ANY, compileSchema, SchemaError, type SchemaNode } from '../structured/schema.js';

const V = 'google.cloud.aiplatform.v1';

export const HARM_CATEGORIES = ['HARM_CATEGORY_UNSPECIFIED', ...RATED_CATEGORIES] as const;
export const HARM_THRESHOLDS = ['HARM_BLOCK_THRESHOLD_UNSPECIFIED', ...THRESHOLDS] as const;
const HARM_METHODS = ['HARM_BLOCK_METHOD_UNSPECIFIED', 'SEVERITY', 'PROBABILITY'] as const;
const MIME_TYPES = ['text/plain', 'application/json', 'text/x.enum'];
export const MAX_STOP_SEQUENCES = 5;
/** candidateCount at most. */
export const MAX_CANDIDATES = 8;
/** Alternatives per token that logprobs may ask for. */
export const MAX_LOGPROBS = 20;

/** contents + systemInstruction of a request, typed. */
export interface PromptRequest {
  dialogue: Dialogue;
  /**
   * The same turns as chat-template messages when some carry functionCall / functionResponse parts
   * (assistant tool_calls, tool messages), as transformers passes them.
   */
  messages?: TemplateMessage[];
}

/** Declared functions and how the model may call them (tools + toolConfig.functionCallingConfig). */
export interface ToolsRequest {
  style: ToolCallStyle;
  declarations: FunctionDeclaration[];
  mode: 'AUTO' | 'ANY' | 'NONE';
}

export interface GenerationRequest extends PromptRequest {
  options: GenerateOptions;
  /** false when thinkingBudget is 0; undefined leaves the template's default. */
  enableThinking?: boolean;
  /** thinkingConfig.includeThoughts: return thought text as thought parts. */
  includeThoughts: boolean;
  /** generationConfig.responseLogprobs: logprobsResult on the candidate. */
  responseLogprobs?: boolean;
  /** generationConfig.candidateCount (1 when absent). */
  candidateCount?: number;
  tools?: ToolsRequest;
  /** A response format beside functions in mode AUTO: the answer is a call or a value of this format. */
  answerFormat?: ResponseFormat;
  /** safetySettings of the request (the configured defaults fill in the rest: src/safety). */
  safetySettings: RequestSettings;
}

/**
 * The options of each candidate: the request's, with seed + i for candidate i (a request without a
 * seed gets independent random seeds).
 */
export function candidateOptions(req: GenerationRequest): GenerateOptions[] {
  const n = req.candidateCount ?? 1;
  return Array.from({ length: n }, (_, i) => (req.options.seed === undefined || i === 0 ? { ...req.options } : { ...req.options, seed: (req.options.seed + i) >>> 0 }));
}

/** The dialogue of `contents` and `systemInstruction`; `requireContents` for generation. */
export function parsePrompt(body: Message, requireContents = true): PromptRequest {
  const contents = body.messages('contents', `${V}.Content`);
  if (requireContents && contents.length === 0) {
    throw invalidArgument('Unable to submit request because it must have at least one contents field with a text part.');
  }
  let functionParts = false;
  const turns: Turn[] = contents.map((content) => {
    const role = content.string('role') ?? 'user';
    if (role !== 'user' && role !== 'model') {
      throw invalidArgument(`Invalid value at '${content.fieldPath('role')}', ${JSON.stringify(role)}: use "user" or "model".`);
    }
    const fn: FunctionParts = { calls: [], responses: [] };
    const text = partsText(content, role, fn);
    const turn: Turn = { role, text };
    if (fn.calls.length > 0) turn.calls = fn.calls;
    if (fn.responses.length > 0) turn.responses = fn.responses;
    if (turn.calls || turn.responses) functionParts = true;
    return turn;
  });
  const system = body.message('systemInstruction', `${V}.Content`);
  const dialogue: Dialogue = { turns };
  if (system) dialogue.systemInstruction = partsText(system, 'user', null);
  const prompt: PromptRequest = { dialogue };
  // The same messages as training renders (data/render.ts): one conversion of function parts.
  if (functionParts) prompt.messages = toChatMessages(dialogue);
  return prompt;
}

interface FunctionParts {
  calls: FunctionCall[];
  responses: FunctionResponse[];
}

/**
 * The text of a Content's parts, thought parts left out (earlier reasoning is not prompt). A Content
 * needs at least one part and every text part some text, as Vertex requires.
 */
function partsText(content: Message, role: string, fn: FunctionParts | null): string {
  let text = '';
  const parts = content.messages('parts', `${V}.Part`);
  if (parts.length === 0) {
    throw invalidArgument(`Unable to submit request because it must include at least one parts field, which describes the prompt input: '${content.fieldPath('parts')}' is empty.`);
  }
  for (const part of parts) {
    // Function calls (model turns) and function responses (user turns) go to the template as tool messages.
    const call = part.message('functionCall', `${V}.FunctionCall`);
    const response = part.message('functionResponse', `${V}.FunctionResponse`);
    if (fn && (call || response)) {
      const which = call ? 'functionCall' : 'functionResponse';
      if ((call && role !== 'model') || (response && role !== 'user')) {
        throw invalidArgument(`Invalid value at '${part.fieldPath(which)}': ${which} parts belong in ${call ? 'model' : 'user'} turns.`);
      }
      const m = (call ?? response)!;
      const name = m.string('name');
      if (!name) throw invalidArgument(`Invalid value at '${m.fieldPath('name')}': a function name is required.`);
      if (call) fn.calls.push({ name, args: (m.raw('args') ?? {}) as Record<string, unknown> });
      else fn.responses.push({ name, content: pythonJson(m.raw('response') ?? {}) });
      continue;
    }
    const keys = Object.keys(part.value).filter((k) => part.value[k] !== null && !['text', 'thought', 'thoughtSignature', 'thought_signature'].includes(k));
    if (keys.length > 0 || !part.has('text')) {
      throw invalidArgument(`Invalid value at '${part.path}': only text parts are supported${keys.length ? `, got "${keys[0]}"` : ''}.`);
    }
    const t = part.string('text') ?? '';
    if (t === '') {
      throw invalidArgument(`Unable to submit request because it has an empty text parameter: '${part.fieldPath('text')}'. Add a value to the parameter and try again.`);
    }
    if (part.bool('thought') === true) continue;
    text += t;
  }
  return text;
}

/** 400 FIELD_NOT_SUPPORTED naming a field tunekit does not carry out. */
function unsupported(field: string, why: string): HttpError {
  return fieldError(field, `'${field}' is not supported by tunekit: ${why}.`, 'FIELD_NOT_SUPPORTED');
}

/** Set in proto3 terms: present and not the default (false, 0, "", [], {}). */
function isSet(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/**
 * Request fields tunekit cannot carry out yet, refused by path rather than dropped (unknown fields are
 * refused earlier, by the strict proto3 parse).
 */
export function refuseUnsupported(body: Message): void {
  const top: Record<string, string> = {
    cachedContent: 'context caching is not implemented; send the contents in the request',
    labels: 'request labels (billing breakdown) are not recorded',
    modelArmorConfig: 'Model Armor is a Google service',
  };
  for (const [name, why] of Object.entries(top)) if (isSet(body.raw(name))) throw unsupported(body.fieldPath(name), why);
  const g = body.message('generationConfig', `${V}.GenerationConfig`);
  if (!g) return;
  const config: Record<string, string> = {
    routingConfig: 'model routing is a Google service', speechConfig: 'tunekit models write text only',
    audioTimestamp: 'tunekit models write text only', modelConfig: 'model routing is a Google service',
    imageConfig: 'tunekit models write text only', mediaResolution: 'tunekit models read text only',
    enableAffectiveDialog: 'tunekit models write text only',
  };
  for (const [name, why] of Object.entries(config)) {
    const v = g.raw(name);
    if (isSet(v) && v !== 'MEDIA_RESOLUTION_UNSPECIFIED') throw unsupported(g.fieldPath(name), why);
  }
  const modalities = g.raw('responseModalities');
  if (Array.isArray(modalities) && modalities.some((m) => m !== 'TEXT' && m !== 'MODALITY_UNSPECIFIED')) {
    throw unsupported(g.fieldPath('responseModalities'), 'tunekit models write text only (use ["TEXT"])');
  }
}

/**
 * safetySettings: category -> threshold (with its path). Thresholds are carried out by the safety check
 * (src/safety) with the classifier the operator configured; method SEVERITY with a threshold that can
 * block is refused (the classifier gives probabilities; there is no severity model), as is a blocking
 * threshold without a category.
 * An unspecified threshold is BLOCK_MEDIUM_AND_ABOVE.
 */
export function parseSafetySettings(body: Message): RequestSettings {
  const out: RequestSettings = new Map();
  for (const s of body.messages('safetySettings', `${V}.SafetySetting`)) {
    const category = s.enumOf('category', HARM_CATEGORIES, `${V}.HarmCategory`) ?? 'HARM_CATEGORY_UNSPECIFIED';
    const given = s.enumOf('threshold', HARM_THRESHOLDS, `${V}.SafetySetting.HarmBlockThreshold`) ?? 'HARM_BLOCK_THRESHOLD_UNSPECIFIED';
    const threshold = given === 'HARM_BLOCK_THRESHOLD_UNSPECIFIED' ? 'BLOCK_MEDIUM_AND_ABOVE' : given;
    const method = s.enumOf('method', HARM_METHODS, `${V}.SafetySetting.HarmBlockMethod`);
    if (method === 'SEVERITY' && threshold !== 'BLOCK_NONE' && threshold !== 'OFF') {
      throw unsupported(s.fieldPath('method'), 'method SEVERITY needs a harm severity model; tunekit\'s safety classifier gives probabilities only (use PROBABILITY)');
    }
    if (category === 'HARM_CATEGORY_UNSPECIFIED') {
      if (threshold === 'BLOCK_NONE' || threshold === 'OFF') continue;
      throw invalidArgument(`Invalid value at '${s.fieldPath('category')}': a safety setting that can block must name a harm category.`);
    }
    if (out.has(category)) throw invalidArgument(`Invalid value at '${s.fieldPath('category')}': ${category} is set twice.`);
    out.set(category, { threshold, path: s.fieldPath('threshold') });
  }
  return out;
}

/** A full GenerateContentRequest; the model supplies defaults for what the request leaves out. */
export function parseGenerateRequest(body: Message, model: ModelInfo): GenerationRequest {
  const prompt = parsePrompt(body);
  refuseUnsupported(body);
  const tools = parseTools(body, model.tokenizer.chatTemplate, prompt.messages !== undefined);
  const g = body.message('generationConfig', `${V}.GenerationConfig`);
  const d = model.defaults;
  const options: GenerateOptions = {
    maxTokens: model.config.maxPositionEmbeddings,
    temperature: d.doSample === false ? 0 : d.temperature ?? 1,
    topK: d.topK,
    topP: d.topP,
  };
  // Every candidate carries avgLogprobs, as Vertex's do: chosen tokens' log probabilities are always recorded.
  options.logprobs = 0;
  const request: GenerationRequest = { ...prompt, options, includeThoughts: false, safetySettings: parseSafetySettings(body) };
  if (tools) {
    request.tools = tools;
    request.messages ??= toChatMessages(prompt.dialogue);
    if (tools.mode === 'ANY') options.responseFormat = toolCallFormat(tools.style, tools.declarations);
  }
  if (!g) return request;

  const range = (name: string, value: number | undefined, ok: (v: number) => boolean, what: string): number | undefined => {
    if (value !== undefined && !ok(value)) throw invalidArgument(`Invalid value at '${g.fieldPath(name)}', ${value}: ${what}.`);
    return value;
  };
  const temperature = range('temperature', g.float('temperature'), (v) => v >= 0 && v <= 2, 'must be in [0, 2]');
  const topP = range('topP', g.float('topP'), (v) => v > 0 && v <= 1, 'must be in (0, 1]');
  const topK = range('topK', g.float('topK'), (v) => Number.isInteger(v) && v >= 0, 'must be a whole number >= 0');
  const candidateCount = range('candidateCount', g.int32('candidateCount'), (v) => v >= 1 && v <= MAX_CANDIDATES, `must be in [1, ${MAX_CANDIDATES}]`);
  if (candidateCount !== undefined) request.candidateCount = candidateCount;
  const maxOutputTokens = range('maxOutputTokens', g.int32('maxOutputTokens'), (v) => v >= 1, 'must be at least 1');
  const stops = g.strings('stopSequences');
  if (stops.length > MAX_STOP_SEQUENCES) {
    throw invalidArgument(`Invalid value at '${g.fieldPath('stopSequences')}': at most ${MAX_STOP_SEQUENCES} stop sequences are allowed, got ${stops.length}.`);
  }
  if (stops.some((s) => s === '')) throw invalidArgument(`Invalid value at '${g.fieldPath('stopSequences')}': a stop sequence is empty.`);
  const seed = g.int32('seed');
  const format = parseResponseFormat(g);
  // With functions declared, a response format constrains the answer when it is not a call, as
  // Gemini 3 and OpenAI define it ("Structured Outputs with tools", ai.google.dev/gemini-api/docs/gemini-3;
  // OpenAI takes response_format beside tools). Earlier Gemini models refused the pair ("Function
  // calling with a response mime type: 'application/json' is unsupported"). AUTO: a call or an answer
  // of the format, one of the two by constrained decoding; ANY: a call (the format has nothing to
  // constrain); NONE: an answer of the format.
  if (format && tools && tools.mode === 'AUTO') {
    request.answerFormat = format;
    options.responseFormat = { kind: 'union', options: [toolCallFormat(tools.style, tools.declarations), format] };
  } else if (format && !(tools && tools.mode === 'ANY')) {
    options.responseFormat = format;
  }
  const responseLogprobs = g.bool('responseLogprobs') ?? false;
  const logprobs = range('logprobs', g.int32('logprobs'), (v) => v >= 0 && v <= MAX_LOGPROBS, `must be in [0, ${MAX_LOGPROBS}]`);
  if (logprobs !== undefined && logprobs > 0 && !responseLogprobs) {
    throw invalidArgument(`'${g.fieldPath('logprobs')}' requires '${g.fieldPath('responseLogprobs')}' to be true.`);
  }
  request.responseLogprobs = responseLogprobs;
  if (responseLogprobs) options.logprobs = logprobs ?? 0;
  for (const name of ['presencePenalty', 'frequencyPenalty'] as const) {
    const v = range(name, g.float(name), (x) => x >= -2 && x <= 2, 'must be in [-2, 2]');
    if (v !== undefined && v !== 0) options[name] = v;
  }
  const thinking = g.message('thinkingConfig', `${V}.GenerationConfig.ThinkingConfig`);
  if (thinking) {
    const budget = thinking.int32('thinkingBudget');
    request.includeThoughts = thinking.bool('includeThoughts') ?? false;
    if (budget !== undefined && budget < -1) {
      throw invalidArgument(`Invalid value at '${thinking.fieldPath('thinkingBudget')}', ${budget}: use -1 (dynamic), 0 (off) or a positive number of tokens.`);
    }
    if (budget === 0) request.enableThinking = false;
    if (budget !== undefined) options.thinkingBudget = budget;
  }

  if (format && !(options.thinkingBudget !== undefined && options.thinkingBudget > 0)) {
    // Structured output thinks only when asked to with a budget: the template renders thinking off.
    options.thinkingBudget = 0;
    request.enableThinking = false;
  }
  if (temperature !== undefined) options.temperature = temperature;
  if (topP !== undefined) options.topP = topP;
  if (topK !== undefined) options.topK = topK;
  if (maxOutputTokens !== undefined) options.maxTokens = maxOutputTokens;
  if (stops.length) options.stopSequences = stops;
  if (seed !== undefined) options.seed = seed >>> 0;
  return request;
}

const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$/;

/**
 * tools[].functionDeclarations and toolConfig.functionCallingConfig, checked against what the model's
 * chat template can do: a template without tool support is a 400 saying so (also when the contents
 * carry function parts). Other tool kinds (search, retrieval, code execution) are refused by path.
 */
function parseTools(body: Message, template: string | null, functionParts: boolean): ToolsRequest | undefined {
  const tools = body.messages('tools', `${V}.Tool`);
  const declarations: FunctionDeclaration[] = [];
  for (const tool of tools) {
    for (const key of Object.keys(tool.value)) {
      // A message field is set when present (googleSearch: {} asks for search).
      if (key !== 'functionDeclarations' && key !== 'function_declarations' && tool.value[key] !== null && tool.value[key] !== undefined) {
        throw unsupported(tool.fieldPath(key), 'only functionDeclarations tools are available (search, retrieval and code execution are Google services)');
      }
    }
    for (const d of tool.messages('functionDeclarations', `${V}.FunctionDeclaration`)) {
      const name = d.string('name') ?? '';
      if (!FUNCTION_NAME.test(name)) throw invalidArgument(`Invalid value at '${d.fieldPath('name')}', ${JSON.stringify(name)}: a function name starts with a letter or underscore and has at most 128 letters, digits, _ . : -.`);
      if (declarations.some((x) => x.name === name)) throw invalidArgument(`Invalid value at '${d.fieldPath('name')}': function ${JSON.stringify(name)} is declared twice.`);
      const vertex = d.raw('parameters');
      const json = d.raw('parametersJsonSchema');
      const field = vertex !== undefined ? 'parameters' : 'parametersJsonSchema';
      let parameters: SchemaNode = { kind: 'object', props: null, required: [] };
      let jsonSchema: Record<string, unknown> = { type: 'object', properties: {} };
      if (vertex !== undefined || json !== undefined) {
        try {
          parameters = compileSchema(vertex ?? json, vertex !== undefined ? 'vertex' : 'json');
        } catch (e) {
          if (!(e instanceof SchemaError)) throw e;
          throw invalidArgument(`Invalid value at '${e.path ? `${d.fieldPath(field)}.${e.path}` : d.fieldPath(field)}': ${e.message}.`);
        }
        if (parameters.kind !== 'object') throw invalidArgument(`Invalid value at '${d.fieldPath(field)}': function parameters must be an OBJECT schema.`);
        jsonSchema = vertex !== undefined ? vertexToJsonSchema(vertex) : json as Record<string, unknown>;
      }
      const description = d.string('description');
      declarations.push({ name, ...(description ? { description } : {}), parameters, jsonSchema });
    }
  }
  const config = body.message('toolConfig', `${V}.ToolConfig`)?.message('functionCallingConfig', `${V}.FunctionCallingConfig`);
  const modeName = config?.enumOf('mode', ['MODE_UNSPECIFIED', 'AUTO', 'ANY', 'NONE', 'VALIDATED'] as const, `${V}.FunctionCallingConfig.Mode`) ?? 'AUTO';
  if (modeName === 'VALIDATED') throw unsupported(config!.fieldPath('mode'), 'mode VALIDATED is not available; use AUTO, ANY or NONE');
  const mode = modeName === 'MODE_UNSPECIFIED' ? 'AUTO' : modeName;
  const allowed = config?.strings('allowedFunctionNames') ?? [];
  if (allowed.length > 0 && mode !== 'ANY') throw invalidArgument(`'${config!.fieldPath('allowedFunctionNames')}' is only allowed with mode ANY.`);
  for (const n of allowed) {
    if (!declarations.some((d) => d.name === n)) throw invalidArgument(`Invalid value at '${config!.fieldPath('allowedFunctionNames')}': ${JSON.stringify(n)} is not a declared function.`);
  }
  if (declarations.length === 0) {
    if (config && mode === 'ANY') throw invalidArgument(`'${config.fieldPath('mode')}' ANY needs tools with functionDeclarations.`);
    if (!functionParts) return undefined;
  }
  const style = toolCallStyle(template);
  if (!style) {
    throw invalidArgument(`This model's chat template has no tool support (it neither renders 'tools' nor teaches a tool-call format), so '${declarations.length ? 'tools' : 'contents'}' with function declarations or function parts cannot be used with it. Use a model whose template supports tools (Qwen3, Llama 3.1).`);
  }
  const usable = allowed.length > 0 ? declarations.filter((d) => allowed.includes(d.name)) : declarations;
  return { style, declarations: mode === 'ANY' ? usable : declarations, mode };
}

/** The answer's parts when functions were declared: function calls parsed from the text, checked. */
export function functionCallParts(req: GenerationRequest, text: string): { parts: Record<string, unknown>[]; malformed: boolean } | null {
  const t = req.tools;
  if (!t || t.mode === 'NONE') return null;
  const parsed = parseToolCalls(t.style, text, t.declarations);
  // A JSON answer that is not a call (llama3 calls are bare JSON too): constrained, so it is the answer.
  if (parsed === null || (parsed === 'malformed' && req.answerFormat)) return null;
  if (parsed === 'malformed') return { parts: text ? [{ text }] : [], malformed: true };
  const parts: Record<string, unknown>[] = parsed.text ? [{ text: parsed.text }] : [];
  for (const c of parsed.calls) parts.push({ functionCall: { name: c.name, args: c.args } });
  return { parts, malformed: false };
}

/** transformers' `tools` for the template, or undefined (mode NONE: the model is not told of them). */
export function requestTemplateTools(req: GenerationRequest): unknown[] | undefined {
  return req.tools && req.tools.mode !== 'NONE' && req.tools.declarations.length > 0 ? templateTools(req.tools.declarations) : undefined;
}

/**
 * responseMimeType with responseSchema (Vertex's OpenAPI subset) or responseJsonSchema (JSON Schema):
 * what constrained decoding must produce, or undefined for free text. A schema needs a JSON or enum
 * MIME type; text/x.enum needs a STRING schema with an enum; what a schema says that decoding cannot
 * enforce is a 400 naming the keyword's path.
 */
function parseResponseFormat(g: Message): ResponseFormat | undefined {
  const mime = g.string('responseMimeType') || 'text/plain';
  if (!MIME_TYPES.includes(mime)) {
    throw invalidArgument(`Invalid value at '${g.fieldPath('responseMimeType')}', ${JSON.stringify(mime)}: supported types are ${MIME_TYPES.join(', ')}.`);
  }
  const vertexSchema = g.has('responseSchema') ? g.raw('responseSchema') : undefined;
  const jsonSchema = g.has('responseJsonSchema') ? g.raw('responseJsonSchema') : undefined;
  if (vertexSchema !== undefined && jsonSchema !== undefined) {
    throw invalidArgument(`'${g.fieldPath('responseSchema')}' and '${g.fieldPath('responseJsonSchema')}' cannot both be set.`);
  }
  const field = vertexSchema !== undefined ? 'responseSchema' : 'responseJsonSchema';
  const given = vertexSchema ?? jsonSchema;
  if (given !== undefined && mime === 'text/plain') {
    throw invalidArgument(`'${g.fieldPath(field)}' requires '${g.fieldPath('responseMimeType')}' to be "application/json" or "text/x.enum".`);
  }
  let node: SchemaNode = ANY;
  if (given !== undefined) {
    try {
      node = compileSchema(given, vertexSchema !== undefined ? 'vertex' : 'json');
    } catch (e) {
      if (!(e instanceof SchemaError)) throw e;
      const at = e.path ? `${g.fieldPath(field)}.${e.path}` : g.fieldPath(field);
      throw invalidArgument(`Invalid value at '${at}': ${e.message}.`);
    }
  }
  if (mime === 'application/json') return { kind: 'json', schema: node };
  if (mime === 'text/x.enum') {
    const values = node.kind === 'literals' ? node.texts.map((t) => JSON.parse(t) as unknown) : [];
    if (values.length === 0 || values.some((v) => typeof v !== 'string')) {
      throw invalidArgument(`'${g.fieldPath('responseMimeType')}' "text/x.enum" requires '${g.fieldPath('responseSchema')}' of type STRING with an enum.`);
    }
    return { kind: 'enum', values: values as string[] };
  }
  return undefined;
}

/**
 * INVALID_ARGUMENT when the contents cannot fit `context` tokens, decided from their length alone,
 * before any rendering or tokenizing: the text of user turns and the system instruction (templates keep
 * it, at most trimmed) is at least length / tokenizer.maxCharsPerToken tokens. `room` tokens must stay
 * free (1 for generation: the model must be able to write a token). Model turns are not counted here
 * (a template may drop their reasoning); the rendered text is checked again before it is tokenized.
 */
export function assertMayFit(tokenizer: Tokenizer, prompt: PromptRequest, context: number, room: number): void {
  let chars = prompt.dialogue.systemInstruction?.trim().length ?? 0;
  for (const t of prompt.dialogue.turns) if (t.role === 'user') chars += t.text.trim().length;
  assertTextMayFit(tokenizer, chars, context, room);
}

/** INVALID_ARGUMENT when text of `chars` UTF-16 units is sure to be more than `context - room` tokens. */
export function assertTextMayFit(tokenizer: Tokenizer, chars: number, context: number, room: number): void {
  const perToken = tokenizer.maxCharsPerToken;
  if (perToken === null) return;
  const atLeast = Math.ceil(chars / perToken);
  if (atLeast + room > context) {
    throw invalidArgument(
      `The input token count (at least ${atLeast}) exceeds the maximum number of tokens allowed (${context - room}): the model's context is ${context} tokens.`,
    );
  }
}

/**
 * countTokens: the text generateContent would tokenize for the same contents (template markup
 * included); contents that end with a model turn are rendered without a generation prompt.
 */
export function countTokensText(tokenizer: Tokenizer, prompt: PromptRequest): string {
  const turns = prompt.dialogue.turns;
  if (turns.length === 0 && prompt.dialogue.systemInstruction === undefined) return '';
  if (turns[turns.length - 1]?.role === 'user') return renderPromptText(prompt.dialogue, tokenizer);
  return tokenizer.applyChatTemplate(toChatMessages(prompt.dialogue), { addGenerationPrompt: false });
}

/**
 * computeTokens: each content's ids (tokenized on its own) as int64 strings, pieces as bytes. At most
 * `limit` tokens in all (the model's context): the response stays bounded.
 */
export function computeTokensJson(tokenizer: Tokenizer, prompt: PromptRequest, ids: ArrayLike<number>[], limit: number): Record<string, unknown> {
  let total = 0;
  for (const turnIds of ids) total += turnIds.length;
  if (total > limit) {
    throw invalidArgument(`computeTokens answers at most ${limit} tokens (the model's context); these contents are ${total} tokens.`);
  }
  const tokensInfo = prompt.dialogue.turns.map((turn, i) => {
    const turnIds = Array.from(ids[i]!);
    return { tokenIds: turnIds.map(int64), tokens: turnIds.map((id) => bytes(tokenBytes(tokenizer, id))), role: turn.role };
  });
  return { tokensInfo };
}

export { tokenBytes } from '../structured/vocabulary.js';

export function finishReasonName(r: FinishReason): 'STOP' | 'MAX_TOKENS' {
  return r === 'length' ? 'MAX_TOKENS' : 'STOP';
}

/** What every response and stream chunk of one request shares. */
export interface ResponseHeader {
  modelVersion: string;
  responseId: string;
  createTime: string;
}

export function responseHeader(modelVersion: string): ResponseHeader {
  return { modelVersion, responseId: randomBytes(12).toString('base64url'), createTime: timestamp() };
}

/** A piece of output: answer text, or thought text (sent only when the request includes thoughts). */
export type OutputPart = { text: string; thought?: boolean; logprobs?: TokenLogprob[] };

function content(parts: OutputPart[]): Record<string, unknown> {
  const kept = parts.filter((p) => p.text !== '').map((p) => (p.thought ? { text: p.text, thought: true } : { text: p.text }));
  return kept.length === 0 ? { role: 'model' } : { role: 'model', parts: kept };
}

/** logprobsResult of some answer tokens: chosen ones and, when asked for, the top alternatives. */
export function logprobsResultJson(tokenizer: Tokenizer, lp: readonly TokenLogprob[]): Record<string, unknown> {
  const cand = (tokenId: number, logProbability: number) => ({ token: tokenizer.decode([tokenId]), tokenId, logProbability });
  const out: Record<string, unknown> = { chosenCandidates: lp.map((t) => cand(t.tokenId, t.logprob)) };
  if (lp.some((t) => t.top.length > 0)) out.topCandidates = lp.map((t) => ({ candidates: t.top.map((c) => cand(c.tokenId, c.logprob)) }));
  return out;
}

/** avgLogprobs and, when asked for, logprobsResult of a finished candidate. */
export function logprobsJson(tokenizer: Tokenizer, result: GenerationResult, responseLogprobs: boolean): Record<string, unknown> {
  const lp = result.logprobs;
  if (!lp) return {};
  const out: Record<string, unknown> = {};
  if (lp.length > 0) out.avgLogprobs = lp.reduce((a, t) => a + t.logprob, 0) / lp.length;
  if (responseLogprobs) out.logprobsResult = logprobsResultJson(tokenizer, lp);
  return out;
}

/** The GenerateContentResponse of several candidates of one prompt (read once: billed once). */
export function candidatesResponseJson(header: ResponseHeader, results: GenerationResult[], includeThoughts: boolean, extras: Record<string, unknown>[], req?: GenerationRequest): Record<string, unknown> {
  const candidates = results.map((r, i) => {
    const one = generateResponseJson(header, r, includeThoughts, extras[i], req) as { candidates: Record<string, unknown>[] };
    return i === 0 ? one.candidates[0]! : { index: i, ...one.candidates[0]! };
  });
  return { candidates, usageMetadata: candidatesUsageJson(results), ...header };
}

/** The whole GenerateContentResponse of a finished generation. */
export function generateResponseJson(header: ResponseHeader, result: GenerationResult, includeThoughts: boolean, extra: Record<string, unknown> = {}, req?: GenerationRequest): Record<string, unknown> {
  const parts: OutputPart[] = includeThoughts ? [{ text: result.thoughtText, thought: true }] : [];
  const calls = req ? functionCallParts(req, result.text) : null;
  if (calls) {
    const thoughts = content(parts).parts as Record<string, unknown>[] | undefined ?? [];
    const all = [...thoughts, ...calls.parts];
    return {
      candidates: [{
        content: all.length ? { role: 'model', parts: all } : { role: 'model' },
        finishReason: calls.malformed && result.finishReason !== 'length' ? 'MALFORMED_FUNCTION_CALL' : finishReasonName(result.finishReason),
        ...(calls.malformed && result.finishReason !== 'length' ? { finishMessage: 'The model wrote a function call that does not parse or does not follow the declaration.' } : {}),
        ...extra,
      }],
      usageMetadata: candidatesUsageJson([result]),
      ...header,
    };
  }
  parts.push({ text: result.text });
  return {
    candidates: [{ content: content(parts), finishReason: finishReasonName(result.finishReason), ...extra }],
    usageMetadata: candidatesUsageJson([result]),
    ...header,
  };
}

/** The output part of a streamed generation chunk, or null when it is a thought the caller did not ask for. */
export function chunkPart(chunk: GenerationChunk, includeThoughts: boolean): OutputPart | null {
  if (chunk.thought) return includeThoughts ? { text: chunk.text, thought: true } : null;
  return chunk.logprobs ? { text: chunk.text, logprobs: chunk.logprobs } : { text: chunk.text };
}

/**
 * One candidate of a streamed chunk: only its new text (with logprobsResult of the tokens that wrote
 * it, when asked for); its last chunk also carries finishReason and avgLogprobs (over the whole
 * candidate). Candidate 0 has no index, as proto3 JSON leaves defaults out.
 */
export function streamCandidateJson(
  tokenizer: Tokenizer, index: number, parts: OutputPart[], responseLogprobs: boolean, result?: GenerationResult, extraTokens: readonly TokenLogprob[] = [],
): Record<string, unknown> {
  const out: Record<string, unknown> = index > 0 ? { index, content: content(parts) } : { content: content(parts) };
  if (responseLogprobs) {
    const lp = [...parts.flatMap((p) => p.logprobs ?? []), ...extraTokens];
    if (lp.length > 0 || result) out.logprobsResult = logprobsResultJson(tokenizer, lp);
  }
  if (result) {
    out.finishReason = finishReasonName(result.finishReason);
    const avg = logprobsJson(tokenizer, result, false).avgLogprobs;
    if (avg !== undefined) out.avgLogprobs = avg;
  }
  return out;
}

/**
 * usageMetadata. Billing is one definition: the prompt is the rendered, tokenized prompt the model read
 * (countTokens counts the same text), once for all candidates; candidates are the answer tokens,
 * thoughts counted apart.
 */
export function candidatesUsageJson(results: GenerationResult[], promptTokens = results[0]!.promptTokens): Record<string, unknown> {
  const prompt = promptTokens;
  let answer = 0;
  let thoughts = 0;
  for (const r of results) {
    if (!r) continue; // a streamed candidate stopped by the safety check
    answer += r.tokenIds.length - r.thoughtTokens;
    thoughts += r.thoughtTokens;
  }
  const usage: Record<string, unknown> = { promptTokenCount: prompt, candidatesTokenCount: answer, totalTokenCount: prompt + answer + thoughts };
  if (thoughts > 0) usage.thoughtsTokenCount = thoughts;
  usage.promptTokensDetails = [{ modality: 'TEXT', tokenCount: prompt }];
  usage.candidatesTokensDetails = [{ modality: 'TEXT', tokenCount: answer }];
  return usage;
}

/** The user side of a request's dialogue, as the safety classifier reads it. */
export function userTextOf(req: PromptRequest): string {
  return req.dialogue.turns.filter((t) => t.role === 'user').map((t) => [...(t.responses ?? []).map((r) => r.content), t.text].filter((x) => x !== '').join('\n')).join('\n\n');
}

/** The response to a prompt the safety check blocked: promptFeedback, no candidates; the prompt is billed. */
export function promptBlockedJson(header: ResponseHeader, promptTokens: number, verdict: SafetyVerdict): Record<string, unknown> {
  const feedback: Record<string, unknown> = { blockReason: verdict.blocked, blockReasonMessage: verdict.message };
  if (verdict.ratings.length) feedback.safetyRatings = verdict.ratings;
  return {
    promptFeedback: feedback,
    usageMetadata: { promptTokenCount: promptTokens, totalTokenCount: promptTokens, promptTokensDetails: [{ modality: 'TEXT', tokenCount: promptTokens }] },
    ...header,
  };
}

/**
 * A candidate after the safety check of its response: safetyRatings added; when blocked, its content
 * is withheld and finishReason is SAFETY or BLOCKLIST, with finishMessage saying why.
 */
export function judgedCandidate(candidate: Record<string, unknown>, verdict: SafetyVerdict): Record<string, unknown> {
  const out: Record<string, unknown> = { ...candidate };
  if (verdict.ratings.length) out.safetyRatings = verdict.ratings;
  if (verdict.blocked) {
    delete out.content;
    delete out.logprobsResult;
    out.finishReason = verdict.blocked;
    out.finishMessage = verdict.message;
  }
  return out;
}
