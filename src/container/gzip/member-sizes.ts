/**
 * Subfields that let a reader find every member of a gzip file without
 * inflating anything, by hopping from header to header.
 *
 * - "BC" (BGZF, samtools/bgzip): 2 bytes, the member's total size minus 1.
 *   Members hold at most 64 KiB; the decoded size is the trailer's ISIZE.
 * - "PM" (platter member): 8 bytes, the member's total size (header to
 *   trailer) and its decoded size, both u32 little-endian. Nothing in it
 *   depends on where the member sits, so a member of zeros is encoded once
 *   and written as often as needed.
 * - "PE" (platter end): 8 bytes, the image size (u64 little-endian). It rides
 *   on an empty member (no decoded bytes) that platter writes last, so a file
 *   that lacks it is known to be cut short.
 * gzip, pigz and zcat skip subfields they do not know (RFC 1952 §2.3.1.1).
 */
import type { GzipHeader, Subfield } from "./member-header.js";

export const BGZF_ID = "BC";
export const PLATTER_MEMBER_ID = "PM";
export const PLATTER_END_ID = "PE";

/** What a header says about its member's extent; undefined when it says nothing. */
export interface MemberSizes {
  /** Header + deflate data + trailer, in bytes. */
  memberSize: number;
  /** Decoded bytes, when the header says (PM); BGZF leaves it to the trailer. */
  decodedSize?: number;
  /** Present on platter's end member only. */
  imageSize?: number;
  kind: "bgzf" | "platter";
}

export function memberSizes(header: GzipHeader): MemberSizes | undefined {
  let sizes: MemberSizes | undefined;
  for (const field of header.subfields) {
    if (field.id === PLATTER_MEMBER_ID && field.data.length === 8) {
      sizes = { memberSize: field.data.readUInt32LE(0), decodedSize: field.data.readUInt32LE(4), kind: "platter" };
    } else if (field.id === BGZF_ID && field.data.length === 2 && !sizes) {
      sizes = { memberSize: field.data.readUInt16LE(0) + 1, kind: "bgzf" };
    }
  }
  const end = header.subfields.find((f) => f.id === PLATTER_END_ID && f.data.length === 8);
  if (sizes?.kind === "platter" && end) sizes.imageSize = Number(end.data.readBigUInt64LE(0));
  return sizes;
}

export function platterMemberField(memberSize: number, decodedSize: number): Subfield {
  const data = Buffer.alloc(8);
  data.writeUInt32LE(memberSize, 0);
  data.writeUInt32LE(decodedSize, 4);
  return { id: PLATTER_MEMBER_ID, data };
}

export function platterEndField(imageSize: number): Subfield {
  const data = Buffer.alloc(8);
  data.writeBigUInt64LE(BigInt(imageSize), 0);
  return { id: PLATTER_END_ID, data };
}
