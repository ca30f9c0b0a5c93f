import { CorruptImageError } from "../../errors.js";

function corrupt(why: string): CorruptImageError {
  return new CorruptImageError(`corrupt lz4 block: ${why}`);
}

/**
 * The raw LZ4 block format (no frame: what squashfs and LZ4_decompress_safe
 * use). A block is a run of sequences: a token (literal length in the high
 * nibble, match length - 4 in the low one, 15 meaning "more length bytes
 * follow, each added, until one is not 255"), the literals, then a 2-byte
 * little-endian match offset back into the output. The last sequence has
 * literals only.
 */
export function decompressLz4Block(input: Buffer, maxSize: number): Buffer {
  const out = Buffer.allocUnsafe(maxSize);
  let ip = 0;
  let op = 0;
  const readLength = (base: number): number => {
    let length = base;
    if (base === 15) {
      let byte: number;
      do {
        if (ip >= input.length) throw corrupt("length runs past the end of the input");
        byte = input[ip++] as number;
        length += byte;
      } while (byte === 255);
    }
    return length;
  };
  for (;;) {
    if (ip >= input.length) throw corrupt("input ends before the last sequence");
    const token = input[ip++] as number;
    const literals = readLength(token >> 4);
    if (ip + literals > input.length) throw corrupt("literals run past the end of the input");
    if (op + literals > maxSize) throw corrupt(`it expands to more than ${maxSize} bytes`);
    input.copy(out, op, ip, ip + literals);
    ip += literals;
    op += literals;
    if (ip === input.length) break; // the last sequence: literals only
    if (ip + 2 > input.length) throw corrupt("match offset runs past the end of the input");
    const distance = input.readUInt16LE(ip);
    ip += 2;
    if (distance === 0 || distance > op) throw corrupt(`match offset ${distance} points before the start`);
    const matchLength = readLength(token & 15) + 4;
    if (op + matchLength > maxSize) throw corrupt(`it expands to more than ${maxSize} bytes`);
    let from = op - distance;
    if (distance >= matchLength) {
      out.copy(out, op, from, from + matchLength);
      op += matchLength;
    } else {
      // Overlapping match: a repeating pattern, copied byte by byte.
      for (let i = 0; i < matchLength; i++) out[op++] = out[from++] as number;
    }
  }
  return out.subarray(0, op);
}

export async function decompressBlock(input: Buffer, maxSize: number): Promise<Buffer> {
  return decompressLz4Block(input, maxSize);
}
