/**
 * The path table (ECMA-119 9.4): every directory once, by level, then parent,
 * then name, so DOS-era readers can find a directory without walking the
 * tree. Stored twice: type L (little-endian numbers) and type M (big-endian).
 *
 *   0 identifier length  1 ext-attr length  2 extent (4)  6 parent number (2)
 *   8 identifier [pad to even]
 */
import { CorruptImageError } from "../../errors.js";

export type PathTableByteOrder = "L" | "M";

export interface PathTableRecord {
  extAttrLength: number;
  extent: number;
  /** 1-based number of the parent directory's record; the root is its own parent (1). */
  parent: number;
  identifier: Buffer;
}

/** Bytes one record takes, padding included. */
export function pathTableRecordSize(idLength: number): number {
  return 8 + idLength + (idLength % 2);
}

export function encodePathTable(records: readonly PathTableRecord[], order: PathTableByteOrder): Buffer {
  const size = records.reduce((n, r) => n + pathTableRecordSize(r.identifier.length), 0);
  const buf = Buffer.alloc(size);
  let o = 0;
  for (const r of records) {
    buf[o] = r.identifier.length;
    buf[o + 1] = r.extAttrLength;
    if (order === "L") {
      buf.writeUInt32LE(r.extent, o + 2);
      buf.writeUInt16LE(r.parent, o + 6);
    } else {
      buf.writeUInt32BE(r.extent, o + 2);
      buf.writeUInt16BE(r.parent, o + 6);
    }
    r.identifier.copy(buf, o + 8);
    o += pathTableRecordSize(r.identifier.length);
  }
  return buf;
}

export function decodePathTable(buf: Buffer, order: PathTableByteOrder): PathTableRecord[] {
  const records: PathTableRecord[] = [];
  let o = 0;
  while (o < buf.length) {
    const idLength = buf[o];
    if (idLength === 0) {
      throw new CorruptImageError(`path table: record ${records.length + 1} at byte ${o} has an empty identifier`);
    }
    if (o + pathTableRecordSize(idLength) > buf.length) {
      throw new CorruptImageError(`path table: record ${records.length + 1} at byte ${o} runs past the table's end`);
    }
    records.push({
      extAttrLength: buf[o + 1],
      extent: order === "L" ? buf.readUInt32LE(o + 2) : buf.readUInt32BE(o + 2),
      parent: order === "L" ? buf.readUInt16LE(o + 6) : buf.readUInt16BE(o + 6),
      identifier: Buffer.from(buf.subarray(o + 8, o + 8 + idLength)),
    });
    o += pathTableRecordSize(idLength);
  }
  return records;
}
