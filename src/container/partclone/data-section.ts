/**
 * The data section: the used blocks in block order, each strip of
 * blocks_per_checksum blocks followed by its checksum (the last strip may be
 * shorter, and has one too), or the blocks alone when the image has no
 * checksums. A strip is read whole and checked before any of its bytes are
 * used, then kept in a small LRU cache: filesystem readers come back to the
 * same metadata blocks often.
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { LruCache } from "../../util/lru.js";
import { CRC32_SEED, partcloneCrc32, partcloneCrc32V1 } from "./checksum.js";
import { hex, type PartcloneHeader } from "./header.js";

/** A strip is held whole to be checked: partclone's default is 1 MiB (its buffer); past this it is refused. */
const MAX_STRIP_BYTES = 64 << 20;
const CACHE_BYTES = 32 << 20;

/** Bytes the data section of `header` takes in the image. */
export function dataSectionSize(header: PartcloneHeader): number {
  const checksums = header.checksumSize ? Math.ceil(header.usedBlocks / header.blocksPerChecksum) : 0;
  return header.usedBlocks * header.blockSize + checksums * header.checksumSize;
}

export class DataSection {
  private readonly strips: LruCache<number, Promise<Buffer>>;
  private readonly stripBytes: number;
  private scratch: Buffer | undefined;

  constructor(
    private readonly source: BlockSource,
    private readonly header: PartcloneHeader,
    /** Where the section starts in the image. */
    private readonly offset: number,
  ) {
    this.stripBytes = header.blocksPerChecksum * header.blockSize;
    if (header.checksumSize && this.stripBytes > MAX_STRIP_BYTES) {
      throw new UnsupportedError(
        `partclone image with ${header.blocksPerChecksum} blocks of ${header.blockSize} bytes per checksum: ` +
          `platter checks a strip in memory before using it, and holds at most ${MAX_STRIP_BYTES >> 20} MiB`,
      );
    }
    this.strips = new LruCache(Math.max(2, Math.floor(CACHE_BYTES / Math.max(1, this.stripBytes))));
  }

  /**
   * `length` bytes of the used blocks' bytes from byte `skip` of used block
   * `used` on, into out[at...]. They lie in one run of consecutive blocks
   * starting at filesystem block `block`, so errors can name the block.
   */
  async read(used: number, skip: number, length: number, out: Buffer, at: number, block: number): Promise<void> {
    const { blockSize } = this.header;
    let pos = used * blockSize + skip;
    if (!this.header.checksumSize) {
      await this.source.read(this.offset + pos, length, out.subarray(at, at + length));
      return;
    }
    const end = pos + length;
    while (pos < end) {
      const s = Math.floor(pos / this.stripBytes);
      const within = pos - s * this.stripBytes;
      const strip = await this.strip(s, block + Math.floor(pos / blockSize) - used);
      const n = Math.min(end - pos, strip.length - within);
      strip.copy(out, at, within, within + n);
      at += n;
      pos += n;
    }
  }

  private strip(s: number, block: number): Promise<Buffer> {
    let strip = this.strips.get(s);
    if (!strip) {
      strip = this.readStrip(s, block);
      const pending = strip;
      // A failed strip is not kept: the error is reported again, not a stale promise.
      pending.catch(() => this.strips.get(s) === pending && this.strips.delete(s));
      this.strips.set(s, strip);
    }
    return strip;
  }

  /** Strip `s`, checked; `block` is the filesystem block being read, for the message. */
  private async readStrip(s: number, block: number): Promise<Buffer> {
    const { blockSize, blocksPerChecksum, checksumSize, usedBlocks, reseedChecksum } = this.header;
    const first = s * blocksPerChecksum;
    const count = Math.min(blocksPerChecksum, usedBlocks - first);
    const dataAt = this.offset + first * blockSize + s * checksumSize;
    // A chained checksum goes on from the one stored before the strip.
    const prefix = !reseedChecksum && s > 0 ? checksumSize : 0;
    const buf = await this.source.read(dataAt - prefix, prefix + count * blockSize + checksumSize);
    const data = buf.subarray(prefix, prefix + count * blockSize);
    const seed = prefix ? buf.readUInt32LE(0) : CRC32_SEED;
    const stored = buf.readUInt32LE(prefix + data.length);
    const computed = this.checksum(data, seed);
    if (stored !== computed) {
      throw new CorruptImageError(
        `partclone image: checksum error reading block ${block}: the strip of used blocks ${first}-${first + count - 1} at offset ${dataAt} ` +
          `gives CRC32 ${hex(computed)}, the image has ${hex(stored)} at offset ${dataAt + data.length}`,
      );
    }
    return data;
  }

  private checksum(data: Buffer, seed: number): number {
    if (this.header.checksum === "crc32") return partcloneCrc32(data, seed);
    const { blockSize } = this.header;
    this.scratch ??= Buffer.alloc(blockSize);
    let crc = seed;
    for (let at = 0; at < data.length; at += blockSize) crc = partcloneCrc32V1(data.subarray(at, at + blockSize), crc, this.scratch);
    return crc;
  }
}
