/**
 * Linear directory entries (struct ext4_dir_entry_2): inode, rec_len,
 * name_len, file_type, name. htree directories are read the same way: their
 * index blocks look like one empty entry spanning the block, and the
 * metadata_csum tail is an entry with inode 0. Entries with inode 0 (deleted
 * or padding) are skipped, and so are the directory's own "." and ".." links,
 * the first two entries of its first block (of an htree's root too); a "."
 * or ".." anywhere else is a name like any other, given as stored.
 */
import { CorruptImageError } from "../../errors.js";
import { decodeName } from "../names.js";

export interface ExtDirEntry {
  inode: number;
  /** Decoded without loss (fs/names.ts). */
  name: string;
  /** ext4 file_type (1 file, 2 dir, 7 symlink...), 0 when unknown. */
  fileType: number;
}

export interface DirBlockOptions {
  /** The filetype feature: name_len is one byte followed by file_type; otherwise name_len is 16 bits. */
  hasFileType: boolean;
  blockSize: number;
  /** For messages: "directory inode 12, block 3". */
  where: string;
  /** The directory's first block, which starts with its "." and ".." links. */
  firstBlock?: boolean;
}

/** rec_len as stored: 64 KiB blocks need 17 bits, folded into the low two bits (ext4_rec_len_from_disk). */
function recLenFromDisk(raw: number, blockSize: number): number {
  if (blockSize < 65536) return raw;
  if (raw === 65535 || raw === 0) return blockSize;
  return (raw & 65532) | ((raw & 3) << 16);
}

/** Decode the entries of one directory block (or the inline-data area, which has no block size of its own). */
export function decodeDirEntries(b: Buffer, options: DirBlockOptions): ExtDirEntry[] {
  const out: ExtDirEntry[] = [];
  let pos = 0;
  for (let index = 0; pos + 8 <= b.length; index++) {
    const inode = b.readUInt32LE(pos);
    const recLen = recLenFromDisk(b.readUInt16LE(pos + 4), options.blockSize);
    const nameLen = options.hasFileType ? b[pos + 6] : b.readUInt16LE(pos + 6);
    const fileType = options.hasFileType ? b[pos + 7] : 0;
    if (recLen < 8 || recLen % 4 !== 0 || pos + recLen > b.length) {
      throw new CorruptImageError(`ext ${options.where}: directory entry at byte ${pos} has a bad rec_len ${recLen}`);
    }
    if (inode !== 0) {
      if (8 + nameLen > recLen) {
        throw new CorruptImageError(`ext ${options.where}: directory entry at byte ${pos}: name_len ${nameLen} overflows rec_len ${recLen}`);
      }
      if (nameLen === 0) {
        throw new CorruptImageError(`ext ${options.where}: directory entry at byte ${pos} has an empty name`);
      }
      const name = decodeName(b.subarray(pos + 8, pos + 8 + nameLen));
      const ownLink = options.firstBlock && index < 2 && name === (index === 0 ? "." : "..");
      if (!ownLink) out.push({ inode, name, fileType });
    }
    pos += recLen;
  }
  return out;
}
