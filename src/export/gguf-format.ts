// The GGUF container format (version 3), as the writer and the reader share it: magic, value type
// codes, ggml tensor type codes, and the typed metadata values. Layout: magic, version, tensor count,
// key/value count, the key/values, the tensor infos, padding to the alignment, then tensor data, each
// tensor starting at a multiple of the alignment. Everything little-endian; strings are a u64 byte
// length and UTF-8 bytes. Tensor dimensions are stored innermost first (ggml's ne0), the reverse of
// the row-major shapes this code base uses elsewhere.

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_NAME is 64 bytes including the terminating NUL. */
export const GGUF_MAX_TENSOR_NAME_BYTES = 63;
/** ggml's GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;

/** Metadata value types and their codes in the file. */
export const GGUF_VALUE_TYPE = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
} as const;

export type GgufValueTypeName = keyof typeof GGUF_VALUE_TYPE;
export type GgufNumberType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64';
export type GgufBigIntType = 'u64' | 'i64';
export type GgufScalarType = GgufNumberType | GgufBigIntType | 'bool' | 'string';

export type GgufScalar =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string };

export type GgufArray =
  | { type: 'array'; itemType: GgufNumberType; value: number[] }
  | { type: 'array'; itemType: GgufBigIntType; value: bigint[] }
  | { type: 'array'; itemType: 'bool'; value: boolean[] }
  | { type: 'array'; itemType: 'string'; value: string[] };

/** One metadata value. Arrays of arrays are legal GGUF but unused by llama.cpp, so not supported. */
export type GgufValue = GgufScalar | GgufArray;

export type GgufMetadata = Map<string, GgufValue>;

/** Constructors, so call sites read `gguf.u32(n)` rather than spelling out the tagged object. */
export const gguf = {
  u8: (value: number): GgufValue => ({ type: 'u8', value }),
  i8: (value: number): GgufValue => ({ type: 'i8', value }),
  u16: (value: number): GgufValue => ({ type: 'u16', value }),
  i16: (value: number): GgufValue => ({ type: 'i16', value }),
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  f64: (value: number): GgufValue => ({ type: 'f64', value }),
  u64: (value: bigint | number): GgufValue => ({ type: 'u64', value: BigInt(value) }),
  i64: (value: bigint | number): GgufValue => ({ type: 'i64', value: BigInt(value) }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  str: (value: string): GgufValue => ({ type: 'string', value }),
  numbers: (itemType: GgufNumberType, value: number[]): GgufValue => ({ type: 'array', itemType, value }),
  bigints: (itemType: GgufBigIntType, value: bigint[]): GgufValue => ({ type: 'array', itemType, value }),
  bools: (value: boolean[]): GgufValue => ({ type: 'array', itemType: 'bool', value }),
  strs: (value: string[]): GgufValue => ({ type: 'array', itemType: 'string', value }),
};

/** Byte size of each fixed-size value type. */
export const GGUF_SCALAR_BYTES: Record<Exclude<GgufScalarType, 'string'>, number> = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, u64: 8, i64: 8, f64: 8,
};

/** ggml tensor types this code writes, and a few more the reader can name. Codes are ggml's enum. */
export const GGML_TYPE = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9, Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13,
  Q6_K: 14, Q8_K: 15, I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, BF16: 30,
} as const;

export type GgmlTypeName = keyof typeof GGML_TYPE;

/** Elements per block and bytes per block, for the types whose size the reader can check. */
export const GGML_BLOCK: Partial<Record<GgmlTypeName, { elements: number; bytes: number }>> = {
  F32: { elements: 1, bytes: 4 }, F16: { elements: 1, bytes: 2 }, BF16: { elements: 1, bytes: 2 },
  F64: { elements: 1, bytes: 8 }, I8: { elements: 1, bytes: 1 }, I16: { elements: 1, bytes: 2 },
  I32: { elements: 1, bytes: 4 }, I64: { elements: 1, bytes: 8 },
  Q4_0: { elements: 32, bytes: 18 }, Q4_1: { elements: 32, bytes: 20 }, Q5_0: { elements: 32, bytes: 22 },
  Q5_1: { elements: 32, bytes: 24 }, Q8_0: { elements: 32, bytes: 34 }, Q8_1: { elements: 32, bytes: 36 },
  Q2_K: { elements: 256, bytes: 84 }, Q3_K: { elements: 256, bytes: 110 }, Q4_K: { elements: 256, bytes: 144 },
  Q5_K: { elements: 256, bytes: 176 }, Q6_K: { elements: 256, bytes: 210 }, Q8_K: { elements: 256, bytes: 292 },
};

export function ggmlTypeName(code: number): GgmlTypeName | null {
  for (const [name, c] of Object.entries(GGML_TYPE)) if (c === code) return name as GgmlTypeName;
  return null;
}

export function alignUp(offset: number, alignment: number): number {
  return Math.ceil(offset / alignment) * alignment;
}
