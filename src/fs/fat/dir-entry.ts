/**
 * 32-byte FAT directory entries: the 8.3 short entry and the VFAT long-name
 * slot (attribute 0x0f) that precedes it, 13 UTF-16 units per slot.
 */
import { decodeCp437 } from "./codepage.js";

export const ATTR_READ_ONLY = 0x01;
export const ATTR_VOLUME = 0x08;
export const ATTR_DIRECTORY = 0x10;
export const ATTR_LONG_NAME = 0x0f;
/** NT reserved byte (DIR_NTRes): Windows' "base name / extension is lower case" flags. */
export const NTRES_LOWER_BASE = 0x08;
export const NTRES_LOWER_EXT = 0x10;

export const ENTRY_END = 0x00;
export const ENTRY_DELETED = 0xe5;

export interface ShortEntry {
  kind: "short";
  /** The 11 raw name bytes, for the long-name checksum. */
  raw: Buffer;
  /** "README.TXT" with the lowercase flags applied: "readme.txt". */
  name: string;
  attr: number;
  ntRes: number;
  firstCluster: number;
  size: number;
  /** Last-write date and time as stored (local time, no zone). */
  writeDate: number;
  writeTime: number;
}

export interface LongEntry {
  kind: "long";
  /** Sequence number, 1 for the slot holding the first 13 characters. */
  order: number;
  last: boolean;
  checksum: number;
  /** The 13 UTF-16 units of this slot. */
  units: number[];
}

/** The checksum every long-name slot carries of its short entry's 11 name bytes. */
export function shortNameChecksum(raw: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + raw[i]) & 0xff;
  return sum;
}

function shortName(raw: Buffer, ntRes: number): string {
  const bytes = Buffer.from(raw);
  if (bytes[0] === 0x05) bytes[0] = 0xe5; // 0xe5 as a first character is stored as 0x05
  let base = decodeCp437(bytes.subarray(0, 8)).replace(/ +$/, "");
  let ext = decodeCp437(bytes.subarray(8, 11)).replace(/ +$/, "");
  // Linux lowercases through the code page's table, so "CAF\x90" (É) shows as "café"; mtools only
  // lowercases ASCII. Every upper-case letter of code page 437 lowercases within it.
  if (ntRes & NTRES_LOWER_BASE) base = base.toLowerCase();
  if (ntRes & NTRES_LOWER_EXT) ext = ext.toLowerCase();
  return ext ? `${base}.${ext}` : base;
}

/** Decode one in-use entry (callers skip end markers and deleted entries first). */
export function decodeDirEntry(b: Buffer, fat32: boolean): ShortEntry | LongEntry {
  const attr = b[11];
  if ((attr & 0x3f) === ATTR_LONG_NAME) {
    const units: number[] = [];
    for (const [start, count] of [[1, 5], [14, 6], [28, 2]]) {
      for (let i = 0; i < count; i++) units.push(b.readUInt16LE(start + i * 2));
    }
    return { kind: "long", order: b[0] & 0x3f, last: (b[0] & 0x40) !== 0, checksum: b[13], units };
  }
  const raw = b.subarray(0, 11);
  const ntRes = b[12];
  return {
    kind: "short",
    raw,
    name: shortName(raw, ntRes),
    attr,
    ntRes,
    firstCluster: (fat32 ? b.readUInt16LE(20) * 65536 : 0) + b.readUInt16LE(26),
    size: b.readUInt32LE(28),
    writeTime: b.readUInt16LE(22),
    writeDate: b.readUInt16LE(24),
  };
}

/**
 * DOS date and time to Unix seconds, read as UTC (as Linux vfat does with
 * no tz= option and mtools with TZ=UTC). Like Linux fat_time_fat2unix, a
 * month or day of 0 counts as 1.
 */
export function dosTimeToUnix(date: number, time: number): number {
  const year = 1980 + (date >> 9);
  const month = Math.max(1, (date >> 5) & 0x0f);
  const day = Math.max(1, date & 0x1f);
  const ms = Date.UTC(year, month - 1, day, time >> 11, (time >> 5) & 0x3f, (time & 0x1f) * 2);
  return ms / 1000;
}
