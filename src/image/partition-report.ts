/**
 * The whole answer to "what is on this disk?": the partition table and, for
 * every partition, the filesystem the probe finds on it. This is what
 * `platter parts --json` prints.
 */
import type { BlockSource } from "../io/block-source.js";
import type { Partition, PartitionScheme } from "../partition/types.js";
import type { ProbeResult } from "../fs/probe.js";
import { readDiskTable } from "./disk-table.js";
import { partitionView } from "./partition-choice.js";
import { probeOrWarn } from "./probe.js";

export interface PartitionReportEntry extends Partition {
  /** blkid's TYPE of what is on the partition; null when nothing is recognised (or a container). */
  filesystem: string | null;
  label: string | null;
  /** The filesystem's UUID as blkid prints it (not the GPT partition GUID, which is `uuid`). */
  fsUuid: string | null;
}

export interface PartitionReport {
  size: number;
  sectorSize: number;
  scheme: PartitionScheme;
  id: string | null;
  partitions: PartitionReportEntry[];
  warnings: string[];
  /** A filesystem on the whole image (an ISO, a partitionless "superfloppy", an isohybrid image). */
  filesystem: string | null;
  label: string | null;
}

function withProbe(partition: Partition, probe: ProbeResult | null): PartitionReportEntry {
  return { ...partition, filesystem: probe?.filesystem ?? null, label: probe?.label ?? null, fsUuid: probe?.uuid ?? null };
}

/**
 * Read the table and probe every partition (the part of it inside the image,
 * when it runs past the end). A partition whose probe hits a read error is
 * reported with no filesystem and a warning, and the others are still probed.
 */
export async function reportPartitions(source: BlockSource): Promise<PartitionReport> {
  const table = await readDiskTable(source);
  const warnings = [...table.warnings];
  const partitions: PartitionReportEntry[] = [];
  for (const p of table.partitions) {
    const present = p.container ? null : partitionView(source, table, p).present;
    const probe = present && present.size > 0 ? await probeOrWarn(present, warnings) : null;
    partitions.push(withProbe(p, probe));
  }
  const whole = await probeOrWarn(source, warnings);
  return {
    size: source.size,
    sectorSize: table.sectorSize,
    scheme: table.scheme,
    id: table.id,
    partitions,
    warnings,
    filesystem: whole?.filesystem ?? null,
    label: whole?.label ?? null,
  };
}
