import type { BlockSource } from "./block-source.js";
import { checkRange } from "./bounds.js";

/** A bounds-checked window over another source: a partition inside a disk image. */
export class SliceSource implements BlockSource {
  constructor(
    readonly parent: BlockSource,
    readonly offset: number,
    readonly size: number,
    readonly name = `${parent.name}@${offset}`,
    readonly sectorSize = parent.sectorSize,
  ) {
    checkRange(parent.name, parent.size, offset, size);
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    return this.parent.read(this.offset + offset, length, into);
  }

  async dataRanges(offset: number, length: number): Promise<Array<[number, number]>> {
    checkRange(this.name, this.size, offset, length);
    if (!this.parent.dataRanges) return [[offset, length]];
    const ranges = await this.parent.dataRanges(this.offset + offset, length);
    return ranges.map(([start, len]) => [start - this.offset, len]);
  }

  async copyTo(offset: number, length: number, fd: number, fdOffset: number): Promise<boolean> {
    checkRange(this.name, this.size, offset, length);
    return this.parent.copyTo ? this.parent.copyTo(this.offset + offset, length, fd, fdOffset) : false;
  }

  /** Closing a slice leaves the parent open: its owner closes it. */
  async close(): Promise<void> {}
}
