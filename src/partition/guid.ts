/**
 * GUIDs as GPT stores them: the first three fields little-endian, the last
 * two big-endian ("mixed-endian"), printed in upper case as sfdisk and
 * sgdisk print them: C12A7328-F81F-11D2-BA4B-00A0C93EC93B.
 */
import { CorruptImageError, UsageError } from "../errors.js";

const GUID_TEXT = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export const ZERO_GUID = "00000000-0000-0000-0000-000000000000";

/** The 16 bytes at `offset` as an upper-case GUID string. */
export function decodeGuid(buf: Buffer, offset = 0): string {
  if (buf.length < offset + 16) throw new CorruptImageError(`GUID at byte ${offset}: only ${buf.length - offset} bytes`);
  const hex = (start: number, end: number) => buf.subarray(offset + start, offset + end).toString("hex");
  const le = (start: number, end: number) => Buffer.from(buf.subarray(offset + start, offset + end)).reverse().toString("hex");
  return `${le(0, 4)}-${le(4, 6)}-${le(6, 8)}-${hex(8, 10)}-${hex(10, 16)}`.toUpperCase();
}

/** Write a GUID string as 16 mixed-endian bytes at `offset`. */
export function encodeGuid(guid: string, into: Buffer = Buffer.alloc(16), offset = 0): Buffer {
  if (!GUID_TEXT.test(guid)) throw new UsageError(`invalid GUID '${guid}' (expected 8-4-4-4-12 hex digits)`);
  const bytes = Buffer.from(guid.replace(/-/g, ""), "hex");
  bytes.subarray(0, 4).reverse();
  bytes.subarray(4, 6).reverse();
  bytes.subarray(6, 8).reverse();
  bytes.copy(into, offset);
  return into;
}
