import type { BlockSource } from "../io/block-source.js";
import { LruCache } from "../util/lru.js";

/**
 * A small LRU cache of fixed-size blocks of a source, for metadata that
 * readers revisit (inode tables, directory blocks, FAT sectors). File data
 * never goes through it: it is read once, straight from the source.
 * Concurrent requests for the same block share one read.
 */
export class BlockCache {
  private readonly blocks: LruCache<number, Promise<Buffer>>;

  constructor(
    private readonly source: BlockSource,
    readonly blockSize: number,
    maxBytes = 16 << 20,
  ) {
    this.blocks = new LruCache(Math.max(8, Math.floor(maxBytes / blockSize)));
  }

  /** Block `index` (bytes [index*blockSize, +blockSize)); the caller must not modify it. */
  get(index: number): Promise<Buffer> {
    const hit = this.blocks.get(index);
    if (hit) return hit;
    const pending = this.blocks.set(index, this.source.read(index * this.blockSize, this.blockSize));
    // A failed read is not remembered: the next get() tries again.
    pending.catch(() => {
      if (this.blocks.get(index) === pending) this.blocks.delete(index);
    });
    return pending;
  }

  /** `length` bytes at byte `offset`, which may span blocks. */
  async read(offset: number, length: number): Promise<Buffer> {
    const first = Math.floor(offset / this.blockSize);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / this.blockSize);
    if (first === last) {
      const block = await this.get(first);
      const start = offset - first * this.blockSize;
      return block.subarray(start, start + length);
    }
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    for (let b = first; b <= last; b++) {
      const block = await this.get(b);
      const start = b === first ? offset - first * this.blockSize : 0;
      const n = Math.min(this.blockSize - start, length - done);
      block.copy(out, done, start, start + n);
      done += n;
    }
    return out;
  }
}
