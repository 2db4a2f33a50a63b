// Response schemas compiled to the one shape the JSON automaton follows. Two dialects come in: Vertex's
// `Schema` (OpenAPI 3.0 subset: type names in capitals, `nullable`, int64 numbers as strings) and JSON
// Schema (`responseJsonSchema`, OpenAI's `json_schema`). What the decoder can enforce is enforced;
// keywords it cannot enforce (pattern, minimum, lengths, $ref, ...) are refused by path, never ignored.
// Annotations (title, description, example, default, propertyOrdering, $schema) are accepted and ignored.

export type SchemaNode =
  | { kind: 'any' }
  | { kind: 'string'; format?: FormatTemplate }
  | { kind: 'number'; integer: boolean }
  | { kind: 'boolean' }
  | { kind: 'null' }
  /** Exactly one of these JSON texts (enum, const). */
  | { kind: 'literals'; texts: string[] }
  /** props null: any keys, any values. Only declared keys are generated. */
  | { kind: 'object'; props: Map<string, SchemaNode> | null; required: string[] }
  | { kind: 'array'; items: SchemaNode; minItems: number; maxItems: number }
  | { kind: 'anyOf'; options: SchemaNode[] };

/** A fixed-length string format: per position, which byte may come given the previous one. */
export interface FormatTemplate {
  name: string;
  length: number;
  allows(pos: number, prev: number, b: number): boolean;
  /** The smallest allowed byte at a position (used to finish a string the shortest way). */
}

export class SchemaError extends Error {
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

export const ANY: SchemaNode = { kind: 'any' };

const isDigit = (b: number, lo = 0x30, hi = 0x39) => b >= lo && b <= hi;
const c = (ch: string) => ch.charCodeAt(0);

// RFC 3339 full-date / partial-time / date-time, narrowed so that every string the decoder can write is a
// real date and time: months 01-12, days 01-28, hours 00-23, minutes and seconds 00-59, UTC ("Z").
const DATE = (pos: number, prev: number, b: number): boolean => {
  if (pos < 4) return isDigit(b);
  if (pos === 4 || pos === 7) return b === c('-');
  if (pos === 5) return isDigit(b, 0x30, 0x31);
  if (pos === 6) return prev === c('0') ? isDigit(b, 0x31, 0x39) : isDigit(b, 0x30, 0x32);
  if (pos === 8) return isDigit(b, 0x30, 0x32);
  if (pos === 9) return prev === c('0') ? isDigit(b, 0x31, 0x39) : prev === c('2') ? isDigit(b, 0x30, 0x38) : isDigit(b);
  return false;
};
const TIME = (pos: number, prev: number, b: number): boolean => {
  if (pos === 0) return isDigit(b, 0x30, 0x32);
  if (pos === 1) return prev === c('2') ? isDigit(b, 0x30, 0x33) : isDigit(b);
  if (pos === 2 || pos === 5) return b === c(':');
  if (pos === 3 || pos === 6) return isDigit(b, 0x30, 0x35);
  if (pos === 4 || pos === 7) return isDigit(b);
  if (pos === 8) return b === c('Z');
  return false;
};
const FORMATS: Record<string, FormatTemplate> = {
  date: { name: 'date', length: 10, allows: DATE },
  time: { name: 'time', length: 9, allows: TIME },
  'date-time': {
    name: 'date-time', length: 20,
    allows: (pos, prev, b) => (pos < 10 ? DATE(pos, prev, b) : pos === 10 ? b === c('T') : TIME(pos - 11, prev, b)),
  },
};
/** Formats that only annotate (number widths, Vertex's "enum" marker). */
const ANNOTATION_FORMATS = new Set(['enum', 'int32', 'int64', 'float', 'double']);

const IGNORED = new Set(['title', 'description', 'example', 'examples', 'default', 'propertyOrdering', 'property_ordering', '$schema', '$id', '$comment']);
const UNSUPPORTED = new Set([
  'pattern', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minLength', 'maxLength', 'min_length', 'max_length',
  'minProperties', 'maxProperties', 'min_properties', 'max_properties', '$ref', 'ref', '$defs', 'defs', 'definitions', 'allOf', 'not', 'if', 'then', 'else',
  'patternProperties', 'propertyNames', 'dependentRequired', 'dependentSchemas', 'uniqueItems', 'contains', 'prefixItems', 'unevaluatedProperties', 'unevaluatedItems',
]);

const snake = (k: string) => k.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase());

function count(v: unknown, path: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new SchemaError(path, `must be a whole number >= 0, got ${JSON.stringify(v)}`);
  return n;
}

/** Compiles a Vertex `Schema` (dialect 'vertex') or a JSON Schema ('json'). Paths are relative ("properties.a.type"). */
export function compileSchema(schema: unknown, dialect: 'vertex' | 'json', path = ''): SchemaNode {
  const at = (k: string) => (path ? `${path}.${k}` : k);
  if (dialect === 'json' && schema === true) return ANY;
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) throw new SchemaError(path, 'a schema must be an object');
  const raw = schema as Record<string, unknown>;
  const s: Record<string, unknown> = {};
  for (const [k0, v] of Object.entries(raw)) {
    if (v === null || v === undefined) continue;
    const k = dialect === 'vertex' ? snake(k0) : k0;
    if (IGNORED.has(k)) continue;
    if (UNSUPPORTED.has(k)) throw new SchemaError(at(k0), `the schema keyword "${k0}" cannot be enforced by constrained decoding; it is not supported`);
    s[k] = v;
  }
  const known = new Set(['type', 'format', 'nullable', 'enum', 'const', 'properties', 'required', 'items', 'minItems', 'maxItems', 'anyOf', 'oneOf', 'additionalProperties']);
  for (const k of Object.keys(s)) if (!known.has(k)) throw new SchemaError(at(k), `unknown schema keyword "${k}"`);

  const wrapNull = (n: SchemaNode): SchemaNode => (s.nullable === true ? { kind: 'anyOf', options: [n, { kind: 'null' }] } : n);
  if (s.nullable !== undefined && typeof s.nullable !== 'boolean') throw new SchemaError(at('nullable'), 'must be true or false');

  if (s.anyOf !== undefined || s.oneOf !== undefined) {
    const key = s.anyOf !== undefined ? 'anyOf' : 'oneOf';
    const list = s[key];
    if (!Array.isArray(list) || list.length === 0) throw new SchemaError(at(key), 'must be a non-empty list of schemas');
    const options = list.map((o, i) => compileSchema(o, dialect, `${at(key)}[${i}]`));
    const others = Object.keys(s).filter((k) => k !== key && k !== 'nullable');
    if (others.length > 0) throw new SchemaError(at(others[0]!), `"${key}" cannot be combined with "${others[0]}" here`);
    return wrapNull({ kind: 'anyOf', options });
  }
  if (s.const !== undefined) return wrapNull({ kind: 'literals', texts: [JSON.stringify(raw.const)] });
  if (s.enum !== undefined) {
    if (!Array.isArray(s.enum) || s.enum.length === 0) throw new SchemaError(at('enum'), 'must be a non-empty list');
    if (dialect === 'vertex' && s.enum.some((v) => typeof v !== 'string')) throw new SchemaError(at('enum'), 'enum values must be strings');
    return wrapNull({ kind: 'literals', texts: [...new Set(s.enum.map((v) => JSON.stringify(v)))] });
  }

  let types: string[];
  if (s.type === undefined) types = [];
  else if (Array.isArray(s.type) && dialect === 'json') types = s.type.map(String);
  else if (typeof s.type === 'string') types = [s.type];
  else throw new SchemaError(at('type'), `must be a type name, got ${JSON.stringify(s.type)}`);
  types = types.map((t) => t.toLowerCase()).filter((t) => t !== 'type_unspecified');
  if (types.length === 0) {
    // No type: what the other keywords imply, or any value.
    if (s.properties !== undefined) types = ['object'];
    else if (s.items !== undefined) types = ['array'];
    else return wrapNull(ANY);
  }
  const nodes = types.map((t) => one(t));
  return wrapNull(nodes.length === 1 ? nodes[0]! : { kind: 'anyOf', options: nodes });

  function one(type: string): SchemaNode {
    switch (type) {
      case 'string': {
        const f = s.format;
        if (f === undefined || (typeof f === 'string' && ANNOTATION_FORMATS.has(f))) return { kind: 'string' };
        if (typeof f === 'string' && FORMATS[f]) return { kind: 'string', format: FORMATS[f] };
        throw new SchemaError(at('format'), `the string format ${JSON.stringify(f)} is not supported (supported: ${Object.keys(FORMATS).join(', ')})`);
      }
      case 'number':
      case 'integer':
        return { kind: 'number', integer: type === 'integer' };
      case 'boolean':
        return { kind: 'boolean' };
      case 'null':
        return { kind: 'null' };
      case 'array': {
        const items = s.items === undefined ? ANY : compileSchema(s.items, dialect, at('items'));
        const minItems = s.minItems === undefined ? 0 : count(s.minItems, at('minItems'));
        const maxItems = s.maxItems === undefined ? Infinity : count(s.maxItems, at('maxItems'));
        if (maxItems < minItems) throw new SchemaError(at('maxItems'), `is less than minItems (${minItems})`);
        return { kind: 'array', items, minItems, maxItems };
      }
      case 'object': {
        if (s.additionalProperties !== undefined && typeof s.additionalProperties !== 'boolean') {
          throw new SchemaError(at('additionalProperties'), 'only true or false is supported');
        }
        if (s.properties === undefined) {
          if (s.required !== undefined && Array.isArray(s.required) && s.required.length > 0) throw new SchemaError(at('required'), 'names properties that are not declared');
          return { kind: 'object', props: null, required: [] };
        }
        if (s.properties === null || typeof s.properties !== 'object' || Array.isArray(s.properties)) throw new SchemaError(at('properties'), 'must be an object of schemas');
        const props = new Map<string, SchemaNode>();
        for (const [k, v] of Object.entries(s.properties as Record<string, unknown>)) props.set(k, compileSchema(v, dialect, `${at('properties')}.${k}`));
        const required = s.required === undefined ? [] : s.required;
        if (!Array.isArray(required) || required.some((r) => typeof r !== 'string')) throw new SchemaError(at('required'), 'must be a list of property names');
        for (const r of required as string[]) if (!props.has(r)) throw new SchemaError(at('required'), `names "${r}", which is not in properties`);
        return { kind: 'object', props, required: [...new Set(required as string[])] };
      }
      default:
        throw new SchemaError(at('type'), `unknown type ${JSON.stringify(type)}`);
    }
  }
}

/** Length of the shortest JSON text a node accepts (bytes; ASCII throughout). */
export function minLength(n: SchemaNode): number {
  const cached = lengths.get(n);
  if (cached !== undefined) return cached;
  let len: number;
  switch (n.kind) {
    case 'any': case 'number': len = 1; break;
    case 'string': len = 2 + (n.format?.length ?? 0); break;
    case 'boolean': case 'null': len = 4; break;
    case 'literals': len = Math.min(...n.texts.map((t) => utf8Length(t))); break;
    case 'object': {
      len = 2;
      for (const [i, r] of n.required.entries()) len += (i > 0 ? 1 : 0) + entryLength(r, n.props!.get(r)!);
      break;
    }
    case 'array': len = 2 + n.minItems * minLength(n.items) + Math.max(0, n.minItems - 1); break;
    case 'anyOf': len = Math.min(...n.options.map(minLength)); break;
  }
  lengths.set(n, len);
  return len;
}
const lengths = new WeakMap<SchemaNode, number>();

/** `"key":value` at its shortest. */
export function entryLength(key: string, value: SchemaNode): number {
  return utf8Length(JSON.stringify(key)) + 1 + minLength(value);
}

export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
