/**
 * The two ECMA-119 date formats: the 7-byte binary form of directory records
 * and Rock Ridge TF entries (9.1.5), and the 17-byte digit form of volume
 * descriptors and long-form TF entries (8.4.26.1). Both carry an offset from
 * UTC in 15-minute units; platter writes UTC (offset 0) and reads any offset.
 */

export const RECORD_DATE_SIZE = 7;
export const VOLUME_DATE_SIZE = 17;

/** The 7-byte form counts years from 1900 in one byte: 1900..2155. */
const FIRST_SHORT_YEAR = 1900;
const LAST_SHORT_YEAR = 2155;
const SHORT_MIN = Date.UTC(FIRST_SHORT_YEAR, 0, 1) / 1000;
const SHORT_MAX = Date.UTC(LAST_SHORT_YEAR, 11, 31, 23, 59, 59) / 1000;
const LONG_MIN = yearOneUtc();
const LONG_MAX = Date.UTC(9999, 11, 31, 23, 59, 59) / 1000;

/** True if a Unix time fits the 7-byte form (the writer picks TF's long form otherwise). */
export function fitsRecordDate(unixSeconds: number): boolean {
  return unixSeconds >= SHORT_MIN && unixSeconds <= SHORT_MAX;
}

function utcParts(unixSeconds: number): Date {
  return new Date(Math.floor(unixSeconds) * 1000);
}

/** Unix seconds -> 7 bytes, UTC. Times outside 1900..2155 are clamped to the nearest end. */
export function encodeRecordDate(unixSeconds: number, out: Buffer = Buffer.alloc(RECORD_DATE_SIZE), offset = 0): Buffer {
  const t = Math.min(Math.max(Math.floor(unixSeconds), SHORT_MIN), SHORT_MAX);
  const d = utcParts(t);
  out[offset] = d.getUTCFullYear() - FIRST_SHORT_YEAR;
  out[offset + 1] = d.getUTCMonth() + 1;
  out[offset + 2] = d.getUTCDate();
  out[offset + 3] = d.getUTCHours();
  out[offset + 4] = d.getUTCMinutes();
  out[offset + 5] = d.getUTCSeconds();
  out[offset + 6] = 0;
  return out;
}

/** 7 bytes -> Unix seconds, or null when the date is not recorded (all zero). */
export function decodeRecordDate(buf: Buffer, offset = 0): number | null {
  const [y, mo, d, h, mi, s] = [0, 1, 2, 3, 4, 5].map((i) => buf[offset + i]);
  if (y === 0 && mo === 0 && d === 0 && h === 0 && mi === 0 && s === 0) return null;
  const tz = buf.readInt8(offset + 6);
  const utc = Date.UTC(FIRST_SHORT_YEAR + y, Math.max(mo, 1) - 1, Math.max(d, 1), h, mi, s) / 1000;
  // The recorded time is local to the offset: subtract it to get UTC. Offsets
  // beyond +-13 h are invalid (ECMA-119 9.1.5); ignore them as Linux does.
  return tz >= -52 && tz <= 52 ? utc - tz * 900 : utc;
}

const pad = (n: number, width: number) => String(n).padStart(width, "0");

/**
 * Unix seconds (or null for "not specified") -> 17 bytes, UTC, hundredths
 * kept. Times outside the years 1..9999 are clamped.
 */
export function encodeVolumeDate(
  unixSeconds: number | null,
  out: Buffer = Buffer.alloc(VOLUME_DATE_SIZE),
  offset = 0,
): Buffer {
  if (unixSeconds === null) {
    out.write("0000000000000000", offset, 16, "latin1");
    out[offset + 16] = 0;
    return out;
  }
  const t = Math.min(Math.max(unixSeconds, LONG_MIN), LONG_MAX);
  const d = new Date(Math.floor(t * 100) * 10);
  const text =
    pad(d.getUTCFullYear(), 4) +
    pad(d.getUTCMonth() + 1, 2) +
    pad(d.getUTCDate(), 2) +
    pad(d.getUTCHours(), 2) +
    pad(d.getUTCMinutes(), 2) +
    pad(d.getUTCSeconds(), 2) +
    pad(Math.floor(d.getUTCMilliseconds() / 10), 2);
  out.write(text, offset, 16, "latin1");
  out[offset + 16] = 0;
  return out;
}

/** 17 bytes -> Unix seconds, or null when not specified (all digits zero) or not digits. */
export function decodeVolumeDate(buf: Buffer, offset = 0): number | null {
  const text = buf.toString("latin1", offset, offset + 16);
  if (!/^\d{16}$/.test(text) || /^0{16}$/.test(text)) return null;
  const num = (from: number, len: number) => Number(text.slice(from, from + len));
  const date = new Date(0);
  date.setUTCFullYear(num(0, 4), Math.max(num(4, 2), 1) - 1, Math.max(num(6, 2), 1));
  date.setUTCHours(num(8, 2), num(10, 2), num(12, 2), num(14, 2) * 10);
  const tz = buf.readInt8(offset + 16);
  const utc = date.getTime() / 1000;
  return tz >= -52 && tz <= 52 ? utc - tz * 900 : utc;
}

/** 0001-01-01T00:00:00Z (Date.UTC would read year 1 as 1901). */
function yearOneUtc(): number {
  const d = new Date(0);
  d.setUTCFullYear(1, 0, 1);
  return d.getTime() / 1000;
}
