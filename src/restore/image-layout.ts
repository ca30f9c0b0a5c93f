/**
 * How much of a target an image needs: up to the end of its last
 * partition (plus room for the backup GPT), or all of it when it has no
 * partition table. A disk image is often a little bigger than its
 * partitions (a card image rounded up); writing it to a slightly smaller
 * card is fine as long as no partition is cut.
 */
import { CorruptImageError } from "../errors.js";
import { readDiskTable } from "../image/disk-table.js";
import type { BlockSource } from "../io/block-source.js";
import { decodeGptHeader } from "../partition/gpt.js";
import type { PartitionTable } from "../partition/types.js";
import { backupGptSectors, type GptOnDisk } from "./gpt-relocation.js";

/** No real GPT entry array is bigger; a corrupt header must not make us read gigabytes. */
const MAX_ENTRY_ARRAY_BYTES = 1 << 20;

export interface ImageLayout {
  imageSize: number;
  /** Bytes a target needs to hold every partition whole. */
  required: number;
  /** The image's GPT as it lies at its start, when it has a usable one. */
  gpt?: GptOnDisk;
}

export async function imageLayout(source: BlockSource): Promise<ImageLayout> {
  const imageSize = source.size;
  let table: PartitionTable;
  try {
    table = await readDiskTable(source);
  } catch (err) {
    if (err instanceof CorruptImageError) return { imageSize, required: imageSize };
    throw err;
  }
  if (table.scheme === "none" || table.partitions.length === 0) return { imageSize, required: imageSize };
  const lastEnd = Math.max(...table.partitions.map((p) => p.offset + p.length));
  if (table.scheme !== "gpt") return { imageSize, required: Math.min(lastEnd, imageSize) };
  const gpt = await readGptOnDisk(source, table);
  const backup = gpt ? backupGptSectors(decodeGptHeader(gpt.primaryHeader), table.sectorSize) : 34;
  return { imageSize, required: Math.min(lastEnd + backup * table.sectorSize, imageSize), gpt };
}

/** The sectors relocation rewrites, when the primary header is sound; undefined otherwise (the table then goes as it is). */
async function readGptOnDisk(source: BlockSource, table: PartitionTable): Promise<GptOnDisk | undefined> {
  const ss = table.sectorSize;
  const primaryHeader = await source.read(ss, ss);
  let header;
  try {
    header = decodeGptHeader(primaryHeader);
  } catch {
    return undefined;
  }
  const bytes = header.entryCount * header.entrySize;
  const at = header.entriesLba * ss;
  if (!header.crcValid || bytes === 0 || bytes > MAX_ENTRY_ARRAY_BYTES || !Number.isSafeInteger(at) || at + bytes > source.size) return undefined;
  return {
    sectorSize: ss,
    mbr: await source.read(0, ss),
    primaryHeader,
    entries: await source.read(at, bytes),
    lastPartitionLba: Math.max(...table.partitions.map((p) => p.start + p.sectors - 1)),
  };
}
