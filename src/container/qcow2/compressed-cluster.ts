/**
 * A compressed qcow2 cluster: one cluster of guest data as raw deflate
 * (zlib's format without header, as qemu's deflateInit2(-12) writes it) or
 * as one zstd frame (compression_type 1). The descriptor gives the length
 * only to 512-byte precision, so the input may carry the start of the next
 * cluster's data after the stream: both decoders stop at the stream's end.
 * One cluster in, exactly one cluster out: a stream that expands further is
 * corrupt, and the output buffer bounds the work either way.
 */
import { inflateRaw, constants as zlibConstants } from "node:zlib";
import { promisify } from "node:util";
import { CorruptImageError } from "../../errors.js";
import type { CompressionType } from "./header.js";
import { decompressFrame, frameCompressedSize, ZSTD_ERROR, ZstdCallError } from "../zstd/libzstd.js";

const inflateRawAsync = promisify(inflateRaw);

function corrupt(where: string, why: string): CorruptImageError {
  return new CorruptImageError(`qcow2: compressed cluster ${where} ${why}`);
}

/**
 * Decode `input` (the descriptor's bytes, possibly cut short by the end of
 * the file) into one cluster of `clusterSize` bytes. `where` names the
 * cluster in messages ("at byte 327680 (guest offset 1048576)").
 */
export async function decompressCluster(input: Buffer, compression: CompressionType, clusterSize: number, where: string): Promise<Buffer> {
  let out: Buffer;
  if (compression === "zlib") {
    try {
      // Runs on libuv's thread pool: a read of many compressed clusters inflates them on every core.
      out = await inflateRawAsync(input, { maxOutputLength: clusterSize, finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch (err) {
      if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw corrupt(where, `inflates to more than one cluster (${clusterSize} bytes)`);
      throw corrupt(where, `is not valid deflate data (${(err as Error).message})`);
    }
  } else {
    out = Buffer.allocUnsafe(clusterSize);
    let frameLength: number;
    try {
      frameLength = frameCompressedSize(input);
    } catch (err) {
      if (!(err instanceof ZstdCallError)) throw err;
      throw corrupt(where, `is not a whole zstd frame (${err.reason})`);
    }
    let length: number;
    try {
      length = await decompressFrame(input.subarray(0, frameLength), out);
    } catch (err) {
      if (!(err instanceof ZstdCallError)) throw err;
      if (err.code === ZSTD_ERROR.dstSizeTooSmall) throw corrupt(where, `expands to more than one cluster (${clusterSize} bytes)`);
      throw corrupt(where, `is not valid zstd data (${err.reason})`);
    }
    out = out.subarray(0, length);
  }
  if (out.length !== clusterSize) throw corrupt(where, `holds ${out.length} bytes, not one cluster (${clusterSize} bytes)`);
  return out;
}
