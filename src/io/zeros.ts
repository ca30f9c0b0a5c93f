/**
 * One shared megabyte of zeros, never written to: what holes and unreadable
 * sectors become when they must be written out, hashed or compared against.
 */
export const ZEROS: Buffer = Buffer.alloc(1 << 20);

/** Zero chunks (views of ZEROS) that add up to `length` bytes. */
export function* zeroChunks(length: number): Generator<Buffer> {
  for (let left = length; left > 0; left -= ZEROS.length) yield ZEROS.subarray(0, Math.min(left, ZEROS.length));
}

/** True when every byte of `buf` is zero. */
export function isAllZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i += ZEROS.length) {
    const n = Math.min(ZEROS.length, buf.length - i);
    if (!buf.subarray(i, i + n).equals(ZEROS.subarray(0, n))) return false;
  }
  return true;
}
