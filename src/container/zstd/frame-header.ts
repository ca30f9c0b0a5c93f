/**
 * The headers of a zstd file (RFC 8878): a Zstandard frame header, the
 * 3-byte block header, and skippable frames. Pure decoders: they say what the
 * bytes claim; the callers check the claims against the file.
 */

export const ZSTD_MAGIC = 0xfd2fb528;
/** Skippable frames: 0x184D2A50 to 0x184D2A5F. */
export const SKIPPABLE_MAGIC = 0x184d2a50;
export const SKIPPABLE_MASK = 0xfffffff0;
/** Magic, descriptor, window byte, 4-byte dictionary id, 8-byte content size. */
export const MAX_FRAME_HEADER = 18;
export const BLOCK_HEADER = 3;
/** Block_Maximum_Size: no block holds more decoded bytes. */
export const MAX_BLOCK_SIZE = 128 << 10;
/** The content checksum after the last block: the low 32 bits of XXH64. */
export const CHECKSUM_SIZE = 4;

export function isSkippableMagic(magic: number): boolean {
  return (magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC;
}

export interface FrameHeader {
  /** Bytes from the magic number to the first block header. */
  headerSize: number;
  /** Frame_Content_Size, when the frame declares it. */
  contentSize: number | undefined;
  /** Bytes of history the decoder must keep (Window_Size; the content size for a single-segment frame). */
  windowSize: number;
  dictionaryId: number;
  /** A 4-byte content checksum follows the last block. */
  hasChecksum: boolean;
}

/**
 * Decode the frame header at the start of `buf` (which holds at least
 * MAX_FRAME_HEADER bytes, or all that is left of the file). Returns a
 * reason string when the header is not valid.
 */
export function decodeFrameHeader(buf: Buffer): FrameHeader | string {
  if (buf.length < 5) return "truncated frame header";
  if (buf.readUInt32LE(0) !== ZSTD_MAGIC) return "no zstd frame magic";
  const descriptor = buf[4] as number;
  if (descriptor & 0x08) return "reserved bit set in the frame header descriptor";
  const sizeFlag = descriptor >> 6;
  const singleSegment = (descriptor & 0x20) !== 0;
  const hasChecksum = (descriptor & 0x04) !== 0;
  const dictionaryIdBytes = [0, 1, 2, 4][descriptor & 3] as number;
  const contentSizeBytes = sizeFlag === 0 ? (singleSegment ? 1 : 0) : 1 << sizeFlag;
  const headerSize = 5 + (singleSegment ? 0 : 1) + dictionaryIdBytes + contentSizeBytes;
  if (buf.length < headerSize) return "truncated frame header";
  let at = 5;
  let windowSize = 0;
  if (!singleSegment) {
    const window = buf[at++] as number;
    const windowLog = 10 + (window >> 3);
    const base = 2 ** windowLog;
    windowSize = base + (base / 8) * (window & 7);
  }
  let dictionaryId = 0;
  if (dictionaryIdBytes === 1) dictionaryId = buf[at] as number;
  else if (dictionaryIdBytes === 2) dictionaryId = buf.readUInt16LE(at);
  else if (dictionaryIdBytes === 4) dictionaryId = buf.readUInt32LE(at);
  at += dictionaryIdBytes;
  let contentSize: number | undefined;
  if (contentSizeBytes === 1) contentSize = buf[at] as number;
  else if (contentSizeBytes === 2) contentSize = buf.readUInt16LE(at) + 256;
  else if (contentSizeBytes === 4) contentSize = buf.readUInt32LE(at);
  else if (contentSizeBytes === 8) {
    const big = buf.readBigUInt64LE(at);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) return `frame content size ${big} is absurd`;
    contentSize = Number(big);
  }
  if (singleSegment) windowSize = contentSize as number;
  return { headerSize, contentSize, windowSize, dictionaryId, hasChecksum };
}

export type BlockType = "raw" | "rle" | "compressed" | "reserved";

export interface BlockHeader {
  last: boolean;
  type: BlockType;
  /** Block_Size: bytes of content for raw and compressed blocks, bytes it repeats to for RLE. */
  size: number;
  /** Bytes of the block after its header in the file. */
  contentBytes: number;
}

export function decodeBlockHeader(buf: Buffer, at: number): BlockHeader {
  const value = (buf[at] as number) | ((buf[at + 1] as number) << 8) | ((buf[at + 2] as number) << 16);
  const type = (["raw", "rle", "compressed", "reserved"] as const)[(value >> 1) & 3] as BlockType;
  const size = value >>> 3;
  return { last: (value & 1) === 1, type, size, contentBytes: type === "rle" ? 1 : size };
}
