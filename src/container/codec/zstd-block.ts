import type { ZSTDDecoder } from "zstddec";
import { CorruptImageError } from "../../errors.js";
import { corruptBlock, tooLarge } from "./corrupt.js";

const ZSTD_MAGIC = 0xfd2fb528;

export interface ZstdFrameHeader {
  /** The content size the frame declares, or undefined when it does not say. */
  contentSize: number | undefined;
  /** The history window a decoder must keep (RFC 8878 3.1.1.1.2; the content size for a single-segment frame). */
  windowSize: number;
}

/** The frame header of a zstd frame (RFC 8878 3.1.1.1), which decoders size their memory by. */
export function decodeFrameHeader(frame: Buffer): ZstdFrameHeader {
  if (frame.length < 6 || frame.readUInt32LE(0) !== ZSTD_MAGIC) {
    throw new CorruptImageError("corrupt zstd block: no zstd frame magic");
  }
  const descriptor = frame[4] as number;
  if (descriptor & 0x08) throw new CorruptImageError("corrupt zstd block: reserved bit set in the frame header");
  const singleSegment = (descriptor >> 5) & 1;
  const sizeFlag = descriptor >> 6;
  const dictIdBytes = [0, 1, 2, 4][descriptor & 3] as number;
  const sizeBytes = sizeFlag === 0 ? singleSegment : 1 << sizeFlag;
  const at = 5 + (singleSegment ? 0 : 1) + dictIdBytes;
  if (frame.length < at + sizeBytes) throw new CorruptImageError("corrupt zstd block: truncated frame header");
  let contentSize: number | undefined;
  if (sizeBytes === 1) contentSize = frame[at] as number;
  else if (sizeBytes === 2) contentSize = frame.readUInt16LE(at) + 256;
  else if (sizeBytes === 4) contentSize = frame.readUInt32LE(at);
  else if (sizeBytes === 8) contentSize = Number(frame.readBigUInt64LE(at));
  if (singleSegment) return { contentSize, windowSize: contentSize as number };
  const exponent = (frame[5] as number) >> 3;
  const base = 2 ** (10 + exponent);
  return { contentSize, windowSize: base + (base / 8) * ((frame[5] as number) & 7) };
}

let decoder: Promise<ZSTDDecoder> | undefined;

/** The WebAssembly decoder, loaded on first use: commands that read no zstd never pay for it. */
function zstdDecoder(): Promise<ZSTDDecoder> {
  decoder ??= import("zstddec").then(async ({ ZSTDDecoder }) => {
    const instance = new ZSTDDecoder();
    await instance.init();
    return instance;
  });
  return decoder;
}

/**
 * One zstd frame, whole (squashfs writes one per block). The decoder is the
 * reference zstd decoder compiled to WebAssembly (the zstddec package): it
 * decodes into a buffer of exactly maxSize bytes and stops with an error at
 * the first byte that would not fit, so neither memory nor work grows with
 * what a hostile frame claims. (fzstd, the pure-JS decoder used before,
 * allocated whatever window the header declared and kept decoding past any
 * size: 4 KiB of frame made 2 GiB.) The header is checked first, as the
 * kernel's squashfs does: a window or declared size over the bounds is corrupt.
 */
export async function decompressBlock(input: Buffer, maxSize: number, maxWindow = maxSize): Promise<Buffer> {
  const header = decodeFrameHeader(input);
  if (header.contentSize !== undefined && header.contentSize > maxSize) throw tooLarge("zstd", maxSize);
  if (header.windowSize > maxWindow) {
    throw new CorruptImageError(`corrupt zstd block: its window of ${header.windowSize} bytes is larger than ${maxWindow}`);
  }
  const zstd = await zstdDecoder();
  let out: Uint8Array;
  try {
    out = zstd.decode(input, maxSize);
  } catch (err) {
    throw corruptBlock("zstd", err);
  }
  // zstddec reports a decoding error (a frame that does not fit maxSize, a bad checksum) as an empty
  // result; a block of no bytes is no block either.
  if (out.length === 0) throw new CorruptImageError(`corrupt zstd block: it does not decode to 1..${maxSize} bytes`);
  return Buffer.from(out.buffer, out.byteOffset, out.length);
}
