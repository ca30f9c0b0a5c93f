/**
 * Compressing one cluster for the writer, as qemu does (qcow2_compress):
 * raw deflate with a 4 KiB window (deflateInit2(-12)), or one zstd frame;
 * a cluster that does not shrink below its own size is stored plain.
 */
import { availableParallelism } from "node:os";
import { promisify } from "node:util";
import { deflateRaw } from "node:zlib";
import type { CompressionType } from "./header.js";
import { ZstdPool } from "./zstd-pool.js";

const deflateRawAsync = promisify(deflateRaw);

/** qemu's defaults: Z_DEFAULT_COMPRESSION and ZSTD_CLEVEL_DEFAULT. */
export const DEFAULT_LEVEL: Record<CompressionType, number> = { zlib: 6, zstd: 3 };

export class ClusterCompressor {
  private readonly pool: ZstdPool | undefined;

  constructor(
    readonly type: CompressionType,
    readonly level: number,
    readonly threads = availableParallelism(),
  ) {
    if (type === "zstd") this.pool = new ZstdPool(threads);
  }

  /**
   * The compressed bytes, or null when the cluster is best stored plain.
   * `cluster` is the compressor's now (zstd hands it to a worker).
   */
  async compress(cluster: Buffer): Promise<Buffer | null> {
    const limit = cluster.length - 1;
    if (this.pool) return this.pool.compress(cluster, this.level, limit);
    // On libuv's thread pool: every core compresses while the caller goes on.
    const out = await deflateRawAsync(cluster, { level: this.level, windowBits: 12, memLevel: 9 });
    return out.length <= limit ? out : null;
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}
