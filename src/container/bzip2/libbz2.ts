/**
 * The system libbz2 (the library `bzip2` itself uses) through koffi: whole
 * streams in, whole streams out, each call on koffi's worker threads, so
 * blocks compress and decompress on every core while the event loop stays
 * free. Measured here: the same output as `pbzip2 -9`, byte for byte, with
 * no process to spawn per block; the pure-JS decoders are 5x slower
 * (seek-bzip, deps.md) and no npm encoder is usable.
 */
import { CorruptImageError } from "../../errors.js";
import { callAsync, lazyLibrary } from "../native-library.js";

const BZ_OK = 0;
const BZ_MEM_ERROR = -3;
const BZ_DATA_ERROR = -4;
const BZ_DATA_ERROR_MAGIC = -5;
const BZ_UNEXPECTED_EOF = -7;
const BZ_OUTBUFF_FULL = -8;

/** bzip2's default work factor (what `bzip2` and `pbzip2` use). */
const WORK_FACTOR = 30;

const load = lazyLibrary({ sonames: ["libbz2.so.1.0", "libbz2.so.1"], what: "bzip2", debianPackage: "libbz2-1.0", deep: true }, (so) => ({
  compress: so.func(
    "int BZ2_bzBuffToBuffCompress(uint8_t *dest, _Inout_ unsigned int *destLen, uint8_t *source, unsigned int sourceLen, int blockSize100k, int verbosity, int workFactor)",
  ),
  decompress: so.func(
    "int BZ2_bzBuffToBuffDecompress(uint8_t *dest, _Inout_ unsigned int *destLen, uint8_t *source, unsigned int sourceLen, int small, int verbosity)",
  ),
}));

/** Throws when libbz2 cannot be loaded, with a message naming the package. */
export function requireLibbz2(): void {
  load();
}

/** The most bytes a stream of `size` bytes compresses to: bzip2's documented bound, 1% more plus 600 bytes. */
export function compressBound(size: number): number {
  return Math.ceil(size * 1.01) + 600;
}

/** One bzip2 stream holding `data`, with blocks of `level` x 100 kB, written into `out` (compressBound bytes): its length. */
export async function compressStream(data: Buffer, level: number, out: Buffer): Promise<number> {
  const length = new Uint32Array([out.length]);
  const rc = await callAsync<number>(load().compress, [out, length, data, data.length, level, 0, WORK_FACTOR], [out, data]);
  if (rc !== BZ_OK) throw new Error(`libbz2 compression failed (${rc})`);
  return length[0] as number;
}

export type DecodeFailure = "corrupt" | "truncated" | "too large";

/**
 * Decode one whole bzip2 stream (every block's CRC and the stream's CRC are
 * checked) into at most `maxSize` bytes, in `into` when given (a buffer the
 * caller reuses: the result is a view of it). Resolves to the bytes, or to
 * why not: callers that probe candidate blocks need the reason, not an error.
 */
export async function decompressStream(stream: Buffer, maxSize: number, into?: Buffer): Promise<Buffer | DecodeFailure> {
  const decompress = load().decompress;
  const dest = into ?? Buffer.allocUnsafe(maxSize);
  if (dest.length < maxSize) throw new RangeError(`output buffer of ${dest.length} bytes is too small for ${maxSize}`);
  const length = new Uint32Array([maxSize]);
  const rc = await callAsync<number>(decompress, [dest, length, stream, stream.length, 0, 0], [dest, stream]);
  switch (rc) {
    case BZ_OK: {
      const size = length[0] as number;
      // A buffer sized for the worst case is mostly untouched: keep only what was written.
      return !into && size < maxSize / 2 ? Buffer.from(dest.subarray(0, size)) : dest.subarray(0, size);
    }
    case BZ_OUTBUFF_FULL:
      return "too large";
    case BZ_UNEXPECTED_EOF:
      return "truncated";
    case BZ_DATA_ERROR:
    case BZ_DATA_ERROR_MAGIC:
      return "corrupt";
    case BZ_MEM_ERROR:
      throw new CorruptImageError("libbz2 ran out of memory decoding a bzip2 stream");
    default:
      throw new CorruptImageError(`libbz2 failed decoding a bzip2 stream (${rc})`);
  }
}
