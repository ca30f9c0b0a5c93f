/**
 * The bytes an ext2/3/4 filesystem uses, from its block bitmaps: what
 * `capture --used-only` reads (as e2image and partclone.ext4 do).
 *
 * A group whose bitmap was never written (BLOCK_UNINIT, trusted only when
 * descriptors carry checksums, as e2fsprogs trusts it) holds nothing but
 * metadata, which the bitmap would not show anyway. So the metadata of every
 * group is added from the descriptors, wherever flex_bg put it: superblock
 * and descriptor backups (the old layout, or meta_bg's descriptor blocks in
 * the first, second and last group of each meta group), reserved GDT blocks,
 * bitmaps and inode tables (ext2fs_super_and_bgd_loc2, ext2fs_reserve_super_and_bgd).
 * Bitmaps are read one group at a time: memory stays a few numbers a group.
 */
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import type { ByteRange } from "../../used/range-list.js";
import { setBitRuns } from "../../used/bitmap-runs.js";
import { BG_BLOCK_UNINIT, decodeGroupDescriptor, descriptorOffset } from "./group-descriptor.js";
import {
  decodeSuperblock,
  groupCount,
  groupHasSuper,
  INCOMPAT_META_BG,
  RO_COMPAT_GDT_CSUM,
  RO_COMPAT_METADATA_CSUM,
  type Superblock,
  SUPERBLOCK_OFFSET,
  SUPERBLOCK_SIZE,
} from "./superblock.js";

interface Groups {
  blockBitmap: Float64Array;
  inodeBitmap: Float64Array;
  inodeTable: Float64Array;
  flags: Uint16Array;
}

export async function* extUsedRanges(source: BlockSource): AsyncGenerator<ByteRange> {
  if (source.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) throw new CorruptImageError(`${source.name}: too small for an ext filesystem`);
  const sb = decodeSuperblock(await source.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE));
  const fsBytes = sb.blocksCount * sb.blockSize;
  if (fsBytes > source.size) {
    throw new CorruptImageError(`${source.name}: the ext filesystem is ${fsBytes} bytes but the partition holds ${source.size}`);
  }
  const groups = await readGroups(source, sb);
  const metadata = metadataRanges(sb, groups);
  let next = 0;
  // Bitmap runs come in block order; metadata ranges are slotted in by start so the output stays sorted.
  for await (const [start, end] of bitmapRuns(source, sb, groups)) {
    while (next < metadata.length && metadata[next][0] <= start) yield metadata[next++];
    yield [start, end];
  }
  while (next < metadata.length) yield metadata[next++];
}

async function readGroups(source: BlockSource, sb: Superblock): Promise<Groups> {
  const count = groupCount(sb);
  const groups: Groups = {
    blockBitmap: new Float64Array(count),
    inodeBitmap: new Float64Array(count),
    inodeTable: new Float64Array(count),
    flags: new Uint16Array(count),
  };
  const perBlock = sb.blockSize / sb.descSize;
  for (let first = 0; first < count; first += perBlock) {
    // One descriptor block at a time: contiguous in the old layout, scattered with meta_bg.
    const n = Math.min(perBlock, count - first);
    const block = await source.read(descriptorOffset(sb, first), n * sb.descSize);
    for (let i = 0; i < n; i++) {
      const g = first + i;
      const gd = decodeGroupDescriptor(block.subarray(i * sb.descSize), sb.descSize);
      for (const [what, at] of [["block bitmap", gd.blockBitmap], ["inode bitmap", gd.inodeBitmap], ["inode table", gd.inodeTable]] as const) {
        if (at === 0 || at >= sb.blocksCount) throw new CorruptImageError(`ext group ${g}: ${what} block ${at} is outside the filesystem`);
      }
      groups.blockBitmap[g] = gd.blockBitmap;
      groups.inodeBitmap[g] = gd.inodeBitmap;
      groups.inodeTable[g] = gd.inodeTable;
      groups.flags[g] = gd.flags;
    }
  }
  return groups;
}

/** Every group's metadata in bytes, sorted and merged: what the bitmap of a BLOCK_UNINIT group leaves out. */
function metadataRanges(sb: Superblock, groups: Groups): ByteRange[] {
  const bs = sb.blockSize;
  const count = groups.flags.length;
  const perBlock = bs / sb.descSize;
  const descBlocks = Math.ceil(count / perBlock);
  const oldDescBlocks = sb.featureIncompat & INCOMPAT_META_BG ? sb.firstMetaBg : descBlocks + sb.reservedGdtBlocks;
  const inodeTableBlocks = Math.ceil((sb.inodesPerGroup * sb.inodeSize) / bs);
  const blocks: Array<[number, number]> = [[0, Math.ceil((SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) / bs)]];
  for (let g = 0; g < count; g++) {
    let groupBlock = sb.firstDataBlock + g * sb.blocksPerGroup;
    if (groupBlock === 0 && bs === 1024) groupBlock = 1; // bigalloc on 1 KiB blocks
    const hasSuper = groupHasSuper(sb, g);
    if (hasSuper) blocks.push([groupBlock, groupBlock + 1]);
    const metaGroup = Math.floor(g / perBlock);
    if (!(sb.featureIncompat & INCOMPAT_META_BG) || metaGroup < sb.firstMetaBg) {
      if (hasSuper) blocks.push([groupBlock + 1, groupBlock + 1 + oldDescBlocks]);
    } else {
      const index = g % perBlock;
      if (index === 0 || index === 1 || index === perBlock - 1) {
        const at = groupBlock + (hasSuper ? 1 : 0);
        blocks.push([at, at + 1]);
      }
    }
    blocks.push([groups.blockBitmap[g], groups.blockBitmap[g] + 1]);
    blocks.push([groups.inodeBitmap[g], groups.inodeBitmap[g] + 1]);
    blocks.push([groups.inodeTable[g], groups.inodeTable[g] + inodeTableBlocks]);
  }
  blocks.sort((a, b) => a[0] - b[0]);
  const merged: ByteRange[] = [];
  for (const [a, b] of blocks) {
    const start = a * bs;
    const end = Math.min(b, sb.blocksCount) * bs;
    const last = merged.at(-1);
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else if (start < end) merged.push([start, end]);
  }
  return merged;
}

/** The used runs of every initialised group's bitmap, in block order, one bitmap read at a time. */
async function* bitmapRuns(source: BlockSource, sb: Superblock, groups: Groups): AsyncGenerator<ByteRange> {
  const bs = sb.blockSize;
  const trustUninit = (sb.featureRoCompat & (RO_COMPAT_GDT_CSUM | RO_COMPAT_METADATA_CSUM)) !== 0;
  const clustersPerGroup = sb.blocksPerGroup / sb.clusterRatio;
  const clusterBytes = sb.clusterRatio * bs;
  const fsEnd = sb.blocksCount * bs;
  for (let g = 0; g < groups.flags.length; g++) {
    if (trustUninit && groups.flags[g] & BG_BLOCK_UNINIT) continue;
    const groupStart = (sb.firstDataBlock + g * sb.blocksPerGroup) * bs;
    const bitmap = await source.read(groups.blockBitmap[g] * bs, Math.ceil(clustersPerGroup / 8));
    for (const [a, b] of setBitRuns(bitmap, clustersPerGroup)) {
      const start = groupStart + a * clusterBytes;
      if (start >= fsEnd) break; // the last group's bitmap is padded with ones
      yield [start, Math.min(fsEnd, groupStart + b * clusterBytes)];
    }
  }
}
