// json_valid and json_schema_valid (tunekit's structured-output metrics; Vertex has no computed
// equivalent). A response counts as JSON when, after trimming, it parses as one JSON value — or when
// it is exactly one fenced code block (```json ... ``` or ``` ... ```) whose body parses, since chat
// models wrap JSON that way. json_schema_valid also validates the value against a JSON Schema
// (draft-07 / 2019-09 keywords as ajv implements them); an invalid schema is the caller's error.

import { Ajv, type ValidateFunction } from 'ajv';
import { InvalidRequestError } from '../errors.js';

const FENCE = /^```[A-Za-z0-9_-]*[ \t]*\r?\n([\s\S]*?)\r?\n?```$/;

/** The JSON value a response holds, or undefined when it holds none. */
export function parseJsonResponse(response: string): { value: unknown } | undefined {
  const text = response.trim();
  const fenced = FENCE.exec(text);
  const body = fenced ? fenced[1] : text;
  try {
    return { value: JSON.parse(body) };
  } catch {
    return undefined;
  }
}

export function jsonValid(response: string): number {
  return parseJsonResponse(response) ? 1 : 0;
}

const ajv = new Ajv({ allErrors: false, strict: false });
const compiled = new Map<string, ValidateFunction>();

/** A validator for a schema (compiled once per distinct schema text). */
export function schemaValidator(schema: unknown): ValidateFunction {
  const key = JSON.stringify(schema);
  let v = compiled.get(key);
  if (!v) {
    if (schema === null || (typeof schema !== 'object' && typeof schema !== 'boolean')) {
      throw new InvalidRequestError(`json_schema_valid: the schema must be a JSON object, got ${key}.`);
    }
    try {
      v = ajv.compile(schema as object);
    } catch (e) {
      throw new InvalidRequestError(`json_schema_valid: the schema is not a valid JSON Schema: ${(e as Error).message}`);
    }
    compiled.set(key, v);
  }
  return v;
}

/** 1 when the response is JSON that the schema accepts; the first violation comes back as the reason. */
export function jsonSchemaValid(response: string, schema: unknown): { score: number; reason?: string } {
  const validate = schemaValidator(schema);
  const parsed = parseJsonResponse(response);
  if (!parsed) return { score: 0, reason: 'the response is not JSON' };
  if (validate(parsed.value)) return { score: 1 };
  const err = validate.errors?.[0];
  return { score: 0, reason: err ? `${err.instancePath || '/'} ${err.message ?? 'is invalid'}` : 'schema violation' };
}
