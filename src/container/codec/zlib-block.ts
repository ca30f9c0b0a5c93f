import { inflateSync } from "node:zlib";
import { corruptBlock, tooLarge } from "./corrupt.js";

/** A zlib stream (RFC 1950: what squashfs calls "gzip"), whole, in memory. */
export async function decompressBlock(input: Buffer, maxSize: number): Promise<Buffer> {
  let out: Buffer;
  try {
    // One byte of slack turns "expands past maxSize" into a size we can see.
    out = inflateSync(input, { maxOutputLength: maxSize + 1 });
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw tooLarge("zlib", maxSize);
    throw corruptBlock("zlib", err);
  }
  if (out.length > maxSize) throw tooLarge("zlib", maxSize);
  return out;
}
