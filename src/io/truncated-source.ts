import { CorruptImageError } from "../errors.js";
import type { BlockSource } from "./block-source.js";
import { checkRange } from "./bounds.js";

/**
 * A partition that runs past the end of a truncated image, at its full
 * declared size: what is there reads as usual, and only a read that reaches
 * the missing part fails, naming it. Readers check sizes against the source
 * (a cluster heap, bytes_used), so the declared size keeps them opening the
 * filesystem; the files that lie in the part that is there come out, as
 * debugfs does on a truncated image.
 */
export class TruncatedSource implements BlockSource {
  constructor(
    private readonly parent: BlockSource,
    private readonly offset: number,
    readonly size: number,
    /** Bytes of this source the parent really holds. */
    readonly available: number,
    readonly name: string,
    readonly sectorSize = parent.sectorSize,
  ) {
    checkRange(parent.name, parent.size, offset, available);
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    if (offset + length > this.available) {
      throw new CorruptImageError(
        `${this.name}: bytes ${offset}-${offset + length - 1} are missing: the image is truncated (it holds the first ${this.available} of ${this.size} bytes)`,
      );
    }
    return this.parent.read(this.offset + offset, length, into);
  }

  async dataRanges(offset: number, length: number): Promise<Array<[number, number]>> {
    checkRange(this.name, this.size, offset, length);
    const end = Math.min(offset + length, this.available);
    if (end <= offset) return [[offset, length]];
    const inside: Array<[number, number]> = this.parent.dataRanges
      ? (await this.parent.dataRanges(this.offset + offset, end - offset)).map(([start, len]) => [start - this.offset, len])
      : [[offset, end - offset]];
    // The missing tail "may hold data": a read of it fails, as it should.
    if (end < offset + length) inside.push([end, offset + length - end]);
    return inside;
  }

  /** The parent belongs to whoever opened it. */
  async close(): Promise<void> {}
}
