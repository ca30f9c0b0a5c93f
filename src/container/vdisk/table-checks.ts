/**
 * Every table entry of a virtual disk is a liar until checked: a block
 * must lie inside the file, outside the format's own structures (headers,
 * tables), and apart from every other block. These are the checks, shared
 * by VHD, VHDX, VDI and VMDK; each message names the format, the entry and
 * the byte offset it claims. An opener stops at the first problem (a
 * CorruptImageError); `platter check` walks the same tables and collects
 * them all, each with the guest bytes it puts in doubt.
 */
import { CorruptImageError } from "../../errors.js";

/**
 * Where a table walk sends what it finds: one problem, the guest bytes it
 * puts in doubt, and more bytes it puts in doubt too (the other block of an
 * overlapping pair).
 */
export type ProblemSink = (message: string, guest?: [number, number], alsoInDoubt?: [number, number]) => void;

/**
 * The sink an opener walks its tables with: the first problem thrown, or —
 * opened leniently for `platter check`, which finds them itself — each
 * kept, so a walk that cannot go on throws the last one (fatal()).
 */
export function openerSink(lenient: boolean | undefined): ProblemSink & { fatal(): CorruptImageError } {
  let last = "";
  const sink = (message: string) => {
    if (!lenient) throw new CorruptImageError(message);
    last = message;
  };
  return Object.assign(sink, { fatal: () => new CorruptImageError(last) });
}

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
  apartProblem(start: number, length: number, what: string, where: string): string | undefined {
    const other = this.overlap(start, length);
    return other ? `${where}: ${what} at byte ${start} (${length} bytes) overlaps ${other}` : undefined;
  }

  checkApart(start: number, length: number, what: string, where: string): void {
    const problem = this.apartProblem(start, length, what, where);
    if (problem) throw new CorruptImageError(problem);
  }
}

/** Why a block at [start, start+length) cannot be where `where` says ("disk.vhd: VHD BAT entry 12"), or undefined. */
export function blockPlaceProblem(start: number, length: number, fileSize: number, metadata: MetadataRegions, where: string): string | undefined {
  if (start + length > fileSize) return `${where} points at byte ${start}, past the end of the file (${fileSize} bytes); the image may be truncated`;
  const inside = metadata.overlap(start, length);
  return inside ? `${where} points at byte ${start}, inside ${inside}` : undefined;
}

export function checkBlockPlace(start: number, length: number, fileSize: number, metadata: MetadataRegions, where: string): void {
  const problem = blockPlaceProblem(start, length, fileSize, metadata, where);
  if (problem) throw new CorruptImageError(problem);
}

/** Two table entries whose blocks share bytes: `second` starts inside `first`'s. */
export interface Overlap {
  first: number;
  second: number;
  message: string;
}

/**
 * Blocks that must not overlap each other (of one size, or each its own).
 * Starts are collected during the pass over the table and checked once,
 * sorted. More bytes of blocks than the file holds is itself the proof, so
 * memory stays bounded by the file's size over the smallest block (or
 * ALWAYS_TRACKED blocks, whichever is more); past that (or MAX_TRACKED)
 * the rest are not tracked.
 */
export class OverlapCheck {
  private static readonly MAX_TRACKED = 4 << 20;
  private static readonly ALWAYS_TRACKED = 1 << 16;
  private starts = new Float64Array(1024);
  private owners = new Float64Array(1024);
  /** Per-block lengths, once a block of another length is added (compressed VMDK grains). */
  private lengths: Float64Array<ArrayBuffer> | undefined;
  private count = 0;
  private bytes = 0;
  /** Why tracking stopped: more blocks than fit. */
  private crowded: string | undefined;

  constructor(
    private readonly blockBytes: number,
    private readonly fileSize: number,
    /** Names entry `index` in a message: "disk.vhd: VHD BAT entry 7". */
    private readonly describe: (index: number) => string,
  ) {}

  add(start: number, index: number, length = this.blockBytes): void {
    if (this.crowded !== undefined || this.count >= OverlapCheck.MAX_TRACKED) return;
    // Past the proof, a small table is still tracked whole, so a check can count each overlap.
    if (this.bytes + length > this.fileSize && this.count >= OverlapCheck.ALWAYS_TRACKED) {
      this.crowded = `${this.describe(index)}: more blocks are in use (${this.count + 1}, ${this.bytes + length} bytes) than the file (${this.fileSize} bytes) can hold apart; blocks overlap`;
      return;
    }
    if (this.count === this.starts.length) {
      this.starts = grow(this.starts);
      this.owners = grow(this.owners);
      if (this.lengths) this.lengths = grow(this.lengths);
    }
    if (length !== this.blockBytes && !this.lengths) this.lengths = new Float64Array(this.starts.length).fill(this.blockBytes);
    this.starts[this.count] = start;
    this.owners[this.count] = index;
    if (this.lengths) this.lengths[this.count] = length;
    this.count++;
    this.bytes += length;
  }

  /** The opener's check: the first problem thrown. */
  check(): void {
    const crowded = this.eachOverlap(({ message }) => {
      throw new CorruptImageError(message);
    });
    if (crowded) throw new CorruptImageError(crowded);
  }

  /** `each` hears of every block that starts inside another; returns why tracking stopped, if it did. */
  eachOverlap(each: (overlap: Overlap) => void): string | undefined {
    const starts = this.starts.subarray(0, this.count);
    if (!this.lengths) {
      // Most tables are sound: sorting the starts alone says so, fast.
      const sorted = starts.slice().sort();
      let any = false;
      for (let i = 1; i < sorted.length && !any; i++) any = sorted[i] < sorted[i - 1] + this.blockBytes;
      if (!any) return this.crowded;
    }
    const order = new Uint32Array(this.count).map((_, i) => i);
    order.sort((a, b) => starts[a] - starts[b] || this.owners[a] - this.owners[b]);
    // The block reaching furthest so far: a start before its end is inside it.
    let reach = -1;
    let reachEnd = -Infinity;
    for (const i of order) {
      const start = starts[i];
      if (start < reachEnd) {
        const [first, second] = [this.owners[reach], this.owners[i]];
        each({ first, second, message: `${this.describe(second)} points at byte ${start}, inside the block of ${this.describe(first).replace(/^.*?: /, "")} (at byte ${starts[reach]})` });
      }
      const end = start + (this.lengths ? this.lengths[i] : this.blockBytes);
      if (end > reachEnd) {
        reach = i;
        reachEnd = end;
      }
    }
    return this.crowded;
  }
}

function grow(a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> {
  const bigger = new Float64Array(a.length * 2);
  bigger.set(a);
  return bigger;
}
