// Function calling through a model's chat template. Declarations go to the template as transformers
// passes them (`tools`: [{type: "function", function: {name, description, parameters}}], parameters as
// JSON Schema); the model answers in the markup its template teaches, which decides the style:
// - 'hermes' (Qwen2.5/Qwen3): <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>
// - 'llama3' (Llama 3.1/3.2): a bare JSON object {"name": ..., "parameters": {...}}
// A template that mentions neither has no tool support. For mode ANY the call is constrained decoding
// of that markup around a JSON object whose name is one of the allowed functions and whose arguments
// follow its declared parameters; for AUTO the text is parsed, and arguments are checked against the
// declaration by the same automaton.

import { accepting, jsonStart, stepAll } from './automaton.js';
import type { ResponseFormat } from './constraint.js';
import type { SchemaNode } from './schema.js';

export type ToolCallStyle = 'hermes' | 'llama3';

export interface FunctionDeclaration {
  name: string;
  description?: string;
  /** Compiled parameters (an object schema; any object when not declared). */
  parameters: SchemaNode;
  /** The parameters as JSON Schema, for the template. */
  jsonSchema: Record<string, unknown>;
}

export interface FunctionCall {
  name: string;
  args: Record<string, unknown>;
}

/** The tool-call style a chat template teaches, or null when it has no tool support. */
export function toolCallStyle(template: string | null): ToolCallStyle | null {
  if (!template || !template.includes('tools')) return null;
  if (template.includes('<tool_call>')) return 'hermes';
  if (template.includes('"parameters"') || template.includes('\\"parameters\\"')) return 'llama3';
  return null;
}

/** transformers' `tools` value for the template. */
export function templateTools(decls: FunctionDeclaration[]): unknown[] {
  return decls.map((d) => ({ type: 'function', function: { name: d.name, ...(d.description ? { description: d.description } : {}), parameters: d.jsonSchema } }));
}

/** A Vertex Schema (OpenAPI subset) as JSON Schema: lower-case types, nullable as a type list. */
export function vertexToJsonSchema(schema: unknown): Record<string, unknown> {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return {};
  const s = schema as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) {
    if (v === null || v === undefined) continue;
    switch (k) {
      case 'type': {
        const t = String(v).toLowerCase();
        if (t !== 'type_unspecified') out.type = s.nullable === true ? [t, 'null'] : t;
        break;
      }
      case 'nullable': case 'propertyOrdering': case 'property_ordering': break;
      case 'properties':
        out.properties = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([p, ps]) => [p, vertexToJsonSchema(ps)]));
        break;
      case 'items': out.items = vertexToJsonSchema(v); break;
      case 'anyOf': case 'any_of': out.anyOf = (v as unknown[]).map(vertexToJsonSchema); break;
      case 'minItems': case 'maxItems': case 'min_items': case 'max_items':
        out[k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = Number(v);
        break;
      case 'format': if (v !== 'enum') out.format = v; break;
      default: out[k] = v;
    }
  }
  return out;
}

/** What constrained decoding produces for a forced call (mode ANY) to one of `decls`. */
export function toolCallFormat(style: ToolCallStyle, decls: FunctionDeclaration[]): ResponseFormat {
  const argsKey = style === 'hermes' ? 'arguments' : 'parameters';
  const options: SchemaNode[] = decls.map((d) => ({
    kind: 'object',
    props: new Map<string, SchemaNode>([['name', { kind: 'literals', texts: [JSON.stringify(d.name)] }], [argsKey, d.parameters]]),
    required: ['name', argsKey],
  }));
  const schema: SchemaNode = options.length === 1 ? options[0]! : { kind: 'anyOf', options };
  return style === 'hermes' ? { kind: 'wrapped', prefix: '<tool_call>\n', schema, suffix: '\n</tool_call>' } : { kind: 'json', schema };
}

/** Whether `value` is accepted by a compiled schema (the decoding automaton as a validator). */
export function conforms(node: SchemaNode, value: unknown): boolean {
  const s = stepAll(jsonStart(node), new TextEncoder().encode(JSON.stringify(value)));
  return s !== null && accepting(s);
}

/**
 * The calls in a model's answer, in its template's style: null when the answer holds no call (plain
 * text); 'malformed' when it tries one that does not parse, names an undeclared function, or whose
 * arguments do not follow the declared parameters.
 */
export function parseToolCalls(style: ToolCallStyle, text: string, decls: FunctionDeclaration[]): { calls: FunctionCall[]; text: string } | 'malformed' | null {
  const bodies: string[] = [];
  let rest = text;
  if (style === 'hermes') {
    if (!text.includes('<tool_call>')) return null;
    const re = /<tool_call>([\s\S]*?)(<\/tool_call>|$)/g;
    for (let m = re.exec(text); m; m = re.exec(text)) bodies.push(m[1]!.trim());
    rest = text.replace(re, '').trim();
  } else {
    const t = text.replace(/^<\|python_tag\|>/, '').trim();
    if (!t.startsWith('{') || !/"name"\s*:/.test(t)) return null;
    bodies.push(t);
    rest = '';
  }
  const calls: FunctionCall[] = [];
  const argsKey = style === 'hermes' ? 'arguments' : 'parameters';
  for (const body of bodies) {
    let v: unknown;
    try {
      v = JSON.parse(body);
    } catch {
      return 'malformed';
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'malformed';
    const o = v as Record<string, unknown>;
    const decl = decls.find((d) => d.name === o.name);
    const args = o[argsKey] ?? o.arguments ?? o.parameters ?? {};
    if (!decl || args === null || typeof args !== 'object' || Array.isArray(args) || !conforms(decl.parameters, args)) return 'malformed';
    calls.push({ name: decl.name, args: args as Record<string, unknown> });
  }
  return { calls, text: rest };
}
