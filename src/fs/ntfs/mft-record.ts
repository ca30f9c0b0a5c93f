/**
 * An MFT record (a FILE record): the update sequence fixups undone, then its
 * attributes. Each 512-byte stride of a record ends with the update sequence
 * number, and the bytes it replaced sit in the update sequence array; a
 * stride whose last two bytes are not that number was torn by a partial
 * write, and the record is corrupt.
 */
import { CorruptImageError } from "../../errors.js";

const FIXUP_STRIDE = 512;
const ATTR_END = 0xffffffff;

export interface NtfsAttribute {
  type: number;
  name: string;
  nonResident: boolean;
  /** The attribute's bytes (header included), inside the record. */
  bytes: Buffer;
}

/** The record with its fixups applied (in place); `where` names it in errors. */
export function applyFixups(record: Buffer, where: string): Buffer {
  if (record.toString("latin1", 0, 4) !== "FILE") throw new CorruptImageError(`NTFS ${where}: no "FILE" signature`);
  const usaOffset = record.readUInt16LE(4);
  const usaCount = record.readUInt16LE(6);
  if (usaCount < 1 || (usaCount - 1) * FIXUP_STRIDE > record.length || usaOffset + usaCount * 2 > record.length) {
    throw new CorruptImageError(`NTFS ${where}: update sequence array (offset ${usaOffset}, ${usaCount} entries) does not fit the record`);
  }
  const usn = record.readUInt16LE(usaOffset);
  for (let i = 1; i < usaCount; i++) {
    const end = i * FIXUP_STRIDE - 2;
    if (record.readUInt16LE(end) !== usn) throw new CorruptImageError(`NTFS ${where}: update sequence mismatch in stride ${i} (a torn write)`);
    record.writeUInt16LE(record.readUInt16LE(usaOffset + i * 2), end);
  }
  return record;
}

/** The attributes of a fixed-up record, in order, up to the end marker. */
export function* attributes(record: Buffer, where: string): Generator<NtfsAttribute> {
  const used = Math.min(record.length, record.readUInt32LE(0x18));
  for (let at = record.readUInt16LE(0x14); ; ) {
    if (at + 4 > used) throw new CorruptImageError(`NTFS ${where}: attributes run past the record's used size`);
    const type = record.readUInt32LE(at);
    if (type === ATTR_END) return;
    if (at + 16 > used) throw new CorruptImageError(`NTFS ${where}: attribute at ${at} is truncated`);
    const length = record.readUInt32LE(at + 4);
    if (length < 16 || at + length > used) throw new CorruptImageError(`NTFS ${where}: attribute at ${at} has length ${length}`);
    const bytes = record.subarray(at, at + length);
    const nameLength = bytes[9] as number;
    const nameOffset = bytes.readUInt16LE(10);
    if (nameOffset + nameLength * 2 > length) throw new CorruptImageError(`NTFS ${where}: attribute at ${at} has its name outside it`);
    const name = bytes.toString("utf16le", nameOffset, nameOffset + nameLength * 2);
    yield { type, name, nonResident: bytes[8] !== 0, bytes };
    at += length;
  }
}
