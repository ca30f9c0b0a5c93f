import { CorruptImageError } from "../../errors.js";

/**
 * A directory listing is a run of headers, each followed by up to 256
 * entries that share the header's inode metadata block and base inode
 * number. Entries are sorted by name; "." and ".." are not stored.
 * A listing may hold millions of entries, so it is decoded as a stream.
 */
export const DIR_HEADER_SIZE = 12;
export const DIR_ENTRY_SIZE = 8;
const MAX_ENTRIES_PER_HEADER = 256;

export interface DirectoryHeader {
  count: number;
  inodeBlock: number;
  baseInode: number;
}

export interface DirectoryEntry {
  name: Buffer;
  /** Where the entry's inode is: a metadata block relative to the inode table, and an offset in it. */
  inodeBlock: number;
  inodeOffset: number;
  inodeNumber: number;
  /** The basic inode type (1-7), a hint; the inode itself is authoritative. */
  type: number;
}

export function decodeDirectoryHeader(buf: Buffer): DirectoryHeader {
  const count = buf.readUInt32LE(0) + 1;
  if (count > MAX_ENTRIES_PER_HEADER) {
    throw new CorruptImageError(`squashfs directory: header claims ${count} entries (at most ${MAX_ENTRIES_PER_HEADER})`);
  }
  return { count, inodeBlock: buf.readUInt32LE(4), baseInode: buf.readUInt32LE(8) };
}

/** The fixed 8 bytes of an entry; the name (nameLength bytes) follows them. */
export function decodeEntryHead(buf: Buffer, header: DirectoryHeader): Omit<DirectoryEntry, "name"> & { nameLength: number } {
  return {
    inodeOffset: buf.readUInt16LE(0),
    inodeNumber: (header.baseInode + buf.readInt16LE(2)) >>> 0,
    type: buf.readUInt16LE(4),
    nameLength: buf.readUInt16LE(6) + 1,
    inodeBlock: header.inodeBlock,
  };
}

/** Bytes of a listing handed out in order (a MetaStream over the directory table). */
export interface ByteStream {
  readonly remaining: number;
  take(length: number): Promise<Buffer>;
}

/** The entries of a listing, one at a time: memory stays flat whatever the directory's size. */
export async function* directoryEntries(bytes: ByteStream): AsyncGenerator<DirectoryEntry> {
  while (bytes.remaining > 0) {
    if (bytes.remaining < DIR_HEADER_SIZE) throw new CorruptImageError("squashfs directory: truncated header");
    const header = decodeDirectoryHeader(await bytes.take(DIR_HEADER_SIZE));
    for (let i = 0; i < header.count; i++) {
      if (bytes.remaining < DIR_ENTRY_SIZE) throw new CorruptImageError("squashfs directory: truncated entry");
      const { nameLength, ...entry } = decodeEntryHead(await bytes.take(DIR_ENTRY_SIZE), header);
      if (bytes.remaining < nameLength) throw new CorruptImageError("squashfs directory: name runs past the end");
      yield { ...entry, name: await bytes.take(nameLength) };
    }
  }
}
