/**
 * The 8 bytes that end a gzip member (RFC 1952 §2.3.1): the CRC-32 of the
 * member's decoded bytes and their count modulo 2^32 (ISIZE), little-endian.
 */
export const TRAILER_BYTES = 8;

export interface GzipTrailer {
  crc32: number;
  /** Decoded size modulo 2^32. */
  isize: number;
}

export function decodeGzipTrailer(buf: Buffer): GzipTrailer {
  return { crc32: buf.readUInt32LE(0), isize: buf.readUInt32LE(4) };
}

export function encodeGzipTrailer(trailer: GzipTrailer): Buffer {
  const out = Buffer.alloc(TRAILER_BYTES);
  out.writeUInt32LE(trailer.crc32 >>> 0, 0);
  out.writeUInt32LE(trailer.isize >>> 0, 4);
  return out;
}
