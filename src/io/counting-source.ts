import type { BlockSource } from "./block-source.js";

/** Passes reads through and counts them: for benchmarks and tests that check how little was read. */
export class CountingSource implements BlockSource {
  reads = 0;
  bytesRead = 0;

  constructor(private readonly inner: BlockSource) {}

  get size(): number {
    return this.inner.size;
  }

  get sectorSize(): number {
    return this.inner.sectorSize;
  }

  get name(): string {
    return this.inner.name;
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.reads++;
    this.bytesRead += length;
    return this.inner.read(offset, length, into);
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}
