import type { ZSTDDecoder } from "zstddec";
import { CorruptImageError } from "../../errors.js";
import { decodeFrameHeader } from "../zstd/frame-header.js";
import { importPackage } from "../../util/import-package.js";
import { corruptBlock, tooLarge } from "./corrupt.js";

let decoder: Promise<ZSTDDecoder> | undefined;

/** The WebAssembly decoder, loaded on first use: commands that read no zstd never pay for it. */
function zstdDecoder(): Promise<ZSTDDecoder> {
  decoder ??= importPackage<typeof import("zstddec")>("zstddec").then(async ({ ZSTDDecoder }) => {
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
  if (typeof header === "string") throw new CorruptImageError(`corrupt zstd block: ${header}`);
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
