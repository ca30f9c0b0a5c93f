/**
 * Where a compressed file stopped being readable, and why: a gzip or bzip2
 * index built by decoding the file ends there, and the image is what
 * decoded before it. Kept with the index in the cache, shown by `info`, and
 * named by every read that reaches past it.
 */
import { CorruptImageError } from "../errors.js";

export interface Damage {
  /** Byte offset in the compressed file. */
  compressedOffset: number;
  message: string;
}

/** The damage as the index cache keeps it: offset, message length, message. */
export function encodeDamage(damage: Damage): Buffer {
  const message = Buffer.from(damage.message);
  const head = Buffer.alloc(12);
  head.writeDoubleLE(damage.compressedOffset, 0);
  head.writeUInt32LE(message.length, 8);
  return Buffer.concat([head, message]);
}

/** The damage encodeDamage wrote at `buf[at]`, or undefined when `buf` ends first. */
export function decodeDamage(buf: Buffer, at: number): Damage | undefined {
  if (at + 12 > buf.length) return undefined;
  return { compressedOffset: buf.readDoubleLE(at), message: buf.toString("utf8", at + 12, at + 12 + buf.readUInt32LE(at + 8)) };
}

/** What `info` says about it. */
export function describeDamage(damage: Damage): string {
  return `offset ${damage.compressedOffset}: ${damage.message}`;
}

/** A read of [offset, offset+length) from an image of `size` bytes that ends at `damage`: refused when it reaches past the end. */
export function checkReadBeforeDamage(name: string, format: string, damage: Damage | undefined, size: number, offset: number, length: number): void {
  if (damage && offset + length > size && offset >= 0 && length > 0) {
    throw new CorruptImageError(
      `${name}: ${format} data is damaged at offset ${damage.compressedOffset} (${damage.message}); the image's bytes from ${size} on cannot be read`,
    );
  }
}
