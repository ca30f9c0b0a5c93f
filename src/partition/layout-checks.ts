/**
 * Checks every table gets after it is read: partitions past the end of the
 * image (a truncated image, or a table from a bigger disk) and partitions
 * that overlap. They become warnings: the table is still listed as it is.
 */
import type { Partition, PartitionTable } from "./types.js";

function end(p: Partition): number {
  return p.start + p.sectors;
}

function describe(p: Partition): string {
  return `partition ${p.number} (sectors ${p.start}-${end(p) - 1})`;
}

export function checkLayout(table: PartitionTable, imageSize: number): void {
  const totalSectors = Math.floor(imageSize / table.sectorSize);
  for (const p of table.partitions) {
    if (p.start >= totalSectors) {
      table.warnings.push(`${describe(p)} starts past the end of the image (${totalSectors} sectors): truncated image?`);
    } else if (end(p) > totalSectors) {
      table.warnings.push(`${describe(p)} extends past the end of the image (${totalSectors} sectors): truncated image?`);
    }
  }
  const containers = table.partitions.filter((p) => p.container);
  const data = table.partitions.filter((p) => !p.container);
  // A partition starting at sector 0 covers the table itself: the layout of
  // isohybrid images (partition 1 is the whole ISO). It is not an accident.
  const candidates = data.filter((p) => p.start !== 0).sort((a, b) => a.start - b.start || a.number - b.number);
  for (let i = 0; i < candidates.length; i++) {
    for (let j = i + 1; j < candidates.length && candidates[j].start < end(candidates[i]); j++) {
      table.warnings.push(`${describe(candidates[i])} and ${describe(candidates[j])} overlap`);
    }
  }
  if (table.scheme !== "mbr") return;
  for (const p of data) {
    const logical = p.number >= 5;
    for (const c of containers) {
      const inside = p.start >= c.start && end(p) <= end(c);
      const overlaps = p.start < end(c) && c.start < end(p);
      if (!logical && overlaps && p.start !== 0) table.warnings.push(`${describe(p)} overlaps the extended ${describe(c)}`);
      if (logical && !inside && containers.length === 1) {
        table.warnings.push(`logical ${describe(p)} lies outside the extended ${describe(c)}`);
      }
    }
  }
}
