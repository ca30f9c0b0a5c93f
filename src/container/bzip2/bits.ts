/** Bit access in bzip2's order: most significant bit of each byte first. */

function bitAt(buf: Buffer, bit: number): number {
  return ((buf[Math.floor(bit / 8)] as number) >>> (7 - (bit % 8))) & 1;
}

/** `count` (<= 32) bits from bit `bit` of `buf`, as an unsigned number. */
export function readBits(buf: Buffer, bit: number, count: number): number {
  let value = 0;
  for (let i = 0; i < count; i++) value = value * 2 + bitAt(buf, bit + i);
  return value;
}

/** Builds a byte buffer bit by bit, most significant first; ranges of another buffer are copied a byte at a time. */
export class BitSink {
  private readonly out: Buffer;
  private bit = 0;

  constructor(capacityBytes: number) {
    this.out = Buffer.alloc(capacityBytes);
  }

  bytes(data: Buffer): void {
    this.range(data, 0, data.length * 8);
  }

  /** The low `count` (<= 32) bits of `value`. */
  value(value: number, count: number): void {
    for (let i = count - 1; i >= 0; i--) this.put(Math.floor(value / 2 ** i) & 1);
  }

  /** Bits [from, to) of `src`. */
  range(src: Buffer, from: number, to: number): void {
    // Bit by bit up to a byte boundary of the output, then whole output bytes, each from two input bytes.
    for (; from < to && this.bit % 8 !== 0; from++) this.put(bitAt(src, from));
    const shift = from % 8;
    const at = this.bit / 8;
    let i = Math.floor(from / 8);
    const whole = Math.floor((to - from) / 8);
    if (shift === 0) {
      src.copy(this.out, at, i, i + whole);
    } else {
      for (let n = 0; n < whole; n++, i++) this.out[at + n] = (((src[i] as number) << shift) | ((src[i + 1] ?? 0) >>> (8 - shift))) & 0xff;
    }
    this.bit += whole * 8;
    from += whole * 8;
    for (; from < to; from++) this.put(bitAt(src, from));
  }

  /** Zero bits up to the next byte boundary, and the bytes written. */
  finish(): Buffer {
    return this.out.subarray(0, Math.ceil(this.bit / 8));
  }

  private put(b: number): void {
    if (b) this.out[Math.floor(this.bit / 8)] = (this.out[Math.floor(this.bit / 8)] as number) | (0x80 >>> (this.bit % 8));
    this.bit++;
  }
}
