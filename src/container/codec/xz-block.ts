import { CorruptImageError } from "../../errors.js";
import { corruptBlock, tooLarge } from "./corrupt.js";

const STREAM_HEADER_SIZE = 12;
const LZMA2_FILTER = 0x21;

function corrupt(why: string): CorruptImageError {
  return new CorruptImageError(`corrupt xz block: ${why}`);
}

export interface XzBlockHeader {
  /** The LZMA2 dictionary the block asks for (the decoder allocates it before decoding). */
  dictionarySize: number;
  /** The uncompressed size, when the header records it. */
  uncompressedSize: number | undefined;
}

/** A variable-length integer of the .xz format: 7 bits per byte, low first, at most 9 bytes. */
function readVli(buf: Buffer, at: number, end: number): [value: number, next: number] {
  let value = 0;
  for (let i = 0; i < 9; i++) {
    if (at + i >= end) throw corrupt("block header ends inside a number");
    const byte = buf[at + i] as number;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if (!(byte & 0x80)) return [value, at + i + 1];
  }
  throw corrupt("a number in the block header is longer than 9 bytes");
}

/**
 * The header of the first block of an .xz stream (xz file format 1.0.4,
 * 3.1), or undefined for a stream with no block. Only the first is read: the
 * next one's position is known only once this one is decoded.
 */
export function decodeFirstBlockHeader(stream: Buffer): XzBlockHeader | undefined {
  if (stream.length < STREAM_HEADER_SIZE + 1 || !stream.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) {
    throw corrupt("no .xz stream header");
  }
  const sizeByte = stream[STREAM_HEADER_SIZE] as number;
  if (sizeByte === 0) return undefined; // the index follows at once: no block
  const end = STREAM_HEADER_SIZE + (sizeByte + 1) * 4;
  if (stream.length < end) throw corrupt("truncated block header");
  const flags = stream[STREAM_HEADER_SIZE + 1] as number;
  if (flags & 0x3c) throw corrupt("reserved block flags are set");
  let at = STREAM_HEADER_SIZE + 2;
  if (flags & 0x40) at = readVli(stream, at, end)[1]; // compressed size
  let uncompressedSize: number | undefined;
  if (flags & 0x80) [uncompressedSize, at] = readVli(stream, at, end);
  const filters = (flags & 3) + 1;
  for (let i = 0; i < filters; i++) {
    let id: number;
    let propertiesSize: number;
    [id, at] = readVli(stream, at, end);
    [propertiesSize, at] = readVli(stream, at, end);
    if (at + propertiesSize > end) throw corrupt("filter properties run past the block header");
    if (id === LZMA2_FILTER) {
      if (i !== filters - 1 || propertiesSize !== 1) throw corrupt("misplaced LZMA2 filter");
      const bits = (stream[at] as number) & 0x3f;
      if (bits > 40) throw corrupt(`LZMA2 dictionary size code ${bits} is over 40`);
      const dictionarySize = bits === 40 ? 0xffffffff : (2 | (bits & 1)) * 2 ** ((bits >> 1) + 11);
      return { dictionarySize, uncompressedSize };
    }
    at += propertiesSize;
  }
  throw corrupt("the block's filter chain does not end in LZMA2");
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
  const { default: xz } = await import("xz-decompress");
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
