/**
 * Every table entry of a virtual disk is a liar until checked: a block
 * must lie inside the file, outside the format's own structures (headers,
 * tables), and apart from every other block. These are the checks, shared
 * by VHD, VHDX and VDI; each error names the format, the entry and the
 * byte offset it claims.
 */
import { CorruptImageError } from "../../errors.js";

/** The structures a data block must not overlap: [start, end) and what is there. */
export class MetadataRegions {
  private readonly regions: Array<{ start: number; end: number; what: string }> = [];

  add(start: number, length: number, what: string): this {
    if (length > 0) this.regions.push({ start, end: start + length, what });
    return this;
  }

  /** The first region [start, start+length) overlaps, if any. */
  overlap(start: number, length: number): string | undefined {
    return this.regions.find((r) => start < r.end && start + length > r.start)?.what;
  }

  /** A region that overlaps one already added is itself corruption (a BAT inside a header...). */
  checkApart(start: number, length: number, what: string, where: string): void {
    const other = this.overlap(start, length);
    if (other) throw new CorruptImageError(`${where}: ${what} at byte ${start} (${length} bytes) overlaps ${other}`);
  }
}

/** `where` names the entry: "disk.vhd: VHD BAT entry 12 (guest offset 25165824)". */
export function checkBlockPlace(start: number, length: number, fileSize: number, metadata: MetadataRegions, where: string): void {
  if (start + length > fileSize) {
    throw new CorruptImageError(`${where} points at byte ${start}, past the end of the file (${fileSize} bytes); the image may be truncated`);
  }
  const inside = metadata.overlap(start, length);
  if (inside) throw new CorruptImageError(`${where} points at byte ${start}, inside ${inside}`);
}

/**
 * Blocks of one size that must not overlap each other. Starts are collected
 * during the opener's pass over the table and checked once, sorted. More
 * blocks than can fit in the file without overlapping is itself the proof,
 * so memory stays bounded by the file's size over the block size; past
 * MAX_TRACKED the check is left to the per-entry ones.
 */
export class OverlapCheck {
  private static readonly MAX_TRACKED = 4 << 20;
  private starts = new Float64Array(1024);
  private count = 0;
  private owners = new Float64Array(1024);

  constructor(
    private readonly blockBytes: number,
    private readonly fileSize: number,
    /** Names entry `index` in a message: "disk.vhd: VHD BAT entry 7". */
    private readonly describe: (index: number) => string,
  ) {}

  add(start: number, index: number): void {
    if (this.count >= OverlapCheck.MAX_TRACKED) return;
    if ((this.count + 1) * this.blockBytes > this.fileSize) {
      throw new CorruptImageError(
        `${this.describe(index)}: more blocks are in use (${this.count + 1} of ${this.blockBytes} bytes) than the file (${this.fileSize} bytes) can hold apart; blocks overlap`,
      );
    }
    if (this.count === this.starts.length) {
      this.starts = grow(this.starts);
      this.owners = grow(this.owners);
    }
    this.starts[this.count] = start;
    this.owners[this.count] = index;
    this.count++;
  }

  check(): void {
    const live = this.starts.subarray(0, this.count);
    const sorted = live.slice().sort();
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i] >= sorted[i - 1] + this.blockBytes) continue;
      const first = live.indexOf(sorted[i - 1]);
      const second = sorted[i] === sorted[i - 1] ? live.lastIndexOf(sorted[i]) : live.indexOf(sorted[i]);
      throw new CorruptImageError(
        `${this.describe(this.owners[second])} points at byte ${sorted[i]}, inside the block of ${this.describe(this.owners[first]).replace(/^.*?: /, "")} (at byte ${sorted[i - 1]})`,
      );
    }
  }
}

function grow(a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> {
  const bigger = new Float64Array(a.length * 2);
  bigger.set(a);
  return bigger;
}
