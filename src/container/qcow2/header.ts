/**
 * The qcow2 header (qemu's docs/interop/qcow2.txt, "Header"): the first bytes
 * of cluster 0, big-endian. Version 2 ends at byte 72; version 3 adds the
 * feature bitmaps, the refcount width and its own length, and from byte 104
 * the compression type. Pure codec, no I/O: where the tables lie is checked
 * against the file by layout.ts.
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import { readUint64BE } from "../../util/uint64.js";

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"
export const V2_HEADER_LENGTH = 72;
export const V3_MIN_HEADER_LENGTH = 104;
/** What qemu writes for version 3: through the compression type byte, padded to 8. */
export const V3_HEADER_LENGTH = 112;
/** qemu's limits: 512-byte to 2 MiB clusters. */
export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;
export const MAX_BACKING_NAME = 1023;

/** Bit numbers of incompatible_features. */
export const Incompatible = { dirty: 0, corrupt: 1, dataFile: 2, compressionType: 3, extendedL2: 4 } as const;
export const KNOWN_INCOMPATIBLE = 0b11111n;
/** Bit numbers of compatible_features. */
export const Compatible = { lazyRefcounts: 0 } as const;
/** Bit numbers of autoclear_features. */
export const Autoclear = { bitmaps: 0, rawData: 1 } as const;

export const COMPRESSION_TYPES = ["zlib", "zstd"] as const;
export type CompressionType = (typeof COMPRESSION_TYPES)[number];

export const CRYPT_METHODS: Record<number, string> = { 1: "AES", 2: "LUKS" };

export interface Qcow2Header {
  version: 2 | 3;
  /** Where the backing file's name is (0: no backing file), and its length. */
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  /** Virtual disk size in bytes. */
  size: number;
  /** 0 none, 1 AES, 2 LUKS. */
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  /** refcount_bits = 1 << refcountOrder (16 bits for version 2). */
  refcountOrder: number;
  headerLength: number;
  /** Index into COMPRESSION_TYPES. */
  compressionType: number;
}

export function hasQcow2Magic(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32BE(0) === QCOW2_MAGIC;
}

export function featureBit(features: bigint, bit: number): boolean {
  return ((features >> BigInt(bit)) & 1n) === 1n;
}

function corrupt(field: string, at: number, why: string): CorruptImageError {
  return new CorruptImageError(`qcow2 header: ${field} (byte ${at}) ${why}`);
}

/**
 * Decode the header from the start of the file (at least the header's own
 * length; the whole first cluster is safest). Fields are checked against
 * each other and against qemu's limits; where the tables lie is not.
 */
export function decodeQcow2Header(buf: Buffer): Qcow2Header {
  if (buf.length < V2_HEADER_LENGTH) throw new CorruptImageError(`qcow2 header: truncated (${buf.length} of ${V2_HEADER_LENGTH} bytes)`);
  if (!hasQcow2Magic(buf)) throw corrupt("magic", 0, `is 0x${buf.readUInt32BE(0).toString(16)}, not QFI\\xfb`);
  const version = buf.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new UnsupportedError(`qcow2 version ${version} (platter reads versions 2 and 3)`);
  const clusterBits = buf.readUInt32BE(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw corrupt("cluster_bits", 20, `is ${clusterBits}; clusters are 2^${MIN_CLUSTER_BITS} to 2^${MAX_CLUSTER_BITS} bytes`);
  }
  const clusterSize = 2 ** clusterBits;
  const header: Qcow2Header = {
    version,
    backingFileOffset: readUint64BE(buf, 8, "qcow2 header: backing_file_offset"),
    backingFileSize: buf.readUInt32BE(16),
    clusterBits,
    size: readUint64BE(buf, 24, "qcow2 header: size"),
    cryptMethod: buf.readUInt32BE(32),
    l1Size: buf.readUInt32BE(36),
    l1TableOffset: readUint64BE(buf, 40, "qcow2 header: l1_table_offset"),
    refcountTableOffset: readUint64BE(buf, 48, "qcow2 header: refcount_table_offset"),
    refcountTableClusters: buf.readUInt32BE(56),
    nbSnapshots: buf.readUInt32BE(60),
    snapshotsOffset: readUint64BE(buf, 64, "qcow2 header: snapshots_offset"),
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: 4,
    headerLength: V2_HEADER_LENGTH,
    compressionType: 0,
  };
  if (version === 3) {
    if (buf.length < V3_MIN_HEADER_LENGTH) throw new CorruptImageError(`qcow2 header: truncated (${buf.length} of ${V3_MIN_HEADER_LENGTH} bytes)`);
    header.incompatibleFeatures = buf.readBigUInt64BE(72);
    header.compatibleFeatures = buf.readBigUInt64BE(80);
    header.autoclearFeatures = buf.readBigUInt64BE(88);
    header.refcountOrder = buf.readUInt32BE(96);
    header.headerLength = buf.readUInt32BE(100);
    if (header.headerLength < V3_MIN_HEADER_LENGTH || header.headerLength % 8 !== 0 || header.headerLength > clusterSize) {
      throw corrupt("header_length", 100, `is ${header.headerLength}; it must be a multiple of 8 from ${V3_MIN_HEADER_LENGTH} to the cluster size`);
    }
    if (header.headerLength > buf.length) throw new CorruptImageError(`qcow2 header: truncated (${buf.length} of ${header.headerLength} bytes)`);
    if (header.headerLength > 104) header.compressionType = buf[104] as number;
    if (header.refcountOrder > 6) throw corrupt("refcount_order", 96, `is ${header.refcountOrder}; refcounts are at most 64 bits wide`);
  }
  const compressionBit = featureBit(header.incompatibleFeatures, Incompatible.compressionType);
  if (compressionBit !== (header.compressionType !== 0)) {
    throw corrupt(
      "compression_type",
      104,
      compressionBit
        ? "is zlib while the incompatible compression-type bit is set"
        : `is ${header.compressionType} while the incompatible compression-type bit is clear`,
    );
  }
  if (header.compressionType >= COMPRESSION_TYPES.length) {
    throw new UnsupportedError(`qcow2 compression type ${header.compressionType} (platter knows zlib and zstd)`);
  }
  if (header.backingFileOffset !== 0) {
    if (header.backingFileSize > MAX_BACKING_NAME) throw corrupt("backing_file_size", 16, `is ${header.backingFileSize}; names are at most ${MAX_BACKING_NAME} bytes`);
    if (header.backingFileOffset + header.backingFileSize > clusterSize) {
      throw corrupt("backing_file_offset", 8, `${header.backingFileOffset} puts the backing file name past the first cluster`);
    }
  }
  if (featureBit(header.incompatibleFeatures, Incompatible.extendedL2) && clusterBits < 14) {
    throw corrupt("cluster_bits", 20, `is ${clusterBits}; extended L2 entries need clusters of at least 16 KiB`);
  }
  return header;
}

/** The header's bytes (headerLength of them: 72 for version 2). */
export function encodeQcow2Header(h: Qcow2Header): Buffer {
  const length = h.version === 2 ? V2_HEADER_LENGTH : h.headerLength;
  const buf = Buffer.alloc(length);
  buf.writeUInt32BE(QCOW2_MAGIC, 0);
  buf.writeUInt32BE(h.version, 4);
  buf.writeBigUInt64BE(BigInt(h.backingFileOffset), 8);
  buf.writeUInt32BE(h.backingFileSize, 16);
  buf.writeUInt32BE(h.clusterBits, 20);
  buf.writeBigUInt64BE(BigInt(h.size), 24);
  buf.writeUInt32BE(h.cryptMethod, 32);
  buf.writeUInt32BE(h.l1Size, 36);
  buf.writeBigUInt64BE(BigInt(h.l1TableOffset), 40);
  buf.writeBigUInt64BE(BigInt(h.refcountTableOffset), 48);
  buf.writeUInt32BE(h.refcountTableClusters, 56);
  buf.writeUInt32BE(h.nbSnapshots, 60);
  buf.writeBigUInt64BE(BigInt(h.snapshotsOffset), 64);
  if (h.version === 3) {
    buf.writeBigUInt64BE(h.incompatibleFeatures, 72);
    buf.writeBigUInt64BE(h.compatibleFeatures, 80);
    buf.writeBigUInt64BE(h.autoclearFeatures, 88);
    buf.writeUInt32BE(h.refcountOrder, 96);
    buf.writeUInt32BE(h.headerLength, 100);
    if (h.headerLength > 104) buf[104] = h.compressionType;
  }
  return buf;
}
