/**
 * What partition table does this image have, and what is in it? MBR (with
 * its logical partitions), GPT (on 512- or 4096-byte sectors), or none.
 * Problems become warnings in the result; only a table that cannot be read
 * at all is an error.
 */
import type { BlockSource } from "../io/block-source.js";
import { decodeMbr, GPT_PROTECTIVE_TYPE, isUsedEntry, MBR_SIZE } from "./mbr.js";
import { detectGptSectorSize, hasGptHeader, readGpt } from "./read-gpt.js";
import { readMbrPartitions } from "./read-mbr.js";
import { checkLayout } from "./layout-checks.js";
import type { PartitionTable } from "./types.js";

export type { Partition, PartitionScheme, PartitionTable } from "./types.js";

export interface ReadTableOptions {
  /**
   * Is sector 0 the boot sector of a filesystem made on the whole device (a
   * "superfloppy": FAT, NTFS, exFAT)? Such a sector also ends in 55 AA, and
   * is no partition table. Filesystems are not this module's business: the
   * caller that knows them answers (image/disk-table.ts).
   */
  isFilesystemBootSector?: (sector0: Buffer) => boolean;
}

export async function readPartitionTable(source: BlockSource, options: ReadTableOptions = {}): Promise<PartitionTable> {
  const warnings: string[] = [];
  const none: PartitionTable = { scheme: "none", sectorSize: source.sectorSize, id: null, partitions: [], warnings };
  if (source.size < MBR_SIZE) return none;
  const sector0 = await source.read(0, MBR_SIZE);
  const mbr = decodeMbr(sector0);
  const used = mbr.entries.filter(isUsedEntry);
  const protective = mbr.signatureValid && used.some((e) => e.type === GPT_PROTECTIVE_TYPE);
  const gptSectorSize = protective || !mbr.signatureValid ? await detectGptSectorSize(source) : null;

  if (gptSectorSize !== null) {
    if (!mbr.signatureValid) {
      warnings.push("sector 0 holds no protective MBR (a GPT disk should have one); reading the GPT anyway");
    } else if (used.some((e) => e.type !== GPT_PROTECTIVE_TYPE)) {
      warnings.push("hybrid MBR: sector 0 also lists partitions for legacy systems; the GPT is what counts and is listed here");
    }
    const gpt = await readGpt(source, gptSectorSize, warnings);
    const table: PartitionTable = {
      scheme: "gpt",
      sectorSize: gptSectorSize,
      id: gpt.header.diskGuid,
      partitions: gpt.partitions,
      warnings,
    };
    checkLayout(table, source.size);
    return table;
  }
  if (!mbr.signatureValid) return none;
  if (protective) {
    warnings.push("the MBR has a protective GPT entry (type ee) but no GPT header was found (at LBA 1 or the last LBA, 512- or 4096-byte sectors)");
  } else {
    // A filesystem made on the whole device (a "superfloppy") also ends its first sector with 55 AA.
    if (options.isFilesystemBootSector?.(sector0)) return none;
    // libblkid's rule: a boot indicator other than 0x00/0x80 means this is not a partition table.
    if (mbr.entries.some((e) => e.status !== 0 && e.status !== 0x80)) return none;
    if (await hasGptHeader(source, source.sectorSize)) {
      warnings.push(
        "a GPT header is present too, but the MBR has no protective (type ee) entry: listing the MBR, as fdisk does " +
          "(the GPT is stale, or is the EFI firmware's view of a hybrid ISO)",
      );
    }
  }
  const table: PartitionTable = {
    scheme: "mbr",
    sectorSize: source.sectorSize,
    id: `0x${mbr.diskSignature.toString(16).padStart(8, "0")}`,
    partitions: await readMbrPartitions(source, mbr, source.sectorSize, warnings),
    warnings,
  };
  checkLayout(table, source.size);
  return table;
}
