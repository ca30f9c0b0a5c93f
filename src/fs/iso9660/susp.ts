/**
 * System Use Sharing Protocol (SUSP 1.12): the system use area of a directory
 * record holds a list of entries "XX" length version data. When they do not
 * fit in the record, a CE entry points to a continuation area elsewhere.
 *
 *   SP  first entry of the root's "." record: SUSP is in use (BE EF, bytes to skip)
 *   CE  continuation area: block, offset, length (both 32 each)
 *   ER  extensions reference: which protocol (Rock Ridge) the entries follow
 *   ST  end of the entries; PD padding
 */
import { CorruptImageError } from "../../errors.js";
import { readBoth32, writeBoth32 } from "./both-endian.js";

export const SUSP_HEADER_SIZE = 4;
export const MAX_SUSP_ENTRY = 255;
export const CE_ENTRY_SIZE = 28;
export const SP_ENTRY_SIZE = 7;

export interface SuspEntry {
  signature: string;
  version: number;
  data: Buffer;
}

export function encodeSuspEntry(signature: string, data: Buffer, version = 1): Buffer {
  const buf = newSuspEntry(signature, data.length, version);
  data.copy(buf, SUSP_HEADER_SIZE);
  return buf;
}

/**
 * An entry with its header written and `dataLength` zero bytes of data for
 * the caller to fill in place (from SUSP_HEADER_SIZE): one allocation per
 * entry, where a writer makes several entries for each of many thousand files.
 */
export function newSuspEntry(signature: string, dataLength: number, version = 1): Buffer {
  const length = SUSP_HEADER_SIZE + dataLength;
  if (length > MAX_SUSP_ENTRY) throw new RangeError(`SUSP ${signature} entry of ${length} bytes exceeds ${MAX_SUSP_ENTRY}`);
  // A slice of Node's pool (zero-filled here), not an ArrayBuffer of its own for each entry.
  const buf = Buffer.allocUnsafe(length).fill(0, SUSP_HEADER_SIZE);
  buf[0] = signature.charCodeAt(0);
  buf[1] = signature.charCodeAt(1);
  buf[2] = length;
  buf[3] = version;
  return buf;
}

/**
 * Entries of one system use or continuation area, in order. Parsing stops at
 * ST, at zero padding, or where fewer than 4 bytes remain. An entry whose
 * length runs past the area is corrupt.
 */
export function decodeSuspEntries(area: Buffer, where = "system use area"): SuspEntry[] {
  const entries: SuspEntry[] = [];
  let o = 0;
  while (o + SUSP_HEADER_SIZE <= area.length) {
    const length = area[o + 2];
    if (area[o] === 0 || length < SUSP_HEADER_SIZE) break;
    if (o + length > area.length) {
      throw new CorruptImageError(
        `${where}: SUSP entry ${area.toString("latin1", o, o + 2)} of ${length} bytes runs past the area (${area.length - o} left)`,
      );
    }
    const entry = { signature: area.toString("latin1", o, o + 2), version: area[o + 3], data: area.subarray(o + 4, o + length) };
    if (entry.signature === "ST") break;
    entries.push(entry);
    o += length;
  }
  return entries;
}

/** SP: "SUSP is used"; `skip` bytes precede the entries of every other record. */
export function encodeSp(skip = 0): Buffer {
  return encodeSuspEntry("SP", Buffer.from([0xbe, 0xef, skip]));
}

/** The skip count if this is a valid SP entry, else undefined. */
export function decodeSp(entry: SuspEntry): number | undefined {
  if (entry.signature !== "SP" || entry.data.length < 3 || entry.data[0] !== 0xbe || entry.data[1] !== 0xef) return undefined;
  return entry.data[2];
}

export interface ContinuationArea {
  block: number;
  offset: number;
  length: number;
}

export function encodeCe(area: ContinuationArea): Buffer {
  const buf = newSuspEntry("CE", CE_ENTRY_SIZE - SUSP_HEADER_SIZE);
  writeBoth32(buf, SUSP_HEADER_SIZE, area.block);
  writeBoth32(buf, SUSP_HEADER_SIZE + 8, area.offset);
  writeBoth32(buf, SUSP_HEADER_SIZE + 16, area.length);
  return buf;
}

export function decodeCe(entry: SuspEntry, where = "CE entry"): ContinuationArea {
  if (entry.data.length < 24) throw new CorruptImageError(`${where}: ${entry.data.length + 4} bytes, needs 28`);
  return { block: readBoth32(entry.data, 0), offset: readBoth32(entry.data, 8), length: readBoth32(entry.data, 16) };
}

export interface ExtensionReference {
  id: string;
  descriptor: string;
  source: string;
  version: number;
}

export function encodeEr(er: ExtensionReference): Buffer {
  const [id, des, src] = [er.id, er.descriptor, er.source].map((s) => Buffer.from(s, "latin1"));
  return encodeSuspEntry("ER", Buffer.concat([Buffer.from([id.length, des.length, src.length, er.version]), id, des, src]));
}

export function decodeEr(entry: SuspEntry, where = "ER entry"): ExtensionReference {
  const d = entry.data;
  if (d.length < 4 || 4 + d[0] + d[1] + d[2] > d.length) throw new CorruptImageError(`${where}: field lengths exceed the entry`);
  const text = (from: number, len: number) => d.toString("latin1", from, from + len);
  return { id: text(4, d[0]), descriptor: text(4 + d[0], d[1]), source: text(4 + d[0] + d[1], d[2]), version: d[3] };
}
