/**
 * The NTFS boot sector ($Boot, sector 0; a backup sits in the volume's last
 * sector, just past the clusters TotalSectors counts). Only the geometry
 * `capture --used-only` needs; validated as ntfs-3g's ntfs_boot_sector_is_ntfs does.
 */
import { CorruptImageError } from "../../errors.js";

export interface NtfsBootSector {
  bytesPerSector: number;
  clusterSize: number;
  /** Sectors of the volume, not counting the backup boot sector after them. */
  totalSectors: number;
  mftCluster: number;
  mftRecordSize: number;
}

const isPowerOfTwo = (n: number) => n > 0 && (n & (n - 1)) === 0;

function fail(field: string, value: number | string, why: string): never {
  throw new CorruptImageError(`NTFS boot sector: ${field} ${value} ${why}`);
}

export function decodeNtfsBootSector(b: Buffer): NtfsBootSector {
  if (b.length < 512) throw new CorruptImageError("NTFS boot sector: truncated");
  if (b.toString("latin1", 3, 11) !== "NTFS    ") fail("OEM id", JSON.stringify(b.toString("latin1", 3, 11)), 'is not "NTFS    "');
  const bytesPerSector = b.readUInt16LE(0x0b);
  if (!isPowerOfTwo(bytesPerSector) || bytesPerSector < 256 || bytesPerSector > 4096) {
    fail("bytes per sector", bytesPerSector, "is not a power of two from 256 to 4096");
  }
  const spc = b[0x0d] as number;
  // Values 0xF4..0xFF (as a signed byte, -12..-1) mean 2^-value sectors: clusters over 64 KiB.
  const sectorsPerCluster = spc <= 0x80 ? spc : 2 ** (256 - spc);
  if (!isPowerOfTwo(sectorsPerCluster)) fail("sectors per cluster", spc, "is not a power of two");
  const clusterSize = sectorsPerCluster * bytesPerSector;
  const totalSectors = Number(b.readBigUInt64LE(0x28));
  const mftCluster = Number(b.readBigUInt64LE(0x30));
  if (mftCluster * sectorsPerCluster >= totalSectors) fail("MFT cluster", mftCluster, "is outside the volume");
  const perRecord = b.readInt8(0x40);
  const mftRecordSize = perRecord > 0 ? perRecord * clusterSize : 2 ** -perRecord;
  if (!isPowerOfTwo(mftRecordSize) || mftRecordSize < 256 || mftRecordSize > 65536) {
    fail("clusters per MFT record", perRecord, "gives no valid record size");
  }
  return { bytesPerSector, clusterSize, totalSectors, mftCluster, mftRecordSize };
}
