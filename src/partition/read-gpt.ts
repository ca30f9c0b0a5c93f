/**
 * Reads a GPT: the primary header at LBA 1 and its entry array, checked by
 * their CRC32s, and the backup at the LBA the primary names (normally the
 * last one). A corrupt primary falls back to the backup with a warning, as
 * sgdisk and the kernel do; a backup that disagrees is a warning too.
 */
import { CorruptImageError } from "../errors.js";
import type { BlockSource } from "../io/block-source.js";
import {
  decodeGptEntry,
  decodeGptHeader,
  gptAttributeNames,
  gptEntriesCrc32,
  GPT_ENTRY_SIZE,
  type GptEntry,
  type GptHeader,
  hasGptSignature,
  isUnusedGptEntry,
} from "./gpt.js";
import { gptTypeName } from "./type-names.js";
import type { Partition } from "./types.js";

/** No real GPT has more: 128 entries of 128 bytes is 16 KiB; a corrupt count must not make us read gigabytes. */
const MAX_ENTRY_ARRAY_BYTES = 1 << 20;
const MAX_ENTRY_SIZE = 4096;

interface LoadedHeader {
  lba: number;
  header: GptHeader | null;
  entries: Buffer | null;
  /** Why this copy cannot be used; null when it can. */
  problem: string | null;
}

/**
 * Does `source` hold a GPT header at LBA 1 (or failing that, at the last LBA,
 * where reaching the end is a read: BlockSource.seekable) for this sector size?
 */
export async function hasGptHeader(source: BlockSource, sectorSize: number): Promise<boolean> {
  const lastLba = Math.floor(source.size / sectorSize) - 1;
  for (const lba of source.seekable === false ? [1] : [1, lastLba]) {
    if (lba < 1 || (lba + 1) * sectorSize > source.size) continue;
    if (hasGptSignature(await source.read(lba * sectorSize, 8))) return true;
  }
  return false;
}

/**
 * The logical sector size that holds the GPT: the source's own first (a
 * block device knows it), then the other of 512 and 4096, since a 4Kn disk
 * image in a file looks like a 512-byte device. null when neither does.
 */
export async function detectGptSectorSize(source: BlockSource): Promise<number | null> {
  const candidates = [source.sectorSize, ...[512, 4096].filter((s) => s !== source.sectorSize)];
  for (const ss of candidates) {
    if (2 * ss <= source.size && hasGptSignature(await source.read(ss, 8))) return ss;
  }
  for (const ss of candidates) {
    if (await hasGptHeader(source, ss)) return ss;
  }
  return null;
}

async function loadHeader(source: BlockSource, lba: number, sectorSize: number): Promise<LoadedHeader> {
  const fail = (problem: string, header: GptHeader | null = null): LoadedHeader => ({ lba, header, entries: null, problem });
  if (!Number.isSafeInteger(lba) || lba < 1 || (lba + 1) * sectorSize > source.size) {
    return fail(`LBA ${lba} is past the end of the image`);
  }
  let header: GptHeader;
  try {
    header = decodeGptHeader(await source.read(lba * sectorSize, sectorSize));
  } catch (err) {
    if (err instanceof CorruptImageError) return fail(err.message.replace(/^GPT header: /, ""));
    throw err;
  }
  if (!header.crcValid) return fail("header CRC32 mismatch", header);
  if (header.currentLba !== lba) return fail(`the header says it is at LBA ${header.currentLba}`, header);
  if (header.entrySize < GPT_ENTRY_SIZE || header.entrySize % 8 !== 0 || header.entrySize > MAX_ENTRY_SIZE) {
    return fail(`entry size ${header.entrySize} is invalid`, header);
  }
  const arrayBytes = header.entryCount * header.entrySize;
  if (header.entryCount === 0 || arrayBytes > MAX_ENTRY_ARRAY_BYTES) {
    return fail(`entry count ${header.entryCount} is invalid`, header);
  }
  if (header.firstUsableLba > header.lastUsableLba) {
    return fail(`first usable LBA ${header.firstUsableLba} is after the last ${header.lastUsableLba}`, header);
  }
  const entriesOffset = header.entriesLba * sectorSize;
  if (!Number.isSafeInteger(entriesOffset) || header.entriesLba < 1 || entriesOffset + arrayBytes > source.size) {
    return fail(`the partition entry array (LBA ${header.entriesLba}) is past the end of the image`, header);
  }
  const entries = await source.read(entriesOffset, arrayBytes);
  if (gptEntriesCrc32(entries) !== header.entriesCrc32) return fail("partition entry array CRC32 mismatch", header);
  return { lba, header, entries, problem: null };
}

function differences(a: GptHeader, b: GptHeader, aEntries: Buffer, bEntries: Buffer): string[] {
  const diffs: string[] = [];
  if (a.diskGuid !== b.diskGuid) diffs.push("disk GUID");
  if (a.firstUsableLba !== b.firstUsableLba || a.lastUsableLba !== b.lastUsableLba) diffs.push("usable area");
  if (!aEntries.equals(bEntries)) diffs.push("partition entries");
  if (a.backupLba !== b.currentLba || b.backupLba !== a.currentLba) diffs.push("pointers to each other");
  return diffs;
}

export interface GptTable {
  header: GptHeader;
  partitions: Partition[];
}

export async function readGpt(source: BlockSource, sectorSize: number, warnings: string[]): Promise<GptTable> {
  const lastLba = Math.floor(source.size / sectorSize) - 1;
  const primary = await loadHeader(source, 1, sectorSize);
  let chosen: LoadedHeader;
  if (primary.problem === null) {
    chosen = primary;
    const primaryHeader = primary.header as GptHeader;
    const backup = await loadHeader(source, primaryHeader.backupLba, sectorSize);
    if (backup.problem !== null) {
      warnings.push(`the backup GPT header at LBA ${primaryHeader.backupLba} is unusable (${backup.problem}); the primary is fine`);
    } else {
      const diffs = differences(primaryHeader, backup.header as GptHeader, primary.entries as Buffer, backup.entries as Buffer);
      if (diffs.length) warnings.push(`the primary and backup GPTs disagree (${diffs.join(", ")}); using the primary`);
    }
    if (primaryHeader.backupLba !== lastLba && backup.problem === null) {
      warnings.push(
        `the backup GPT is at LBA ${primaryHeader.backupLba}, not at the last LBA ${lastLba}: the image was resized after partitioning`,
      );
    }
  } else {
    const candidates = [primary.header?.backupLba, lastLba].filter(
      (lba, i, all): lba is number => lba !== undefined && lba !== 1 && all.indexOf(lba) === i,
    );
    const backups: LoadedHeader[] = [];
    for (const lba of candidates) backups.push(await loadHeader(source, lba, sectorSize));
    const usable = backups.find((b) => b.problem === null);
    if (!usable) {
      const why = backups.map((b) => `backup (LBA ${b.lba}): ${b.problem}`).join("; ");
      throw new CorruptImageError(`${source.name}: both GPTs are unusable: primary (LBA 1): ${primary.problem}; ${why || "no backup location"}`);
    }
    warnings.push(`the primary GPT is corrupt (${primary.problem}); using the backup GPT at LBA ${usable.lba}`);
    chosen = usable;
  }
  const header = chosen.header as GptHeader;
  return { header, partitions: gptPartitions(header, chosen.entries as Buffer, sectorSize, warnings) };
}

function gptPartitions(header: GptHeader, array: Buffer, sectorSize: number, warnings: string[]): Partition[] {
  const partitions: Partition[] = [];
  for (let i = 0; i < header.entryCount; i++) {
    const number = i + 1;
    let entry: GptEntry;
    try {
      entry = decodeGptEntry(array, i * header.entrySize);
    } catch (err) {
      if (!(err instanceof CorruptImageError)) throw err;
      warnings.push(`GPT entry ${number}: ${err.message.replace(/^GPT entry: /, "")}; ignored`);
      continue;
    }
    if (isUnusedGptEntry(entry)) continue;
    if (!Number.isSafeInteger((entry.lastLba + 1) * sectorSize)) {
      warnings.push(`GPT entry ${number}: LBA ${entry.lastLba} is beyond any disk; ignored`);
      continue;
    }
    if (entry.lastLba < entry.firstLba) {
      warnings.push(`GPT entry ${number}: last LBA ${entry.lastLba} is before first LBA ${entry.firstLba}; ignored`);
      continue;
    }
    if (entry.firstLba < header.firstUsableLba || entry.lastLba > header.lastUsableLba) {
      warnings.push(
        `partition ${number} (LBA ${entry.firstLba}-${entry.lastLba}) lies outside the GPT's usable area (LBA ${header.firstUsableLba}-${header.lastUsableLba})`,
      );
    }
    const sectors = entry.lastLba - entry.firstLba + 1;
    partitions.push({
      number,
      start: entry.firstLba,
      sectors,
      offset: entry.firstLba * sectorSize,
      length: sectors * sectorSize,
      type: entry.typeGuid,
      typeName: gptTypeName(entry.typeGuid),
      bootable: (entry.attributes & 4n) !== 0n,
      container: false,
      name: entry.name,
      uuid: entry.uniqueGuid,
      attributes: gptAttributeNames(entry.attributes),
    });
  }
  return partitions;
}
