/**
 * From "an image and maybe --part N" to the bytes of one filesystem. The
 * rule every command shares (mount, ls, cat, extract, hash --part):
 *   --part N            that partition (Linux numbering), or a clear error;
 *   no --part, and the whole image is a filesystem (an ISO, a superfloppy,
 *   an isohybrid image)  the whole image;
 *   no table            the whole image;
 *   one usable partition  it;
 *   several             a UsageError listing them and asking for --part N.
 * This joins partition tables (partition/) with filesystems (fs/), which
 * never import each other.
 */
import { UsageError } from "../errors.js";
import type { ProbeResult } from "../fs/probe.js";
import type { BlockSource } from "../io/block-source.js";
import { SliceSource } from "../io/slice-source.js";
import { TruncatedSource } from "../io/truncated-source.js";
import type { Partition, PartitionTable } from "../partition/types.js";
import { formatSize } from "../util/units.js";
import { readDiskTable } from "./disk-table.js";
import { probeOrWarn } from "./probe.js";

export interface PartitionView {
  /** The partition at its declared size; a read of a part missing from a truncated image fails, naming it. */
  source: BlockSource;
  /** The part of it the image holds: what probing looks at. */
  present: BlockSource;
  /** Set when the image ends inside the partition. */
  warning?: string;
}

/** The bytes of one partition, named "partition N of IMAGE" for messages. */
export function partitionView(source: BlockSource, table: PartitionTable, partition: Partition): PartitionView {
  const name = `partition ${partition.number} of ${source.name}`;
  const available = Math.max(0, Math.min(partition.length, source.size - partition.offset));
  if (available === partition.length) {
    const slice = new SliceSource(source, partition.offset, partition.length, name, table.sectorSize);
    return { source: slice, present: slice };
  }
  const present = new SliceSource(source, Math.min(partition.offset, source.size), available, name, table.sectorSize);
  const warning =
    `${name} (bytes ${partition.offset}-${partition.offset + partition.length - 1}) runs past the end of the image ` +
    `(${source.size} bytes): the image is truncated; reading the ${formatSize(available)} that are there`;
  return { source: new TruncatedSource(present, 0, partition.length, available, name, table.sectorSize), present, warning };
}

/** Partition `number`, or a UsageError naming the ones there are. */
export function findPartition(source: BlockSource, table: PartitionTable, number: number): Partition {
  const partition = table.partitions.find((p) => p.number === number);
  if (!partition) {
    if (table.scheme === "none") throw new UsageError(`${source.name} has no partition table; leave out --part to use the whole image`);
    const numbers = table.partitions.map((p) => p.number).join(", ") || "none";
    throw new UsageError(`${source.name} has no partition ${number} (partitions: ${numbers})`);
  }
  if (partition.container) {
    throw new UsageError(
      `partition ${number} of ${source.name} is an extended partition: it holds logical partitions (5 and up), not a filesystem`,
    );
  }
  return partition;
}

/** A view of partition `number` (see partitionView); warnings about it go to `warnings`. */
export function openPartition(source: BlockSource, table: PartitionTable, number: number, warnings: string[] = []): BlockSource {
  const view = partitionView(source, table, findPartition(source, table, number));
  if (view.warning) warnings.push(view.warning);
  return view.source;
}

export interface PartitionChoice {
  /** The bytes to read: a partition, or the source itself for the whole image. */
  source: BlockSource;
  /** null when the whole image was chosen. */
  partition: Partition | null;
  /** What is on it (null: nothing platter recognises). */
  probe: ProbeResult | null;
  table: PartitionTable;
  /** The table's warnings, then the choice's own (a truncated partition, a probe that hit a read error). */
  warnings: string[];
}

export interface ChooseOptions {
  /** --part N. */
  part?: number;
  /** Which probed partitions count as candidates without --part (default: any with a recognised filesystem). */
  usable?: (partition: Partition, probe: ProbeResult | null) => boolean;
  /** What the caller does with it, for the error message: "mount", "read". */
  purpose?: string;
  /** The table, when the caller has read it already. */
  table?: PartitionTable;
}

/** Filesystems a reader or mount can use: not swap, not encrypted containers. */
export function hasFilesystem(_partition: Partition, probe: ProbeResult | null): boolean {
  return probe !== null && probe.filesystem !== "swap" && probe.filesystem !== "crypto_LUKS" && probe.filesystem !== "jbd";
}

/** The part of a partition listing every "which one?" message shows: "  2  24 MiB  ext4  gptroot". */
export function describeCandidates(rows: Array<{ partition: Partition; probe: ProbeResult | null }>): string {
  return rows
    .map(({ partition, probe }) =>
      [
        `  ${String(partition.number).padStart(2)}`,
        formatSize(partition.length).padStart(9),
        (probe?.filesystem ?? "-").padEnd(11),
        probe?.label ?? partition.name ?? "",
      ]
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export async function choosePartition(source: BlockSource, options: ChooseOptions = {}): Promise<PartitionChoice> {
  const table = options.table ?? (await readDiskTable(source));
  const warnings = [...table.warnings];
  if (options.part !== undefined) {
    const partition = findPartition(source, table, options.part);
    const view = partitionView(source, table, partition);
    if (view.warning) warnings.push(view.warning);
    return { source: view.source, partition, probe: await probeOrWarn(view.present, warnings), table, warnings };
  }
  const whole = await probeOrWarn(source, warnings);
  if (whole || table.scheme === "none") return { source, partition: null, probe: whole, table, warnings };
  const usable = options.usable ?? hasFilesystem;
  const rows: Array<{ partition: Partition; probe: ProbeResult | null; view: PartitionView }> = [];
  for (const partition of table.partitions) {
    if (partition.container) continue;
    const view = partitionView(source, table, partition);
    if (view.present.size === 0) continue;
    rows.push({ partition, probe: await probeOrWarn(view.present, warnings), view });
  }
  const candidates = rows.filter((r) => usable(r.partition, r.probe));
  if (candidates.length === 1) {
    const [only] = candidates;
    if (only.view.warning) warnings.push(only.view.warning);
    return { source: only.view.source, partition: only.partition, probe: only.probe, table, warnings };
  }
  const purpose = options.purpose ? ` to ${options.purpose}` : "";
  if (candidates.length === 0) {
    const listing = rows.length ? `:\n${describeCandidates(rows)}` : "";
    throw new UsageError(`${source.name}: no partition with a filesystem platter can use${purpose}${listing}`);
  }
  throw new UsageError(
    `${source.name} has ${candidates.length} partitions with filesystems; choose one with --part N:\n${describeCandidates(candidates)}`,
  );
}
