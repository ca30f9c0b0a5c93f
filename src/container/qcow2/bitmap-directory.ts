/**
 * The qcow2 bitmap directory (docs/interop/qcow2.txt, "Bitmap directory"):
 * persistent dirty bitmaps, each a bitmap table of cluster pointers. platter
 * only needs where they lie, to count their clusters in check. Pure codec.
 */
import { CorruptImageError } from "../../errors.js";
import { decodeName } from "../../fs/names.js";
import { readUint64BE } from "../../util/uint64.js";

const FIXED = 24;

export interface BitmapEntry {
  tableOffset: number;
  /** Entries (8 bytes each) of the bitmap table. */
  tableSize: number;
  name: string;
}

export function decodeBitmapDirectory(dir: Buffer, count: number, offset: number): BitmapEntry[] {
  const entries: BitmapEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const where = `qcow2 bitmap ${i} (byte ${offset + at})`;
    if (at + FIXED > dir.length) throw new CorruptImageError(`${where}: the bitmap directory is shorter than its ${count} entries`);
    const nameSize = dir.readUInt16BE(at + 18);
    const extra = dir.readUInt32BE(at + 20);
    const end = at + FIXED + extra + nameSize;
    if (end > dir.length) throw new CorruptImageError(`${where}: the bitmap directory is shorter than its ${count} entries`);
    entries.push({
      tableOffset: readUint64BE(dir, at, `${where}: bitmap_table_offset`),
      tableSize: dir.readUInt32BE(at + 8),
      name: decodeName(dir.subarray(at + FIXED + extra, end)),
    });
    at = Math.ceil(end / 8) * 8;
  }
  return entries;
}
