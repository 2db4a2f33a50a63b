// The GGUF writer and reader: every value type round-trips exactly, tensors land aligned with their
// dimensions in ggml order (checked against node-llama-cpp's independent GGUF parser), F16 rounds as
// IEEE round-to-nearest-even, and a failed write leaves nothing behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import { writeGguf, type GgufTensorInput } from '../src/export/gguf-writer.js';
import { readGgufHeader, readGgufTensorF32 } from '../src/export/gguf-reader.js';
import { gguf, type GgufMetadata } from '../src/export/gguf-format.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/engine/half.js';
import { InvalidRequestError } from '../src/errors.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-gguf-writer-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));

const f32 = (x: number) => Math.fround(x);

function allTypes(): GgufMetadata {
  return new Map([
    ['t.u8', gguf.u8(255)],
    ['t.i8', gguf.i8(-128)],
    ['t.u16', gguf.u16(65535)],
    ['t.i16', gguf.i16(-32768)],
    ['t.u32', gguf.u32(0xffffffff)],
    ['t.i32', gguf.i32(-0x80000000)],
    ['t.f32', gguf.f32(f32(0.1))],
    ['t.f64', gguf.f64(Math.PI)],
    ['t.u64', gguf.u64((1n << 64n) - 1n)],
    ['t.i64', gguf.i64(-(1n << 63n))],
    ['t.bool.true', gguf.bool(true)],
    ['t.bool.false', gguf.bool(false)],
    ['t.string', gguf.str('héllo, 世界 🙂\n\u0000end')],
    ['t.string.empty', gguf.str('')],
    ['t.arr.u8', gguf.numbers('u8', [0, 1, 255])],
    ['t.arr.i8', gguf.numbers('i8', [-128, 0, 127])],
    ['t.arr.u16', gguf.numbers('u16', [0, 65535])],
    ['t.arr.i16', gguf.numbers('i16', [-32768, 32767])],
    ['t.arr.u32', gguf.numbers('u32', [0, 7, 0xffffffff])],
    ['t.arr.i32', gguf.numbers('i32', [-1, 0, 1, 0x7fffffff])],
    ['t.arr.f32', gguf.numbers('f32', [f32(1.5), f32(-2.25), f32(1e-30), -0])],
    ['t.arr.f64', gguf.numbers('f64', [Math.E, -1e300])],
    ['t.arr.u64', gguf.bigints('u64', [0n, 1n << 40n])],
    ['t.arr.i64', gguf.bigints('i64', [-5n, 1n << 62n])],
    ['t.arr.bool', gguf.bools([true, false, true])],
    ['t.arr.string', gguf.strs(['a', '', 'Ġthe', '<|im_end|>', 'ü'])],
    ['t.arr.empty', gguf.strs([])],
  ]);
}

function ramp(n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => (i - n / 2) * scale);
}

test('every metadata value type round-trips exactly, and general.alignment is added', async () => {
  const file = path.join(root, 'types.gguf');
  const meta = allTypes();
  await writeGguf(file, meta, []);
  const g = readGgufHeader(file);
  assert.equal(g.version, 3);
  assert.equal(g.tensors.length, 0);
  for (const [key, value] of meta) assert.deepEqual(g.metadata.get(key), value, key);
  assert.deepEqual(g.metadata.get('general.alignment'), gguf.u32(32));
  assert.equal(g.metadata.size, meta.size + 1);
  // Keys keep their order.
  assert.deepEqual([...g.metadata.keys()].slice(0, meta.size), [...meta.keys()]);
});

test('tensors: F32 exact, dims reversed into ggml order, offsets aligned; node-llama-cpp reads the same file', async () => {
  const file = path.join(root, 'tensors.gguf');
  const specs: { name: string; shape: number[] }[] = [
    { name: 'a', shape: [3] },
    { name: 'blk.0.b.weight', shape: [5, 7] },
    { name: 'c', shape: [2, 3, 4] },
    { name: 'd', shape: [1, 1, 1, 9] },
  ];
  const data = specs.map((s, i) => ramp(s.shape.reduce((a, b) => a * b, 1), 0.37 + i));
  const calls: string[] = [];
  const tensors: GgufTensorInput[] = specs.map((s, i) => ({
    ...s, type: 'F32', data: () => (calls.push(s.name), data[i]!),
  }));
  const meta: GgufMetadata = new Map([['general.architecture', gguf.str('llama')], ['x.count', gguf.u32(4)]]);
  const summary = await writeGguf(file, meta, tensors);
  assert.deepEqual(calls, specs.map((s) => s.name), 'each tensor asked for once, in order');
  assert.equal(summary.bytes, fs.statSync(file).size);
  assert.equal(summary.bytes % 32, 0);

  const g = readGgufHeader(file);
  assert.equal(g.dataOffset % 32, 0);
  assert.equal(g.dataOffset, summary.dataOffset);
  specs.forEach((s, i) => {
    const t = g.tensors[i]!;
    assert.equal(t.name, s.name);
    assert.deepEqual(t.shape, s.shape);
    assert.equal(t.type, 'F32');
    assert.equal(t.offset % 32, 0, `${s.name} offset ${t.offset}`);
    assert.deepEqual(readGgufTensorF32(g, s.name), data[i]);
  });

  const info = await readGgufFileInfo(file, { sourceType: 'filesystem', logWarnings: false });
  assert.equal(info.version, 3);
  assert.equal(info.metadata.general.architecture, 'llama');
  assert.equal(Number(info.metadata.general.alignment), 32);
  const theirs = info.tensorInfo!;
  specs.forEach((s, i) => {
    assert.equal(theirs[i]!.name, s.name);
    // ggml order: ne0 (innermost, the row length) first.
    assert.deepEqual(theirs[i]!.dimensions.map(Number), [...s.shape].reverse());
    assert.equal(Number(theirs[i]!.offset), g.tensors[i]!.offset);
    assert.equal(Number(theirs[i]!.fileOffset), g.dataOffset + g.tensors[i]!.offset);
  });
});

test('F16 tensors round to nearest even, saturate to infinity and keep subnormals', async () => {
  const file = path.join(root, 'f16.gguf');
  const special = [1 / 3, -2 / 3, 65504, 65520, 70000, -70000, 1e-8, 6e-8, 2 ** -24, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 0, -0];
  const values = new Float32Array(5 * 7);
  values.set(ramp(35, 0.0137));
  values.set(special, 0);
  await writeGguf(file, new Map(), [{ name: 'h', shape: [5, 7], type: 'F16', data: () => values }]);
  const g = readGgufHeader(file);
  assert.equal(g.tensors[0]!.type, 'F16');
  assert.equal(g.tensors[0]!.bytes, 70);
  const back = readGgufTensorF32(g, 'h');
  for (let i = 0; i < values.length; i++) assert.ok(Object.is(back[i], f16BitsToF32(f32ToF16Bits(values[i]!))), `element ${i}`);
  // Spot values of IEEE binary16.
  assert.equal(back[0], 0.333251953125);
  assert.equal(back[2], 65504);
  assert.equal(back[3], Infinity); // 65520 is the rounding midpoint to the next (infinite) step
  assert.equal(back[4], Infinity);
  assert.equal(back[5], -Infinity);
  assert.equal(back[6], 0); // below half the smallest subnormal
  assert.equal(back[7], 2 ** -24); // 6e-8 rounds to the smallest subnormal
  assert.equal(back[9], 1); // tie, rounds to even
  assert.equal(back[10], 1 + 2 ** -9); // tie, rounds to even (up)
  assert.ok(Object.is(back[12], -0));
});

test('a custom alignment is honoured and recorded', async () => {
  const file = path.join(root, 'align64.gguf');
  const tensors: GgufTensorInput[] = [3, 17, 1].map((n, i) => ({ name: `t${i}`, shape: [n], type: 'F32', data: () => ramp(n) }));
  await writeGguf(file, new Map([['general.name', gguf.str('odd')]]), tensors, { alignment: 64 });
  const g = readGgufHeader(file);
  assert.deepEqual(g.metadata.get('general.alignment'), gguf.u32(64));
  assert.equal(g.dataOffset % 64, 0);
  for (const t of g.tensors) assert.equal(t.offset % 64, 0);
  assert.deepEqual(readGgufTensorF32(g, 't1'), ramp(17));
});

test('invalid input is an InvalidRequestError and leaves no file, not even a temporary one', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'bad-'));
  const file = path.join(dir, 'bad.gguf');
  const bad: [string, GgufMetadata, GgufTensorInput[], RegExp][] = [
    ['u8 out of range', new Map([['k', gguf.u8(256)]]), [], /"k".*not a u8/],
    ['fractional i32', new Map([['k', gguf.i32(1.5)]]), [], /"k".*not a i32/],
    ['u64 negative', new Map([['k', gguf.u64(-1n)]]), [], /not a u64/],
    ['string array with a number', new Map([['k', { type: 'array', itemType: 'string', value: ['a', 3 as unknown as string] }]]), [], /"k"/],
    ['duplicate tensor', new Map(), [
      { name: 'x', shape: [2], type: 'F32', data: () => ramp(2) },
      { name: 'x', shape: [2], type: 'F32', data: () => ramp(2) },
    ], /listed twice/],
    ['wrong element count', new Map(), [{ name: 'x', shape: [2, 2], type: 'F32', data: () => ramp(3) }], /3 elements.*needs 4/],
    ['name too long', new Map(), [{ name: 'n'.repeat(64), shape: [1], type: 'F32', data: () => ramp(1) }], /1\.\.63 bytes/],
    ['five dimensions', new Map(), [{ name: 'x', shape: [1, 1, 1, 1, 1], type: 'F32', data: () => ramp(1) }], /1\.\.4 positive/],
    ['alignment not a multiple of 8', new Map([['general.alignment', gguf.u32(12)]]), [], /multiple of 8/],
  ];
  for (const [what, meta, tensors, message] of bad) {
    await assert.rejects(writeGguf(file, meta, tensors), (err: unknown) => {
      assert.ok(err instanceof InvalidRequestError, `${what}: ${String(err)}`);
      assert.match((err as Error).message, message, what);
      return true;
    });
    assert.deepEqual(fs.readdirSync(dir), [], `${what}: directory must stay empty`);
  }
});

test('writing over an existing file replaces it atomically; a failing data source keeps the old file', async () => {
  const file = path.join(root, 'replace.gguf');
  await writeGguf(file, new Map([['v', gguf.u32(1)]]), []);
  await writeGguf(file, new Map([['v', gguf.u32(2)]]), []);
  assert.deepEqual(readGgufHeader(file).metadata.get('v'), gguf.u32(2));
  await assert.rejects(writeGguf(file, new Map([['v', gguf.u32(3)]]), [
    { name: 'x', shape: [4], type: 'F32', data: () => { throw new Error('source gone'); } },
  ]), /source gone/);
  assert.deepEqual(readGgufHeader(file).metadata.get('v'), gguf.u32(2));
  assert.deepEqual(fs.readdirSync(root).filter((f) => f.includes('replace.gguf') && f !== 'replace.gguf'), []);
});

test('the reader rejects what is not a GGUF file and a truncated one', async () => {
  const notGguf = path.join(root, 'not.gguf');
  fs.writeFileSync(notGguf, 'hello world, this is not gguf');
  assert.throws(() => readGgufHeader(notGguf), /not a GGUF file/);
  const file = path.join(root, 'trunc.gguf');
  await writeGguf(file, new Map(), [{ name: 'x', shape: [100], type: 'F32', data: () => ramp(100) }]);
  const full = fs.readFileSync(file);
  fs.writeFileSync(file, full.subarray(0, full.length - 64));
  assert.throws(() => readGgufHeader(file), /extends past the end/);
  fs.writeFileSync(file, full.subarray(0, 20));
  assert.throws(() => readGgufHeader(file), /truncated GGUF header/);
});
