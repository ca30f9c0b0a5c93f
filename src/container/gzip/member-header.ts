/**
 * The header of one gzip member (RFC 1952 §2.3): magic 1F 8B, method 8
 * (deflate), flags, mtime, extra flags, OS, then the optional extra field,
 * file name, comment and header CRC the flags announce. The extra field is a
 * list of subfields (two id bytes, a 16-bit length, data): BGZF's "BC" and
 * platter's "PM"/"PE" (member-sizes.ts) live there.
 */
import { CorruptImageError } from "../../errors.js";

export const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08]);

const FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;
const RESERVED_FLAGS = 0xe0;
const FIXED_PART = 10;
/** OS byte 3: Unix, what gzip writes on Linux. */
const OS_UNIX = 3;

export interface Subfield {
  /** The two subfield id bytes as a string: "BC", "PM". */
  id: string;
  data: Buffer;
}

export interface GzipHeader {
  flags: number;
  mtime: number;
  extraFlags: number;
  os: number;
  /** The extra field's subfields; empty when there is no extra field or it is not a subfield list. */
  subfields: Subfield[];
  name?: Buffer;
  comment?: Buffer;
  /** Bytes the header takes: where the deflate data starts. */
  length: number;
}

/** Does `buf` start like a gzip member? */
export function isGzipMagic(buf: Buffer, at = 0): boolean {
  return buf.length >= at + 3 && buf[at] === 0x1f && buf[at + 1] === 0x8b && buf[at + 2] === 0x08;
}

/**
 * Decode the member header at the start of `buf`; undefined when `buf` ends
 * before the header does (read more and try again). `where` names the
 * member in errors ("gzip member at offset 123").
 */
export function decodeGzipHeader(buf: Buffer, where: string): GzipHeader | undefined {
  if (buf.length < FIXED_PART) return undefined;
  if (!isGzipMagic(buf)) throw new CorruptImageError(`${where}: no gzip magic (1F 8B 08)`);
  const flags = buf[3] as number;
  if (flags & RESERVED_FLAGS) throw new CorruptImageError(`${where}: reserved header flags 0x${flags.toString(16)} are set`);
  const header: GzipHeader = {
    flags,
    mtime: buf.readUInt32LE(4),
    extraFlags: buf[8] as number,
    os: buf[9] as number,
    subfields: [],
    length: FIXED_PART,
  };
  let at = FIXED_PART;
  if (flags & FEXTRA) {
    if (buf.length < at + 2) return undefined;
    const xlen = buf.readUInt16LE(at);
    at += 2;
    if (buf.length < at + xlen) return undefined;
    header.subfields = decodeSubfields(buf.subarray(at, at + xlen));
    at += xlen;
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if (!(flags & flag)) continue;
    const end = buf.indexOf(0, at);
    if (end < 0) return undefined;
    if (flag === FNAME) header.name = buf.subarray(at, end);
    else header.comment = buf.subarray(at, end);
    at = end + 1;
  }
  if (flags & FHCRC) {
    if (buf.length < at + 2) return undefined;
    at += 2;
  }
  header.length = at;
  return header;
}

/** An extra field that is not a well-formed subfield list holds no subfields we could trust. */
function decodeSubfields(extra: Buffer): Subfield[] {
  const list: Subfield[] = [];
  for (let at = 0; at < extra.length; ) {
    if (at + 4 > extra.length) return [];
    const length = extra.readUInt16LE(at + 2);
    if (at + 4 + length > extra.length) return [];
    list.push({ id: extra.toString("latin1", at, at + 2), data: extra.subarray(at + 4, at + 4 + length) });
    at += 4 + length;
  }
  return list;
}

/**
 * A member header with these subfields and nothing else: mtime 0 (an image
 * has no one modification time, and equal chunks then compress to equal
 * members), OS Unix. `extraFlags` is 2 for the slowest level, 4 for the
 * fastest, as gzip sets it.
 */
export function encodeGzipHeader(subfields: Subfield[], extraFlags = 0): Buffer {
  const xlen = subfields.reduce((sum, f) => sum + 4 + f.data.length, 0);
  if (xlen > 0xffff) throw new RangeError(`gzip extra field of ${xlen} bytes does not fit in 65535`);
  const out = Buffer.alloc(FIXED_PART + (subfields.length ? 2 + xlen : 0));
  GZIP_MAGIC.copy(out, 0);
  out[3] = subfields.length ? FEXTRA : 0;
  out[8] = extraFlags;
  out[9] = OS_UNIX;
  if (subfields.length) {
    let at = FIXED_PART;
    out.writeUInt16LE(xlen, at);
    at += 2;
    for (const field of subfields) {
      if (field.id.length !== 2) throw new RangeError(`gzip subfield id must be two bytes, not ${JSON.stringify(field.id)}`);
      out.write(field.id, at, "latin1");
      out.writeUInt16LE(field.data.length, at + 2);
      field.data.copy(out, at + 4);
      at += 4 + field.data.length;
    }
  }
  return out;
}
