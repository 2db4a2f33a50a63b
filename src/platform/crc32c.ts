// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum Cloud Storage reports as an
// object's `crc32c`: the big-endian 4 bytes of the value, base64. Slicing-by-8 tables.

const POLY = 0x82f63b78;
const T = new Int32Array(8 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[n] = c;
}
for (let n = 0; n < 256; n++) {
  for (let s = 1; s < 8; s++) T[s * 256 + n] = (T[(s - 1) * 256 + n]! >>> 8) ^ T[T[(s - 1) * 256 + n]! & 0xff]!;
}

/** Running CRC-32C: `update` with each chunk, then `base64()` or `value()`. */
export class Crc32c {
  private crc = 0xffffffff;

  update(buf: Uint8Array): this {
    let c = this.crc;
    let i = 0;
    const n = buf.length;
    for (; i + 8 <= n; i += 8) {
      const a = c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
      c = T[7 * 256 + (a & 0xff)]! ^ T[6 * 256 + ((a >>> 8) & 0xff)]! ^ T[5 * 256 + ((a >>> 16) & 0xff)]! ^ T[4 * 256 + (a >>> 24)]! ^
        T[3 * 256 + buf[i + 4]!]! ^ T[2 * 256 + buf[i + 5]!]! ^ T[256 + buf[i + 6]!]! ^ T[buf[i + 7]!]!;
    }
    for (; i < n; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
    this.crc = c;
    return this;
  }

  value(): number {
    return (this.crc ^ 0xffffffff) >>> 0;
  }

  base64(): string {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(this.value());
    return b.toString('base64');
  }
}
