/**
 * From "an image and maybe --part N" to the bytes of one filesystem. The
 * rule every command shares (mount, ls, cat, extract, hash --part):
 *   --part N            that partition (Linux numbering), or a clear error;
 *   no --part, and the whole image is a filesystem (an ISO, a superfloppy,
 *   an isohybrid image)  the whole image;
 *   no table            the whole image;
 *   one usable partition  it;
 *   several             a UsageError listing them and asking for --part N.
 */
import { CorruptImageError, UsageError } from "../errors.js";
import type { BlockSource } from "../io/block-source.js";
import { SliceSource } from "../io/slice-source.js";
import { probeFilesystem, type ProbeResult } from "../fs/probe.js";
import { formatSize } from "../util/units.js";
import { readPartitionTable } from "./index.js";
import type { Partition, PartitionTable } from "./types.js";

/** A bounds-checked view of partition `number`, named "partition N of IMAGE" for messages. */
export function openPartition(source: BlockSource, table: PartitionTable, number: number): BlockSource {
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
  if (partition.offset + partition.length > source.size) {
    throw new CorruptImageError(
      `partition ${number} of ${source.name} (bytes ${partition.offset}-${partition.offset + partition.length - 1}) ` +
        `extends past the end of the image (${source.size} bytes): the image is truncated`,
    );
  }
  return new SliceSource(source, partition.offset, partition.length, `partition ${number} of ${source.name}`, table.sectorSize);
}

export interface PartitionChoice {
  /** The bytes to read: a slice for a partition, the source itself for the whole image. */
  source: BlockSource;
  /** null when the whole image was chosen. */
  partition: Partition | null;
  /** What is on it (null: nothing platter recognises). */
  probe: ProbeResult | null;
  table: PartitionTable;
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
  const table = options.table ?? (await readPartitionTable(source));
  if (options.part !== undefined) {
    const slice = openPartition(source, table, options.part);
    const partition = table.partitions.find((p) => p.number === options.part) as Partition;
    return { source: slice, partition, probe: await probeFilesystem(slice), table };
  }
  const whole = await probeFilesystem(source);
  if (whole || table.scheme === "none") return { source, partition: null, probe: whole, table };
  const usable = options.usable ?? hasFilesystem;
  const rows: Array<{ partition: Partition; probe: ProbeResult | null; slice: BlockSource }> = [];
  for (const partition of table.partitions) {
    if (partition.container || partition.offset + partition.length > source.size) continue;
    const slice = new SliceSource(source, partition.offset, partition.length, `partition ${partition.number} of ${source.name}`, table.sectorSize);
    rows.push({ partition, probe: await probeFilesystem(slice), slice });
  }
  const candidates = rows.filter((r) => usable(r.partition, r.probe));
  if (candidates.length === 1) {
    const [only] = candidates;
    return { source: only.slice, partition: only.partition, probe: only.probe, table };
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
