/**
 * The 12-byte header every .xz stream starts with (doc/xz-file-format.txt,
 * 2.1.1): the magic FD 37 7A 58 5A 00, the stream flags (a zero byte, then
 * the check type in the low 4 bits), and the CRC32 of the flags.
 */
import { crc32 } from "../../util/crc32.js";

export const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
export const STREAM_HEADER_SIZE = 12;

/** Bytes of each check type's value at the end of a block: none, CRC32, CRC64, SHA-256 and the reserved IDs. */
const CHECK_SIZES = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];
const CHECK_NAMES: Record<number, string> = { 0: "none", 1: "CRC32", 4: "CRC64", 10: "SHA-256" };

export function checkSize(check: number): number {
  return CHECK_SIZES[check] as number;
}

export function checkName(check: number): string {
  return CHECK_NAMES[check] ?? `check ${check}`;
}

/** The two stream flag bytes, or a reason string. */
export function decodeStreamFlags(flags: Buffer): number | string {
  if (flags[0] !== 0 || ((flags[1] as number) & 0xf0) !== 0) return "unsupported stream flags (reserved bits set)";
  return (flags[1] as number) & 0x0f;
}

export function encodeStreamFlags(check: number): Buffer {
  return Buffer.from([0, check]);
}

/** The check type a stream header declares, or a reason string. */
export function decodeStreamHeader(header: Buffer): number | string {
  if (header.length < STREAM_HEADER_SIZE || !header.subarray(0, 6).equals(XZ_MAGIC)) return "no xz stream header magic";
  if (crc32(header.subarray(6, 8)) !== header.readUInt32LE(8)) return "stream header CRC32 mismatch";
  return decodeStreamFlags(header.subarray(6, 8));
}

export function encodeStreamHeader(check: number): Buffer {
  const header = Buffer.alloc(STREAM_HEADER_SIZE);
  XZ_MAGIC.copy(header);
  encodeStreamFlags(check).copy(header, 6);
  header.writeUInt32LE(crc32(header.subarray(6, 8)), 8);
  return header;
}
