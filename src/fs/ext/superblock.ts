/**
 * The ext2/3/4 superblock: 1024 bytes at byte 1024 of the filesystem.
 * Field offsets follow e2fsprogs lib/ext2fs/ext2_fs.h (struct ext2_super_block).
 */
import { CorruptImageError } from "../../errors.js";

export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
export const EXT_MAGIC = 0xef53;

export const COMPAT_HAS_JOURNAL = 0x4;
export const COMPAT_RESIZE_INODE = 0x10;
/** The inode whose block map holds the reserved GDT blocks (and their backups) when COMPAT_RESIZE_INODE is set. */
export const RESIZE_INODE = 7;

export const INCOMPAT_COMPRESSION = 0x1;
export const INCOMPAT_FILETYPE = 0x2;
export const INCOMPAT_RECOVER = 0x4;
export const INCOMPAT_JOURNAL_DEV = 0x8;
export const INCOMPAT_META_BG = 0x10;
export const INCOMPAT_EXTENTS = 0x40;
export const INCOMPAT_64BIT = 0x80;
export const INCOMPAT_MMP = 0x100;
export const INCOMPAT_FLEX_BG = 0x200;
export const INCOMPAT_EA_INODE = 0x400;
export const INCOMPAT_DIRDATA = 0x1000;
export const INCOMPAT_CSUM_SEED = 0x2000;
export const INCOMPAT_LARGEDIR = 0x4000;
export const INCOMPAT_INLINE_DATA = 0x8000;
export const INCOMPAT_ENCRYPT = 0x10000;
export const INCOMPAT_CASEFOLD = 0x20000;

export const COMPAT_SPARSE_SUPER2 = 0x200;

export const RO_COMPAT_SPARSE_SUPER = 0x1;
export const RO_COMPAT_LARGE_FILE = 0x2;
export const RO_COMPAT_BTREE_DIR = 0x4;
export const RO_COMPAT_GDT_CSUM = 0x10;
export const RO_COMPAT_BIGALLOC = 0x200;
export const RO_COMPAT_METADATA_CSUM = 0x400;

/** Incompatible features this reader understands; any other one makes the filesystem unreadable to it. */
export const INCOMPAT_READABLE =
  INCOMPAT_FILETYPE |
  INCOMPAT_RECOVER |
  INCOMPAT_META_BG |
  INCOMPAT_EXTENTS |
  INCOMPAT_64BIT |
  INCOMPAT_MMP |
  INCOMPAT_FLEX_BG |
  INCOMPAT_EA_INODE |
  INCOMPAT_CSUM_SEED |
  INCOMPAT_LARGEDIR |
  INCOMPAT_INLINE_DATA |
  INCOMPAT_ENCRYPT |
  INCOMPAT_CASEFOLD;

export interface Superblock {
  inodesCount: number;
  blocksCount: number;
  firstDataBlock: number;
  logBlockSize: number;
  blockSize: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  magic: number;
  revLevel: number;
  firstIno: number;
  inodeSize: number;
  featureCompat: number;
  featureIncompat: number;
  featureRoCompat: number;
  uuid: string;
  volumeName: string;
  descSize: number;
  /** bigalloc: blocks per allocation cluster (1 without it). */
  clusterRatio: number;
  firstMetaBg: number;
  /** Blocks kept after the group descriptors for online resizing (in every group with a superblock backup). */
  reservedGdtBlocks: number;
  /** s_journal_inum: the inode of an internal journal (8), or 0. */
  journalInode: number;
  /** sparse_super2: the only two groups (besides 0) that hold backups. */
  backupBgs: [number, number];
}

function uuidString(b: Buffer): string {
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** A NUL-padded UTF-8 field. */
function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString("utf8");
}

function fail(field: string, value: number | string, why: string): never {
  throw new CorruptImageError(`ext superblock: ${field} ${value} ${why}`);
}

/** Decode and validate the 1024-byte superblock. */
export function decodeSuperblock(b: Buffer): Superblock {
  if (b.length < SUPERBLOCK_SIZE) throw new CorruptImageError("ext superblock: truncated");
  const magic = b.readUInt16LE(56);
  if (magic !== EXT_MAGIC) fail("s_magic", `0x${magic.toString(16)}`, "is not 0xef53: not an ext2/3/4 filesystem");
  const featureIncompat = b.readUInt32LE(96);
  const is64 = (featureIncompat & INCOMPAT_64BIT) !== 0;
  const revLevel = b.readUInt32LE(76);
  const logBlockSize = b.readUInt32LE(24);
  if (logBlockSize > 6) fail("s_log_block_size", logBlockSize, "is out of range (block sizes are 1 KiB to 64 KiB)");
  const blockSize = 1024 << logBlockSize;
  const blocksCount = b.readUInt32LE(4) + (is64 ? b.readUInt32LE(336) * 2 ** 32 : 0);
  const inodesCount = b.readUInt32LE(0);
  const firstDataBlock = b.readUInt32LE(20);
  const blocksPerGroup = b.readUInt32LE(32);
  const inodesPerGroup = b.readUInt32LE(40);
  const inodeSize = revLevel === 0 ? 128 : b.readUInt16LE(88);
  const descSize = is64 ? b.readUInt16LE(254) : 32;
  if (blocksCount === 0) fail("s_blocks_count", 0, "is zero");
  // bigalloc: the bitmaps count clusters of 2^(s_log_cluster_size - s_log_block_size) blocks.
  const clusterRatio = b.readUInt32LE(100) & RO_COMPAT_BIGALLOC ? 2 ** Math.max(0, b.readUInt32LE(28) - logBlockSize) : 1;
  if (blocksPerGroup === 0 || blocksPerGroup > blockSize * 8 * clusterRatio) {
    fail("s_blocks_per_group", blocksPerGroup, `is out of range for ${blockSize}-byte blocks`);
  }
  if (inodesPerGroup === 0 || inodesPerGroup > blockSize * 8) {
    fail("s_inodes_per_group", inodesPerGroup, `is out of range for ${blockSize}-byte blocks`);
  }
  if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) {
    fail("s_inode_size", inodeSize, "is not a power of two between 128 and the block size");
  }
  if (firstDataBlock !== (blockSize === 1024 ? 1 : 0) && firstDataBlock !== 0) {
    fail("s_first_data_block", firstDataBlock, `is wrong for ${blockSize}-byte blocks`);
  }
  if (is64 && (descSize < 32 || descSize > 1024 || (descSize & (descSize - 1)) !== 0)) {
    fail("s_desc_size", descSize, "is not a power of two between 32 and 1024");
  }
  return {
    inodesCount,
    blocksCount,
    firstDataBlock,
    logBlockSize,
    blockSize,
    blocksPerGroup,
    inodesPerGroup,
    magic,
    revLevel,
    firstIno: revLevel === 0 ? 11 : b.readUInt32LE(84),
    inodeSize,
    featureCompat: b.readUInt32LE(92),
    featureIncompat,
    featureRoCompat: b.readUInt32LE(100),
    uuid: uuidString(b.subarray(104, 120)),
    volumeName: cString(b.subarray(120, 136)),
    descSize,
    clusterRatio,
    firstMetaBg: b.readUInt32LE(260),
    reservedGdtBlocks: b.readUInt16LE(206),
    journalInode: b.readUInt32LE(224),
    backupBgs: [b.readUInt32LE(588), b.readUInt32LE(592)],
  };
}

const EXT3_RO_COMPAT_SUPPORTED = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR;
const EXT3_INCOMPAT_SUPPORTED = INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG;
const EXT2_INCOMPAT_SUPPORTED = INCOMPAT_FILETYPE | INCOMPAT_META_BG;

/**
 * blkid's name for a feature set: jbd for an external journal, ext4 if it
 * uses a feature ext3 lacks, ext3 if it has a journal, ext2 if ext2 knows
 * every feature; null otherwise (needs recovery but has no journal).
 */
export function extName(compat: number, incompat: number, roCompat: number): "ext2" | "ext3" | "ext4" | "jbd" | null {
  if (incompat & INCOMPAT_JOURNAL_DEV) return "jbd";
  if (roCompat & ~EXT3_RO_COMPAT_SUPPORTED || incompat & ~EXT3_INCOMPAT_SUPPORTED) return "ext4";
  if (compat & COMPAT_HAS_JOURNAL) return "ext3";
  return incompat & ~EXT2_INCOMPAT_SUPPORTED ? null : "ext2";
}

/**
 * The reader's type. It never opens a jbd (INCOMPAT_JOURNAL_DEV is not
 * readable); a superblock blkid cannot name (recovery flag, no journal) reads as ext2.
 */
export function extFlavour(sb: Superblock): string {
  return extName(sb.featureCompat, sb.featureIncompat, sb.featureRoCompat) ?? "ext2";
}

/** Number of block groups. */
export function groupCount(sb: Superblock): number {
  return Math.ceil((sb.blocksCount - sb.firstDataBlock) / sb.blocksPerGroup);
}

function isPowerOf(n: number, base: number): boolean {
  let x = base;
  while (x < n) x *= base;
  return x === n;
}

/** Does block group `g` start with a superblock (and descriptor) backup? */
export function groupHasSuper(sb: Superblock, g: number): boolean {
  if (g === 0) return true;
  if (sb.featureCompat & COMPAT_SPARSE_SUPER2) return g === sb.backupBgs[0] || g === sb.backupBgs[1];
  if (g <= 1 || !(sb.featureRoCompat & RO_COMPAT_SPARSE_SUPER)) return true;
  if (g % 2 === 0) return false;
  return isPowerOf(g, 3) || isPowerOf(g, 5) || isPowerOf(g, 7);
}
