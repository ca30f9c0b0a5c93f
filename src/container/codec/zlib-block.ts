import { corruptBlock, tooLarge } from "./corrupt.js";

let zlib: typeof import("node:zlib") | undefined;

/** A zlib stream (RFC 1950: what squashfs calls "gzip"), whole, in memory. */
export async function decompressBlock(input: Buffer, maxSize: number): Promise<Buffer> {
  // Loaded on the first compressed block: an ISO or squashfs without one never pays node:zlib's start-up.
  zlib ??= await import("node:zlib");
  const { inflateSync } = zlib;
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
