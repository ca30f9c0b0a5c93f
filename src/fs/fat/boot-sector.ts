/**
 * The FAT boot sector and its BIOS parameter block (Microsoft's FAT spec,
 * Linux fs/fat/inode.c fat_read_bpb). Decides FAT12/16/32 the way Linux
 * does: FAT32 when the 16-bit FAT size is zero and the 32-bit one is not,
 * otherwise FAT12 below 4085 clusters and FAT16 from there.
 */
import { CorruptImageError } from "../../errors.js";

export type FatBits = 12 | 16 | 32;

export interface BootSector {
  bytesPerSector: number;
  sectorsPerCluster: number;
  reservedSectors: number;
  numFats: number;
  rootEntries: number;
  totalSectors: number;
  /** Sectors per FAT. */
  fatSize: number;
  fatBits: FatBits;
  /** FAT32: first cluster of the root directory. */
  rootCluster: number;
  /** FAT32 with mirroring off: which FAT is live. */
  activeFat: number;
  volumeId: string;
  /** The boot sector's copy of the label; the root directory's volume entry wins over it. */
  label: string;
  // Derived layout, in bytes from the start of the filesystem:
  clusterSize: number;
  fatOffset: number;
  rootDirOffset: number;
  rootDirBytes: number;
  dataOffset: number;
  /** Data clusters: valid cluster numbers are 2 .. clusterCount + 1. */
  clusterCount: number;
}

const MAX_FAT12_CLUSTERS = 4084;
const MAX_FAT16_CLUSTERS = 65524;
const MAX_FAT32_CLUSTERS = 0x0ffffff5;

function fail(field: string, value: number, why: string): never {
  throw new CorruptImageError(`FAT boot sector: ${field} ${value} ${why}`);
}

const isPowerOfTwo = (n: number) => n > 0 && (n & (n - 1)) === 0;

export function decodeBootSector(b: Buffer): BootSector {
  if (b.length < 512) throw new CorruptImageError("FAT boot sector: truncated");
  const bytesPerSector = b.readUInt16LE(11);
  const sectorsPerCluster = b[13];
  const reservedSectors = b.readUInt16LE(14);
  const numFats = b[16];
  const rootEntries = b.readUInt16LE(17);
  const total16 = b.readUInt16LE(19);
  const media = b[21];
  const fat16Size = b.readUInt16LE(22);
  const total32 = b.readUInt32LE(32);
  const fat32Size = b.readUInt32LE(36);
  if (!isPowerOfTwo(bytesPerSector) || bytesPerSector < 512 || bytesPerSector > 4096) {
    fail("bytes per sector", bytesPerSector, "is not a power of two from 512 to 4096");
  }
  if (!isPowerOfTwo(sectorsPerCluster)) fail("sectors per cluster", sectorsPerCluster, "is not a power of two");
  if (reservedSectors === 0) fail("reserved sectors", 0, "must be at least 1");
  if (numFats === 0) fail("number of FATs", 0, "must be at least 1");
  if (media !== 0xf0 && media < 0xf8) fail("media descriptor", media, "is not 0xf0 or 0xf8..0xff");
  const isFat32 = fat16Size === 0 && fat32Size !== 0;
  const fatSize = isFat32 ? fat32Size : fat16Size;
  if (fatSize === 0) fail("sectors per FAT", 0, "must be at least 1");
  const totalSectors = total16 !== 0 ? total16 : total32;
  if (totalSectors === 0) fail("total sectors", 0, "must be at least 1");
  const entriesPerSector = bytesPerSector / 32;
  if (!isFat32 && (rootEntries === 0 || rootEntries % entriesPerSector !== 0)) {
    fail("root directory entries", rootEntries, `is not a non-zero multiple of ${entriesPerSector}`);
  }
  const rootDirSectors = isFat32 ? 0 : rootEntries / entriesPerSector;
  const dataSector = reservedSectors + numFats * fatSize + rootDirSectors;
  if (dataSector >= totalSectors) fail("total sectors", totalSectors, `leaves no room for data (it starts at sector ${dataSector})`);
  const clusterCount = Math.floor((totalSectors - dataSector) / sectorsPerCluster);
  const fatBits: FatBits = isFat32 ? 32 : clusterCount > MAX_FAT12_CLUSTERS ? 16 : 12;
  const maxClusters = fatBits === 12 ? MAX_FAT12_CLUSTERS : fatBits === 16 ? MAX_FAT16_CLUSTERS : MAX_FAT32_CLUSTERS;
  if (clusterCount < 1 || clusterCount > maxClusters) {
    fail("cluster count", clusterCount, `is out of range for FAT${fatBits}`);
  }
  const fatEntries = Math.floor((fatSize * bytesPerSector * 8) / fatBits);
  if (clusterCount + 2 > fatEntries) {
    fail("sectors per FAT", fatSize, `are too few for ${clusterCount} clusters`);
  }
  const ext = isFat32 ? 64 : 36; // offset of the extended BPB (drive number)
  const hasExtendedBpb = b[ext + 2] === 0x29;
  const extFlags = isFat32 ? b.readUInt16LE(40) : 0;
  const activeFat = extFlags & 0x80 ? extFlags & 0x0f : 0;
  if (activeFat >= numFats) fail("active FAT", activeFat, `is not below the number of FATs (${numFats})`);
  const rootCluster = isFat32 ? b.readUInt32LE(44) : 0;
  if (isFat32 && (rootCluster < 2 || rootCluster > clusterCount + 1)) {
    fail("root cluster", rootCluster, `is outside clusters 2..${clusterCount + 1}`);
  }
  const id = hasExtendedBpb ? b.readUInt32LE(ext + 3) : 0;
  return {
    bytesPerSector,
    sectorsPerCluster,
    reservedSectors,
    numFats,
    rootEntries,
    totalSectors,
    fatSize,
    fatBits,
    rootCluster,
    activeFat,
    volumeId: hasExtendedBpb ? `${(id >>> 16).toString(16).padStart(4, "0")}-${(id & 0xffff).toString(16).padStart(4, "0")}`.toUpperCase() : "",
    label: hasExtendedBpb ? b.toString("latin1", ext + 7, ext + 18).replace(/ +$/, "") : "",
    clusterSize: sectorsPerCluster * bytesPerSector,
    fatOffset: (reservedSectors + activeFat * fatSize) * bytesPerSector,
    rootDirOffset: (reservedSectors + numFats * fatSize) * bytesPerSector,
    rootDirBytes: rootEntries * 32,
    dataOffset: dataSector * bytesPerSector,
    clusterCount,
  };
}
