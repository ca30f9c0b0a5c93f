/**
 * The probe's window on a source: reads in aligned 4 KiB blocks, caches
 * them (a superblock and its neighbours are read once however many probers
 * look), and counts what it read, so tests can check that probing stays
 * cheap. A read past the end gives null: "not this filesystem", not an error.
 */
import type { BlockSource } from "../../io/block-source.js";

export const PROBE_BLOCK = 4096;
/** No prober needs more than this in one read (a FAT root directory, an HFS+ B-tree node). */
const MAX_PROBE_READ = 1 << 20;

export class ProbeReader {
  private readonly blocks = new Map<number, Buffer>();
  /** Bytes read from the source so far. */
  bytesRead = 0;

  constructor(readonly source: BlockSource) {}

  get size(): number {
    return this.source.size;
  }

  async read(offset: number, length: number): Promise<Buffer | null> {
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || length > MAX_PROBE_READ) return null;
    if (offset + length > this.source.size) return null;
    const first = Math.floor(offset / PROBE_BLOCK);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / PROBE_BLOCK);
    const parts: Buffer[] = [];
    for (let b = first; b <= last; b++) parts.push(await this.block(b));
    const joined = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    const start = offset - first * PROBE_BLOCK;
    return joined.subarray(start, start + length);
  }

  private async block(index: number): Promise<Buffer> {
    let block = this.blocks.get(index);
    if (!block) {
      const start = index * PROBE_BLOCK;
      const length = Math.min(PROBE_BLOCK, this.source.size - start);
      block = await this.source.read(start, length);
      this.bytesRead += length;
      this.blocks.set(index, block);
    }
    return block;
  }
}
