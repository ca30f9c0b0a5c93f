/**
 * ext2/3/4 reader: superblock -> group descriptors -> inodes -> extent trees
 * or block maps -> data. Linear directory reads (htree blocks parse as
 * ordinary entries), inline data, fast and slow symlinks, holes and
 * unwritten extents as zeros. Reads only; the journal is not replayed.
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { targetBuffer } from "../../io/bounds.js";
import { LruCache } from "../../util/lru.js";
import { BlockCache } from "../block-cache.js";
import { newDecodeDev, oldDecodeDev } from "../device-number.js";
import { checkFileRange, type CopyPiece, copyPieces } from "../file-io.js";
import { ListingCache } from "../listing-cache.js";
import { decodeName } from "../names.js";
import {
  type FileExtent,
  fileTypeFromMode,
  type FileSystem,
  type FileType,
  type FsDirEntry,
  type FsNode,
  type FsRegion,
  type FsStat,
} from "../types.js";
import { decodeDirEntries, type ExtDirEntry } from "./dir-entry.js";
import { type BlockRun, type FileMap, findRun, mapBlockMap, mapExtents } from "./file-map.js";
import { decodeGroupDescriptor, descriptorOffset, type GroupDescriptor } from "./group-descriptor.js";
import {
  decodeInode,
  FLAG_ENCRYPT,
  FLAG_EXTENTS,
  FLAG_INLINE_DATA,
  I_BLOCK_SIZE,
  type Inode,
} from "./inode.js";
import {
  COMPAT_HAS_JOURNAL,
  COMPAT_RESIZE_INODE,
  decodeSuperblock,
  extFlavour,
  groupCount,
  INCOMPAT_FILETYPE,
  INCOMPAT_READABLE,
  INCOMPAT_RECOVER,
  RESIZE_INODE,
  type Superblock,
  SUPERBLOCK_OFFSET,
  SUPERBLOCK_SIZE,
} from "./superblock.js";
import { decodeInodeXattrs, XATTR_INDEX_SYSTEM } from "./xattr.js";

export const ROOT_INODE = 2;
/** Nodes kept by inode number: hard links, and a directory naming one inode many times, share one. */
const NODE_CACHE = 4096;
const GROUP_CACHE = 4096;
/** Directories larger than this are corrupt for our purposes (ext4 largedir tops out near 4 GiB of entries). */
const MAX_DIR_BYTES = 1 << 30;

export interface ExtNode extends FsNode {
  readonly ino: number;
  readonly inode: Inode;
  /** The block runs and the blocks that map them, computed on first use. */
  map?: FileMap;
}

/** The kernel refuses an inode whose mode names no file type ("bogus i_mode"); so do we. */
function fileType(mode: number, where: string): FileType {
  const type = fileTypeFromMode(mode);
  if (type === undefined) throw new CorruptImageError(`ext ${where}: mode 0${mode.toString(8)} names no file type`);
  return type;
}

export class ExtFileSystem implements FileSystem<ExtNode> {
  readonly type: string;
  readonly label: string | null;
  readonly uuid: string;
  readonly warnings: string[] = [];
  private readonly cache: BlockCache;
  private readonly groups = new LruCache<number, GroupDescriptor>(GROUP_CACHE);
  private readonly listings = new ListingCache<number, FsDirEntry<ExtNode>>();
  private readonly nodes = new LruCache<number, ExtNode>(NODE_CACHE);
  private readonly groupTotal: number;

  private constructor(
    private readonly source: BlockSource,
    readonly superblock: Superblock,
  ) {
    this.type = extFlavour(superblock);
    this.label = superblock.volumeName || null;
    this.uuid = superblock.uuid;
    this.cache = new BlockCache(source, superblock.blockSize);
    this.groupTotal = groupCount(superblock);
    if (superblock.featureIncompat & INCOMPAT_RECOVER) {
      this.warnings.push(
        `${source.name}: the ext journal was not replayed (the filesystem was not cleanly unmounted); the latest changes may be missing`,
      );
    }
  }

  static async open(source: BlockSource): Promise<ExtFileSystem> {
    if (source.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) {
      throw new CorruptImageError(`${source.name}: too small for an ext filesystem`);
    }
    const sb = decodeSuperblock(await source.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE));
    const unknown = sb.featureIncompat & ~INCOMPAT_READABLE;
    if (unknown) {
      throw new UnsupportedError(
        `${source.name}: ext filesystem uses incompatible features platter cannot read (s_feature_incompat 0x${unknown.toString(16)})`,
      );
    }
    return new ExtFileSystem(source, sb);
  }

  private where(ino: number): string {
    return `inode ${ino}`;
  }

  private async group(g: number): Promise<GroupDescriptor> {
    let gd = this.groups.get(g);
    if (!gd) {
      const raw = await this.cache.read(descriptorOffset(this.superblock, g), this.superblock.descSize);
      gd = decodeGroupDescriptor(raw, this.superblock.descSize);
      if (gd.inodeTable === 0 || gd.inodeTable >= this.superblock.blocksCount) {
        throw new CorruptImageError(`ext group ${g}: inode table block ${gd.inodeTable} is outside the filesystem`);
      }
      this.groups.set(g, gd);
    }
    return gd;
  }

  async node(ino: number): Promise<ExtNode> {
    const known = this.nodes.get(ino);
    if (known) return known;
    const sb = this.superblock;
    if (!Number.isInteger(ino) || ino < 1 || ino > sb.inodesCount) {
      throw new CorruptImageError(`ext: inode number ${ino} is out of range (1..${sb.inodesCount})`);
    }
    const raw = await this.cache.read(await this.inodeOffset(ino), sb.inodeSize);
    const inode = decodeInode(raw, ino);
    // Extents address 2^32 logical blocks, and no block map reaches further: a bigger size is corruption.
    if (inode.size > 2 ** 32 * sb.blockSize) {
      throw new CorruptImageError(`ext inode ${ino}: i_size ${inode.size} is larger than any ext file can be`);
    }
    const stat: FsStat = {
      type: fileType(inode.mode, `inode ${ino}`),
      size: inode.size,
      mode: inode.mode & 0o7777,
      mtime: inode.mtime,
      uid: inode.uid,
      gid: inode.gid,
      nlink: inode.linksCount,
      id: ino,
    };
    // A device number is in i_block: the old 16-bit encoding in word 0, else the new one in word 1 (ext4_iget).
    if (stat.type === "char" || stat.type === "block") {
      const old = inode.block.readUInt32LE(0);
      stat.rdev = old ? oldDecodeDev(old) : newDecodeDev(inode.block.readUInt32LE(4));
    }
    return this.nodes.set(ino, { ino, inode, stat });
  }

  /** Where inode `ino` is stored: in its group's inode table. */
  private async inodeOffset(ino: number): Promise<number> {
    const sb = this.superblock;
    const g = Math.floor((ino - 1) / sb.inodesPerGroup);
    if (g >= this.groupTotal) throw new CorruptImageError(`ext: inode ${ino} is in group ${g}, past the last group`);
    const gd = await this.group(g);
    return gd.inodeTable * sb.blockSize + ((ino - 1) % sb.inodesPerGroup) * sb.inodeSize;
  }

  root(): Promise<ExtNode> {
    return this.node(ROOT_INODE);
  }

  private async runs(node: ExtNode): Promise<BlockRun[]> {
    return (await this.fileMap(node)).runs;
  }

  private async fileMap(node: ExtNode): Promise<FileMap> {
    if (node.map) return node.map;
    const sb = this.superblock;
    const ctx = {
      cache: this.cache,
      blockSize: sb.blockSize,
      blocksCount: sb.blocksCount,
      logicalLimit: Math.ceil(node.inode.size / sb.blockSize),
      where: this.where(node.ino),
    };
    node.map = node.inode.flags & FLAG_EXTENTS ? await mapExtents(node.inode.block, ctx) : await mapBlockMap(node.inode.block, ctx);
    return node.map;
  }

  /** Inline data: the 60 bytes of i_block, continued in the system.data xattr. */
  private inlineData(node: ExtNode): Buffer {
    const extra = decodeInodeXattrs(node.inode.xattrArea, this.where(node.ino)).find(
      (x) => x.nameIndex === XATTR_INDEX_SYSTEM && x.name === "data",
    );
    return extra ? Buffer.concat([node.inode.block, extra.value]) : node.inode.block;
  }

  private isFastSymlink(node: ExtNode): boolean {
    const { inode } = node;
    return (
      node.stat.type === "symlink" && inode.size < I_BLOCK_SIZE && !(inode.flags & (FLAG_EXTENTS | FLAG_INLINE_DATA))
    );
  }

  private checkReadable(node: ExtNode): void {
    if (node.inode.flags & FLAG_ENCRYPT) {
      throw new UnsupportedError(`ext ${this.where(node.ino)} is encrypted (fscrypt); platter cannot decrypt it`);
    }
  }

  /** Bytes [offset, offset+length) of the inode's data, whatever kind of file it is. */
  private async readData(node: ExtNode, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const size = node.inode.size;
    checkFileRange(`ext ${this.where(node.ino)}`, size, offset, length);
    const out = targetBuffer(length, into);
    if (node.inode.flags & FLAG_INLINE_DATA) {
      const data = this.inlineData(node);
      if (data.length < offset + length) {
        throw new CorruptImageError(`ext ${this.where(node.ino)}: inline data holds ${data.length} bytes, i_size says ${size}`);
      }
      data.copy(out, 0, offset, offset + length);
      return out;
    }
    if (length === 0) return out;
    const runs = await this.runs(node);
    const bs = this.superblock.blockSize;
    const end = offset + length;
    let pos = offset; // everything before pos is filled in
    for (let i = Math.max(0, findRun(runs, Math.floor(offset / bs))); i < runs.length && pos < end; i++) {
      const run = runs[i];
      const runStart = run.logical * bs;
      const runEnd = runStart + run.length * bs;
      if (runEnd <= pos) continue;
      if (runStart >= end) break;
      const from = Math.max(pos, runStart);
      const to = Math.min(end, runEnd);
      if (from > pos) out.fill(0, pos - offset, from - offset); // a hole
      if (run.unwritten) out.fill(0, from - offset, to - offset);
      else await this.source.read(run.physical * bs + (from - runStart), to - from, out.subarray(from - offset, to - offset));
      pos = to;
    }
    if (pos < end) out.fill(0, pos - offset, length);
    return out;
  }

  async read(node: ExtNode, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (node.stat.type !== "file") throw new CorruptImageError(`ext ${this.where(node.ino)}: not a regular file`);
    this.checkReadable(node);
    return this.readData(node, offset, length, into);
  }

  async copyTo(node: ExtNode, offset: number, length: number, fd: number): Promise<boolean> {
    const source = this.source;
    if (!source.copyTo || node.stat.type !== "file" || node.inode.flags & (FLAG_INLINE_DATA | FLAG_ENCRYPT)) return false;
    const size = node.inode.size;
    checkFileRange(`ext ${this.where(node.ino)}`, size, offset, length);
    // Plan the pieces first: the range must be written data throughout, or nothing is copied.
    const bs = this.superblock.blockSize;
    const runs = await this.runs(node);
    const pieces: CopyPiece[] = [];
    let pos = offset;
    const end = offset + length;
    for (let i = Math.max(0, findRun(runs, Math.floor(offset / bs))); i < runs.length && pos < end; i++) {
      const run = runs[i];
      const runStart = run.logical * bs;
      const runEnd = runStart + run.length * bs;
      if (runEnd <= pos) continue;
      if (runStart > pos || run.unwritten) return false;
      const to = Math.min(end, runEnd);
      pieces.push([run.physical * bs + (pos - runStart), pos, to - pos]);
      pos = to;
    }
    if (pos < end) return false;
    return copyPieces(source, pieces, fd, `ext ${this.where(node.ino)}`);
  }

  async dataRanges(node: ExtNode): Promise<Array<[number, number]>> {
    const size = node.inode.size;
    if (node.inode.flags & FLAG_INLINE_DATA) return size > 0 ? [[0, size]] : [];
    const bs = this.superblock.blockSize;
    const ranges: Array<[number, number]> = [];
    for (const run of await this.runs(node)) {
      if (run.unwritten) continue;
      const start = run.logical * bs;
      const end = Math.min(size, start + run.length * bs);
      const last = ranges[ranges.length - 1];
      if (last && last[0] + last[1] === start) last[1] = end - last[0];
      else ranges.push([start, end - start]);
    }
    return ranges;
  }

  /**
   * The inode itself (all of the file depends on it), the blocks of its map
   * (the bytes found through each), and its written blocks. Inline data, a
   * fast symlink and a device keep everything in the inode.
   */
  async *extents(node: ExtNode): AsyncGenerator<FileExtent> {
    yield { fileOffset: 0, length: node.inode.size, fsOffset: await this.inodeOffset(node.ino), fsLength: this.superblock.inodeSize, map: true };
    yield* this.blockPieces(node);
  }

  /** The blocks of a file's map and its written blocks. */
  private async *blockPieces(node: ExtNode): AsyncGenerator<FileExtent> {
    const bs = this.superblock.blockSize;
    const size = node.inode.size;
    const type = node.stat.type;
    if ((type !== "file" && type !== "dir" && type !== "symlink") || this.isFastSymlink(node) || node.inode.flags & FLAG_INLINE_DATA) return;
    const { runs, mapBlocks } = await this.fileMap(node);
    const fileBytes = (logical: number, blocks: number) => Math.max(0, Math.min(blocks * bs, size - logical * bs));
    for (const m of mapBlocks) yield { fileOffset: m.logical * bs, length: fileBytes(m.logical, m.length), fsOffset: m.block * bs, fsLength: bs, map: true };
    for (const run of runs) {
      // An unwritten extent's blocks hold nothing of the file: it reads as zeros whatever they hold.
      if (run.unwritten) continue;
      const length = fileBytes(run.logical, run.length);
      if (length > 0) yield { fileOffset: run.logical * bs, length, fsOffset: run.physical * bs, fsLength: length };
    }
  }

  /** The primary superblock and group descriptors, each group's bitmaps and inode table, the reserved GDT blocks, and the journal. */
  async *regions(): AsyncGenerator<FsRegion> {
    const sb = this.superblock;
    const bs = sb.blockSize;
    yield { what: "superblock", fsOffset: SUPERBLOCK_OFFSET, length: SUPERBLOCK_SIZE };
    const perBlock = bs / sb.descSize;
    for (let first = 0; first < this.groupTotal; first += perBlock) {
      const n = Math.min(perBlock, this.groupTotal - first);
      const groups = n === 1 ? `group ${first}` : `groups ${first}-${first + n - 1}`;
      yield { what: `group descriptors of ${groups}`, fsOffset: descriptorOffset(sb, first), length: n * sb.descSize };
    }
    const inodeTableBytes = sb.inodesPerGroup * sb.inodeSize;
    for (let g = 0; g < this.groupTotal; g++) {
      const gd = await this.group(g);
      yield { what: `block bitmap of group ${g}`, fsOffset: gd.blockBitmap * bs, length: bs };
      yield { what: `inode bitmap of group ${g}`, fsOffset: gd.inodeBitmap * bs, length: bs };
      yield { what: `inode table of group ${g}`, fsOffset: gd.inodeTable * bs, length: inodeTableBytes };
    }
    const hidden: Array<[number, string]> = [];
    if (sb.featureCompat & COMPAT_RESIZE_INODE) hidden.push([RESIZE_INODE, "reserved GDT blocks (resize inode)"]);
    if (sb.featureCompat & COMPAT_HAS_JOURNAL && sb.journalInode !== 0) hidden.push([sb.journalInode, "journal"]);
    // Inodes no directory names: their blocks, and the blocks of their maps, are the filesystem's own;
    // a run of them (the resize inode's indirect blocks are the reserved GDT blocks, one after another) is one region.
    for (const [ino, what] of hidden) {
      let run: FsRegion | undefined;
      for await (const piece of this.blockPieces(await this.node(ino))) {
        if (run && run.fsOffset + run.length === piece.fsOffset) {
          run.length += piece.fsLength;
          continue;
        }
        if (run) yield run;
        run = { what, fsOffset: piece.fsOffset, length: piece.fsLength };
      }
      if (run) yield run;
    }
  }

  async readlink(node: ExtNode): Promise<string> {
    if (node.stat.type !== "symlink") throw new CorruptImageError(`ext ${this.where(node.ino)}: not a symbolic link`);
    this.checkReadable(node);
    const size = node.inode.size;
    if (size > this.superblock.blockSize) {
      throw new CorruptImageError(`ext ${this.where(node.ino)}: symlink target of ${size} bytes is longer than a block`);
    }
    const bytes = this.isFastSymlink(node) ? node.inode.block.subarray(0, size) : await this.readData(node, 0, size);
    return decodeName(bytes);
  }

  /** The stored entries of a directory, a block at a time: memory does not grow with the directory. */
  private async *rawEntries(dir: ExtNode): AsyncGenerator<ExtDirEntry> {
    if (dir.stat.type !== "dir") throw new CorruptImageError(`ext ${this.where(dir.ino)}: not a directory`);
    this.checkReadable(dir);
    const sb = this.superblock;
    const options = {
      hasFileType: (sb.featureIncompat & INCOMPAT_FILETYPE) !== 0,
      blockSize: sb.blockSize,
      where: `directory ${this.where(dir.ino)}`,
    };
    if (dir.inode.flags & FLAG_INLINE_DATA) {
      // The first 4 bytes are the parent's inode number; entries follow, then continue in system.data.
      const data = this.inlineData(dir);
      yield* decodeDirEntries(data.subarray(4, I_BLOCK_SIZE), options);
      yield* decodeDirEntries(data.subarray(I_BLOCK_SIZE), options);
      return;
    }
    const size = dir.inode.size;
    if (size > MAX_DIR_BYTES) throw new CorruptImageError(`ext ${this.where(dir.ino)}: directory size ${size} is absurd`);
    for (const run of await this.runs(dir)) {
      if (run.unwritten) continue;
      for (let b = 0; b < run.length; b++) {
        const logical = run.logical + b;
        const block = await this.cache.get(run.physical + b);
        const used = Math.min(sb.blockSize, size - logical * sb.blockSize);
        yield* decodeDirEntries(block.subarray(0, used), { ...options, where: `${options.where}, block ${logical}`, firstBlock: logical === 0 });
      }
    }
  }

  /** A stream; small listings are kept for lookup(), never a huge one. */
  list(dir: ExtNode): AsyncIterable<FsDirEntry<ExtNode>> {
    return this.listings.list(dir.ino, this.entries(dir));
  }

  private async *entries(dir: ExtNode): AsyncGenerator<FsDirEntry<ExtNode>> {
    for await (const e of this.rawEntries(dir)) yield { name: e.name, node: await this.node(e.inode) };
  }

  /** A scan that stops at the name: only that entry's inode is read, and no listing is held. */
  async lookup(dir: ExtNode, name: string): Promise<ExtNode | undefined> {
    const listed = this.listings.get(dir.ino);
    if (listed) return listed.find((e) => e.name === name)?.node;
    for await (const e of this.rawEntries(dir)) if (e.name === name) return this.node(e.inode);
    return undefined;
  }

  async close(): Promise<void> {}
}

export function openExt(source: BlockSource): Promise<ExtFileSystem> {
  return ExtFileSystem.open(source);
}
