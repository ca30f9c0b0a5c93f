import { CorruptImageError, UnsupportedError } from "../../errors.js";
import type { BlockDecompressor } from "../../container/codec/types.js";
import { decompressBlock as lz4 } from "../../container/codec/lz4-block.js";
import { decompressBlock as xz } from "../../container/codec/xz-block.js";
import { decompressBlock as zlib } from "../../container/codec/zlib-block.js";
import { decompressBlock as zstd } from "../../container/codec/zstd-block.js";

const DECOMPRESSORS: Record<string, BlockDecompressor> = { gzip: zlib, xz, lz4, zstd };

/** The decompressor for a superblock's compressor name; lzma (legacy) and lzo are not read. */
export function decompressorFor(compressor: string): BlockDecompressor {
  const decompress = DECOMPRESSORS[compressor];
  if (!decompress) throw new UnsupportedError(`squashfs compressed with ${compressor} (platter reads gzip, xz, lz4 and zstd)`);
  return decompress;
}

const LZ4_LEGACY = 1;

/**
 * Check the compressor options block (present when the superblock flag says
 * so). Decoding needs none of them (window sizes, levels, xz filters are in
 * each stream), except lz4's format version, which must be the legacy block format.
 */
export function checkCompressorOptions(compressor: string, options: Buffer): void {
  if (compressor === "lz4") {
    if (options.length < 8) throw new CorruptImageError("squashfs lz4 options: truncated");
    const version = options.readUInt32LE(0);
    if (version !== LZ4_LEGACY) throw new UnsupportedError(`squashfs lz4 format version ${version} (only 1, legacy, exists)`);
  }
}
