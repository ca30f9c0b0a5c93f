/**
 * FAT12/16/32 (blkid: vfat). The boot sector's BIOS Parameter Block is
 * checked the way libblkid checks it (a FAT has no single magic number), the
 * version comes from the cluster count, and the label from the root
 * directory's volume-label entry: that is what blkid calls LABEL (the boot
 * sector's copy is its LABEL_FATBOOT, often stale after a relabel).
 */
import type { ProbeReader } from "./reader.js";
import { byteLabel, isPowerOfTwo, serialUuid } from "./text.js";
import type { ProbeResult } from "./types.js";

const FAT12_MAX = 0xff4;
const FAT16_MAX = 0xfff4;
const FAT32_MAX = 0x0ffffff6;
const DIR_ENTRY = 32;
const ATTR_VOLUME_ID = 0x08;
const ATTR_DIR = 0x10;
const ATTR_LONG_NAME = 0x0f;
const MAX_ROOT_CLUSTERS = 100;

export interface FatBootSector {
  bytesPerSector: number;
  sectorsPerCluster: number;
  reservedSectors: number;
  fatCount: number;
  rootEntries: number;
  /** Sectors of all FATs together. */
  fatSectors: number;
  clusterCount: number;
  /** FAT32 layout (the 16-bit FAT length is zero). */
  fat32: boolean;
  rootCluster: number;
  fsinfoSector: number;
  extBootSignature: number;
  serial: Buffer;
  bootLabel: Buffer;
}

function hasMagic(s: Buffer): { strong: boolean } | null {
  const at = (off: number, text: string) => s.toString("latin1", off, off + text.length) === text;
  if (at(0x52, "MSWIN") || at(0x52, "FAT32   ") || at(0x36, "MSDOS") || at(0x36, "FAT16   ") || at(0x36, "FAT12   ") || at(0x36, "FAT     ")) {
    return { strong: true };
  }
  if (s[0] === 0xeb || s[0] === 0xe9 || (s[510] === 0x55 && s[511] === 0xaa)) return { strong: false };
  return null;
}

/** Decode and sanity-check a FAT boot sector (libblkid's fat_valid_superblock); null if it is not one. */
export function decodeFatBootSector(s: Buffer): FatBootSector | null {
  if (s.length < 512) return null;
  const magic = hasMagic(s);
  if (!magic) return null;
  if (!magic.strong) {
    if (s[510] !== 0x55 || s[511] !== 0xaa) return null;
    const label = s.toString("latin1", 0x36, 0x3e);
    if (label === "JFS     " || label === "HPFS    ") return null;
  }
  // BitLocker volumes wear a FAT-like boot sector.
  if (s.toString("latin1", 3, 11) === "-FVE-FS-") return null;
  const fatCount = s[0x10];
  const reservedSectors = s.readUInt16LE(0x0e);
  const media = s[0x15];
  const sectorsPerCluster = s[0x0d];
  const bytesPerSector = s.readUInt16LE(0x0b);
  if (!fatCount || !reservedSectors) return null;
  if (!(media >= 0xf8 || media === 0xf0)) return null;
  if (!isPowerOfTwo(sectorsPerCluster)) return null;
  if (!isPowerOfTwo(bytesPerSector) || bytesPerSector < 512 || bytesPerSector > 4096) return null;
  const rootEntries = s.readUInt16LE(0x11);
  let totalSectors = s.readUInt16LE(0x13);
  if (totalSectors === 0) totalSectors = s.readUInt32LE(0x20);
  const fat16Length = s.readUInt16LE(0x16);
  const fat32Length = s.readUInt32LE(0x24);
  const fatSectors = (fat16Length || fat32Length) * fatCount;
  const rootDirSectors = Math.ceil((rootEntries * DIR_ENTRY) / bytesPerSector);
  const clusterCount = Math.floor((totalSectors - (reservedSectors + fatSectors + rootDirSectors)) / sectorsPerCluster);
  const fat32 = fat16Length === 0 && fat32Length !== 0;
  const maxCount = fat32 ? FAT32_MAX : clusterCount > FAT12_MAX ? FAT16_MAX : FAT12_MAX;
  // blkid computes this in unsigned 32-bit arithmetic: a negative count wraps and fails the check.
  if (clusterCount < 0 || clusterCount > maxCount) return null;
  return {
    bytesPerSector,
    sectorsPerCluster,
    reservedSectors,
    fatCount,
    rootEntries,
    fatSectors,
    clusterCount,
    fat32,
    rootCluster: s.readUInt32LE(0x2c),
    fsinfoSector: s.readUInt16LE(0x30),
    extBootSignature: fat32 ? s[0x42] : s[0x26],
    serial: Buffer.from(s.subarray(fat32 ? 0x43 : 0x27, fat32 ? 0x47 : 0x2b)),
    bootLabel: Buffer.from(s.subarray(fat32 ? 0x47 : 0x2b, fat32 ? 0x52 : 0x36)),
  };
}

/** The volume-label entry's 11 bytes in a run of directory entries; undefined if none; null at end of directory. */
function findLabelEntry(dir: Buffer): Buffer | null | undefined {
  for (let off = 0; off + DIR_ENTRY <= dir.length; off += DIR_ENTRY) {
    const first = dir[off];
    if (first === 0x00) return null;
    const attr = dir[off + 11];
    const cluster = dir.readUInt16LE(off + 20) | dir.readUInt16LE(off + 26);
    if (first === 0xe5 || cluster !== 0 || (attr & 0x3f) === ATTR_LONG_NAME) continue;
    if ((attr & (ATTR_VOLUME_ID | ATTR_DIR)) === ATTR_VOLUME_ID) {
      const name = Buffer.from(dir.subarray(off, off + 11));
      if (name[0] === 0x05) name[0] = 0xe5; // 0x05 stands for a real leading 0xE5
      return name;
    }
  }
  return undefined;
}

async function rootDirLabel(r: ProbeReader, bs: FatBootSector): Promise<Buffer | null> {
  const ss = bs.bytesPerSector;
  if (!bs.fat32) {
    const dir = await r.read((bs.reservedSectors + bs.fatSectors) * ss, bs.rootEntries * DIR_ENTRY);
    return dir ? (findLabelEntry(dir) ?? null) : null;
  }
  const clusterBytes = bs.sectorsPerCluster * ss;
  const dataStart = (bs.reservedSectors + bs.fatSectors) * ss;
  const fatEntries = ((bs.fatSectors / bs.fatCount) * ss) / 4;
  let cluster = bs.rootCluster;
  for (let n = 0; n < MAX_ROOT_CLUSTERS && cluster >= 2 && cluster < fatEntries; n++) {
    const dir = await r.read(dataStart + (cluster - 2) * clusterBytes, clusterBytes);
    if (!dir) return null;
    const found = findLabelEntry(dir);
    if (found !== undefined) return found;
    const next = await r.read(bs.reservedSectors * ss + cluster * 4, 4);
    if (!next) return null;
    cluster = next.readUInt32LE(0) & 0x0fffffff;
  }
  return null;
}

export async function probeVfat(r: ProbeReader): Promise<ProbeResult | null> {
  const sector = await r.read(0, 512);
  const bs = sector && decodeFatBootSector(sector);
  if (!bs) return null;
  if (bs.fat32 && bs.fsinfoSector) {
    // FAT32 wants a valid FSInfo signature, or none at all (some formatters leave zeros).
    const info = await r.read(bs.fsinfoSector * bs.bytesPerSector, 512);
    if (!info) return null;
    const sig1 = info.toString("hex", 0, 4);
    const sig2 = info.toString("hex", 484, 488);
    if (!["52526141", "52526441", "00000000"].includes(sig1) || !["72724161", "00000000"].includes(sig2)) return null;
  }
  const label = await rootDirLabel(r, bs);
  const serialPresent = bs.fat32 || bs.extBootSignature === 0x28 || bs.extBootSignature === 0x29;
  return {
    filesystem: "vfat",
    label: label ? byteLabel(label, "latin1") : null,
    uuid: serialPresent ? serialUuid(bs.serial) : null,
    version: bs.fat32 ? "FAT32" : bs.clusterCount < FAT12_MAX ? "FAT12" : "FAT16",
  };
}
