import { readUint64 } from "../../util/uint64.js";

/** One fragment table entry (16 bytes): where a block of packed file tails is, and its size word. */
export const FRAGMENT_ENTRY_SIZE = 16;

export interface FragmentEntry {
  start: number;
  /** A data block size word: see decodeBlockSize. */
  sizeWord: number;
}

export function decodeFragmentEntry(buf: Buffer, at = 0): FragmentEntry {
  return { start: readUint64(buf, at, "squashfs fragment: start_block"), sizeWord: buf.readUInt32LE(at + 8) };
}

/**
 * A data block's size word: bit 24 set means stored uncompressed, the low
 * 24 bits are the size on disk (higher bits make it absurd, and so corrupt);
 * 0 is a sparse block of zeros.
 */
export function decodeBlockSize(word: number): { compressed: boolean; size: number } {
  return { compressed: (word & 0x1000000) === 0, size: (word & ~0x1000000) >>> 0 };
}
