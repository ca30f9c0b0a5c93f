/**
 * A GPT image written to a disk of another size: its backup header sits at
 * the image's last LBA, not the disk's, so firmware, the kernel and
 * `sgdisk -v` see a damaged table. This moves the backup header and entry
 * array to the disk's real end, as `sgdisk -e` (gdisk's
 * MoveSecondHeaderToEnd) does: the last usable LBA becomes diskSectors -
 * firstUsableLba, the backup entries follow it, the backup header takes the
 * last LBA, and a pure protective MBR is stretched to cover the new disk (a
 * hybrid MBR is left alone). The image's old backup stays where it was, mid-
 * disk and unused, as sgdisk leaves it. Pure: it returns the sectors to write.
 */
import { decodeGptHeader, encodeGptHeader, type GptHeader, gptEntriesCrc32 } from "../partition/gpt.js";
import { chsFromLba, decodeMbr, GPT_PROTECTIVE_TYPE, isUsedEntry, MBR_ENTRIES_OFFSET, MBR_ENTRY_SIZE } from "../partition/mbr.js";

/** Bytes to put at `offset` on the target, over whatever the image holds there. */
export interface Patch {
  offset: number;
  data: Buffer;
}

export interface GptOnDisk {
  sectorSize: number;
  /** Sector 0 of the image: the protective MBR. */
  mbr: Buffer;
  /** LBA 1 of the image. */
  primaryHeader: Buffer;
  /** The entry array the primary header points to. */
  entries: Buffer;
  /** The highest last LBA of any partition. */
  lastPartitionLba: number;
}

/** The patches, or why the table cannot be moved (the caller warns and writes the image as it is). */
export type Relocation = { patches: Patch[]; lastUsableLba: number } | { problem: string };

/** Sectors the backup GPT needs at the end of a disk: its entry array and its header. */
export function backupGptSectors(header: Pick<GptHeader, "entryCount" | "entrySize">, sectorSize: number): number {
  return Math.ceil((header.entryCount * header.entrySize) / sectorSize) + 1;
}

export function relocateGpt(gpt: GptOnDisk, diskSectors: number): Relocation {
  const { sectorSize } = gpt;
  let header: GptHeader;
  try {
    header = decodeGptHeader(gpt.primaryHeader);
  } catch (err) {
    return { problem: `the primary GPT header is unreadable (${(err as Error).message})` };
  }
  if (!header.crcValid || header.currentLba !== 1) return { problem: "the primary GPT header is damaged" };
  if (gptEntriesCrc32(gpt.entries) !== header.entriesCrc32) return { problem: "the primary GPT entry array is damaged" };
  const lastLba = diskSectors - 1;
  const lastUsableLba = Math.min(diskSectors - header.firstUsableLba, lastLba - backupGptSectors(header, sectorSize));
  if (gpt.lastPartitionLba > lastUsableLba) {
    return { problem: `a partition ends at LBA ${gpt.lastPartitionLba}, past the target's last usable LBA ${lastUsableLba}` };
  }
  const backupEntriesLba = lastUsableLba + 1;
  const primary = encodeGptHeader({ ...header, backupLba: lastLba, lastUsableLba }, sectorSize);
  const backup = encodeGptHeader({ ...header, currentLba: lastLba, backupLba: 1, lastUsableLba, entriesLba: backupEntriesLba }, sectorSize);
  const patches: Patch[] = [
    { offset: sectorSize, data: primary },
    { offset: backupEntriesLba * sectorSize, data: padToSectors(gpt.entries, sectorSize) },
    { offset: lastLba * sectorSize, data: backup },
  ];
  const mbr = stretchProtectiveMbr(gpt.mbr, diskSectors);
  if (mbr) patches.unshift({ offset: 0, data: mbr });
  return { patches, lastUsableLba };
}

/** Sector 0 with its one 0xEE entry covering the disk (as far as 32 bits reach); undefined for a hybrid or no MBR. */
function stretchProtectiveMbr(sector0: Buffer, diskSectors: number): Buffer | undefined {
  const mbr = decodeMbr(sector0);
  const used = mbr.entries.map((e, i) => ({ e, i })).filter(({ e }) => isUsedEntry(e));
  if (!mbr.signatureValid || used.length !== 1 || used[0].e.type !== GPT_PROTECTIVE_TYPE) return undefined;
  const { e, i } = used[0];
  const sectors = Math.min(diskSectors - e.startLba, 0xffffffff);
  const out = Buffer.from(sector0);
  const at = MBR_ENTRIES_OFFSET + i * MBR_ENTRY_SIZE;
  chsFromLba(e.startLba + sectors - 1).copy(out, at + 5);
  out.writeUInt32LE(sectors, at + 12);
  return out;
}

function padToSectors(data: Buffer, sectorSize: number): Buffer {
  const length = Math.ceil(data.length / sectorSize) * sectorSize;
  return length === data.length ? data : Buffer.concat([data, Buffer.alloc(length - data.length)]);
}
