/**
 * An ext inode (struct ext4_inode): 128 bytes, plus i_extra_isize bytes of
 * extra fields (nanosecond times) and in-inode extended attributes in the
 * rest of s_inode_size.
 */
import { CorruptImageError } from "../../errors.js";

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

export const FLAG_ENCRYPT = 0x800;
export const FLAG_INDEX = 0x1000;
export const FLAG_HUGE_FILE = 0x40000;
export const FLAG_EXTENTS = 0x80000;
export const FLAG_INLINE_DATA = 0x10000000;

export const I_BLOCK_OFFSET = 40;
export const I_BLOCK_SIZE = 60;

export interface Inode {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Unix seconds, with nanoseconds when the inode has the extra fields. */
  mtime: number;
  linksCount: number;
  flags: number;
  /** The 60 bytes of i_block: block map, extent tree root, fast symlink or inline data. */
  block: Buffer;
  fileAcl: number;
  /** The in-inode extended attribute area (after i_extra_isize), possibly empty. */
  xattrArea: Buffer;
}

/** ext4_decode_extra_time: 2 epoch bits extend the signed 32-bit seconds, 30 bits of nanoseconds. */
function extraTime(seconds: number, extra: number | undefined): number {
  if (extra === undefined) return seconds;
  return seconds + (extra & 3) * 2 ** 32 + (extra >>> 2) / 1e9;
}

export function decodeInode(b: Buffer, ino: number): Inode {
  const mode = b.readUInt16LE(0);
  const sizeLo = b.readUInt32LE(4);
  const sizeHi = b.readUInt32LE(108);
  const size = sizeHi * 2 ** 32 + sizeLo;
  if (!Number.isSafeInteger(size)) throw new CorruptImageError(`ext inode ${ino}: i_size ${size} is absurd`);
  let extraIsize = 0;
  if (b.length > 128) {
    extraIsize = b.readUInt16LE(128);
    if (extraIsize > b.length - 128 || extraIsize % 4 !== 0) {
      throw new CorruptImageError(`ext inode ${ino}: i_extra_isize ${extraIsize} does not fit a ${b.length}-byte inode`);
    }
  }
  // i_mtime_extra is at 136..140: present when the extra area reaches past it.
  const mtimeExtra = extraIsize >= 12 ? b.readUInt32LE(136) : undefined;
  return {
    mode,
    uid: b.readUInt16LE(2) + b.readUInt16LE(120) * 65536,
    gid: b.readUInt16LE(24) + b.readUInt16LE(122) * 65536,
    size,
    mtime: extraTime(b.readInt32LE(16), mtimeExtra),
    linksCount: b.readUInt16LE(26),
    flags: b.readUInt32LE(32),
    block: b.subarray(I_BLOCK_OFFSET, I_BLOCK_OFFSET + I_BLOCK_SIZE),
    fileAcl: b.readUInt32LE(104) + b.readUInt16LE(118) * 2 ** 32,
    xattrArea: b.length > 128 ? b.subarray(128 + extraIsize) : Buffer.alloc(0),
  };
}
