/**
 * Is sector 0 the boot sector of a filesystem made on the whole device
 * (FAT, NTFS, exFAT) rather than an MBR? Both end in 55 AA; the partition
 * reader asks this so that a "superfloppy" is not mistaken for a table.
 */
import { decodeFatBootSector } from "./vfat.js";

export function isFilesystemBootSector(sector: Buffer): boolean {
  const oem = sector.toString("latin1", 3, 11);
  return oem === "NTFS    " || oem === "EXFAT   " || decodeFatBootSector(sector) !== null;
}
