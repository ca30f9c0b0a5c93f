import type { BlockSource } from "../io/block-source.js";

/**
 * Small reads at scattered, mostly increasing offsets (walking the headers of
 * a compressed file), served from one window of the source so neighbours
 * cost one read.
 */
export class WindowReader {
  private windowStart = 0;
  private window: Buffer = Buffer.alloc(0);
  /** Reused for every window: fresh memory costs a page fault per page. */
  private store: Buffer = Buffer.alloc(0);

  constructor(
    private readonly source: BlockSource,
    private readonly windowSize = 1 << 20,
  ) {}

  get size(): number {
    return this.source.size;
  }

  /** Up to `length` bytes at `offset` (fewer only at the end of the source). */
  async bytes(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(this.source.size, offset + length);
    if (offset < this.windowStart || end > this.windowStart + this.window.length) {
      const n = Math.min(this.source.size - offset, Math.max(length, this.windowSize));
      if (this.store.length < n) this.store = Buffer.allocUnsafeSlow(n);
      this.windowStart = offset;
      this.window = await this.source.read(offset, n, this.store.subarray(0, n));
    }
    return this.window.subarray(offset - this.windowStart, end - this.windowStart);
  }
}
