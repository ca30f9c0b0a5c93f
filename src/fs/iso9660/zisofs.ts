/**
 * zisofs (libisofs doc/zisofs_format.txt, zisofs2_format.txt): a file stored
 * compressed in blocks of 2^log2 bytes, each inflated on its own, so any
 * part can be read without the rest. Rock Ridge marks it with a ZF (or Z2)
 * entry; the stored bytes start with a file header, then one pointer per
 * block plus one for the end, then the compressed blocks. A block whose two
 * pointers are equal is a block of zeros.
 *
 *   ZF entry  v1: "pz" header/4 log2 size(both 32)   v2: "PZ" header/4 log2 size(LE 64)
 *   header    v1: 37 E4 53 96 C9 DB D6 07, size(LE 32), header/4, log2, 0 0
 *             v2: EF 22 55 A1 BC 1B 95 A0, version 0, header/4, algorithm, log2, size(LE 64), 4 bytes
 *   pointers  v1: LE 32 each                         v2: LE 64 each
 */
import { CorruptImageError } from "../../errors.js";
import { readBoth32 } from "./both-endian.js";
import type { SuspEntry } from "./susp.js";

const ZISOFS_MAGIC_V1 = Buffer.from([0x37, 0xe4, 0x53, 0x96, 0xc9, 0xdb, 0xd6, 0x07]);
const ZISOFS_MAGIC_V2 = Buffer.from([0xef, 0x22, 0x55, 0xa1, 0xbc, 0x1b, 0x95, 0xa0]);

/** Bytes of the fixed file header of each version. */
const HEADER_SIZE = { 1: 16, 2: 24 } as const;
/** Bytes of one block pointer. */
const POINTER_SIZE = { 1: 4, 2: 8 } as const;
/** Block sizes readers handle: 32, 64, 128 KiB for v1; xorriso writes v2 blocks up to 1 MiB. */
const LOG2_RANGE = { 1: [15, 17], 2: [15, 20] } as const;
/** zisofs2 algorithm ids (header byte 10) by the two characters the ZF entry names them with. */
const V2_ALGORITHMS: Record<string, number> = { PZ: 1, XZ: 2, L4: 3, ZD: 4, B2: 5 };

export type ZisofsVersion = 1 | 2;

/** What a ZF / Z2 entry says about a file. */
export interface ZisofsParams {
  version: ZisofsVersion;
  /** "pz" (v1, zlib), "PZ" (v2, zlib), or another zisofs2 compressor ("XZ", "ZD"...). */
  algorithm: string;
  /** Bytes of the file header, where the block pointers start. */
  headerSize: number;
  blockLog2: number;
  /** Uncompressed size: what the file reads as. */
  size: number;
}

/** The parameters of a ZF or Z2 entry, or undefined for an entry too short to be one. */
export function decodeZf(entry: SuspEntry): ZisofsParams | undefined {
  const d = entry.data;
  if (d.length < 12) return undefined;
  const algorithm = d.toString("latin1", 0, 2);
  // v1 is "pz" in a version 1 entry; anything else follows zisofs2 (its size is 64-bit little-endian).
  const version: ZisofsVersion = algorithm === "pz" && entry.version === 1 && entry.signature === "ZF" ? 1 : 2;
  const size = version === 1 ? readBoth32(d, 4) : d.readUInt32LE(4) + d.readUInt32LE(8) * 2 ** 32;
  return { version, algorithm, headerSize: d[2] * 4, blockLog2: d[3], size };
}

export function zisofsHeaderSize(version: ZisofsVersion): number {
  return HEADER_SIZE[version];
}

export function zisofsPointerSize(version: ZisofsVersion): number {
  return POINTER_SIZE[version];
}

/** The file header as the ZF entry says it must be. */
function expectedHeader(p: ZisofsParams): Buffer {
  const buf = Buffer.alloc(HEADER_SIZE[p.version]);
  if (p.version === 1) {
    ZISOFS_MAGIC_V1.copy(buf, 0);
    buf.writeUInt32LE(p.size, 8);
    buf[12] = p.headerSize / 4;
    buf[13] = p.blockLog2;
  } else {
    ZISOFS_MAGIC_V2.copy(buf, 0);
    buf[9] = p.headerSize / 4;
    buf[10] = V2_ALGORITHMS[p.algorithm] ?? 0;
    buf[11] = p.blockLog2;
    buf.writeBigUInt64LE(BigInt(p.size), 12);
  }
  return buf;
}

/** Reject a ZF entry platter cannot follow, before anything is read with it. */
export function checkZisofsParams(p: ZisofsParams, where: string): void {
  const [low, high] = LOG2_RANGE[p.version];
  if (p.blockLog2 < low || p.blockLog2 > high) {
    throw new CorruptImageError(`${where}: zisofs block size 2^${p.blockLog2} (readers know 2^${low} to 2^${high})`);
  }
  if (p.headerSize < HEADER_SIZE[p.version]) {
    throw new CorruptImageError(`${where}: zisofs header of ${p.headerSize} bytes, shorter than the ${HEADER_SIZE[p.version]} it holds`);
  }
  if (!Number.isSafeInteger(p.size)) throw new CorruptImageError(`${where}: zisofs size ${p.size} is not a size`);
}

/**
 * The first bytes of the stored file must be the header the ZF entry
 * announces: the same magic, size, header length and block size (a header
 * that disagrees means the entry or the data is not what it claims).
 */
export function checkZisofsHeader(stored: Buffer, p: ZisofsParams, where: string): void {
  const expected = expectedHeader(p);
  // All but the reserved bytes at the end.
  const compared = p.version === 1 ? 14 : 20;
  if (stored.length < compared || !stored.subarray(0, compared).equals(expected.subarray(0, compared))) {
    throw new CorruptImageError(`${where}: the zisofs file header does not match its ZF entry (magic, size, header length or block size)`);
  }
}

/** Block pointers as numbers; a 64-bit one past 2^53 is corrupt (no image is that large). */
export function decodeZisofsPointers(buf: Buffer, version: ZisofsVersion, where: string): number[] {
  const size = POINTER_SIZE[version];
  const out: number[] = [];
  for (let o = 0; o + size <= buf.length; o += size) {
    const value = version === 1 ? buf.readUInt32LE(o) : buf.readUInt32LE(o) + buf.readUInt32LE(o + 4) * 2 ** 32;
    if (!Number.isSafeInteger(value)) throw new CorruptImageError(`${where}: zisofs block pointer ${value} is past any image`);
    out.push(value);
  }
  return out;
}

/**
 * The most a block of `blockSize` bytes can take compressed: zlib's
 * compressBound(). A pointer pair further apart lies, and would make a reader
 * read (and inflate) more than a block.
 */
export function maxCompressedBlock(blockSize: number): number {
  return blockSize + (blockSize >>> 12) + (blockSize >>> 14) + (blockSize >>> 25) + 13;
}
