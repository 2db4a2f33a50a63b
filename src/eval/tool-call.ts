// The tool-use metrics of Vertex's Gen AI evaluation service (tool_call_valid, tool_name_match,
// tool_parameter_key_match, tool_parameter_kv_match). Prediction and reference are JSON strings of the
// form Vertex documents: {"content": "...", "tool_calls": [{"name": "f", "arguments": {...}}]}.
// Calls are paired in order. A prediction that is not such a value scores 0 on every metric.
// - tool_call_valid: 1 when the prediction is well formed (an object whose tool_calls is an array of
//   {name: string, arguments: object}) with as many calls as the reference.
// - tool_name_match: 1 when, in addition, every call has the reference call's name.
// - tool_parameter_key_match: the mean over reference calls of |shared keys| / |keys on either side|
//   (1 when both have none), so both missing and invented parameters cost.
// - tool_parameter_kv_match: the same with a key counted only when its value matches too (JSON
//   equality; strings compared trimmed and case-insensitively unless useStrictStringMatch).

import { InvalidRequestError } from '../errors.js';

export interface ToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The tool calls of a prediction or reference, or undefined when it is not well formed. */
export function parseToolCalls(text: string): ToolCall[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(value)) return undefined;
  const calls = value.tool_calls ?? [];
  if (!Array.isArray(calls)) return undefined;
  const out: ToolCall[] = [];
  for (const c of calls) {
    if (!isObject(c) || typeof c.name !== 'string') return undefined;
    const args = c.arguments ?? {};
    if (!isObject(args)) return undefined;
    out.push({ name: c.name, arguments: args });
  }
  return out;
}

function referenceCalls(reference: string): ToolCall[] {
  const calls = parseToolCalls(reference);
  if (!calls) throw new InvalidRequestError(`The reference is not a tool-call JSON value ({"content", "tool_calls": [{"name", "arguments"}]}): ${JSON.stringify(reference.slice(0, 80))}`);
  return calls;
}

function paired(prediction: string, reference: string): [ToolCall[], ToolCall[]] | undefined {
  const ref = referenceCalls(reference);
  const pred = parseToolCalls(prediction);
  if (!pred || pred.length !== ref.length) return undefined;
  return [pred, ref];
}

export function toolCallValid(prediction: string, reference: string): number {
  return paired(prediction, reference) ? 1 : 0;
}

export function toolNameMatch(prediction: string, reference: string): number {
  const p = paired(prediction, reference);
  if (!p) return 0;
  return p[0].every((c, i) => c.name === p[1][i].name) ? 1 : 0;
}

function valuesEqual(a: unknown, b: unknown, strict: boolean): boolean {
  if (typeof a === 'string' && typeof b === 'string') return strict ? a === b : a.trim().toLowerCase() === b.trim().toLowerCase();
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => valuesEqual(x, b[i], strict));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && valuesEqual(a[k], b[k], strict));
  }
  return a === b;
}

function parameterScore(prediction: string, reference: string, withValues: boolean, strict: boolean): number {
  const p = paired(prediction, reference);
  if (!p) return 0;
  const [pred, ref] = p;
  if (ref.length === 0) return 1;
  let sum = 0;
  ref.forEach((r, i) => {
    const keys = new Set([...Object.keys(r.arguments), ...Object.keys(pred[i].arguments)]);
    if (keys.size === 0) {
      sum += 1;
      return;
    }
    let shared = 0;
    for (const k of keys) {
      if (!Object.hasOwn(r.arguments, k) || !Object.hasOwn(pred[i].arguments, k)) continue;
      if (!withValues || valuesEqual(pred[i].arguments[k], r.arguments[k], strict)) shared++;
    }
    sum += shared / keys.size;
  });
  return sum / ref.length;
}

export function toolParameterKeyMatch(prediction: string, reference: string): number {
  return parameterScore(prediction, reference, false, true);
}

export function toolParameterKvMatch(prediction: string, reference: string, useStrictStringMatch = false): number {
  return parameterScore(prediction, reference, true, useStrictStringMatch);
}
