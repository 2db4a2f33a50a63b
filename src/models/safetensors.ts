// Reading and writing the safetensors format: an 8-byte little-endian header length, a JSON header
// mapping tensor names to {dtype, shape, data_offsets}, then the raw little-endian data.
// Every tensor is handed to the engine as float32; F16 and BF16 are converted on load.
// Errors name the file and the tensor; a truncated file is detected before any data is trusted.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidModelError, UnsupportedModelError } from '../errors.js';
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from '../engine/half.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte offsets [begin, end) relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  file: string;
  dataStart: number;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

export function readSafetensorsHeader(file: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new InvalidModelError(`${file}: cannot open weights file (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  try {
    const fileSize = fs.fstatSync(fd).size;
    if (fileSize < 8) throw new InvalidModelError(`${file}: truncated safetensors file (${fileSize} bytes, no header)`);
    const lenBuf = Buffer.alloc(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > MAX_HEADER_BYTES || 8 + headerLen > fileSize) {
      throw new InvalidModelError(`${file}: truncated or corrupt safetensors file (header of ${headerLen} bytes, file of ${fileSize})`);
    }
    const headerBuf = Buffer.alloc(headerLen);
    fs.readSync(fd, headerBuf, 0, headerLen, 8);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(headerBuf.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new InvalidModelError(`${file}: safetensors header is not valid JSON`);
    }
    const dataStart = 8 + headerLen;
    const dataSize = fileSize - dataStart;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(json)) {
      if (name === '__metadata__') {
        metadata = (raw ?? {}) as Record<string, string>;
        continue;
      }
      const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const dtype = entry.dtype;
      if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') {
        throw new UnsupportedModelError(`${file}: tensor "${name}" has dtype ${JSON.stringify(dtype)}; supported: F32, F16, BF16`);
      }
      const shape = entry.shape;
      const offsets = entry.data_offsets;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
        throw new InvalidModelError(`${file}: tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
      }
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
        throw new InvalidModelError(`${file}: tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
      }
      const [begin, end] = offsets as [number, number];
      const count = (shape as number[]).reduce((a, b) => a * b, 1);
      if (end - begin !== count * BYTES_PER_ELEMENT[dtype]) {
        throw new InvalidModelError(`${file}: tensor "${name}" occupies ${end - begin} bytes but shape ${JSON.stringify(shape)} of ${dtype} needs ${count * BYTES_PER_ELEMENT[dtype]}`);
      }
      if (end > dataSize) {
        throw new InvalidModelError(`${file}: truncated safetensors file: tensor "${name}" ends at byte ${dataStart + end} but the file has ${fileSize}`);
      }
      tensors.set(name, { name, dtype, shape: shape as number[], begin, end });
    }
    return { file, dataStart, tensors, metadata };
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads one tensor of a file whose header was read with readSafetensorsHeader, as float32. */
export function readTensorF32(header: SafetensorsHeader, name: string): Float32Array {
  const info = header.tensors.get(name);
  if (!info) throw new InvalidModelError(`${header.file}: no tensor named "${name}"`);
  const bytes = info.end - info.begin;
  const fd = fs.openSync(header.file, 'r');
  try {
    if (info.dtype === 'F32') {
      const out = new Float32Array(bytes / 4);
      readFully(fd, new Uint8Array(out.buffer), header.dataStart + info.begin, header.file, name);
      return out;
    }
    const raw = new Uint16Array(bytes / 2);
    readFully(fd, new Uint8Array(raw.buffer), header.dataStart + info.begin, header.file, name);
    return info.dtype === 'F16' ? f16ArrayToF32(raw) : bf16ArrayToF32(raw);
  } finally {
    fs.closeSync(fd);
  }
}

function readFully(fd: number, dst: Uint8Array, position: number, file: string, name: string): void {
  let done = 0;
  while (done < dst.length) {
    const n = fs.readSync(fd, dst, done, Math.min(dst.length - done, 1 << 30), position + done);
    if (n === 0) throw new InvalidModelError(`${file}: truncated while reading tensor "${name}"`);
    done += n;
  }
}

export interface TensorToWrite {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Writes tensors (float32 in memory) as `dtype`, atomically: a temporary file renamed into place. */
export function writeSafetensors(
  file: string,
  tensors: TensorToWrite[],
  dtype: SafetensorsDtype = 'F32',
  metadata: Record<string, string> = { format: 'pt' },
  opts: { onProgress?: (bytesWritten: number, bytes: number) => void } = {},
): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new InvalidModelError(`writing ${file}: tensor "${t.name}" has ${t.data.length} values but shape ${JSON.stringify(t.shape)}`);
    }
    const bytes =
      dtype === 'F32'
        ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)
        : new Uint8Array((dtype === 'F16' ? f32ArrayToF16(t.data) : f32ArrayToBf16(t.data)).buffer);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    blobs.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, len);
    fs.writeSync(fd, json);
    const total = 8 + Buffer.byteLength(json) + offset;
    let written = total - offset;
    for (const b of blobs) {
      fs.writeSync(fd, b);
      opts.onProgress?.((written += b.length), total);
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
