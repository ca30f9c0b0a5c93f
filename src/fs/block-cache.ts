import type { BlockSource } from "../io/block-source.js";

/**
 * A small LRU cache of fixed-size blocks of a source, for metadata that
 * readers revisit (inode tables, directory blocks, FAT sectors). File data
 * never goes through it: it is read once, straight from the source.
 * Concurrent requests for the same block share one read.
 */
export class BlockCache {
  private readonly blocks = new Map<number, Promise<Buffer>>();
  private readonly capacity: number;

  constructor(
    private readonly source: BlockSource,
    readonly blockSize: number,
    maxBytes = 16 << 20,
  ) {
    this.capacity = Math.max(8, Math.floor(maxBytes / blockSize));
  }

  /** Block `index` (bytes [index*blockSize, +blockSize)); the caller must not modify it. */
  get(index: number): Promise<Buffer> {
    const hit = this.blocks.get(index);
    if (hit) {
      // Re-insert: Map keeps insertion order, so the first key is the least recently used.
      this.blocks.delete(index);
      this.blocks.set(index, hit);
      return hit;
    }
    const pending = this.source.read(index * this.blockSize, this.blockSize);
    this.blocks.set(index, pending);
    pending.catch(() => this.blocks.delete(index));
    if (this.blocks.size > this.capacity) {
      const oldest = this.blocks.keys().next().value as number;
      this.blocks.delete(oldest);
    }
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
