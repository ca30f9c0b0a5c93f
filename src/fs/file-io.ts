/** Helpers the filesystem readers share for reading and copying file data. */
import { CorruptImageError } from "../errors.js";
import type { BlockSource } from "../io/block-source.js";

/** Reject a read outside [0, size) of a file; `what` names the file for the message. */
export function checkFileRange(what: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new CorruptImageError(`${what}: read of ${length} bytes at ${offset} is outside the file (${size} bytes)`);
  }
}

/** One contiguous piece of a file: where it is in the source, where it goes in the file, how long. */
export type CopyPiece = [sourceOffset: number, fileOffset: number, length: number];

/**
 * Copy planned pieces of a file into `fd` inside the kernel. False, with
 * nothing written, when the source cannot (it refuses on its first copy).
 */
export async function copyPieces(source: BlockSource, pieces: CopyPiece[], fd: number, what: string): Promise<boolean> {
  if (!source.copyTo) return false;
  for (const [from, at, length] of pieces) {
    if (!(await source.copyTo(from, length, fd, at))) {
      if (at === pieces[0][1]) return false;
      throw new CorruptImageError(`${what}: the in-kernel copy stopped part-way`);
    }
  }
  return true;
}
