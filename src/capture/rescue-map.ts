/**
 * The rescue's single source of truth: which bytes of the source are
 * rescued, untried, failed or bad. Runs of equal status are kept merged and
 * contiguous over [0, size), so the map is as small as ddrescue's and every
 * pass asks it what is still unfinished.
 */
import { CorruptImageError } from "../errors.js";
import { BLOCK_STATUSES, type BlockStatus, type MapBlock } from "./mapfile.js";

export type Range = [start: number, end: number];

export class RescueMap {
  /** Run i covers [starts[i], starts[i+1]) (the last one up to size). */
  private starts: number[];
  private statuses: BlockStatus[];
  private readonly totals = new Map<BlockStatus, number>();

  constructor(
    readonly size: number,
    initial: BlockStatus = "?",
  ) {
    this.starts = [0];
    this.statuses = [initial];
    for (const s of BLOCK_STATUSES) this.totals.set(s, 0);
    this.totals.set(initial, size);
  }

  /**
   * A map from a mapfile's blocks, fitted to a source of `size` bytes the
   * way ddrescue does it: a gap at the front or a short tail becomes
   * non-tried; unfinished blocks past the end are cut off; rescued data past
   * the end means the mapfile belongs to something else.
   */
  static fromBlocks(blocks: MapBlock[], size: number): RescueMap {
    const map = new RescueMap(size);
    for (const b of blocks) {
      const end = b.pos + b.size;
      if (end > size && b.status === "+") {
        throw new CorruptImageError(
          `the mapfile says bytes up to ${end} were rescued, but the source has only ${size}: is it the mapfile of another source?`,
        );
      }
      if (b.pos >= size) continue;
      map.set(b.pos, Math.min(end, size), b.status);
    }
    return map;
  }

  /** Index of the run containing `pos` (0 <= pos < size). */
  private indexOf(pos: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private endOf(i: number): number {
    return i + 1 < this.starts.length ? this.starts[i + 1] : this.size;
  }

  /** Split so that a run starts exactly at `pos` (if pos < size); returns that run's index. */
  private splitAt(pos: number): number {
    if (pos >= this.size) return this.starts.length;
    const i = this.indexOf(pos);
    if (this.starts[i] === pos) return i;
    this.starts.splice(i + 1, 0, pos);
    this.statuses.splice(i + 1, 0, this.statuses[i]);
    return i + 1;
  }

  /** Give [start, end) one status, merging with equal neighbours. */
  set(start: number, end: number, status: BlockStatus): void {
    start = Math.max(0, start);
    end = Math.min(this.size, end);
    if (start >= end) return;
    const first = this.splitAt(start);
    const last = this.splitAt(end); // index of the run after the range
    for (let i = first; i < last; i++) {
      const s = this.statuses[i];
      this.totals.set(s, (this.totals.get(s) ?? 0) - (this.endOf(i) - this.starts[i]));
    }
    this.totals.set(status, (this.totals.get(status) ?? 0) + (end - start));
    this.starts.splice(first, last - first, start);
    this.statuses.splice(first, last - first, status);
    // Merge with the following and the preceding run when they have the same status.
    if (first + 1 < this.starts.length && this.statuses[first + 1] === status) {
      this.starts.splice(first + 1, 1);
      this.statuses.splice(first + 1, 1);
    }
    if (first > 0 && this.statuses[first - 1] === status) {
      this.starts.splice(first, 1);
      this.statuses.splice(first, 1);
    }
  }

  statusAt(pos: number): BlockStatus {
    return this.statuses[this.indexOf(pos)];
  }

  /** The run containing pos, as [start, end) and its status. */
  runAt(pos: number): { start: number; end: number; status: BlockStatus } {
    const i = this.indexOf(pos);
    return { start: this.starts[i], end: this.endOf(i), status: this.statuses[i] };
  }

  /** Ranges with one of the given statuses inside [from, to), clipped to it, in order. */
  ranges(statuses: BlockStatus | BlockStatus[], from = 0, to = this.size): Range[] {
    const wanted = Array.isArray(statuses) ? statuses : [statuses];
    const out: Range[] = [];
    if (from >= to) return out;
    for (let i = this.indexOf(from); i < this.starts.length && this.starts[i] < to; i++) {
      if (!wanted.includes(this.statuses[i])) continue;
      const start = Math.max(from, this.starts[i]);
      const end = Math.min(to, this.endOf(i));
      const prev = out.at(-1);
      if (prev && prev[1] === start) prev[1] = end;
      else out.push([start, end]);
    }
    return out;
  }

  /** Bytes with this status in [from, to) (the whole map when omitted). */
  bytes(status: BlockStatus, from = 0, to = this.size): number {
    if (from <= 0 && to >= this.size) return this.totals.get(status) ?? 0;
    return this.ranges(status, from, to).reduce((n, [s, e]) => n + e - s, 0);
  }

  /** First position in [from, to) whose status is not `status`, or `to`. */
  firstNot(status: BlockStatus, from: number, to: number): number {
    for (let i = this.indexOf(from); i < this.starts.length && this.starts[i] < to; i++) {
      if (this.statuses[i] !== status) return Math.max(from, this.starts[i]);
    }
    return to;
  }

  /** Number of runs: the mapfile's block lines. */
  get runCount(): number {
    return this.starts.length;
  }

  toBlocks(): MapBlock[] {
    if (this.size === 0) return [];
    return this.starts.map((pos, i) => ({ pos, size: this.endOf(i) - pos, status: this.statuses[i] }));
  }
}
