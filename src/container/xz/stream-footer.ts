/**
 * The 12-byte footer that ends every .xz stream (doc/xz-file-format.txt,
 * 2.1.2): CRC32 of the next 6 bytes, Backward Size (the index's size / 4 - 1),
 * the stream flags again, and the magic "YZ". A reader finds the index, and
 * through it every block, from here.
 */
import { crc32 } from "../../util/crc32.js";
import { decodeStreamFlags, encodeStreamFlags } from "./stream-header.js";

export const STREAM_FOOTER_SIZE = 12;
const FOOTER_MAGIC = Buffer.from("YZ");

export interface StreamFooter {
  /** Bytes of the index field before the footer. */
  indexSize: number;
  check: number;
}

export function isStreamFooter(footer: Buffer): boolean {
  return footer.length === STREAM_FOOTER_SIZE && footer.subarray(10, 12).equals(FOOTER_MAGIC);
}

/** The footer's fields, or a reason string. */
export function decodeStreamFooter(footer: Buffer): StreamFooter | string {
  if (!isStreamFooter(footer)) return "no xz stream footer magic";
  if (crc32(footer.subarray(4, 10)) !== footer.readUInt32LE(0)) return "stream footer CRC32 mismatch";
  const check = decodeStreamFlags(footer.subarray(8, 10));
  if (typeof check === "string") return check;
  return { indexSize: (footer.readUInt32LE(4) + 1) * 4, check };
}

export function encodeStreamFooter(indexSize: number, check: number): Buffer {
  const footer = Buffer.alloc(STREAM_FOOTER_SIZE);
  footer.writeUInt32LE(indexSize / 4 - 1, 4);
  encodeStreamFlags(check).copy(footer, 8);
  FOOTER_MAGIC.copy(footer, 10);
  footer.writeUInt32LE(crc32(footer.subarray(4, 10)), 0);
  return footer;
}
