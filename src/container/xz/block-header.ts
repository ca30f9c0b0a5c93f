/**
 * The header of an .xz block (doc/xz-file-format.txt, 3.1): its size
 * ((first byte + 1) * 4), flags (filter count, whether the compressed and
 * uncompressed sizes follow), the sizes, the filter flags, padding, CRC32.
 * platter writes one (LZMA2, both sizes) before each block it writes, and
 * reads them to find the blocks of a file it was writing (resume) and the
 * dictionary a block needs.
 */
import { crc32 } from "../../util/crc32.js";
import { decodeVli, encodeVli } from "./vli.js";

export const FILTER_LZMA2 = 0x21;

export interface BlockHeader {
  headerSize: number;
  compressedSize: number | undefined;
  uncompressedSize: number | undefined;
  filters: Array<{ id: number; properties: Buffer }>;
}

/** The block header at the start of `buf` (which holds all of it, up to 1024 bytes), or a reason string. */
export function decodeBlockHeader(buf: Buffer): BlockHeader | string {
  if (buf.length < 1) return "truncated block header";
  if (buf[0] === 0) return "an index where a block should be";
  const headerSize = ((buf[0] as number) + 1) * 4;
  if (buf.length < headerSize) return "truncated block header";
  if (crc32(buf.subarray(0, headerSize - 4)) !== buf.readUInt32LE(headerSize - 4)) return "block header CRC32 mismatch";
  const flags = buf[1] as number;
  if (flags & 0x3c) return "reserved block flags set";
  const body = buf.subarray(0, headerSize - 4);
  let at = 2;
  const field = (): number | string => {
    const v = decodeVli(body, at);
    if (typeof v === "string") return v;
    at += v.length;
    return v.value;
  };
  let compressedSize: number | undefined;
  let uncompressedSize: number | undefined;
  if (flags & 0x40) {
    const v = field();
    if (typeof v === "string") return v;
    compressedSize = v;
  }
  if (flags & 0x80) {
    const v = field();
    if (typeof v === "string") return v;
    uncompressedSize = v;
  }
  const filters: BlockHeader["filters"] = [];
  for (let i = 0; i <= (flags & 3); i++) {
    const id = field();
    if (typeof id === "string") return id;
    const size = field();
    if (typeof size === "string") return size;
    if (at + size > body.length) return "filter properties run past the block header";
    filters.push({ id, properties: body.subarray(at, at + size) });
    at += size;
  }
  if (body.subarray(at).some((b) => b !== 0)) return "block header padding is not zero";
  return { headerSize, compressedSize, uncompressedSize, filters };
}

/** The dictionary size an LZMA2 filter's property byte gives (xz-file-format.txt, 5.3.1). */
export function lzma2DictionarySize(properties: Buffer): number | undefined {
  const bits = properties[0];
  if (properties.length !== 1 || bits === undefined || bits > 40) return undefined;
  return dictionaryOf(bits);
}

function dictionaryOf(bits: number): number {
  return bits === 40 ? 0xffffffff : (2 | (bits & 1)) * 2 ** (Math.floor(bits / 2) + 11);
}

/** The header of an LZMA2 block whose sizes are known, as liblzma would write it (but with no spare padding). */
export function encodeLzma2BlockHeader(compressedSize: number, uncompressedSize: number, dictionarySize: number): Buffer {
  let bits = 0;
  while (bits < 40 && dictionaryOf(bits) < dictionarySize) bits++;
  const body = Buffer.concat([Buffer.from([0, 0xc0]), encodeVli(compressedSize), encodeVli(uncompressedSize), Buffer.from([FILTER_LZMA2, 1, bits])]);
  const size = Math.ceil((body.length + 4) / 4) * 4;
  const header = Buffer.alloc(size);
  body.copy(header);
  header[0] = size / 4 - 1;
  header.writeUInt32LE(crc32(header.subarray(0, size - 4)), size - 4);
  return header;
}
