/**
 * In-inode extended attributes (fs/ext4/xattr.h): after i_extra_isize, a
 * 4-byte magic then entries {e_name_len u8, e_name_index u8, e_value_offs
 * u16, e_value_inum u32, e_value_size u32, e_hash u32, name} padded to 4
 * bytes, ended by four zero bytes. Value offsets count from the first entry.
 * Only what inline data needs: finding "system.data".
 */
import { CorruptImageError } from "../../errors.js";

export const XATTR_MAGIC = 0xea020000;
export const XATTR_INDEX_SYSTEM = 7;

export interface XattrEntry {
  nameIndex: number;
  name: string;
  value: Buffer;
}

export function decodeInodeXattrs(area: Buffer, where: string): XattrEntry[] {
  if (area.length < 4 || area.readUInt32LE(0) !== XATTR_MAGIC) return [];
  const entries = area.subarray(4);
  const out: XattrEntry[] = [];
  let pos = 0;
  while (pos + 4 <= entries.length && entries.readUInt32LE(pos) !== 0) {
    if (pos + 16 > entries.length) throw new CorruptImageError(`ext ${where}: xattr entry at ${pos} is truncated`);
    const nameLen = entries[pos];
    const nameIndex = entries[pos + 1];
    const valueOffs = entries.readUInt16LE(pos + 2);
    const valueInum = entries.readUInt32LE(pos + 4);
    const valueSize = entries.readUInt32LE(pos + 8);
    if (pos + 16 + nameLen > entries.length) throw new CorruptImageError(`ext ${where}: xattr name at ${pos} is truncated`);
    const name = entries.toString("latin1", pos + 16, pos + 16 + nameLen);
    if (valueInum === 0) {
      if (valueOffs + valueSize > entries.length) {
        throw new CorruptImageError(`ext ${where}: xattr ${name} value (${valueSize} bytes at ${valueOffs}) is outside the inode`);
      }
      out.push({ nameIndex, name, value: entries.subarray(valueOffs, valueOffs + valueSize) });
    }
    pos += (16 + nameLen + 3) & ~3;
  }
  return out;
}
