/**
 * The rescue domain of `capture --used-only`: the source bytes the
 * filesystems use (src/used/disk-usage.ts). ddrescue has the same idea
 * (--domain-mapfile): only the domain is read; the rest is not touched.
 *
 * The copier needs no new logic for it: SOURCE is seen through a view whose
 * dataRanges() leave out what is outside the domain, so the copier treats
 * free space as it treats the holes of a sparse source: never read, written
 * as zeros (holes in a new file DEST, nothing at all for a writer that skips
 * zero ranges, real zeros on a block device, in order on a pipe).
 *
 * The mapfile stays honest, as ddrescue's does with a domain: bytes outside
 * the domain keep the status they had when the run began, '?' (non-tried)
 * in a new map. DEST holds zeros there, not SOURCE's bytes, so '+' would be
 * a lie: ddrescuelog shows the free space as non-tried, and running the same
 * capture again without --used-only (or GNU ddrescue on the map) fills it in
 * to a full image. While the run goes, the copier's own map marks them
 * finished so that no pass comes back to them.
 */
import { type BlockSource, dataRangesOf } from "../io/block-source.js";
import { UsageError } from "../errors.js";
import { diskUsage, type PartitionUsage } from "../used/disk-usage.js";
import type { RangeList } from "../used/range-list.js";
import { formatSize } from "../util/units.js";
import type { MapBlock } from "./mapfile.js";
import { RescueMap } from "./rescue-map.js";

export interface UsedSummary {
  /** Bytes read from SOURCE by this run. */
  bytesRead: number;
  /** Bytes of the window outside the domain: free space, not read. */
  bytesSkipped: number;
  partitions: PartitionUsage[];
}

export class CaptureDomain {
  private before: RescueMap | undefined;

  private constructor(
    readonly ranges: RangeList,
    readonly partitions: PartitionUsage[],
  ) {}

  /** The domain of `source`; what it could not map exactly goes to `warn`. */
  static async find(source: BlockSource | { name: string }, warn: ((message: string) => void) | undefined): Promise<CaptureDomain> {
    if (!("size" in source)) {
      throw new UsageError(`--used-only needs a SOURCE it can read at random to find the used blocks; ${source.name} is a stream`);
    }
    const usage = await diskUsage(source);
    for (const w of usage.warnings) warn?.(w);
    if (usage.ranges.bridged > 0) {
      warn?.(`the free space is too fragmented to track in bounded memory: free gaps under ${formatSize(usage.ranges.bridged)} are copied too`);
    }
    return new CaptureDomain(usage.ranges, usage.partitions);
  }

  /** SOURCE as the copier sees it: only the domain may hold data. */
  view(source: BlockSource): BlockSource {
    const { ranges } = this;
    return {
      size: source.size,
      sectorSize: source.sectorSize,
      name: source.name,
      read: (offset, length, into) => source.read(offset, length, into),
      copyTo: source.copyTo ? (offset, length, fd, fdOffset) => (source.copyTo as NonNullable<BlockSource["copyTo"]>)(offset, length, fd, fdOffset) : undefined,
      close: () => source.close(),
      async dataRanges(offset, length) {
        const data = await dataRangesOf(source, offset, length);
        const out: Array<[number, number]> = [];
        for (const [start, len] of data) {
          for (const [a, b] of ranges.within(start, start + len)) out.push([a, b - a]);
        }
        return out;
      },
    };
  }

  /**
   * Take over the run's map: what is outside the domain is remembered as it
   * is, then marked finished in `map` so that no pass reads it.
   */
  adopt(map: RescueMap): void {
    this.before = RescueMap.fromBlocks(map.toBlocks(), map.size);
    let pos = 0;
    for (const [a, b] of this.ranges) {
      if (pos < a) this.finishOutside(map, pos, Math.min(a, map.size));
      pos = b;
    }
    if (pos < map.size) this.finishOutside(map, pos, map.size);
  }

  /** Failed or bad areas outside the domain (left by an earlier full run) are not retried now; '?' ones become zeros as the copier passes. */
  private finishOutside(map: RescueMap, from: number, to: number): void {
    for (const [a, b] of map.ranges(["*", "/", "-"], from, to)) map.set(a, b, "+");
  }

  /** The blocks to save: the run's map inside the domain, the map as it was outside it. */
  blocks(map: RescueMap): MapBlock[] {
    const before = this.before ?? new RescueMap(map.size);
    const out: MapBlock[] = [];
    const push = (pos: number, end: number, status: MapBlock["status"]) => {
      const last = out.at(-1);
      if (last && last.status === status && last.pos + last.size === pos) last.size += end - pos;
      else if (end > pos) out.push({ pos, size: end - pos, status });
    };
    const copy = (from: RescueMap, a: number, b: number) => {
      for (let pos = a; pos < b; ) {
        const run = from.runAt(pos);
        const end = Math.min(b, run.end);
        push(pos, end, run.status);
        pos = end;
      }
    };
    let pos = 0;
    for (const [a, b] of this.ranges) {
      if (a >= map.size) break;
      copy(before, pos, a);
      copy(map, a, Math.min(b, map.size));
      pos = Math.min(b, map.size);
    }
    copy(before, pos, map.size);
    return out;
  }

  /** Bytes of [from, to) in the domain. */
  bytesIn(from: number, to: number): number {
    return this.ranges.bytesWithin(from, to);
  }
}
