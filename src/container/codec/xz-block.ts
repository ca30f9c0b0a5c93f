import type { XzReadableStream } from "xz-decompress";
import { CorruptImageError } from "../../errors.js";
import { decodeBlockHeader, FILTER_LZMA2, lzma2DictionarySize } from "../xz/block-header.js";
import { decodeStreamHeader, STREAM_HEADER_SIZE } from "../xz/stream-header.js";
import { corruptBlock, tooLarge } from "./corrupt.js";

function corrupt(why: string): CorruptImageError {
  return new CorruptImageError(`corrupt xz block: ${why}`);
}

export interface XzBlockHeader {
  /** The LZMA2 dictionary the block asks for (the decoder allocates it before decoding). */
  dictionarySize: number;
  /** The uncompressed size, when the header records it. */
  uncompressedSize: number | undefined;
}

/**
 * The header of the first block of an .xz stream (the structure decoders of
 * xz/), or undefined for a stream with no block. Only the first is read: the
 * next one's position is known only once this one is decoded.
 */
export function decodeFirstBlockHeader(stream: Buffer): XzBlockHeader | undefined {
  const streamHeader = decodeStreamHeader(stream);
  if (typeof streamHeader === "string") throw corrupt(streamHeader);
  if (stream.length <= STREAM_HEADER_SIZE) throw corrupt("truncated block header");
  if (stream[STREAM_HEADER_SIZE] === 0) return undefined; // the index follows at once: no block
  const header = decodeBlockHeader(stream.subarray(STREAM_HEADER_SIZE));
  if (typeof header === "string") throw corrupt(header);
  const lzma2 = header.filters.findIndex((f) => f.id === FILTER_LZMA2);
  if (lzma2 !== header.filters.length - 1) throw corrupt("the block's filter chain does not end in LZMA2");
  const dictionarySize = lzma2DictionarySize((header.filters[lzma2] as { properties: Buffer }).properties);
  if (dictionarySize === undefined) throw corrupt("its LZMA2 filter properties are not a dictionary size");
  return { dictionarySize, uncompressedSize: header.uncompressedSize };
}

/**
 * One whole .xz stream (squashfs stores each block as one). The decoder is
 * xz-embedded compiled to WebAssembly (the xz-decompress package): the same
 * decoder Linux uses for squashfs, with no native build and no install script.
 * It allocates the dictionary the block header names (up to 64 MiB) before
 * decoding, so that is checked against maxWindow first, as the kernel sizes
 * squashfs's dictionary by the block size; the output is counted as it comes.
 */
export async function decompressBlock(input: Buffer, maxSize: number, maxWindow = maxSize): Promise<Buffer> {
  const header = decodeFirstBlockHeader(input);
  if (header?.uncompressedSize !== undefined && header.uncompressedSize > maxSize) throw tooLarge("xz", maxSize);
  if (header && header.dictionarySize > maxWindow) {
    throw corrupt(`its dictionary of ${header.dictionarySize} bytes is larger than ${maxWindow}`);
  }
  // Imported on first use: the WebAssembly decoder costs start-up to commands that never see xz.
  // A CommonJS package flagged __esModule: Node puts its exports on `default`, tsx's loader on the namespace itself.
  type XzApi = { XzReadableStream: typeof XzReadableStream };
  const loaded = (await import("xz-decompress")) as unknown as Partial<XzApi> & { default?: XzApi };
  const xz: XzApi = loaded.default?.XzReadableStream ? loaded.default : (loaded as XzApi);
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
