/**
 * Reads an MBR partition table: the four primary entries and, behind each
 * extended entry, the chain of EBRs holding the logical partitions, numbered
 * from 5 as Linux numbers them. A chain that loops, runs off the image or
 * loses its signature ends with a warning, never a hang.
 */
import type { BlockSource } from "../io/block-source.js";
import { decodeEbr, isExtendedType, isUsedEntry, type Mbr, type MbrEntry, MBR_SIZE } from "./mbr.js";
import { mbrTypeId, mbrTypeName } from "./type-names.js";
import type { Partition } from "./types.js";

/** Linux gives up after 100 EBRs without a data partition; so does libblkid. */
export const MAX_EBR_CHAIN = 128;

function toPartition(number: number, entry: MbrEntry, start: number, sectorSize: number): Partition {
  return {
    number,
    start,
    sectors: entry.sectors,
    offset: start * sectorSize,
    length: entry.sectors * sectorSize,
    type: mbrTypeId(entry.type),
    typeName: mbrTypeName(entry.type),
    bootable: entry.status === 0x80,
    container: isExtendedType(entry.type),
    name: null,
    uuid: null,
  };
}

export async function readMbrPartitions(
  source: BlockSource,
  mbr: Mbr,
  sectorSize: number,
  warnings: string[],
): Promise<Partition[]> {
  const partitions: Partition[] = [];
  mbr.entries.forEach((entry, i) => {
    if (isUsedEntry(entry)) partitions.push(toPartition(i + 1, entry, entry.startLba, sectorSize));
  });
  const next = { number: 5 };
  for (const entry of mbr.entries) {
    if (isUsedEntry(entry) && isExtendedType(entry.type)) {
      partitions.push(...(await readLogicals(source, entry, sectorSize, next, warnings)));
    }
  }
  return partitions;
}

async function readLogicals(
  source: BlockSource,
  extended: MbrEntry,
  sectorSize: number,
  counter: { number: number },
  warnings: string[],
): Promise<Partition[]> {
  const logicals: Partition[] = [];
  const exStart = extended.startLba;
  const exEnd = exStart + extended.sectors;
  const visited = new Set<number>();
  let ebrSector = exStart;
  let ebrSize = extended.sectors;
  for (;;) {
    if (visited.has(ebrSector)) {
      warnings.push(`the chain of logical partitions loops back to the EBR at sector ${ebrSector}; stopped following it there`);
      break;
    }
    if (visited.size >= MAX_EBR_CHAIN) {
      warnings.push(`more than ${MAX_EBR_CHAIN} EBRs in the extended partition; stopped following the chain`);
      break;
    }
    visited.add(ebrSector);
    const offset = ebrSector * sectorSize;
    if (offset + MBR_SIZE > source.size) {
      warnings.push(`the EBR at sector ${ebrSector} is past the end of the image; logical partitions from there on are missing (truncated image?)`);
      break;
    }
    const sector = await source.read(offset, MBR_SIZE);
    const ebr = decodeEbr(sector);
    if (!ebr.signatureValid) {
      // An extended partition without logicals may hold a blank first EBR: nothing to report.
      if (visited.size > 1 || sector.some((b) => b !== 0)) {
        warnings.push(`the EBR at sector ${ebrSector} has no 0x55AA signature; logical partitions from there on are ignored`);
      }
      break;
    }
    for (const { slot, entry } of ebr.data) {
      const start = ebrSector + entry.startLba;
      // Slots 2-3 are junk more often than data: keep them only when they fit (Linux's rule).
      if (slot >= 2 && (entry.startLba + entry.sectors > ebrSize || start < exStart || start + entry.sectors > exEnd)) continue;
      logicals.push(toPartition(counter.number++, entry, start, sectorSize));
    }
    if (!ebr.next) break;
    ebrSector = exStart + ebr.next.startLba;
    ebrSize = ebr.next.sectors;
  }
  return logicals;
}
