/**
 * xz's variable-length integers (doc/xz-file-format.txt, 1.2): 7 bits per
 * byte, least significant first, the high bit set on every byte but the
 * last; at most 9 bytes (values below 2^63), and no needless trailing zero
 * byte.
 */

const MAX_BYTES = 9;

/** The integer at `buf[at]` and how many bytes it took, or a reason string. */
export function decodeVli(buf: Buffer, at: number): { value: number; length: number } | string {
  let value = 0n;
  for (let i = 0; i < MAX_BYTES; i++) {
    if (at + i >= buf.length) return "truncated variable-length integer";
    const byte = buf[at + i] as number;
    value |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if ((byte & 0x80) === 0) {
      if (byte === 0 && i > 0) return "variable-length integer with a needless zero byte";
      if (value > BigInt(Number.MAX_SAFE_INTEGER)) return `variable-length integer ${value} is absurd`;
      return { value: Number(value), length: i + 1 };
    }
  }
  return "variable-length integer longer than 9 bytes";
}

export function encodeVli(value: number): Buffer {
  const bytes: number[] = [];
  let v = BigInt(value);
  while (v >= 0x80n) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return Buffer.from(bytes);
}
