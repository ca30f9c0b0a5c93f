/**
 * SUSP continuation areas of one directory: the Rock Ridge entries that do
 * not fit in a directory record (long names, long symlink targets, the root's
 * ER) go into blocks written right after the directory's extent. An area
 * never crosses a block (Linux and libarchive refuse that); a longer list
 * chains on with another CE entry.
 */
import { SECTOR_SIZE } from "../constants.js";
import { CE_ENTRY_SIZE, encodeCe } from "../susp.js";

/** An encoded entry (a Buffer), or while the layout only measures, just its length. */
export interface Sized {
  readonly length: number;
}

export class ContinuationAreas {
  readonly blocks: Buffer[] = [];
  private blockCount = 0;
  private offset = SECTOR_SIZE;

  /**
   * `firstBlock`: where the first continuation block will be in the image.
   * `measuring`: entries are only lengths; nothing is copied.
   */
  constructor(
    private readonly firstBlock: number,
    private readonly measuring = false,
  ) {}

  /** Blocks used; while measuring, `blocks` stays empty and only this counts them. */
  get count(): number {
    return this.blockCount;
  }

  /** Store `entries` (each at most 255 bytes) and return the CE entry that points to them. */
  place(entries: readonly Sized[]): Sized {
    const total = entries.reduce((n, e) => n + e.length, 0);
    const free = SECTOR_SIZE - this.offset;
    if (free < total && free < entries[0].length + CE_ENTRY_SIZE) {
      this.blockCount++;
      if (!this.measuring) this.blocks.push(Buffer.alloc(SECTOR_SIZE));
      this.offset = 0;
    }
    const space = SECTOR_SIZE - this.offset;
    let taken = 0;
    let used = 0;
    let remaining = total;
    while (taken < entries.length) {
      if (used + remaining <= space) {
        used += remaining;
        taken = entries.length;
        break;
      }
      const length = entries[taken].length;
      if (used + length + CE_ENTRY_SIZE > space) break;
      used += length;
      remaining -= length;
      taken++;
    }
    const blockIndex = this.blockCount - 1;
    const block = this.blocks[blockIndex];
    const start = this.offset;
    let o = start;
    for (const e of entries.slice(0, taken)) {
      if (!this.measuring) (e as Buffer).copy(block, o);
      o += e.length;
    }
    let length = used;
    if (taken < entries.length) {
      // Reserve the chaining CE slot before placing the rest, which may land in this block too.
      this.offset = o + CE_ENTRY_SIZE;
      const next = this.place(entries.slice(taken));
      if (!this.measuring) (next as Buffer).copy(block, o);
      length += CE_ENTRY_SIZE;
    } else {
      this.offset = o;
    }
    return this.measuring ? { length: CE_ENTRY_SIZE } : encodeCe({ block: this.firstBlock + blockIndex, offset: start, length });
  }
}
