/**
 * The fixed parts of a bzip2 file (bzip2's format, as documented in
 * "The bzip2 format" by Joe Tsai and in bzip2's own sources): a stream
 * starts "BZh" and a level digit '1'..'9' (blocks of level x 100 kB); each
 * block starts with the 48-bit magic 0x314159265359 (the digits of pi)
 * followed by its CRC-32; the stream ends with the 48-bit magic
 * 0x177245385090 (sqrt(pi)), the stream's combined CRC, and zero bits up to
 * a byte boundary. Blocks and the end marker are bit-aligned, most
 * significant bit first.
 */
export const BLOCK_MAGIC = 0x314159265359n;
export const END_MAGIC = 0x177245385090n;
export const MAGIC_BITS = 48;
export const CRC_BITS = 32;
export const HEADER_BYTES = 4;

/** The level of the stream header at `at`, or undefined if there is none. */
export function decodeStreamHeader(buf: Buffer, at = 0): number | undefined {
  if (buf.length < at + HEADER_BYTES || buf.toString("latin1", at, at + 3) !== "BZh") return undefined;
  const level = (buf[at + 3] as number) - 0x30;
  return level >= 1 && level <= 9 ? level : undefined;
}

export function encodeStreamHeader(level: number): Buffer {
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new RangeError(`bzip2 level must be 1 to 9, not ${level}`);
  return Buffer.from(`BZh${level}`, "latin1");
}

/** A stream with no blocks: header, end marker, combined CRC 0. 14 bytes, byte-aligned; what `bzip2` makes of empty input. */
export function encodeEmptyStream(level: number): Buffer {
  const out = Buffer.alloc(EMPTY_STREAM_BYTES);
  encodeStreamHeader(level).copy(out, 0);
  out.writeUIntBE(Number(END_MAGIC), HEADER_BYTES, 6);
  return out;
}

export const EMPTY_STREAM_BYTES = HEADER_BYTES + 6 + 4;

/** The level of the empty stream at `at`, or undefined if the bytes there are not one. */
export function decodeEmptyStream(buf: Buffer, at = 0): number | undefined {
  const level = decodeStreamHeader(buf, at);
  if (level === undefined || buf.length < at + EMPTY_STREAM_BYTES) return undefined;
  if (buf.readUIntBE(at + HEADER_BYTES, 6) !== Number(END_MAGIC) || buf.readUInt32BE(at + HEADER_BYTES + 6) !== 0) return undefined;
  return level;
}

/** The most a block of this level can decode to: every 5 bytes of its (level x 100000 - 19)-byte buffer a run of 259. */
export function maxBlockOutput(level: number): number {
  return Math.ceil((level * 100000 - 19) / 5) * 259;
}

/** The most a block of this level can take compressed: 20-bit codes for every symbol, plus its tables. */
export function maxBlockInput(level: number): number {
  return Math.ceil((level * 100000 * 20) / 8) + 8192;
}
