import { CorruptImageError } from "../../errors.js";
import { readUint64 } from "../../util/uint64.js";

/**
 * The exFAT boot sector: sector 0 of the main boot region (sectors 0-11;
 * sectors 12-23 are the backup). Sizes are in sectors of 2^bytesPerSectorShift
 * bytes, which need not be the device's sector size.
 */
export interface BootSector {
  volumeLength: number;
  fatOffset: number;
  fatLength: number;
  clusterHeapOffset: number;
  clusterCount: number;
  rootCluster: number;
  serialNumber: number;
  revision: number;
  volumeFlags: number;
  bytesPerSector: number;
  sectorsPerCluster: number;
  fatCount: number;
}

export const BOOT_REGION_SECTORS = 12;
export const VOLUME_FLAG_ACTIVE_FAT = 0x0001;

export function decodeBootSector(buf: Buffer): BootSector {
  if (buf.length < 512) throw new CorruptImageError("exFAT boot sector: truncated");
  if (buf.toString("latin1", 3, 11) !== "EXFAT   ") throw new CorruptImageError("exFAT boot sector: no \"EXFAT\" file system name");
  if (buf.readUInt16LE(510) !== 0xaa55) throw new CorruptImageError("exFAT boot sector: no 0xAA55 signature");
  if (buf.subarray(11, 64).some((b) => b !== 0)) {
    throw new CorruptImageError("exFAT boot sector: MustBeZero bytes 11-63 are not zero (a FAT BIOS parameter block?)");
  }
  const bpsShift = buf[108] as number;
  const spcShift = buf[109] as number;
  if (bpsShift < 9 || bpsShift > 12) throw new CorruptImageError(`exFAT boot sector: BytesPerSectorShift ${bpsShift} is not 9-12`);
  if (spcShift > 25 - bpsShift) throw new CorruptImageError(`exFAT boot sector: SectorsPerClusterShift ${spcShift} makes clusters over 32 MiB`);
  const boot: BootSector = {
    volumeLength: readUint64(buf, 72, "exFAT boot sector: VolumeLength"),
    fatOffset: buf.readUInt32LE(80),
    fatLength: buf.readUInt32LE(84),
    clusterHeapOffset: buf.readUInt32LE(88),
    clusterCount: buf.readUInt32LE(92),
    rootCluster: buf.readUInt32LE(96),
    serialNumber: buf.readUInt32LE(100),
    revision: buf.readUInt16LE(104),
    volumeFlags: buf.readUInt16LE(106),
    bytesPerSector: 1 << bpsShift,
    sectorsPerCluster: 1 << spcShift,
    fatCount: buf[110] as number,
  };
  const b = boot;
  if (b.revision >> 8 !== 1) throw new CorruptImageError(`exFAT boot sector: FileSystemRevision ${b.revision >> 8}.${b.revision & 0xff} (want 1.x)`);
  if (b.fatCount !== 1 && b.fatCount !== 2) throw new CorruptImageError(`exFAT boot sector: NumberOfFats ${b.fatCount} is not 1 or 2`);
  if (b.fatOffset < 24) throw new CorruptImageError(`exFAT boot sector: FatOffset ${b.fatOffset} overlaps the boot regions`);
  if (b.clusterCount < 1) throw new CorruptImageError("exFAT boot sector: ClusterCount is 0");
  if (b.fatLength * b.bytesPerSector < (b.clusterCount + 2) * 4) {
    throw new CorruptImageError(`exFAT boot sector: FatLength ${b.fatLength} is too small for ${b.clusterCount} clusters`);
  }
  if (b.clusterHeapOffset < b.fatOffset + b.fatLength * b.fatCount) {
    throw new CorruptImageError(`exFAT boot sector: ClusterHeapOffset ${b.clusterHeapOffset} overlaps the FAT`);
  }
  if (b.clusterHeapOffset + b.clusterCount * b.sectorsPerCluster > b.volumeLength) {
    throw new CorruptImageError(`exFAT boot sector: the cluster heap runs past VolumeLength ${b.volumeLength}`);
  }
  if (b.rootCluster < 2 || b.rootCluster > b.clusterCount + 1) {
    throw new CorruptImageError(`exFAT boot sector: FirstClusterOfRootDirectory ${b.rootCluster} is not a cluster`);
  }
  return boot;
}

/**
 * The boot region checksum (sector 11 repeats it): a rotate-right-and-add
 * over sectors 0-10, skipping VolumeFlags and PercentInUse, which change
 * without the checksum being rewritten.
 */
export function bootChecksum(region: Buffer, bytesPerSector: number): number {
  let sum = 0;
  const end = bytesPerSector * 11;
  for (let i = 0; i < end; i++) {
    if (i === 106 || i === 107 || i === 112) continue;
    sum = ((sum & 1 ? 0x80000000 : 0) + (sum >>> 1) + (region[i] as number)) >>> 0;
  }
  return sum;
}

/** Check sector 11 of a boot region against the checksum of sectors 0-10. */
export function checkBootChecksum(region: Buffer, bytesPerSector: number): void {
  const sum = bootChecksum(region, bytesPerSector);
  const sector = region.subarray(bytesPerSector * 11, bytesPerSector * 12);
  for (let at = 0; at < sector.length; at += 4) {
    if (sector.readUInt32LE(at) !== sum) {
      throw new CorruptImageError(`exFAT boot checksum mismatch (computed 0x${sum.toString(16)}, sector 11 holds 0x${sector.readUInt32LE(at).toString(16)})`);
    }
  }
}
