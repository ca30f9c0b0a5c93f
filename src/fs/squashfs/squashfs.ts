/**
 * squashfs 4.0 reader: superblock -> id table -> inodes and directory
 * listings in metadata blocks -> data blocks and fragments. Compressed with
 * gzip, xz, lz4 or zstd (lzma and lzo are refused). Extended attributes are
 * not read (the FileSystem interface has no place for them).
 */
import { CorruptImageError } from "../../errors.js";
import type { BlockDecompressor } from "../../container/codec/types.js";
import type { BlockSource } from "../../io/block-source.js";
import { LruCache } from "../../util/lru.js";
import { newDecodeDev } from "../device-number.js";
import { checkFileRange } from "../file-io.js";
import { ListingCache } from "../listing-cache.js";
import { decodeName, nameBytes } from "../names.js";
import type { FileExtent, FileSystem, FileType, FsDirEntry, FsNode, FsRegion, FsStat } from "../types.js";
import { checkCompressorOptions, decompressorFor } from "./compressor.js";
import { type DirectoryEntry, directoryEntries } from "./directory.js";
import { decodeBlockSize, decodeFragmentEntry, FRAGMENT_ENTRY_SIZE, type FragmentEntry } from "./fragment.js";
import {
  blockCount,
  decodeInode,
  INODE_HEADER_SIZE,
  type Inode,
  type InodeKind,
  inodeBodySize,
  NO_FRAGMENT,
} from "./inode.js";
import { type MetaCursor, METADATA_SIZE, MetadataReader, MetaStream } from "./metadata.js";
import { decodeSuperblock, Flags, inodeRef, NO_TABLE, SUPERBLOCK_SIZE, type Superblock } from "./superblock.js";

/** Longest symlink target read (the kernel refuses more than a page). */
const MAX_SYMLINK = 4096;
const DATA_CACHE = 8;
/** Nodes kept by inode position, so the entries of a listing that name one inode share one node. */
const NODE_CACHE = 4096;

export interface SquashfsNode extends FsNode {
  readonly stat: FsStat;
  readonly inode: Inode;
  /** The inode's own kind (squashfs also tells basic from extended inodes apart). */
  readonly kind: InodeKind;
  /** Where the inode's variable tail (block list, symlink target) starts. */
  readonly tail: MetaCursor;
  /** Size words of the file's data blocks, read on first use. */
  blocks?: Uint32Array;
  /** Position of each data block (and one past the last). */
  blockStarts?: number[];
}

const STAT_TYPE: Record<InodeKind, FileType> = {
  dir: "dir",
  file: "file",
  symlink: "symlink",
  blockdev: "block",
  chardev: "char",
  fifo: "fifo",
  socket: "socket",
};

export class SquashfsFileSystem implements FileSystem<SquashfsNode> {
  readonly type = "squashfs";
  readonly label = null;
  private readonly meta: MetadataReader;
  private readonly listings = new ListingCache<string, FsDirEntry<SquashfsNode>>();
  private readonly dataBlocks = new LruCache<number, Buffer>(DATA_CACHE);
  private readonly nodes = new LruCache<number, SquashfsNode>(NODE_CACHE);
  private ids: Uint32Array = new Uint32Array(0);
  private readonly tableStarts: number[];
  private readonly inodeTableEnd: number;

  private constructor(
    private readonly source: BlockSource,
    readonly superblock: Superblock,
    private readonly decompress: BlockDecompressor,
  ) {
    this.meta = new MetadataReader(source, decompress, superblock.blockSize);
    const sb = superblock;
    this.tableStarts = [
      sb.inodeTableStart,
      sb.directoryTableStart,
      sb.fragmentTableStart,
      sb.lookupTableStart,
      sb.idTableStart,
      sb.xattrIdTableStart,
      sb.bytesUsed,
    ].filter((p) => p !== NO_TABLE);
    this.inodeTableEnd = this.tableEnd(sb.inodeTableStart);
  }

  static async open(source: BlockSource): Promise<SquashfsFileSystem> {
    if (source.size < SUPERBLOCK_SIZE) {
      throw new CorruptImageError(`${source.name}: ${source.size} bytes is too small for a squashfs superblock`);
    }
    const sb = decodeSuperblock(await source.read(0, SUPERBLOCK_SIZE));
    if (sb.bytesUsed > source.size) {
      throw new CorruptImageError(
        `${source.name}: squashfs says it is ${sb.bytesUsed} bytes but the image holds ${source.size}; it is truncated`,
      );
    }
    const fs = new SquashfsFileSystem(source, sb, decompressorFor(sb.compressor));
    if (sb.flags & Flags.compressorOptions) {
      const options = await fs.meta.block(SUPERBLOCK_SIZE, sb.bytesUsed);
      checkCompressorOptions(sb.compressor, options.data);
    }
    fs.ids = await fs.readIdTable();
    const root = await fs.root();
    if (root.kind !== "dir") throw new CorruptImageError("squashfs: the root inode is not a directory");
    return fs;
  }

  /** Where the table starting at `start` must end: the next table, or the end of the filesystem. */
  private tableEnd(start: number): number {
    let end = this.superblock.bytesUsed;
    for (const p of this.tableStarts) if (p > start && p < end) end = p;
    return end;
  }

  /** A lookup table (ids, fragments): an index of 64-bit metadata block positions at `indexStart`. */
  private async tableBlock(indexStart: number, blockNumber: number, what: string): Promise<Buffer> {
    const sb = this.superblock;
    const pointerAt = indexStart + blockNumber * 8;
    if (pointerAt + 8 > sb.bytesUsed) throw new CorruptImageError(`squashfs: the ${what} index runs past the end`);
    const pointer = (await this.source.read(pointerAt, 8)).readBigUInt64LE(0);
    if (pointer >= BigInt(sb.bytesUsed)) throw new CorruptImageError(`squashfs: ${what} block ${blockNumber} is at ${pointer}, past the end`);
    return (await this.meta.block(Number(pointer), sb.bytesUsed)).data;
  }

  private async readIdTable(): Promise<Uint32Array> {
    const count = this.superblock.idCount;
    const ids = new Uint32Array(count);
    const perBlock = METADATA_SIZE / 4;
    for (let block = 0; block * perBlock < count; block++) {
      const data = await this.tableBlock(this.superblock.idTableStart, block, "id table");
      const n = Math.min(perBlock, count - block * perBlock);
      if (data.length < n * 4) throw new CorruptImageError(`squashfs: id table block ${block} is short`);
      for (let i = 0; i < n; i++) ids[block * perBlock + i] = data.readUInt32LE(i * 4);
    }
    return ids;
  }

  private async fragment(index: number): Promise<FragmentEntry> {
    const sb = this.superblock;
    if (index >= sb.fragmentCount || sb.fragmentTableStart === NO_TABLE) {
      throw new CorruptImageError(`squashfs: fragment ${index} does not exist (${sb.fragmentCount} fragments)`);
    }
    const perBlock = METADATA_SIZE / FRAGMENT_ENTRY_SIZE;
    const data = await this.tableBlock(sb.fragmentTableStart, Math.floor(index / perBlock), "fragment table");
    const at = (index % perBlock) * FRAGMENT_ENTRY_SIZE;
    if (at + FRAGMENT_ENTRY_SIZE > data.length) throw new CorruptImageError(`squashfs: fragment table block for ${index} is short`);
    return decodeFragmentEntry(data, at);
  }

  private id(index: number, what: string, inodeNumber: number): number {
    const value = this.ids[index];
    if (value === undefined) {
      throw new CorruptImageError(`squashfs inode ${inodeNumber}: ${what} index ${index} is past the id table (${this.ids.length} ids)`);
    }
    return value;
  }

  /** A node from its inode's fixed part (header + body) and where its variable tail starts. */
  private node(inode: Inode, tail: MetaCursor): SquashfsNode {
    let size = 0;
    if (inode.kind === "dir" || inode.kind === "file") size = inode.fileSize;
    if (inode.kind === "symlink") {
      if (inode.targetSize > MAX_SYMLINK) {
        throw new CorruptImageError(`squashfs inode ${inode.inodeNumber}: symlink of ${inode.targetSize} bytes (at most ${MAX_SYMLINK})`);
      }
      size = inode.targetSize;
    }
    const stat: FsStat = {
      type: STAT_TYPE[inode.kind],
      size,
      mode: inode.mode,
      mtime: inode.mtime,
      uid: this.id(inode.uidIndex, "uid", inode.inodeNumber),
      gid: this.id(inode.gidIndex, "gid", inode.inodeNumber),
      nlink: inode.nlink,
      id: inode.inodeNumber,
    };
    if (inode.kind === "blockdev" || inode.kind === "chardev") stat.rdev = newDecodeDev(inode.rdev);
    return { stat, inode, kind: inode.kind, tail };
  }

  /**
   * The node of the inode at `offset` in metadata block `block` (relative to
   * the inode table, as inode references say); shared while cached.
   */
  private async inodeAt(block: number, offset: number): Promise<SquashfsNode> {
    // block < 2^32 and offset < 8192: a unique, safe key.
    const key = block * METADATA_SIZE + offset;
    const known = this.nodes.get(key);
    if (known) return known;
    const start = { block: this.superblock.inodeTableStart + block, offset };
    // peek() first: no await when the blocks are cached, as they are for most entries of a listing.
    const head = this.meta.peek(start, INODE_HEADER_SIZE) ?? (await this.meta.read(start, INODE_HEADER_SIZE, this.inodeTableEnd));
    // Read again from the start, now knowing the length: usually a view into one cached block.
    const fixedSize = INODE_HEADER_SIZE + inodeBodySize(head.bytes.readUInt16LE(0));
    const { bytes, next } = this.meta.peek(start, fixedSize) ?? (await this.meta.read(start, fixedSize, this.inodeTableEnd));
    return this.nodes.set(key, this.node(decodeInode(bytes), next));
  }

  async root(): Promise<SquashfsNode> {
    const { block, offset } = inodeRef(this.superblock.rootInode);
    return this.inodeAt(block, offset);
  }

  private dirInode(dir: SquashfsNode): Extract<Inode, { kind: "dir" }> {
    if (dir.inode.kind !== "dir") throw new CorruptImageError(`squashfs inode ${dir.inode.inodeNumber} is not a directory`);
    return dir.inode;
  }

  private listingKey(inode: Extract<Inode, { kind: "dir" }>): string {
    return `${inode.startBlock}:${inode.offset}:${inode.fileSize}`;
  }

  /** The stored entries of a directory, decoded one at a time. */
  private rawEntries(inode: Extract<Inode, { kind: "dir" }>): AsyncGenerator<DirectoryEntry> {
    const sb = this.superblock;
    // fileSize counts "." and ".." as 3 bytes that are not stored.
    const length = Math.max(0, inode.fileSize - 3);
    const start = { block: sb.directoryTableStart + inode.startBlock, offset: inode.offset };
    return directoryEntries(new MetaStream(this.meta, start, length, this.tableEnd(sb.directoryTableStart)));
  }

  /**
   * A stream, never the whole listing: a directory of a million names fits in
   * a few KiB of squashfs. Small listings are kept for lookup(). A stored "."
   * or ".." (never written by mksquashfs) is given as stored, like any name:
   * the extractor renames it, with a warning.
   */
  list(dir: SquashfsNode): AsyncIterable<FsDirEntry<SquashfsNode>> {
    const inode = this.dirInode(dir);
    return this.listings.list(this.listingKey(inode), this.entries(inode));
  }

  private async *entries(inode: Extract<Inode, { kind: "dir" }>): AsyncGenerator<FsDirEntry<SquashfsNode>> {
    for await (const entry of this.rawEntries(inode)) {
      yield { name: decodeName(entry.name), node: await this.inodeAt(entry.inodeBlock, entry.inodeOffset) };
    }
  }

  /** A scan that decodes only names (and the one inode found): no node per entry, no listing held. */
  async lookup(dir: SquashfsNode, name: string): Promise<SquashfsNode | undefined> {
    const inode = this.dirInode(dir);
    const cached = this.listings.get(this.listingKey(inode));
    if (cached) return cached.find((e) => e.name === name)?.node;
    const wanted = nameBytes(name);
    for await (const entry of this.rawEntries(inode)) {
      if (entry.name.equals(wanted)) return this.inodeAt(entry.inodeBlock, entry.inodeOffset);
    }
    return undefined;
  }

  async readlink(node: SquashfsNode): Promise<string> {
    const inode = node.inode;
    if (inode.kind !== "symlink") throw new CorruptImageError(`squashfs inode ${inode.inodeNumber} is not a symlink`);
    const { bytes } = await this.meta.read(node.tail, inode.targetSize, this.inodeTableEnd);
    return decodeName(bytes);
  }

  /** The file's block size words and block positions, read from its inode's tail once. */
  private async layout(node: SquashfsNode): Promise<{ blocks: Uint32Array; starts: number[] }> {
    if (node.blocks && node.blockStarts) return { blocks: node.blocks, starts: node.blockStarts };
    const inode = node.inode;
    if (inode.kind !== "file") throw new CorruptImageError(`squashfs inode ${inode.inodeNumber} is not a regular file`);
    const sb = this.superblock;
    const count = blockCount(inode, sb.blockSize);
    const { bytes } = await this.meta.read(node.tail, count * 4, this.inodeTableEnd);
    const blocks = new Uint32Array(count);
    const starts = new Array<number>(count + 1);
    let position = inode.startBlock;
    for (let i = 0; i < count; i++) {
      const word = bytes.readUInt32LE(i * 4);
      const { size } = decodeBlockSize(word);
      if (size > sb.blockSize) {
        throw new CorruptImageError(`squashfs inode ${inode.inodeNumber}: block ${i} is ${size} bytes (block size ${sb.blockSize})`);
      }
      blocks[i] = word;
      starts[i] = position;
      position += size;
    }
    starts[count] = position;
    if (position > sb.bytesUsed) {
      throw new CorruptImageError(`squashfs inode ${inode.inodeNumber}: data blocks run past the end of the filesystem`);
    }
    node.blocks = blocks;
    node.blockStarts = starts;
    return { blocks, starts };
  }

  /** A data or fragment block, decompressed; the few most recent are kept. */
  private async dataBlock(position: number, word: number, what: string): Promise<Buffer> {
    const cached = this.dataBlocks.get(position);
    if (cached) return cached;
    const { compressed, size } = decodeBlockSize(word);
    const sb = this.superblock;
    if (size > sb.blockSize || position + size > sb.bytesUsed) {
      throw new CorruptImageError(`squashfs: ${what} at ${position} (${size} bytes) is out of bounds`);
    }
    const raw = await this.source.read(position, size);
    const data = compressed ? await this.decompress(raw, sb.blockSize, sb.blockSize) : raw;
    return this.dataBlocks.set(position, data);
  }

  /** Bytes [0, length) of block `index` of a file: a data block, a sparse block, or the tail in a fragment. */
  private async fileBlock(node: SquashfsNode, index: number, length: number): Promise<Buffer | null> {
    const inode = node.inode as Extract<Inode, { kind: "file" }>;
    const { blocks, starts } = await this.layout(node);
    let data: Buffer;
    let from = 0;
    if (index < blocks.length) {
      const word = blocks[index] as number;
      if (decodeBlockSize(word).size === 0) return null; // sparse: zeros
      data = await this.dataBlock(starts[index] as number, word, `block ${index} of inode ${inode.inodeNumber}`);
      if (data.length !== length) {
        throw new CorruptImageError(
          `squashfs inode ${inode.inodeNumber}: block ${index} holds ${data.length} bytes, expected ${length}`,
        );
      }
    } else {
      if (inode.fragment === NO_FRAGMENT) throw new CorruptImageError(`squashfs inode ${inode.inodeNumber}: no block ${index}`);
      const entry = await this.fragment(inode.fragment);
      data = await this.dataBlock(entry.start, entry.sizeWord, `fragment ${inode.fragment}`);
      from = inode.fragmentOffset;
      if (from + length > data.length) {
        throw new CorruptImageError(`squashfs inode ${inode.inodeNumber}: its tail runs past the end of fragment ${inode.fragment}`);
      }
    }
    return data.subarray(from, from + length);
  }

  async read(node: SquashfsNode, offset: number, length: number): Promise<Buffer> {
    if (node.inode.kind !== "file") throw new CorruptImageError(`squashfs inode ${node.inode.inodeNumber} is not a regular file`);
    const fileSize = node.inode.fileSize;
    checkFileRange(`squashfs inode ${node.inode.inodeNumber}`, fileSize, offset, length);
    const bs = this.superblock.blockSize;
    const out = Buffer.alloc(length);
    for (let at = offset; at < offset + length; ) {
      const index = Math.floor(at / bs);
      const blockStart = index * bs;
      const blockLength = Math.min(bs, fileSize - blockStart);
      const take = Math.min(blockStart + blockLength, offset + length) - at;
      const data = await this.fileBlock(node, index, blockLength);
      if (data) data.copy(out, at - offset, at - blockStart, at - blockStart + take);
      at += take;
    }
    return out;
  }

  async dataRanges(node: SquashfsNode): Promise<Array<[number, number]>> {
    if (node.inode.kind !== "file") return [];
    const { blocks } = await this.layout(node);
    const bs = this.superblock.blockSize;
    const fileSize = node.inode.fileSize;
    const ranges: Array<[number, number]> = [];
    const add = (start: number, length: number) => {
      const last = ranges[ranges.length - 1];
      if (last && last[0] + last[1] === start) last[1] += length;
      else ranges.push([start, length]);
    };
    for (let i = 0; i < blocks.length; i++) {
      if (decodeBlockSize(blocks[i] as number).size !== 0) add(i * bs, Math.min(bs, fileSize - i * bs));
    }
    const tail = fileSize - blocks.length * bs;
    if (tail > 0) add(blocks.length * bs, tail);
    return ranges;
  }

  /**
   * A file's data blocks and the fragment block holding its tail, as stored
   * (a compressed block is lost whole with any of its bytes). Directories
   * and symlinks live in the metadata tables (regions()).
   */
  async *extents(node: SquashfsNode): AsyncGenerator<FileExtent> {
    const inode = node.inode;
    if (inode.kind !== "file") return;
    const { blocks, starts } = await this.layout(node);
    const bs = this.superblock.blockSize;
    for (let i = 0; i < blocks.length; i++) {
      const { compressed, size } = decodeBlockSize(blocks[i] as number);
      if (size > 0) yield { fileOffset: i * bs, length: Math.min(bs, inode.fileSize - i * bs), fsOffset: starts[i] as number, fsLength: size, compressed };
    }
    const tail = inode.fileSize - blocks.length * bs;
    if (tail > 0 && inode.fragment !== NO_FRAGMENT) {
      const entry = await this.fragment(inode.fragment);
      const { size } = decodeBlockSize(entry.sizeWord);
      // The tail is some of the bytes of a fragment block shared by many files: compressed or not, where in it is known only once it is read.
      yield { fileOffset: blocks.length * bs, length: tail, fsOffset: entry.start, fsLength: size, compressed: true };
    }
  }

  /** The superblock, the inode table, and what follows the data: directories, then the fragment, export, id and xattr tables. */
  async *regions(): AsyncGenerator<FsRegion> {
    const sb = this.superblock;
    yield { what: "superblock", fsOffset: 0, length: SUPERBLOCK_SIZE };
    yield { what: "inode table", fsOffset: sb.inodeTableStart, length: this.inodeTableEnd - sb.inodeTableStart };
    yield { what: "directory table and lookup tables", fsOffset: sb.directoryTableStart, length: sb.bytesUsed - sb.directoryTableStart };
  }

  async close(): Promise<void> {}
}

/** Open the squashfs filesystem at the start of `source` (a file, a partition). The caller closes the source. */
export function openSquashfs(source: BlockSource): Promise<SquashfsFileSystem> {
  return SquashfsFileSystem.open(source);
}
