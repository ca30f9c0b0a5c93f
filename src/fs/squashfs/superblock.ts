import { CorruptImageError, UnsupportedError } from "../../errors.js";
import { readUint64 } from "../../util/uint64.js";

/** The squashfs 4.0 superblock: the first 96 bytes of the filesystem, little-endian. */
export const SUPERBLOCK_SIZE = 96;
export const SQUASHFS_MAGIC = 0x73717368; // "hsqs"
/** A 64-bit table position meaning "this table is absent". */
export const NO_TABLE = -1;

export const Flags = {
  uncompressedInodes: 0x0001,
  uncompressedData: 0x0002,
  uncompressedFragments: 0x0008,
  noFragments: 0x0010,
  alwaysFragments: 0x0020,
  duplicates: 0x0040,
  exportable: 0x0080,
  uncompressedXattrs: 0x0100,
  noXattrs: 0x0200,
  compressorOptions: 0x0400,
  uncompressedIds: 0x0800,
} as const;

export const COMPRESSORS: Record<number, string> = { 1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd" };

export interface Superblock {
  inodeCount: number;
  mkfsTime: number;
  blockSize: number;
  fragmentCount: number;
  compressor: string;
  flags: number;
  idCount: number;
  /** Reference of the root directory's inode (see inodeRef). */
  rootInode: bigint;
  bytesUsed: number;
  idTableStart: number;
  xattrIdTableStart: number;
  inodeTableStart: number;
  directoryTableStart: number;
  fragmentTableStart: number;
  lookupTableStart: number;
}

/** A 64-bit position: NO_TABLE for all ones, else a safe integer. */
function position(buf: Buffer, at: number, field: string): number {
  if (buf.readBigUInt64LE(at) === 0xffffffffffffffffn) return NO_TABLE;
  return readUint64(buf, at, `squashfs superblock: ${field}`);
}

export function decodeSuperblock(buf: Buffer): Superblock {
  if (buf.length < SUPERBLOCK_SIZE) throw new CorruptImageError("squashfs superblock: truncated");
  const magic = buf.readUInt32LE(0);
  if (magic !== SQUASHFS_MAGIC) {
    throw new CorruptImageError(`squashfs superblock: bad magic 0x${magic.toString(16)} (want 0x73717368 "hsqs")`);
  }
  const major = buf.readUInt16LE(28);
  const minor = buf.readUInt16LE(30);
  if (major !== 4 || minor !== 0) throw new UnsupportedError(`squashfs version ${major}.${minor} (only 4.0 is read)`);
  const blockSize = buf.readUInt32LE(12);
  const blockLog = buf.readUInt16LE(22);
  if (blockSize < 4096 || blockSize > 1 << 20 || (blockSize & (blockSize - 1)) !== 0) {
    throw new CorruptImageError(`squashfs superblock: block_size ${blockSize} is not a power of two from 4 KiB to 1 MiB`);
  }
  if (1 << blockLog !== blockSize) {
    throw new CorruptImageError(`squashfs superblock: block_log ${blockLog} does not match block_size ${blockSize}`);
  }
  const compressionId = buf.readUInt16LE(20);
  const compressor = COMPRESSORS[compressionId];
  if (!compressor) throw new CorruptImageError(`squashfs superblock: unknown compression id ${compressionId}`);
  const sb: Superblock = {
    inodeCount: buf.readUInt32LE(4),
    mkfsTime: buf.readUInt32LE(8),
    blockSize,
    fragmentCount: buf.readUInt32LE(16),
    compressor,
    flags: buf.readUInt16LE(24),
    idCount: buf.readUInt16LE(26),
    rootInode: buf.readBigUInt64LE(32),
    bytesUsed: position(buf, 40, "bytes_used"),
    idTableStart: position(buf, 48, "id_table_start"),
    xattrIdTableStart: position(buf, 56, "xattr_id_table_start"),
    inodeTableStart: position(buf, 64, "inode_table_start"),
    directoryTableStart: position(buf, 72, "directory_table_start"),
    fragmentTableStart: position(buf, 80, "fragment_table_start"),
    lookupTableStart: position(buf, 88, "lookup_table_start"),
  };
  if (sb.bytesUsed === NO_TABLE || sb.bytesUsed < SUPERBLOCK_SIZE) {
    throw new CorruptImageError(`squashfs superblock: bytes_used ${sb.bytesUsed} is too small`);
  }
  const inside = (field: string, value: number) => {
    if (value !== NO_TABLE && (value < SUPERBLOCK_SIZE || value >= sb.bytesUsed)) {
      throw new CorruptImageError(`squashfs superblock: ${field} ${value} is outside the filesystem (${sb.bytesUsed} bytes)`);
    }
  };
  inside("inode_table_start", sb.inodeTableStart);
  inside("directory_table_start", sb.directoryTableStart);
  inside("id_table_start", sb.idTableStart);
  inside("fragment_table_start", sb.fragmentTableStart);
  inside("lookup_table_start", sb.lookupTableStart);
  inside("xattr_id_table_start", sb.xattrIdTableStart);
  if (sb.inodeTableStart === NO_TABLE || sb.directoryTableStart === NO_TABLE || sb.idTableStart === NO_TABLE) {
    throw new CorruptImageError("squashfs superblock: the inode, directory or id table is missing");
  }
  if (sb.directoryTableStart <= sb.inodeTableStart) {
    throw new CorruptImageError(
      `squashfs superblock: directory_table_start ${sb.directoryTableStart} is not after inode_table_start ${sb.inodeTableStart}`,
    );
  }
  if (sb.idCount === 0) throw new CorruptImageError("squashfs superblock: no_ids is 0 (every inode needs an owner)");
  return sb;
}

/** An inode reference: the metadata block (relative to the inode table) in the high bits, the offset in it in the low 16. */
export function inodeRef(ref: bigint): { block: number; offset: number } {
  return { block: Number((ref >> 16n) & 0xffffffffn), offset: Number(ref & 0xffffn) };
}
