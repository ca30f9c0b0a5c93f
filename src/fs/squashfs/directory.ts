import { CorruptImageError } from "../../errors.js";

/**
 * A directory listing is a run of headers, each followed by up to 256
 * entries that share the header's inode metadata block and base inode
 * number. Entries are sorted by name; "." and ".." are not stored.
 */
const HEADER_SIZE = 12;
const ENTRY_SIZE = 8;
const MAX_ENTRIES_PER_HEADER = 256;

export interface DirectoryEntry {
  name: Buffer;
  /** Where the entry's inode is: a metadata block relative to the inode table, and an offset in it. */
  inodeBlock: number;
  inodeOffset: number;
  inodeNumber: number;
  /** The basic inode type (1-7), a hint; the inode itself is authoritative. */
  type: number;
}

export function decodeDirectory(buf: Buffer): DirectoryEntry[] {
  const entries: DirectoryEntry[] = [];
  let at = 0;
  while (at < buf.length) {
    if (at + HEADER_SIZE > buf.length) throw new CorruptImageError("squashfs directory: truncated header");
    const count = buf.readUInt32LE(at) + 1;
    const inodeBlock = buf.readUInt32LE(at + 4);
    const baseInode = buf.readUInt32LE(at + 8);
    at += HEADER_SIZE;
    if (count > MAX_ENTRIES_PER_HEADER) {
      throw new CorruptImageError(`squashfs directory: header claims ${count} entries (at most ${MAX_ENTRIES_PER_HEADER})`);
    }
    for (let i = 0; i < count; i++) {
      if (at + ENTRY_SIZE > buf.length) throw new CorruptImageError("squashfs directory: truncated entry");
      const nameLength = buf.readUInt16LE(at + 6) + 1;
      if (at + ENTRY_SIZE + nameLength > buf.length) throw new CorruptImageError("squashfs directory: name runs past the end");
      entries.push({
        inodeOffset: buf.readUInt16LE(at),
        inodeNumber: (baseInode + buf.readInt16LE(at + 2)) >>> 0,
        type: buf.readUInt16LE(at + 4),
        inodeBlock,
        name: buf.subarray(at + ENTRY_SIZE, at + ENTRY_SIZE + nameLength),
      });
      at += ENTRY_SIZE + nameLength;
    }
  }
  return entries;
}
