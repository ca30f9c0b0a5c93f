/**
 * partclone's checksums (its checksum.c). Its CRC-32 is the usual reflected
 * 0xEDB88320 one, seeded with 0xFFFFFFFF but never inverted at the end, so
 * the stored value is the running state: ~zlib's CRC. That also makes a
 * chained (not reseeded) strip checkable alone, seeded with the checksum
 * stored before it.
 */
import { crc32 } from "node:zlib";

export const CRC32_SEED = 0xffffffff;

/** partclone's crc32(seed, data). */
export function partcloneCrc32(data: Uint8Array, seed = CRC32_SEED): number {
  return ~crc32(data, ~seed >>> 0) >>> 0;
}

/**
 * Image version 0001's crc32_0001(seed, block): the loop forgot to advance,
 * so it is the CRC of the block's first byte repeated block-size times.
 * `scratch` is block-size bytes the caller lends (refilled here).
 */
export function partcloneCrc32V1(block: Uint8Array, seed: number, scratch: Buffer): number {
  scratch.fill(block[0] ?? 0, 0, block.length);
  return partcloneCrc32(scratch.subarray(0, block.length), seed);
}
