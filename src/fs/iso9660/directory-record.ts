/**
 * The directory record (ECMA-119 9.1): one entry of a directory extent, and
 * the root record inside each volume descriptor.
 *
 *   0 length  1 ext-attr length  2 extent (both 32)  10 data length (both 32)
 *  18 date (7)  25 flags  26 unit size  27 gap  28 volume seq (both 16)
 *  32 identifier length  33 identifier [pad to even]  system use area
 */
import { CorruptImageError } from "../../errors.js";
import { readBoth16, readBoth32, writeBoth16, writeBoth32 } from "./both-endian.js";
import { decodeRecordDate, encodeRecordDate } from "./dates.js";
import { MAX_DIRECTORY_RECORD } from "./constants.js";

export const RECORD_HEADER_SIZE = 33;

/** File flags (9.1.6). */
export const FLAG_HIDDEN = 0x01;
export const FLAG_DIRECTORY = 0x02;
export const FLAG_ASSOCIATED = 0x04;
export const FLAG_RECORD = 0x08;
export const FLAG_PROTECTION = 0x10;
/** More records of the same file follow (multi-extent, interchange level 3). */
export const FLAG_MULTI_EXTENT = 0x80;

/** The identifiers of a directory's own "." and ".." records. */
export const SELF_ID = Buffer.from([0]);
export const PARENT_ID = Buffer.from([1]);

export interface DirectoryRecord {
  extAttrLength: number;
  /** First logical block of the extent. */
  extent: number;
  dataLength: number;
  /** Unix seconds; null when the record leaves it blank. */
  recorded: number | null;
  flags: number;
  fileUnitSize: number;
  interleaveGap: number;
  volumeSequence: number;
  identifier: Buffer;
  systemUse: Buffer;
}

/** Byte length of the identifier plus the padding byte ECMA-119 puts after an even-length one. */
function identifierField(idLength: number): number {
  return idLength + (idLength % 2 === 0 ? 1 : 0);
}

/** Where the system use area starts inside a record with an identifier of `idLength` bytes. */
export function systemUseOffset(idLength: number): number {
  return RECORD_HEADER_SIZE + identifierField(idLength);
}

/** Total length of a record; an odd total gets one zero byte so records stay even (9.1.1). */
export function directoryRecordSize(idLength: number, systemUseLength: number): number {
  const raw = systemUseOffset(idLength) + systemUseLength;
  return raw + (raw % 2);
}

export function encodeDirectoryRecord(r: DirectoryRecord, out?: Buffer, offset = 0): Buffer {
  const size = directoryRecordSize(r.identifier.length, r.systemUse.length);
  if (size > MAX_DIRECTORY_RECORD) {
    throw new RangeError(`directory record of ${size} bytes is longer than ${MAX_DIRECTORY_RECORD}`);
  }
  // Filled with zeros below: a slice of Node's pool, not an ArrayBuffer of its own for each record.
  const buf = out ?? Buffer.allocUnsafe(size);
  const o = out ? offset : 0;
  buf.fill(0, o, o + size);
  buf[o] = size;
  buf[o + 1] = r.extAttrLength;
  writeBoth32(buf, o + 2, r.extent);
  writeBoth32(buf, o + 10, r.dataLength);
  if (r.recorded !== null) encodeRecordDate(r.recorded, buf, o + 18);
  buf[o + 25] = r.flags;
  buf[o + 26] = r.fileUnitSize;
  buf[o + 27] = r.interleaveGap;
  writeBoth16(buf, o + 28, r.volumeSequence);
  buf[o + 32] = r.identifier.length;
  r.identifier.copy(buf, o + RECORD_HEADER_SIZE);
  r.systemUse.copy(buf, o + systemUseOffset(r.identifier.length));
  return out ?? buf;
}

/**
 * Decode the record at `offset`. `where` names it in errors. The record must
 * lie inside `buf`; the system use area is every byte after the identifier.
 */
export function decodeDirectoryRecord(buf: Buffer, offset = 0, where = "directory record"): DirectoryRecord {
  const length = buf[offset];
  if (length < RECORD_HEADER_SIZE + 1) {
    throw new CorruptImageError(`${where}: record length ${length} is shorter than ${RECORD_HEADER_SIZE + 1} bytes`);
  }
  if (offset + length > buf.length) {
    throw new CorruptImageError(`${where}: record of ${length} bytes runs past the end of its block`);
  }
  const idLength = buf[offset + 32];
  if (idLength === 0 || RECORD_HEADER_SIZE + idLength > length) {
    throw new CorruptImageError(`${where}: identifier length ${idLength} does not fit a record of ${length} bytes`);
  }
  const suStart = Math.min(offset + systemUseOffset(idLength), offset + length);
  return {
    extAttrLength: buf[offset + 1],
    extent: readBoth32(buf, offset + 2),
    dataLength: readBoth32(buf, offset + 10),
    recorded: decodeRecordDate(buf, offset + 18),
    flags: buf[offset + 25],
    fileUnitSize: buf[offset + 26],
    interleaveGap: buf[offset + 27],
    volumeSequence: readBoth16(buf, offset + 28),
    identifier: buf.subarray(offset + RECORD_HEADER_SIZE, offset + RECORD_HEADER_SIZE + idLength),
    systemUse: buf.subarray(suStart, offset + length),
  };
}
