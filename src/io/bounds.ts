import { CorruptImageError } from "../errors.js";

/** Reject reads outside a source; a corrupt structure pointing past the end lands here. */
export function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new CorruptImageError(`${name}: invalid read of ${length} bytes at offset ${offset}`);
  }
  if (offset + length > size) {
    throw new CorruptImageError(
      `${name}: read of ${length} bytes at offset ${offset} goes past the end (${size} bytes); the image may be truncated`,
    );
  }
}

/** A buffer of `length` bytes: `into` itself (or its start) when given, else a new one. */
export function targetBuffer(length: number, into?: Buffer): Buffer {
  if (!into) return Buffer.allocUnsafe(length);
  if (into.length < length) throw new RangeError(`buffer of ${into.length} bytes is too small for ${length}`);
  return into.length === length ? into : into.subarray(0, length);
}
