import xz from "xz-decompress";
import { corruptBlock, tooLarge } from "./corrupt.js";

/**
 * One whole .xz stream (squashfs stores each block as one). The decoder is
 * xz-embedded compiled to WebAssembly (the xz-decompress package): the same
 * decoder Linux uses for squashfs, with no native build and no install script.
 */
export async function decompressBlock(input: Buffer, maxSize: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    const stream = new xz.XzReadableStream(new Blob([input]).stream());
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > maxSize) {
        await reader.cancel();
        throw tooLarge("xz", maxSize);
      }
      // The decoder reuses its output buffer: copy each chunk out.
      chunks.push(Buffer.from(value));
    }
  } catch (err) {
    throw corruptBlock("xz", err);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
}
