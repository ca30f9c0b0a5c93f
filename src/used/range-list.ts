/**
 * Byte ranges in ascending order, kept merged, in a bounded amount of
 * memory. Used-space maps of a badly fragmented filesystem can have one run
 * per block; rather than grow without bound, the list coarsens: past its
 * budget it bridges the smallest gaps (doubling the smallest gap it keeps),
 * which only ever adds free bytes to what is copied, never drops used ones.
 */

export type ByteRange = [start: number, end: number];

/** 16 bytes a run: 1 Mi runs is 16 MiB. */
const DEFAULT_MAX_RUNS = 1 << 20;
/** The first gap size coarsening bridges. */
const FIRST_BRIDGE = 64 << 10;

export class RangeList {
  private starts = new Float64Array(1024);
  private ends = new Float64Array(1024);
  private length = 0;
  /** Gaps narrower than this are bridged; 0 until the budget was first exceeded. */
  private bridge = 0;

  constructor(private readonly maxRuns = DEFAULT_MAX_RUNS) {}

  /** Number of runs. */
  get count(): number {
    return this.length;
  }

  /** The widest gap bridged to stay within budget (0: none, the list is exact). */
  get bridged(): number {
    return this.bridge;
  }

  /** Bytes covered. */
  get bytes(): number {
    let n = 0;
    for (let i = 0; i < this.length; i++) n += this.ends[i] - this.starts[i];
    return n;
  }

  /**
   * Add [start, end). Ranges must come in ascending order of start; one that
   * overlaps or touches the last run (or sits within a bridged gap of it)
   * extends it.
   */
  add(start: number, end: number): void {
    if (end <= start) return;
    const last = this.length - 1;
    if (last >= 0) {
      if (start < this.starts[last]) throw new Error(`RangeList: range at ${start} added after one at ${this.starts[last]}`);
      if (start <= this.ends[last] + this.bridge) {
        if (end > this.ends[last]) this.ends[last] = end;
        return;
      }
    }
    if (this.length === this.starts.length) this.grow();
    this.starts[this.length] = start;
    this.ends[this.length] = end;
    this.length++;
    if (this.length > this.maxRuns) this.coarsen();
  }

  /** Add every range of `other` shifted by `offset` (they must come after what is here). */
  addAll(other: RangeList, offset = 0): void {
    for (let i = 0; i < other.length; i++) this.add(other.starts[i] + offset, other.ends[i] + offset);
  }

  *[Symbol.iterator](): Generator<ByteRange> {
    for (let i = 0; i < this.length; i++) yield [this.starts[i], this.ends[i]];
  }

  /** The parts of the runs inside [from, to), in order. */
  within(from: number, to: number): ByteRange[] {
    const out: ByteRange[] = [];
    for (let i = this.firstEndingAfter(from); i < this.length && this.starts[i] < to; i++) {
      out.push([Math.max(from, this.starts[i]), Math.min(to, this.ends[i])]);
    }
    return out;
  }

  /** Bytes of the runs inside [from, to). */
  bytesWithin(from: number, to: number): number {
    let n = 0;
    for (let i = this.firstEndingAfter(from); i < this.length && this.starts[i] < to; i++) {
      n += Math.min(to, this.ends[i]) - Math.max(from, this.starts[i]);
    }
    return n;
  }

  /** Index of the first run whose end is past `pos`. */
  private firstEndingAfter(pos: number): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ends[mid] <= pos) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private grow(): void {
    const size = this.starts.length * 2;
    const starts = new Float64Array(size);
    const ends = new Float64Array(size);
    starts.set(this.starts);
    ends.set(this.ends);
    this.starts = starts;
    this.ends = ends;
  }

  /** Bridge ever wider gaps until the runs fit in half the budget. */
  private coarsen(): void {
    while (this.length > this.maxRuns / 2) {
      this.bridge = this.bridge === 0 ? FIRST_BRIDGE : this.bridge * 2;
      let kept = 0;
      for (let i = 1; i < this.length; i++) {
        if (this.starts[i] <= this.ends[kept] + this.bridge) {
          this.ends[kept] = Math.max(this.ends[kept], this.ends[i]);
        } else {
          kept++;
          this.starts[kept] = this.starts[i];
          this.ends[kept] = this.ends[i];
        }
      }
      this.length = kept + 1;
    }
  }
}
