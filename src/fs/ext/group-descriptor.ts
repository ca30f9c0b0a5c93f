/**
 * A block group descriptor (struct ext4_group_desc): 32 bytes, or
 * s_desc_size (64) with the 64bit feature, whose high halves sit at 0x20.
 */
import { groupHasSuper, INCOMPAT_META_BG, type Superblock } from "./superblock.js";

export interface GroupDescriptor {
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
  flags: number;
}

export const BG_INODE_UNINIT = 0x1;
/** The block bitmap was never written: the group's only used blocks are its metadata. */
export const BG_BLOCK_UNINIT = 0x2;

export function decodeGroupDescriptor(b: Buffer, descSize: number): GroupDescriptor {
  const wide = (lo: number, hi: number) => b.readUInt32LE(lo) + (descSize >= 64 ? b.readUInt32LE(hi) * 2 ** 32 : 0);
  return { blockBitmap: wide(0, 0x20), inodeBitmap: wide(4, 0x24), inodeTable: wide(8, 0x28), flags: b.readUInt16LE(18) };
}

/** Byte offset of the descriptor of group `g` (ext2fs_descriptor_block_loc2). */
export function descriptorOffset(sb: Superblock, g: number): number {
  const perBlock = sb.blockSize / sb.descSize;
  const descBlock = Math.floor(g / perBlock);
  // bigalloc with 1 KiB blocks: block 0 is left alone and the superblock sits in block 1.
  const zeroAdjust = descBlock === 0 && sb.blockSize === 1024 && sb.clusterRatio > 1 ? 1 : 0;
  if (!(sb.featureIncompat & INCOMPAT_META_BG) || descBlock < sb.firstMetaBg) {
    return (sb.firstDataBlock + 1 + descBlock + zeroAdjust) * sb.blockSize + (g % perBlock) * sb.descSize;
  }
  const firstGroup = descBlock * perBlock;
  const block = sb.firstDataBlock + firstGroup * sb.blocksPerGroup + (groupHasSuper(sb, firstGroup) ? 1 : 0) + zeroAdjust;
  return block * sb.blockSize + (g % perBlock) * sb.descSize;
}
