/**
 * The header of a hosted sparse extent (VMware's "Virtual Disk Format 5.0",
 * magic "KDMV"): 512 little-endian bytes giving the grain size, where the
 * embedded descriptor and the grain directories are, and for a
 * streamOptimized disk that grains are compressed and framed by markers.
 * Sizes and offsets are in 512-byte sectors.
 */
import { CorruptImageError } from "../../errors.js";
import { readUint64 } from "../../util/uint64.js";

export const SPARSE_MAGIC = "KDMV";
export const SECTOR = 512;
/** gdOffset of a stream whose grain directory follows the grains (read the footer's). */
export const GD_AT_END = 0xffffffffffffffffn;

export const Flags = {
  /** The four check bytes below are meaningful (a text-mode FTP transfer mangles them). */
  newlineTest: 1 << 0,
  redundantGrainTable: 1 << 1,
  /** A grain table entry of 1 means "zeros, whatever the parent holds". */
  zeroedGrain: 1 << 2,
  compressed: 1 << 16,
  markers: 1 << 17,
} as const;

export const COMPRESSION_DEFLATE = 1;
const CHECK_BYTES = Buffer.from([0x0a, 0x20, 0x0d, 0x0a]);

export interface SparseHeader {
  version: number;
  flags: number;
  /** Sectors of disk this extent holds. */
  capacity: number;
  /** Sectors per grain. */
  grainSize: number;
  descriptorOffset: number;
  descriptorSize: number;
  gtesPerGt: number;
  rgdOffset: number;
  /** Sector of the grain directory; "end" for a stream that puts it (and a footer) after the grains. */
  gdOffset: number | "end";
  /** Sectors before the first grain. */
  overhead: number;
  uncleanShutdown: boolean;
  compressAlgorithm: number;
}

export function hasSparseMagic(head: Buffer): boolean {
  return head.length >= 4 && head.toString("latin1", 0, 4) === SPARSE_MAGIC;
}

export function decodeSparseHeader(buf: Buffer, where: string): SparseHeader {
  if (buf.length < SECTOR || !hasSparseMagic(buf)) throw new CorruptImageError(`${where}: no VMDK sparse extent magic "KDMV"`);
  const flags = buf.readUInt32LE(8);
  if (flags & Flags.newlineTest && !buf.subarray(73, 77).equals(CHECK_BYTES)) {
    throw new CorruptImageError(`${where}: the header's newline check bytes are mangled (a text-mode transfer?)`);
  }
  const gd = buf.readBigUInt64LE(56);
  return {
    version: buf.readUInt32LE(4),
    flags,
    capacity: readUint64(buf, 12, `${where}: capacity`),
    grainSize: readUint64(buf, 20, `${where}: grain size`),
    descriptorOffset: readUint64(buf, 28, `${where}: descriptor offset`),
    descriptorSize: readUint64(buf, 36, `${where}: descriptor size`),
    gtesPerGt: buf.readUInt32LE(44),
    rgdOffset: readUint64(buf, 48, `${where}: redundant grain directory offset`),
    gdOffset: gd === GD_AT_END ? "end" : readUint64(buf, 56, `${where}: grain directory offset`),
    overhead: readUint64(buf, 64, `${where}: overhead`),
    uncleanShutdown: buf[72] !== 0,
    compressAlgorithm: buf.readUInt16LE(77),
  };
}

export function encodeSparseHeader(header: SparseHeader): Buffer {
  const buf = Buffer.alloc(SECTOR);
  buf.write(SPARSE_MAGIC, 0, "latin1");
  buf.writeUInt32LE(header.version, 4);
  buf.writeUInt32LE(header.flags, 8);
  buf.writeBigUInt64LE(BigInt(header.capacity), 12);
  buf.writeBigUInt64LE(BigInt(header.grainSize), 20);
  buf.writeBigUInt64LE(BigInt(header.descriptorOffset), 28);
  buf.writeBigUInt64LE(BigInt(header.descriptorSize), 36);
  buf.writeUInt32LE(header.gtesPerGt, 44);
  buf.writeBigUInt64LE(BigInt(header.rgdOffset), 48);
  buf.writeBigUInt64LE(header.gdOffset === "end" ? GD_AT_END : BigInt(header.gdOffset), 56);
  buf.writeBigUInt64LE(BigInt(header.overhead), 64);
  buf[72] = header.uncleanShutdown ? 1 : 0;
  CHECK_BYTES.copy(buf, 73);
  buf.writeUInt16LE(header.compressAlgorithm, 77);
  return buf;
}
