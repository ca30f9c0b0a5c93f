/**
 * ECMA-119 stores most numbers twice, little-endian then big-endian
 * ("both-byte order", 7.2.3 and 7.3.3). Readers trust the little-endian half,
 * as Linux and libarchive do: some writers get the other half wrong.
 */

import { decodeName } from "../names.js";

export function writeBoth16(buf: Buffer, offset: number, value: number): void {
  buf.writeUInt16LE(value, offset);
  buf.writeUInt16BE(value, offset + 2);
}

export function writeBoth32(buf: Buffer, offset: number, value: number): void {
  buf.writeUInt32LE(value, offset);
  buf.writeUInt32BE(value, offset + 4);
}

export function readBoth16(buf: Buffer, offset: number): number {
  return buf.readUInt16LE(offset);
}

export function readBoth32(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset);
}

/** A fixed-width text field, left-aligned and filled with spaces (a-/d-characters, ECMA-119 7.4). */
export function writeAsciiField(buf: Buffer, offset: number, width: number, text: string): void {
  buf.fill(0x20, offset, offset + width);
  buf.write(text.slice(0, width), offset, width, "latin1");
}

/**
 * The text of a space-padded field, without the padding (trailing NULs too).
 * Writers put any bytes there (xorriso and genisoimage copy a UTF-8 -V as
 * it is): decoded losslessly, as names are.
 */
export function readAsciiField(buf: Buffer, offset: number, width: number): string {
  return decodeName(buf.subarray(offset, offset + width)).replace(/[\0 ]+$/, "");
}
