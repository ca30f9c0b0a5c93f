/**
 * The partition table of a disk as blkid sees it: partition/ reads MBR and
 * GPT, and the filesystem probe tells it when sector 0 is a whole-device
 * filesystem's boot sector rather than a table.
 */
import { isFilesystemBootSector } from "../fs/probe/boot-sector.js";
import type { BlockSource } from "../io/block-source.js";
import { readPartitionTable } from "../partition/index.js";
import type { PartitionTable } from "../partition/types.js";

export function readDiskTable(source: BlockSource): Promise<PartitionTable> {
  return readPartitionTable(source, { isFilesystemBootSector });
}
