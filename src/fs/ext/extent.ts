/**
 * Extent tree nodes (fs/ext4/ext4_extents.h): a 12-byte header, then
 * 12-byte index entries (depth > 0) or leaf extents (depth 0). The root
 * lives in the inode's 60-byte i_block; other nodes fill a whole block
 * (followed by a checksum tail we do not need).
 */
import { CorruptImageError } from "../../errors.js";

export const EXTENT_MAGIC = 0xf30a;
/** ee_len above this marks an unwritten (preallocated) extent that reads as zeros. */
export const EXT_INIT_MAX_LEN = 32768;
export const MAX_EXTENT_DEPTH = 5;

export interface ExtentLeaf {
  /** First logical block. */
  logical: number;
  length: number;
  physical: number;
  unwritten: boolean;
}

export interface ExtentIndex {
  /** First logical block the child covers. */
  logical: number;
  /** Block number of the child node. */
  child: number;
}

export type ExtentNode =
  | { depth: 0; leaves: ExtentLeaf[] }
  | { depth: number; indexes: ExtentIndex[] };

export function decodeExtentNode(b: Buffer, where: string): ExtentNode {
  if (b.length < 12) throw new CorruptImageError(`${where}: extent node truncated`);
  const magic = b.readUInt16LE(0);
  if (magic !== EXTENT_MAGIC) throw new CorruptImageError(`${where}: extent header magic 0x${magic.toString(16)} is not 0xf30a`);
  const entries = b.readUInt16LE(2);
  const max = b.readUInt16LE(4);
  const depth = b.readUInt16LE(6);
  const fits = Math.floor((b.length - 12) / 12);
  if (max > fits) throw new CorruptImageError(`${where}: extent header eh_max ${max} exceeds the ${fits} entries that fit`);
  if (entries > max) throw new CorruptImageError(`${where}: extent header eh_entries ${entries} exceeds eh_max ${max}`);
  if (depth > MAX_EXTENT_DEPTH) throw new CorruptImageError(`${where}: extent tree depth ${depth} is over ${MAX_EXTENT_DEPTH}`);
  if (depth === 0) {
    const leaves: ExtentLeaf[] = [];
    for (let i = 0; i < entries; i++) {
      const o = 12 + i * 12;
      const rawLen = b.readUInt16LE(o + 4);
      const unwritten = rawLen > EXT_INIT_MAX_LEN;
      leaves.push({
        logical: b.readUInt32LE(o),
        length: unwritten ? rawLen - EXT_INIT_MAX_LEN : rawLen,
        physical: b.readUInt16LE(o + 6) * 2 ** 32 + b.readUInt32LE(o + 8),
        unwritten,
      });
    }
    return { depth: 0, leaves };
  }
  const indexes: ExtentIndex[] = [];
  for (let i = 0; i < entries; i++) {
    const o = 12 + i * 12;
    indexes.push({ logical: b.readUInt32LE(o), child: b.readUInt32LE(o + 4) + b.readUInt16LE(o + 8) * 2 ** 32 });
  }
  return { depth, indexes };
}
