/**
 * The index of an .xz stream (doc/xz-file-format.txt, 4): an indicator byte
 * 0x00, the number of records, one record per block (its Unpadded Size:
 * header, compressed data and check, without padding; and its Uncompressed
 * Size), zero padding to a multiple of 4, and the CRC32 of all before it.
 */
import { crc32 } from "../../util/crc32.js";
import { decodeVli, encodeVli } from "./vli.js";

export interface IndexRecord {
  unpaddedSize: number;
  uncompressedSize: number;
}

/** The smallest Unpadded Size a record may give (liblzma's UNPADDED_SIZE_MIN). */
export const MIN_UNPADDED_SIZE = 5;

/** The records of an index, column by column (an index may list millions of blocks). */
export interface IndexRecords {
  unpaddedSizes: Float64Array;
  uncompressedSizes: Float64Array;
}

/**
 * The records of the index `field` (exactly the index's bytes), or a reason
 * string; an index of more than `maxRecords` records is refused unread.
 */
export function decodeIndexField(field: Buffer, maxRecords: number): IndexRecords | string {
  if (field.length < 8 || field.length % 4 !== 0) return `index of ${field.length} bytes (it is a multiple of 4, at least 8)`;
  if (field[0] !== 0) return "no index indicator";
  if (crc32(field.subarray(0, field.length - 4)) !== field.readUInt32LE(field.length - 4)) return "index CRC32 mismatch";
  const count = decodeVli(field, 1);
  if (typeof count === "string") return count;
  // Each record takes at least two bytes: a count the index cannot hold is a lie, found before looping on it.
  if (count.value > (field.length - 1 - count.length) / 2) return `index claims ${count.value} records in ${field.length} bytes`;
  if (count.value > maxRecords) return `index lists ${count.value} blocks, more than the ${maxRecords} platter indexes`;
  const records: IndexRecords = { unpaddedSizes: new Float64Array(count.value), uncompressedSizes: new Float64Array(count.value) };
  let at = 1 + count.length;
  for (let i = 0; i < count.value; i++) {
    const unpadded = decodeVli(field, at);
    if (typeof unpadded === "string") return `record ${i}: ${unpadded}`;
    const uncompressed = decodeVli(field, at + unpadded.length);
    if (typeof uncompressed === "string") return `record ${i}: ${uncompressed}`;
    if (unpadded.value < MIN_UNPADDED_SIZE) return `record ${i}: unpadded size ${unpadded.value}`;
    records.unpaddedSizes[i] = unpadded.value;
    records.uncompressedSizes[i] = uncompressed.value;
    at += unpadded.length + uncompressed.length;
  }
  const end = field.length - 4;
  if (at > end || end - at > 3 || field.subarray(at, end).some((b) => b !== 0)) return "index records do not end where its padding and CRC32 begin";
  return records;
}

export function encodeIndexField(records: Iterable<IndexRecord>, count: number): Buffer {
  const parts = [Buffer.from([0]), encodeVli(count)];
  let n = 0;
  for (const r of records) {
    parts.push(encodeVli(r.unpaddedSize), encodeVli(r.uncompressedSize));
    n++;
  }
  if (n !== count) throw new RangeError(`index of ${count} records given ${n}`);
  const body = Buffer.concat(parts);
  const padding = (4 - (body.length % 4)) % 4;
  const field = Buffer.alloc(body.length + padding + 4);
  body.copy(field);
  field.writeUInt32LE(crc32(field.subarray(0, field.length - 4)), field.length - 4);
  return field;
}
