/**
 * FsStat (the readers' view of a file) as the stat a FUSE reply carries:
 * the type bits back in the mode, device numbers in the kernel's encoding,
 * and an inode number that is the reader's own where it has one, so hard
 * links show as one file (same inode number) to find, cp -a and tar.
 */
import type { FileType, FsStat } from "../../fs/types.js";
import type { FuseStat } from "./binding.js";

const TYPE_BITS: Record<FileType, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
  socket: 0o140000,
};

/** new_encode_dev (include/linux/kdev_t.h): what FUSE's 32-bit rdev carries. */
export function encodeDevice([major, minor]: [number, number]): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** Numeric ids below this are used as they are (inode numbers); the rest hash above it. */
const SYNTHETIC_BASE = 0x8000_0000;

/** FNV-1a: a stable 31-bit number for an id that is a string or missing (then the path names the file). */
function hash31(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0) & 0x7fff_ffff;
}

/**
 * The inode number: the reader's numeric id (ext and squashfs inode numbers,
 * FAT and ISO extent numbers: the same id means the same file), else a hash
 * of the string id or of the path. fuse-native carries 32 bits.
 */
export function inodeNumber(stat: FsStat, path: string): number {
  const { id } = stat;
  if (typeof id === "number" && Number.isInteger(id) && id > 0 && id < SYNTHETIC_BASE) return id;
  return SYNTHETIC_BASE + hash31(id === null ? `path:${path}` : `id:${id}`);
}

const BLOCK = 4096;

export function toFuseStat(stat: FsStat, ino: number): FuseStat {
  // fuse-native carries times as unsigned milliseconds.
  const ms = Math.max(0, stat.mtime * 1000);
  return {
    mode: TYPE_BITS[stat.type] | (stat.mode & 0o7777),
    uid: stat.uid,
    gid: stat.gid,
    size: stat.size,
    nlink: stat.nlink,
    ino,
    rdev: stat.rdev ? encodeDevice(stat.rdev) : 0,
    blksize: BLOCK,
    blocks: Math.ceil(stat.size / 512),
    atime: ms,
    mtime: ms,
    ctime: ms,
  };
}
