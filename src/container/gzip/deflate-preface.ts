/**
 * Starting a raw inflate in the middle of a deflate stream, with Node's zlib
 * (which has neither inflatePrime nor a dictionary for raw streams).
 *
 * An access point (zran.c's idea) is the start of a deflate block: a byte
 * offset `in`, the `bits` (0..7) of the byte before it that already belong
 * to the block, and the up to 32 KiB of output before it that the block may
 * copy from. This module writes deflate blocks that put the stream in that
 * state, to be followed by the file's bytes from `in` on:
 *  1. a stored block holding the window: inflate outputs it (the caller drops
 *     it) and it becomes the history later matches reach back into;
 *  2. empty blocks (no output) whose bit count, with `bits`, reaches a byte
 *     boundary: fixed blocks take 10 bits; one empty dynamic block of 93 bits
 *     makes an odd count possible;
 *  3. the `bits` leftover bits themselves.
 * The bytes that follow are then the original stream, byte-aligned.
 */

/** Deflate's bit order: fields are packed from the least significant bit of each byte. */
class BitWriter {
  private readonly bytes: number[] = [];
  private bitCount = 0;

  /** Append the low `count` bits of `value`, least significant first. */
  bits(value: number, count: number): void {
    for (let i = 0; i < count; i++) {
      if (this.bitCount % 8 === 0) this.bytes.push(0);
      if ((value >>> i) & 1) this.bytes[this.bytes.length - 1] |= 1 << this.bitCount % 8;
      this.bitCount++;
    }
  }

  /** A Huffman code: written from its most significant bit (RFC 1951 §3.1.1). */
  code(code: number, length: number): void {
    for (let i = length - 1; i >= 0; i--) this.bits((code >>> i) & 1, 1);
  }

  get length(): number {
    return this.bitCount;
  }

  toBuffer(): Buffer {
    return Buffer.from(this.bytes);
  }
}

const STORED_MAX = 0xffff;
const FIXED_EMPTY_BITS = 10;

/** BFINAL 0, BTYPE 01 (fixed Huffman), then end-of-block (code 256: seven zero bits). */
function emptyFixedBlock(w: BitWriter): void {
  w.bits(0, 1);
  w.bits(1, 2);
  w.bits(0, 7);
}

/**
 * BFINAL 0, BTYPE 10 (dynamic), 257 literal/length codes of which only
 * end-of-block has a length (1: an incomplete code zlib allows for a single
 * symbol), one distance code of length 0. The code-length code is complete:
 * 18 (a run of zeros) gets 1 bit, 0 gets 2, 1 and 17 get 3. 93 bits.
 */
function emptyDynamicBlock(w: BitWriter): void {
  w.bits(0, 1);
  w.bits(2, 2);
  w.bits(0, 5); // HLIT: 257 codes
  w.bits(0, 5); // HDIST: 1 code
  w.bits(14, 4); // HCLEN: 18 code-length code lengths, up to symbol 1 in the permuted order
  const order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1];
  const lengths: Record<number, number> = { 18: 1, 0: 2, 1: 3, 17: 3 };
  for (const symbol of order) w.bits(lengths[symbol] ?? 0, 3);
  // Canonical codes: 18 -> 0, 0 -> 10, 1 -> 110, 17 -> 111.
  w.code(0b0, 1); // 18: 11 + 127 = 138 zeros
  w.bits(127, 7);
  w.code(0b0, 1); // 18: 11 + 107 = 118 zeros (literals 0..255 all absent)
  w.bits(107, 7);
  w.code(0b110, 3); // end-of-block has length 1
  w.code(0b10, 2); // the one distance code has length 0
  w.code(0b0, 1); // end-of-block
}

/**
 * Deflate blocks that leave a raw inflate with `window` as its history and
 * `bits` bits of the stream consumed (taken from the top of `partialByte`),
 * byte-aligned: feed them, then the stream's bytes from `in` on.
 */
export function deflatePreface(window: Buffer, bits: number, partialByte: number): Buffer {
  if (window.length > STORED_MAX) throw new RangeError(`deflate window of ${window.length} bytes does not fit a stored block`);
  if (!Number.isInteger(bits) || bits < 0 || bits > 7) throw new RangeError(`bits must be 0..7, not ${bits}`);
  const w = new BitWriter();
  if (bits % 2 === 1) emptyDynamicBlock(w);
  while ((w.length + bits) % 8 !== 0) {
    // Only an even number of bits is missing here: fixed blocks (10 bits) reach it in at most three steps.
    emptyFixedBlock(w);
  }
  w.bits(partialByte >>> (8 - bits), bits);
  const alignment = w.toBuffer();
  if (window.length === 0) return alignment;
  const stored = Buffer.allocUnsafe(5 + window.length + alignment.length);
  stored[0] = 0; // BFINAL 0, BTYPE 00, padding to the byte boundary
  stored.writeUInt16LE(window.length, 1);
  stored.writeUInt16LE(~window.length & 0xffff, 3);
  window.copy(stored, 5);
  alignment.copy(stored, 5 + window.length);
  return stored;
}

/** Bits the preface's alignment part takes at most: a dynamic block, three fixed ones, 7 bits. */
export const MAX_PREFACE_BYTES = 5 + STORED_MAX + Math.ceil((93 + 3 * FIXED_EMPTY_BITS + 7) / 8);
