// A generic GGUF v3 writer: typed metadata, tensor infos, and tensor data streamed one tensor at a
// time. Each tensor's data is asked for only when it is written and is dropped afterwards, so a model
// is never held twice in memory. The file appears atomically: it is written to a temporary name in the
// same directory, synced and renamed; a failure leaves no partial file behind.
// Tensor types: F32 and F16 (converted from float32 here, round to nearest even).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { InvalidRequestError } from '../errors.js';
import { f32ToF16Bits } from '../engine/half.js';
import {
  GGML_TYPE, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_MAX_DIMS, GGUF_MAX_TENSOR_NAME_BYTES, GGUF_SCALAR_BYTES,
  GGUF_VALUE_TYPE, GGUF_VERSION, alignUp, type GgufMetadata, type GgufScalarType, type GgufValue,
} from './gguf-format.js';
import { GENERAL_KEYS } from './gguf-keys.js';

export type GgufTensorType = 'F32' | 'F16';

export interface GgufTensorInput {
  name: string;
  /** Row-major shape, outermost dimension first (as PyTorch and safetensors write it). */
  shape: number[];
  type: GgufTensorType;
  /** Called once, when the tensor is written; the array is not kept afterwards. */
  data: () => Float32Array | Promise<Float32Array>;
}

export interface GgufWriteOptions {
  /** Tensor data alignment in bytes (a multiple of 8); written as general.alignment. Default 32. */
  alignment?: number;
  /** Told the bytes written so far and the file's size. */
  onProgress?: (bytesWritten: number, bytes: number) => void;
}

export interface GgufWriteSummary {
  file: string;
  bytes: number;
  tensorCount: number;
  /** Offset of the tensor data section. */
  dataOffset: number;
}

/** Elements converted per chunk when writing F16, so no whole-tensor f16 copy is made. */
const F16_CHUNK = 1 << 20;

/** Writes a GGUF file to `file`, replacing it atomically. */
export async function writeGguf(
  file: string, metadata: GgufMetadata, tensors: GgufTensorInput[], opts: GgufWriteOptions = {},
): Promise<GgufWriteSummary> {
  if (os.endianness() !== 'LE') throw new InvalidRequestError('GGUF export needs a little-endian host');
  const alignment = resolveAlignment(metadata, opts.alignment);
  const meta: GgufMetadata = new Map(metadata);
  if (!meta.has(GENERAL_KEYS.alignment)) meta.set(GENERAL_KEYS.alignment, { type: 'u32', value: alignment });
  checkTensors(tensors);

  // Header: everything up to the data section, with each tensor's offset within that section.
  const header = new ByteWriter();
  header.u32(GGUF_MAGIC);
  header.u32(GGUF_VERSION);
  header.u64(BigInt(tensors.length));
  header.u64(BigInt(meta.size));
  for (const [key, value] of meta) {
    header.string(key);
    writeValue(header, key, value);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offset = alignUp(offset, alignment);
    offsets.push(offset);
    header.string(t.name);
    header.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) header.u64(BigInt(t.shape[d]!));
    header.u32(GGML_TYPE[t.type]);
    header.u64(BigInt(offset));
    offset += tensorBytes(t);
  }
  const dataOffset = alignUp(header.length, alignment);
  const total = alignUp(dataOffset + offset, alignment);

  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await fs.promises.open(tmp, 'wx');
  let pos = 0;
  const write = async (bytes: Uint8Array) => {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, pos);
      done += bytesWritten;
      pos += bytesWritten;
    }
    opts.onProgress?.(pos, total);
  };
  const padTo = async (target: number) => {
    if (target > pos) await write(new Uint8Array(target - pos));
  };
  try {
    await write(header.bytes());
    await padTo(dataOffset);
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i]!;
      await padTo(dataOffset + offsets[i]!);
      const data = await t.data();
      const count = elementCount(t.shape);
      if (!(data instanceof Float32Array) || data.length !== count) {
        throw new InvalidRequestError(`GGUF tensor "${t.name}": data has ${data?.length} elements but shape [${t.shape.join(', ')}] needs ${count}`);
      }
      if (t.type === 'F32') {
        await write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      } else {
        const half = new Uint16Array(Math.min(F16_CHUNK, count));
        for (let s = 0; s < count; s += F16_CHUNK) {
          const n = Math.min(F16_CHUNK, count - s);
          for (let j = 0; j < n; j++) half[j] = f32ToF16Bits(data[s + j]!);
          await write(new Uint8Array(half.buffer, 0, n * 2));
        }
      }
    }
    // llama.cpp accepts a file whose last tensor is unpadded; pad anyway so every tensor is whole blocks.
    await padTo(alignUp(pos, alignment));
    await fh.sync();
    await fh.close();
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw err;
  }
  return { file, bytes: pos, tensorCount: tensors.length, dataOffset };
}

function resolveAlignment(metadata: GgufMetadata, requested: number | undefined): number {
  const stated = metadata.get(GENERAL_KEYS.alignment);
  if (stated && stated.type !== 'u32') {
    throw new InvalidRequestError(`GGUF metadata "${GENERAL_KEYS.alignment}" must be a u32, got ${stated.type}`);
  }
  const fromMeta = stated ? (stated.value as number) : undefined;
  if (fromMeta !== undefined && requested !== undefined && fromMeta !== requested) {
    throw new InvalidRequestError(`GGUF alignment ${requested} disagrees with metadata "${GENERAL_KEYS.alignment}" = ${fromMeta}`);
  }
  const alignment = requested ?? fromMeta ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) {
    throw new InvalidRequestError(`GGUF alignment must be a positive multiple of 8, got ${alignment}`);
  }
  return alignment;
}

function checkTensors(tensors: GgufTensorInput[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    const nameBytes = Buffer.byteLength(t.name, 'utf8');
    if (nameBytes === 0 || nameBytes > GGUF_MAX_TENSOR_NAME_BYTES) {
      throw new InvalidRequestError(`GGUF tensor name "${t.name}" must be 1..${GGUF_MAX_TENSOR_NAME_BYTES} bytes`);
    }
    if (seen.has(t.name)) throw new InvalidRequestError(`GGUF tensor "${t.name}" is listed twice`);
    seen.add(t.name);
    if (t.shape.length === 0 || t.shape.length > GGUF_MAX_DIMS || !t.shape.every((d) => Number.isInteger(d) && d > 0)) {
      throw new InvalidRequestError(`GGUF tensor "${t.name}": shape [${t.shape.join(', ')}] must have 1..${GGUF_MAX_DIMS} positive dimensions`);
    }
    if (t.type !== 'F32' && t.type !== 'F16') throw new InvalidRequestError(`GGUF tensor "${t.name}": type ${String(t.type)} is not F32 or F16`);
  }
}

function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function tensorBytes(t: GgufTensorInput): number {
  return elementCount(t.shape) * (t.type === 'F32' ? 4 : 2);
}

function writeValue(w: ByteWriter, key: string, v: GgufValue): void {
  w.u32(GGUF_VALUE_TYPE[v.type]);
  if (v.type !== 'array') {
    writeScalar(w, key, v.type, v.value);
    return;
  }
  if (!(v.itemType in GGUF_VALUE_TYPE) || v.itemType === ('array' as string)) {
    throw new InvalidRequestError(`GGUF metadata "${key}": array item type ${String(v.itemType)} is not supported`);
  }
  w.u32(GGUF_VALUE_TYPE[v.itemType]);
  w.u64(BigInt(v.value.length));
  for (const item of v.value) writeScalar(w, key, v.itemType, item);
}

const INT_RANGE: Record<'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32', [number, number]> = {
  u8: [0, 0xff], i8: [-0x80, 0x7f], u16: [0, 0xffff], i16: [-0x8000, 0x7fff], u32: [0, 0xffffffff], i32: [-0x80000000, 0x7fffffff],
};

function writeScalar(w: ByteWriter, key: string, type: GgufScalarType, value: unknown): void {
  const bad = (what: string): never => {
    throw new InvalidRequestError(`GGUF metadata "${key}": ${JSON.stringify(typeof value === 'bigint' ? String(value) : value)} is not ${what}`);
  };
  switch (type) {
    case 'u8': case 'i8': case 'u16': case 'i16': case 'u32': case 'i32': {
      const [lo, hi] = INT_RANGE[type];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < lo || value > hi) bad(`a ${type}`);
      w.int(type, value as number);
      return;
    }
    case 'f32': case 'f64':
      if (typeof value !== 'number') bad(`a ${type}`);
      if (type === 'f32') w.f32(value as number);
      else w.f64(value as number);
      return;
    case 'u64': case 'i64': {
      if (typeof value !== 'bigint') bad(`a ${type} (bigint)`);
      const b = value as bigint;
      if (type === 'u64' ? b < 0n || b >= 1n << 64n : b < -(1n << 63n) || b >= 1n << 63n) bad(`a ${type}`);
      if (type === 'u64') w.u64(b);
      else w.i64(b);
      return;
    }
    case 'bool':
      if (typeof value !== 'boolean') bad('a bool');
      w.int('u8', value ? 1 : 0);
      return;
    case 'string':
      if (typeof value !== 'string') bad('a string');
      w.string(value as string);
      return;
  }
}

/** A growable little-endian byte buffer for the header. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  int(type: 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32', v: number): void {
    const n = GGUF_SCALAR_BYTES[type];
    this.reserve(n);
    if (type.startsWith('u')) this.buf.writeUIntLE(v, this.length, n);
    else this.buf.writeIntLE(v, this.length, n);
    this.length += n;
  }

  u32(v: number): void {
    this.int('u32', v);
  }

  u64(v: bigint): void {
    this.reserve(8);
    this.buf.writeBigUInt64LE(v, this.length);
    this.length += 8;
  }

  i64(v: bigint): void {
    this.reserve(8);
    this.buf.writeBigInt64LE(v, this.length);
    this.length += 8;
  }

  f32(v: number): void {
    this.reserve(4);
    this.buf.writeFloatLE(v, this.length);
    this.length += 4;
  }

  f64(v: number): void {
    this.reserve(8);
    this.buf.writeDoubleLE(v, this.length);
    this.length += 8;
  }

  string(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.u64(BigInt(n));
    this.reserve(n);
    this.buf.write(s, this.length, 'utf8');
    this.length += n;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}
