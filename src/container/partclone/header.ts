/**
 * The partclone image descriptor (partclone's IMAGE_FORMATS.md and
 * src/partclone.h, image_desc_v1 / image_desc_v2), little-endian, packed:
 *
 *   0001: magic[15] fs[15] "0001" pad[2] block_size(4) device_size(8)
 *         totalblock(8) usedblocks(8) unused[4096]           = 4160 bytes
 *   0002: magic[16] ptc_version[14] "0002" endianess(2) fs[16] device_size(8)
 *         totalblock(8) superBlockUsedBlocks(8) usedblocks(8) block_size(4)
 *         feature_size(4) image_version(2) cpu_bits(2) checksum_mode(2)
 *         checksum_size(2) blocks_per_checksum(4) reseed(1) bitmap_mode(1)
 *         crc32 of the 106 bytes before it                    = 110 bytes
 *
 * Version 0001 has no options: partclone restores it as one checksum per
 * block, chained (never reseeded), with its old CRC routine, and a bitmap of
 * one byte per block. Pure codec; the bitmap and data are checked against
 * the file by the source.
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import { readUint64 } from "../../util/uint64.js";
import { crc32 } from "../../util/crc32.js";

const PARTCLONE_MAGIC = "partclone-image";
const V1_HEADER_SIZE = 4160;
export const V2_HEADER_SIZE = 110;
/** partclone's MAX_BLOCK_SIZE: it refuses larger blocks, and so does platter. */
const MAX_BLOCK_SIZE = 64 << 20;
const ENDIAN_MAGIC = 0xc0de;
const V2_CRC_AT = 106;

/** checksum_mode values (partclone's checksum.h). */
const CSM_NONE = 0x00;
const CSM_CRC32 = 0x20;
const CSM_XXH64 = 0x30;
const CSM_XXH128 = 0x31;
/** bitmap_mode values (partclone.h). */
const BITMAP_MODES = { 0x00: "none", 0x01: "bit", 0x08: "byte" } as const;

/**
 * crc32: partclone's CRC-32 (seed 0xFFFFFFFF, no final inversion) over each
 * strip; crc32-0001: version 0001's routine, which reads the first byte of a
 * block over and over (a bug partclone keeps for compatibility).
 */
export type ChecksumKind = "none" | "crc32" | "crc32-0001";
export type BitmapMode = "none" | "bit" | "byte";

export interface PartcloneHeader {
  imageVersion: 1 | 2;
  /** The partclone that wrote the image ("0.3.23"); version 0001 does not say. */
  partcloneVersion: string | null;
  /** What partclone calls the filesystem: "EXTFS", "FAT16", "NTFS"... */
  filesystem: string;
  /** Bytes restored: the filesystem's blocks, then zeros up to here. */
  deviceSize: number;
  totalBlocks: number;
  /** Blocks in the bitmap (and in the data section). */
  usedBlocks: number;
  /** Version 0002 only: what the filesystem's superblock said is in use. */
  superBlockUsedBlocks: number | null;
  blockSize: number;
  checksum: ChecksumKind;
  checksumSize: number;
  /** Blocks under one checksum (0 when there is none). */
  blocksPerChecksum: number;
  /** True: each strip's checksum starts afresh; false: it goes on from the previous one. */
  reseedChecksum: boolean;
  bitmapMode: BitmapMode;
  /** Bits of the CPU that wrote a 0002 image (32 or 64). */
  cpuBits: number | null;
  headerSize: number;
}

export function hasPartcloneMagic(head: Buffer): boolean {
  return head.length >= PARTCLONE_MAGIC.length && head.toString("latin1", 0, PARTCLONE_MAGIC.length) === PARTCLONE_MAGIC;
}

/** The version text at byte 30 ("0001", "0002"), once the magic is known to be there. */
export function headerSizeFor(head: Buffer): number {
  return head.toString("latin1", 30, 34) === "0001" ? V1_HEADER_SIZE : V2_HEADER_SIZE;
}

function corrupt(field: string, at: number, why: string): CorruptImageError {
  return new CorruptImageError(`partclone image header: ${field} (byte ${at}) ${why}`);
}

/** A NUL-padded text field. */
function text(buf: Buffer, at: number, length: number): string {
  const field = buf.subarray(at, at + length);
  const end = field.indexOf(0);
  return field.toString("latin1", 0, end < 0 ? length : end).trim();
}

/**
 * Decode the descriptor at the start of `buf` (headerSizeFor() bytes).
 * Fields are checked against each other and against partclone's own limits.
 */
export function decodePartcloneHeader(buf: Buffer): PartcloneHeader {
  if (!hasPartcloneMagic(buf)) throw corrupt("magic", 0, `is not "${PARTCLONE_MAGIC}"`);
  const version = buf.toString("latin1", 30, 34);
  if (version !== "0001" && version !== "0002") {
    throw new UnsupportedError(`partclone image version ${JSON.stringify(text(buf, 30, 4))}: platter reads versions 0001 and 0002`);
  }
  const size = version === "0001" ? V1_HEADER_SIZE : V2_HEADER_SIZE;
  if (buf.length < size) throw new CorruptImageError(`partclone image header: truncated (${buf.length} of ${size} bytes)`);
  const header = version === "0001" ? decodeV1(buf) : decodeV2(buf);
  checkGeometry(header, version === "0001" ? { block: 36, device: 40, used: 56 } : { block: 84, device: 52, used: 76 });
  return header;
}

function decodeV1(buf: Buffer): PartcloneHeader {
  return {
    imageVersion: 1,
    partcloneVersion: null,
    filesystem: text(buf, 15, 15),
    blockSize: buf.readUInt32LE(36),
    deviceSize: readUint64(buf, 40, "partclone image header: device_size (byte 40)"),
    totalBlocks: readUint64(buf, 48, "partclone image header: totalblock (byte 48)"),
    usedBlocks: readUint64(buf, 56, "partclone image header: usedblocks (byte 56)"),
    superBlockUsedBlocks: null,
    checksum: "crc32-0001",
    checksumSize: 4,
    blocksPerChecksum: 1,
    reseedChecksum: false,
    bitmapMode: "byte",
    cpuBits: null,
    headerSize: V1_HEADER_SIZE,
  };
}

function decodeV2(buf: Buffer): PartcloneHeader {
  const stored = buf.readUInt32LE(V2_CRC_AT);
  const computed = headerCrc32(buf.subarray(0, V2_CRC_AT));
  if (stored !== computed) throw corrupt("crc32", V2_CRC_AT, `is ${hex(stored, 8)}, but the header's bytes give ${hex(computed, 8)}`);
  const endian = buf.readUInt16LE(34);
  if (endian === 0xdec0) throw new UnsupportedError("partclone image written on a big-endian machine (endianess 0xDEC0): partclone itself refuses to restore it here");
  if (endian !== ENDIAN_MAGIC) throw corrupt("endianess", 34, `is ${hex(endian)}, not 0xC0DE`);

  const mode = buf.readUInt16LE(96);
  const checksumSize = buf.readUInt16LE(98);
  let checksum: ChecksumKind;
  if (mode === CSM_NONE) checksum = "none";
  else if (mode === CSM_CRC32) checksum = "crc32";
  else if (mode === CSM_XXH64 || mode === CSM_XXH128) {
    throw new UnsupportedError(`partclone image with ${mode === CSM_XXH64 ? "XXH64" : "XXH128"} checksums: platter reads images with CRC32 or no checksums (partclone -a 0 or -a 1)`);
  } else throw corrupt("checksum_mode", 96, `is ${hex(mode)}, which no partclone writes`);
  const expectedSize = checksum === "none" ? 0 : 4;
  if (checksumSize !== expectedSize) throw corrupt("checksum_size", 98, `is ${checksumSize}, but ${checksum} checksums take ${expectedSize} bytes`);
  const blocksPerChecksum = buf.readUInt32LE(100);
  if (checksum !== "none" && blocksPerChecksum === 0) throw corrupt("blocks_per_checksum", 100, "is 0 while blocks carry checksums");

  const bitmapByte = buf.readUInt8(105);
  const bitmapMode = BITMAP_MODES[bitmapByte as keyof typeof BITMAP_MODES];
  if (!bitmapMode) throw corrupt("bitmap_mode", 105, `is ${hex(bitmapByte)}, not 0 (none), 1 (bit) or 8 (byte)`);

  return {
    imageVersion: 2,
    partcloneVersion: text(buf, 16, 14),
    filesystem: text(buf, 36, 16),
    deviceSize: readUint64(buf, 52, "partclone image header: device_size (byte 52)"),
    totalBlocks: readUint64(buf, 60, "partclone image header: totalblock (byte 60)"),
    superBlockUsedBlocks: readUint64(buf, 68, "partclone image header: superBlockUsedBlocks (byte 68)"),
    usedBlocks: readUint64(buf, 76, "partclone image header: usedblocks (byte 76)"),
    blockSize: buf.readUInt32LE(84),
    checksum,
    checksumSize,
    blocksPerChecksum: checksum === "none" ? 0 : blocksPerChecksum,
    reseedChecksum: buf.readUInt8(104) !== 0,
    bitmapMode,
    cpuBits: buf.readUInt16LE(94),
    headerSize: V2_HEADER_SIZE,
  };
}

/** partclone's own checks on the sizes (load_image_desc_v1/v2). */
function checkGeometry(h: PartcloneHeader, at: { block: number; device: number; used: number }): void {
  if (h.blockSize === 0 || h.blockSize > MAX_BLOCK_SIZE) throw corrupt("block_size", at.block, `is ${h.blockSize}, not 1 to ${MAX_BLOCK_SIZE} bytes`);
  if (h.usedBlocks > h.totalBlocks) throw corrupt("usedblocks", at.used, `is ${h.usedBlocks}, more than the ${h.totalBlocks} blocks of the filesystem`);
  if (h.bitmapMode === "none" && h.usedBlocks !== h.totalBlocks) {
    throw corrupt("usedblocks", at.used, `is ${h.usedBlocks}, but an image without a bitmap holds all ${h.totalBlocks} blocks`);
  }
  const fsBytes = h.totalBlocks * h.blockSize;
  if (!Number.isSafeInteger(fsBytes) || fsBytes > h.deviceSize) {
    throw corrupt("device_size", at.device, `is ${h.deviceSize}, smaller than ${h.totalBlocks} blocks of ${h.blockSize} bytes`);
  }
}

/**
 * Bytes partclone.restore writes: the filesystem's blocks, then zeros up to
 * device_size. For version 0001 it drops a device_size larger than the
 * blocks ("adjusted device size reported by the image").
 */
export function restoredSize(h: PartcloneHeader): number {
  return h.imageVersion === 1 ? h.totalBlocks * h.blockSize : h.deviceSize;
}

/** The descriptor's bytes (tests craft images, hostile ones included, with it). */
export function encodePartcloneHeader(h: PartcloneHeader): Buffer {
  if (h.imageVersion === 1) {
    const buf = Buffer.alloc(V1_HEADER_SIZE);
    buf.write(PARTCLONE_MAGIC, 0, "latin1");
    buf.write(h.filesystem.slice(0, 15), 15, "latin1");
    buf.write("0001", 30, "latin1");
    buf.writeUInt32LE(h.blockSize, 36);
    buf.writeBigUInt64LE(BigInt(h.deviceSize), 40);
    buf.writeBigUInt64LE(BigInt(h.totalBlocks), 48);
    buf.writeBigUInt64LE(BigInt(h.usedBlocks), 56);
    return buf;
  }
  const buf = Buffer.alloc(V2_HEADER_SIZE);
  buf.write(PARTCLONE_MAGIC, 0, "latin1");
  buf.write((h.partcloneVersion ?? "").slice(0, 14), 16, "latin1");
  buf.write("0002", 30, "latin1");
  buf.writeUInt16LE(ENDIAN_MAGIC, 34);
  buf.write(h.filesystem.slice(0, 15), 36, "latin1");
  buf.writeBigUInt64LE(BigInt(h.deviceSize), 52);
  buf.writeBigUInt64LE(BigInt(h.totalBlocks), 60);
  buf.writeBigUInt64LE(BigInt(h.superBlockUsedBlocks ?? h.usedBlocks), 68);
  buf.writeBigUInt64LE(BigInt(h.usedBlocks), 76);
  buf.writeUInt32LE(h.blockSize, 84);
  buf.writeUInt32LE(18, 88); // sizeof(image_options_v2)
  buf.writeUInt16LE(2, 92);
  buf.writeUInt16LE(h.cpuBits ?? 64, 94);
  buf.writeUInt16LE(h.checksum === "none" ? CSM_NONE : CSM_CRC32, 96);
  buf.writeUInt16LE(h.checksumSize, 98);
  buf.writeUInt32LE(h.blocksPerChecksum, 100);
  buf.writeUInt8(h.reseedChecksum ? 1 : 0, 104);
  buf.writeUInt8(h.bitmapMode === "none" ? 0 : h.bitmapMode === "bit" ? 1 : 8, 105);
  buf.writeUInt32LE(headerCrc32(buf.subarray(0, V2_CRC_AT)), V2_CRC_AT);
  return buf;
}

/** A field in hex as partclone's sources write it; CRCs always as 8 digits (0x00000000 is a CRC, not a small number). */
export function hex(n: number, digits = n > 0xffff ? 8 : 4): string {
  return `0x${n.toString(16).toUpperCase().padStart(digits, "0")}`;
}

/** partclone's CRC of the header (checksum.ts's, for 106 bytes): the JS CRC, so detecting partclone does not load zlib. */
function headerCrc32(data: Uint8Array): number {
  return ~crc32(data, 0) >>> 0;
}
