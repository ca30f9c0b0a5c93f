/**
 * What `capture --used-only` reads of a disk or a partition: the partition
 * table, boot areas and gaps between partitions in full; each partition
 * whose filesystem platter knows by its used blocks (ext2/3/4, FAT, exFAT,
 * NTFS); a swap partition by its header page only; anything else in full.
 * A filesystem whose allocation map cannot be read (corrupt, unsupported,
 * a read error) is copied in full, with a warning: never less than it uses.
 */
import { extUsedRanges } from "../fs/ext/used-ranges.js";
import { exfatUsedRanges } from "../fs/exfat/used-ranges.js";
import { fatUsedRanges } from "../fs/fat/used-ranges.js";
import { ntfsUsedRanges } from "../fs/ntfs/used-ranges.js";
import { ProbeReader } from "../fs/probe/reader.js";
import { swapPageSize } from "../fs/probe/swap.js";
import { PlatterError } from "../errors.js";
import type { BlockSource } from "../io/block-source.js";
import { readDiskTable } from "../image/disk-table.js";
import { partitionView } from "../image/partition-choice.js";
import { probeOrWarn } from "../image/probe.js";
import { type ByteRange, RangeList } from "./range-list.js";

/** How a partition (or the whole source, `number` null) is read. */
export type UsageMethod = "used blocks" | "in full" | "swap header";

export interface PartitionUsage {
  number: number | null;
  filesystem: string | null;
  offset: number;
  length: number;
  method: UsageMethod;
  /** Bytes of it that are read. */
  bytesUsed: number;
}

export interface DiskUsage {
  /** Source byte ranges to read, ascending. */
  ranges: RangeList;
  partitions: PartitionUsage[];
  warnings: string[];
}

const USED_RANGES: Record<string, (source: BlockSource) => AsyncIterable<ByteRange>> = {
  ext2: extUsedRanges,
  ext3: extUsedRanges,
  ext4: extUsedRanges,
  vfat: fatUsedRanges,
  exfat: exfatUsedRanges,
  ntfs: ntfsUsedRanges,
  swap: swapHeader,
};

async function* swapHeader(source: BlockSource): AsyncGenerator<ByteRange> {
  const page = await swapPageSize(new ProbeReader(source));
  // The probe found the signature, so the page is there; the bad-page list and UUID live in it.
  yield [0, page ?? source.size];
}

export async function diskUsage(source: BlockSource): Promise<DiskUsage> {
  let table;
  try {
    table = await readDiskTable(source);
  } catch (err) {
    if (!(err instanceof PlatterError)) throw err;
    return wholeDisk(source, `${source.name}: cannot read the partition table (${err.message}): the whole disk is copied`);
  }
  const warnings = [...table.warnings];
  const ranges = new RangeList();
  const partitions: PartitionUsage[] = [];
  if (table.scheme === "none") {
    partitions.push(await partitionUsage(source, null, 0, ranges, warnings));
    return { ranges, partitions, warnings };
  }
  const parts = table.partitions.filter((p) => !p.container).sort((a, b) => a.offset - b.offset);
  let covered = 0;
  for (const p of parts) {
    const view = partitionView(source, table, p).present;
    if (view.size === 0) continue;
    if (p.offset < covered) {
      return wholeDisk(source, `partition ${p.number} of ${source.name} overlaps the partition before it: the whole disk is copied`, warnings);
    }
    ranges.add(covered, p.offset); // the table, boot code, gaps and logical partitions' EBRs
    partitions.push(await partitionUsage(view, p.number, p.offset, ranges, warnings));
    covered = p.offset + view.size;
  }
  ranges.add(covered, source.size); // past the last partition: GPT's backup table
  return { ranges, partitions, warnings };
}

function wholeDisk(source: BlockSource, why: string, warnings: string[] = []): DiskUsage {
  const ranges = new RangeList();
  ranges.add(0, source.size);
  return { ranges, partitions: [], warnings: [...warnings, why] };
}

/** Add what `part` (at `offset` in the source) uses to `into`, and say how. */
async function partitionUsage(part: BlockSource, number: number | null, offset: number, into: RangeList, warnings: string[]): Promise<PartitionUsage> {
  const filesystem = (await probeOrWarn(part, warnings))?.filesystem ?? null;
  const produce = filesystem ? USED_RANGES[filesystem] : undefined;
  let method: UsageMethod = "in full";
  const own = new RangeList();
  if (produce) {
    try {
      // Collected on their own first: a map that fails half-way is then replaced whole by the full partition.
      for await (const [start, end] of produce(part)) own.add(Math.max(0, start), Math.min(part.size, end));
      method = filesystem === "swap" ? "swap header" : "used blocks";
    } catch (err) {
      if (!(err instanceof PlatterError)) throw err;
      warnings.push(`${part.name}: cannot tell which ${filesystem} blocks are used (${err.message}): copied in full`);
    }
  }
  if (method === "in full") into.add(offset, offset + part.size);
  else into.addAll(own, offset);
  return { number, filesystem, offset, length: part.size, method, bytesUsed: method === "in full" ? part.size : own.bytes };
}
