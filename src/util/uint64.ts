import { CorruptImageError } from "../errors.js";

/**
 * A little-endian 64-bit field as a JS number. Sizes and positions past
 * 2^53 cannot be real on any disk: they are corruption, and `field` says
 * which field (in the caller's words: "squashfs inode: file_size").
 */
export function readUint64(buf: Buffer, at: number, field: string): number {
  const value = buf.readBigUInt64LE(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`${field} ${value} is out of range`);
  return Number(value);
}

/** The big-endian twin of readUint64 (qcow2, VHD and VHDX headers are big-endian). */
export function readUint64BE(buf: Buffer, at: number, field: string): number {
  const value = buf.readBigUInt64BE(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptImageError(`${field} ${value} is out of range`);
  return Number(value);
}
