import type { BlockSource } from "./block-source.js";
import { checkRange, targetBuffer } from "./bounds.js";

/** A source over bytes already in memory: tests, and tiny generated structures. */
export class MemorySource implements BlockSource {
  readonly size: number;
  constructor(
    private readonly data: Buffer,
    readonly sectorSize = 512,
    readonly name = "memory",
  ) {
    this.size = data.length;
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    const out = targetBuffer(length, into);
    this.data.copy(out, 0, offset, offset + length);
    return out;
  }

  async close(): Promise<void> {}
}
