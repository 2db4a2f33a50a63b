// Reading GGUF files (versions 2 and 3): metadata, tensor infos, and tensor data as float32 for F32,
// F16 and BF16 tensors. The header is read incrementally, so a multi-gigabyte file costs only its
// header; tensor data is read on request. Errors name the file and what is wrong with it.

import * as fs from 'node:fs';
import { InvalidModelError, UnsupportedModelError } from '../errors.js';
import { bf16ArrayToF32, f16ArrayToF32 } from '../engine/half.js';
import {
  GGML_BLOCK, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_SCALAR_BYTES, GGUF_VALUE_TYPE, alignUp, ggmlTypeName,
  type GgmlTypeName, type GgufMetadata, type GgufScalarType, type GgufValue,
} from './gguf-format.js';
import { GENERAL_KEYS } from './gguf-keys.js';

export interface GgufTensorInfo {
  name: string;
  /** Row-major shape, outermost first (the reverse of the dims stored in the file). */
  shape: number[];
  /** ggml type code, and its name when known. */
  typeCode: number;
  type: GgmlTypeName | null;
  /** Offset from the start of the data section. */
  offset: number;
  /** Byte size, when the type's block size is known. */
  bytes: number | null;
}

export interface GgufFile {
  file: string;
  version: number;
  metadata: GgufMetadata;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the tensor data section. */
  dataOffset: number;
  fileSize: number;
}

const MAX_STRING_BYTES = 1 << 30;
const MAX_COUNT = 2 ** 32;
const READ_CHUNK = 1 << 20;

/** Reads the header (metadata and tensor infos) of a GGUF file. */
export function readGgufHeader(file: string): GgufFile {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new InvalidModelError(`${file}: cannot open GGUF file (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  try {
    const fileSize = fs.fstatSync(fd).size;
    const r = new Cursor(fd, file, fileSize);
    const magic = r.u32();
    if (magic !== GGUF_MAGIC) throw new InvalidModelError(`${file}: not a GGUF file (magic 0x${magic.toString(16)})`);
    const version = r.u32();
    if (version !== 2 && version !== 3) throw new UnsupportedModelError(`${file}: GGUF version ${version} is not supported (2 or 3)`);
    const tensorCount = r.count('tensor count');
    const kvCount = r.count('metadata count');
    const metadata: GgufMetadata = new Map();
    for (let i = 0; i < kvCount; i++) {
      const key = r.string();
      if (metadata.has(key)) throw new InvalidModelError(`${file}: metadata key "${key}" appears twice`);
      metadata.set(key, readValue(r, key));
    }
    const alignValue = metadata.get(GENERAL_KEYS.alignment);
    let alignment = GGUF_DEFAULT_ALIGNMENT;
    if (alignValue) {
      if (alignValue.type !== 'u32' || alignValue.value === 0 || alignValue.value % 8 !== 0) {
        throw new InvalidModelError(`${file}: "${GENERAL_KEYS.alignment}" must be a u32 multiple of 8`);
      }
      alignment = alignValue.value;
    }
    const tensors: GgufTensorInfo[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = r.string();
      const nDims = r.u32();
      if (nDims < 1 || nDims > 4) throw new InvalidModelError(`${file}: tensor "${name}" has ${nDims} dimensions`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(r.count(`dimension of tensor "${name}"`));
      const typeCode = r.u32();
      const offset = Number(r.u64());
      const type = ggmlTypeName(typeCode);
      const block = type ? GGML_BLOCK[type] : undefined;
      const elements = dims.reduce((a, b) => a * b, 1);
      const bytes = block ? (elements / block.elements) * block.bytes : null;
      if (offset % alignment !== 0) throw new InvalidModelError(`${file}: tensor "${name}" offset ${offset} is not aligned to ${alignment}`);
      tensors.push({ name, shape: dims.reverse(), typeCode, type, offset, bytes });
    }
    const dataOffset = alignUp(r.pos, alignment);
    for (const t of tensors) {
      if (t.bytes !== null && dataOffset + t.offset + t.bytes > fileSize) {
        throw new InvalidModelError(`${file}: tensor "${t.name}" extends past the end of the file (truncated?)`);
      }
    }
    return { file, version, metadata, tensors, alignment, dataOffset, fileSize };
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads one tensor (F32, F16 or BF16) as float32, in row-major order. */
export function readGgufTensorF32(gguf: GgufFile, name: string): Float32Array {
  const info = gguf.tensors.find((t) => t.name === name);
  if (!info) throw new InvalidModelError(`${gguf.file}: no tensor named "${name}"`);
  if (info.type !== 'F32' && info.type !== 'F16' && info.type !== 'BF16') {
    throw new UnsupportedModelError(`${gguf.file}: tensor "${name}" has type ${info.type ?? info.typeCode}; only F32, F16 and BF16 can be read`);
  }
  const count = info.shape.reduce((a, b) => a * b, 1);
  const buf = Buffer.alloc(info.bytes!);
  const fd = fs.openSync(gguf.file, 'r');
  try {
    let done = 0;
    while (done < buf.length) {
      const n = fs.readSync(fd, buf, done, buf.length - done, gguf.dataOffset + info.offset + done);
      if (n === 0) throw new InvalidModelError(`${gguf.file}: tensor "${name}" is truncated`);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  if (info.type === 'F32') return new Float32Array(buf.buffer, buf.byteOffset, count).slice();
  const half = new Uint16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  return info.type === 'F16' ? f16ArrayToF32(half) : bf16ArrayToF32(half);
}

/** A metadata value by key, checked to be of the given type. */
export function ggufValue<T extends GgufValue['type']>(gguf: GgufFile, key: string, type: T): Extract<GgufValue, { type: T }> {
  const v = gguf.metadata.get(key);
  if (!v) throw new InvalidModelError(`${gguf.file}: metadata key "${key}" is missing`);
  if (v.type !== type) throw new InvalidModelError(`${gguf.file}: metadata key "${key}" is ${v.type}, expected ${type}`);
  return v as Extract<GgufValue, { type: T }>;
}

const TYPE_BY_CODE = new Map<number, keyof typeof GGUF_VALUE_TYPE>(
  Object.entries(GGUF_VALUE_TYPE).map(([k, v]) => [v, k as keyof typeof GGUF_VALUE_TYPE]),
);

function readValue(r: Cursor, key: string): GgufValue {
  const code = r.u32();
  const type = TYPE_BY_CODE.get(code);
  if (!type) throw new InvalidModelError(`${r.file}: metadata "${key}" has unknown value type ${code}`);
  if (type !== 'array') return { type, value: readScalar(r, type) } as GgufValue;
  const itemCode = r.u32();
  const itemType = TYPE_BY_CODE.get(itemCode);
  if (!itemType || itemType === 'array') {
    throw new UnsupportedModelError(`${r.file}: metadata "${key}" is an array of ${itemType ?? itemCode}, which is not supported`);
  }
  const n = r.count(`length of "${key}"`);
  const value: unknown[] = new Array(n);
  for (let i = 0; i < n; i++) value[i] = readScalar(r, itemType);
  return { type: 'array', itemType, value } as GgufValue;
}

function readScalar(r: Cursor, type: GgufScalarType): number | bigint | boolean | string {
  if (type === 'string') return r.string();
  const n = GGUF_SCALAR_BYTES[type];
  const b = r.take(n);
  switch (type) {
    case 'u8': return b.readUInt8(r.at);
    case 'i8': return b.readInt8(r.at);
    case 'u16': return b.readUInt16LE(r.at);
    case 'i16': return b.readInt16LE(r.at);
    case 'u32': return b.readUInt32LE(r.at);
    case 'i32': return b.readInt32LE(r.at);
    case 'f32': return b.readFloatLE(r.at);
    case 'f64': return b.readDoubleLE(r.at);
    case 'u64': return b.readBigUInt64LE(r.at);
    case 'i64': return b.readBigInt64LE(r.at);
    case 'bool': {
      const v = b.readUInt8(r.at);
      if (v > 1) throw new InvalidModelError(`${r.file}: bool value ${v} at offset ${r.pos - 1}`);
      return v === 1;
    }
  }
}

/** Sequential reads from a file through a window buffer that is refilled on demand. */
class Cursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  /** Absolute position of the next byte to read. */
  pos = 0;
  /** Offset within the buffer returned by the last take(). */
  at = 0;

  constructor(private readonly fd: number, readonly file: string, private readonly size: number) {}

  /** Makes n bytes at pos available; returns the buffer, with `at` the offset of those bytes. */
  take(n: number): Buffer {
    if (this.pos + n > this.size) throw new InvalidModelError(`${this.file}: truncated GGUF header (needs ${this.pos + n} bytes, file has ${this.size})`);
    if (this.pos + n > this.bufStart + this.buf.length) {
      const len = Math.min(Math.max(n, READ_CHUNK), this.size - this.pos);
      const next = Buffer.alloc(len);
      let done = 0;
      while (done < len) {
        const got = fs.readSync(this.fd, next, done, len - done, this.pos + done);
        if (got === 0) break;
        done += got;
      }
      this.buf = next;
      this.bufStart = this.pos;
    }
    this.at = this.pos - this.bufStart;
    this.pos += n;
    return this.buf;
  }

  u32(): number {
    return this.take(4).readUInt32LE(this.at);
  }

  u64(): bigint {
    return this.take(8).readBigUInt64LE(this.at);
  }

  count(what: string): number {
    const v = this.u64();
    if (v >= BigInt(MAX_COUNT)) throw new InvalidModelError(`${this.file}: implausible ${what} ${v}`);
    return Number(v);
  }

  string(): string {
    const n = this.count('string length');
    if (n > MAX_STRING_BYTES) throw new InvalidModelError(`${this.file}: string of ${n} bytes`);
    const b = this.take(n);
    return b.toString('utf8', this.at, this.at + n);
  }
}
