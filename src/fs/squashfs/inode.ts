import { CorruptImageError } from "../../errors.js";
import { readUint64 } from "../../util/uint64.js";

/**
 * Inodes: a 16-byte common header, then a fixed part that depends on the
 * type, then a variable tail (a file's block list, a symlink's target, an
 * extended directory's index). Types 1-7 are "basic", 8-14 "extended" (wider
 * fields, nlink, an xattr index): mksquashfs uses the extended form only
 * when something does not fit the basic one (hard links, sparse files, xattrs).
 */
export const InodeType = {
  dir: 1,
  file: 2,
  symlink: 3,
  blockDev: 4,
  charDev: 5,
  fifo: 6,
  socket: 7,
  extDir: 8,
  extFile: 9,
  extSymlink: 10,
  extBlockDev: 11,
  extCharDev: 12,
  extFifo: 13,
  extSocket: 14,
} as const;

export const INODE_HEADER_SIZE = 16;
/** A fragment index meaning "this file has no tail in a fragment". */
export const NO_FRAGMENT = 0xffffffff;

export type InodeKind = "dir" | "file" | "symlink" | "blockdev" | "chardev" | "fifo" | "socket";

const KINDS: InodeKind[] = ["dir", "file", "symlink", "blockdev", "chardev", "fifo", "socket"];

/** Bytes after the header, before any variable tail, for each type (index = type). */
const BODY_SIZE = [0, 16, 16, 8, 8, 8, 4, 4, 24, 40, 8, 12, 12, 8, 8];

export interface InodeHeader {
  type: number;
  kind: InodeKind;
  extended: boolean;
  mode: number;
  uidIndex: number;
  gidIndex: number;
  mtime: number;
  inodeNumber: number;
}

export interface DirInode extends InodeHeader {
  kind: "dir";
  nlink: number;
  /** The listing's size + 3 (mksquashfs counts "." and ".."). */
  fileSize: number;
  /** Metadata block of the listing, relative to the directory table. */
  startBlock: number;
  offset: number;
  parentInode: number;
}

export interface FileInode extends InodeHeader {
  kind: "file";
  nlink: number;
  /** Absolute position of the first data block. */
  startBlock: number;
  fileSize: number;
  fragment: number;
  fragmentOffset: number;
}

export interface SymlinkInode extends InodeHeader {
  kind: "symlink";
  nlink: number;
  targetSize: number;
}

export interface SpecialInode extends InodeHeader {
  kind: "blockdev" | "chardev" | "fifo" | "socket";
  nlink: number;
  /** Device number in the kernel's encoding (devices only, else 0). */
  rdev: number;
}

export type Inode = DirInode | FileInode | SymlinkInode | SpecialInode;

/** Size of the fixed part after the 16-byte header; an unknown type is corruption. */
export function inodeBodySize(type: number): number {
  const size = BODY_SIZE[type];
  if (type < 1 || size === undefined) throw new CorruptImageError(`squashfs: unknown inode type ${type}`);
  return size;
}

export function decodeInodeHeader(buf: Buffer): InodeHeader {
  const type = buf.readUInt16LE(0);
  inodeBodySize(type);
  return {
    type,
    kind: KINDS[(type - 1) % 7] as InodeKind,
    extended: type > 7,
    mode: buf.readUInt16LE(2) & 0o7777,
    uidIndex: buf.readUInt16LE(4),
    gidIndex: buf.readUInt16LE(6),
    mtime: buf.readUInt32LE(8),
    inodeNumber: buf.readUInt32LE(12),
  };
}

/** Decode header + fixed body (exactly INODE_HEADER_SIZE + inodeBodySize(type) bytes). */
export function decodeInode(buf: Buffer): Inode {
  const h = decodeInodeHeader(buf);
  const b = INODE_HEADER_SIZE;
  if (buf.length < b + inodeBodySize(h.type)) throw new CorruptImageError(`squashfs inode ${h.inodeNumber}: truncated`);
  // Fields are added to the header object itself: listing a big directory
  // decodes thousands of inodes, and copying each one shows in profiles.
  const inode = h as Inode;
  switch (h.type) {
    case InodeType.dir: {
      const dir = inode as DirInode;
      dir.startBlock = buf.readUInt32LE(b);
      dir.nlink = buf.readUInt32LE(b + 4);
      dir.fileSize = buf.readUInt16LE(b + 8);
      dir.offset = buf.readUInt16LE(b + 10);
      dir.parentInode = buf.readUInt32LE(b + 12);
      return dir;
    }
    case InodeType.extDir: {
      const dir = inode as DirInode;
      dir.nlink = buf.readUInt32LE(b);
      dir.fileSize = buf.readUInt32LE(b + 4);
      dir.startBlock = buf.readUInt32LE(b + 8);
      dir.parentInode = buf.readUInt32LE(b + 12);
      // b + 16: i_count (directory index entries, only a lookup accelerator)
      dir.offset = buf.readUInt16LE(b + 18);
      return dir;
    }
    case InodeType.file: {
      const file = inode as FileInode;
      file.nlink = 1;
      file.startBlock = buf.readUInt32LE(b);
      file.fragment = buf.readUInt32LE(b + 4);
      file.fragmentOffset = buf.readUInt32LE(b + 8);
      file.fileSize = buf.readUInt32LE(b + 12);
      return file;
    }
    case InodeType.extFile: {
      const file = inode as FileInode;
      file.startBlock = readUint64(buf, b, "squashfs inode: start_block");
      file.fileSize = readUint64(buf, b + 8, "squashfs inode: file_size");
      // b + 16: bytes saved by sparse blocks (informational)
      file.nlink = buf.readUInt32LE(b + 24);
      file.fragment = buf.readUInt32LE(b + 28);
      file.fragmentOffset = buf.readUInt32LE(b + 32);
      return file;
    }
    case InodeType.symlink:
    case InodeType.extSymlink: {
      const link = inode as SymlinkInode;
      link.nlink = buf.readUInt32LE(b);
      link.targetSize = buf.readUInt32LE(b + 4);
      return link;
    }
    default: {
      const special = inode as SpecialInode;
      special.nlink = buf.readUInt32LE(b);
      special.rdev = special.kind === "blockdev" || special.kind === "chardev" ? buf.readUInt32LE(b + 4) : 0;
      return special;
    }
  }
}

/**
 * Number of entries in a file's block list: every full block, plus the last
 * partial one unless that tail lives in a fragment.
 */
export function blockCount(inode: FileInode, blockSize: number): number {
  return inode.fragment === NO_FRAGMENT ? Math.ceil(inode.fileSize / blockSize) : Math.floor(inode.fileSize / blockSize);
}
