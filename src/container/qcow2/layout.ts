/**
 * What a qcow2 header implies: table geometry (entries per L2 table, the
 * guest span of an L1 entry, subclusters, the compressed descriptor split)
 * and where the fixed tables lie, checked against the file as qemu checks
 * them at open. Everything later (reads, check, the writer) works from it.
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import {
  COMPRESSION_TYPES,
  type CompressionType,
  featureBit,
  Incompatible,
  KNOWN_INCOMPATIBLE,
  type Qcow2Header,
} from "./header.js";
import type { Qcow2Extensions } from "./header-extensions.js";

/** qemu's limits on table sizes (QCOW_MAX_L1_SIZE, QCOW_MAX_REFTABLE_SIZE, QCOW_MAX_SNAPSHOTS). */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
export const MAX_REFTABLE_BYTES = 8 * 1024 * 1024;
export const MAX_SNAPSHOTS = 65536;
/** Subclusters per cluster with extended L2 entries. */
export const SUBCLUSTERS = 32;

export interface Qcow2Layout {
  header: Qcow2Header;
  extensions: Qcow2Extensions;
  clusterBits: number;
  clusterSize: number;
  extendedL2: boolean;
  /** 8, or 16 with extended L2 entries (entry and subcluster bitmap). */
  l2EntryBytes: number;
  /** Entries in one L2 table (one cluster). */
  l2Entries: number;
  /** Guest bytes one L1 entry maps. */
  l1Span: number;
  /** clusterSize / 32 with extended L2 entries, else clusterSize. */
  subclusterSize: number;
  subclusters: number;
  /** Compressed descriptor: bits [0, csizeShift) are the offset, then csizeBits of extra sectors. */
  csizeShift: number;
  csizeBits: number;
  refcountBits: number;
  /** Refcounts in one refcount block. */
  refcountBlockEntries: number;
  /** Entries of the refcount table. */
  refcountTableEntries: number;
  compression: CompressionType;
  hasDataFile: boolean;
  dirty: boolean;
  corrupt: boolean;
}

function corrupt(what: string): CorruptImageError {
  return new CorruptImageError(`qcow2: ${what}`);
}

/** The names of the set bits of `mask` not in `known`, with the image's own names for them where it has them. */
function unknownFeatures(mask: bigint, known: bigint, kind: string, names: Map<string, string>): string[] {
  const unknown: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if (((mask >> BigInt(bit)) & 1n) === 1n && ((known >> BigInt(bit)) & 1n) === 0n) {
      const name = names.get(`${kind}:${bit}`);
      unknown.push(name ? `bit ${bit} (${name})` : `bit ${bit}`);
    }
  }
  return unknown;
}

/**
 * Derive the layout and check the fixed tables against a file of
 * `fileSize` bytes. Unknown incompatible features are refused here, before
 * anything is read through the tables.
 */
export function qcow2Layout(header: Qcow2Header, extensions: Qcow2Extensions, fileSize: number): Qcow2Layout {
  const unknown = unknownFeatures(header.incompatibleFeatures, KNOWN_INCOMPATIBLE, "incompatible", extensions.featureNames);
  if (unknown.length > 0) throw new UnsupportedError(`qcow2 image uses incompatible feature(s) platter does not know: ${unknown.join(", ")}`);
  const clusterBits = header.clusterBits;
  const clusterSize = 2 ** clusterBits;
  const extendedL2 = featureBit(header.incompatibleFeatures, Incompatible.extendedL2);
  const l2EntryBytes = extendedL2 ? 16 : 8;
  const l2Entries = clusterSize / l2EntryBytes;
  const l1Span = l2Entries * clusterSize;
  const refcountBits = 2 ** header.refcountOrder;
  const layout: Qcow2Layout = {
    header,
    extensions,
    clusterBits,
    clusterSize,
    extendedL2,
    l2EntryBytes,
    l2Entries,
    l1Span,
    subclusterSize: extendedL2 ? clusterSize / SUBCLUSTERS : clusterSize,
    subclusters: extendedL2 ? SUBCLUSTERS : 1,
    csizeShift: 62 - (clusterBits - 8),
    csizeBits: clusterBits - 8,
    refcountBits,
    refcountBlockEntries: (clusterSize * 8) / refcountBits,
    refcountTableEntries: (header.refcountTableClusters * clusterSize) / 8,
    compression: COMPRESSION_TYPES[header.compressionType] as CompressionType,
    hasDataFile: featureBit(header.incompatibleFeatures, Incompatible.dataFile),
    dirty: featureBit(header.incompatibleFeatures, Incompatible.dirty),
    corrupt: featureBit(header.incompatibleFeatures, Incompatible.corrupt),
  };

  const aligned = (offset: number) => offset % clusterSize === 0;
  const needed = Math.ceil(header.size / l1Span);
  if (header.l1Size < needed) throw corrupt(`the L1 table has ${header.l1Size} entries; a ${header.size}-byte disk needs ${needed} (header byte 36)`);
  if (header.l1Size * 8 > MAX_L1_BYTES) throw corrupt(`the L1 table of ${header.l1Size} entries is larger than qemu allows (${MAX_L1_BYTES} bytes)`);
  if (header.l1Size > 0) {
    if (!aligned(header.l1TableOffset) || header.l1TableOffset === 0) throw corrupt(`the L1 table offset ${header.l1TableOffset} is not a cluster boundary past the header (header byte 40)`);
    if (header.l1TableOffset + header.l1Size * 8 > fileSize) {
      throw corrupt(`the L1 table at byte ${header.l1TableOffset} (${header.l1Size * 8} bytes) runs past the end of the file (${fileSize} bytes); the image may be truncated`);
    }
  }
  if (header.refcountTableClusters * clusterSize > MAX_REFTABLE_BYTES) {
    throw corrupt(`the refcount table of ${header.refcountTableClusters} clusters is larger than qemu allows (${MAX_REFTABLE_BYTES} bytes)`);
  }
  if (!aligned(header.refcountTableOffset) || header.refcountTableOffset === 0) {
    throw corrupt(`the refcount table offset ${header.refcountTableOffset} is not a cluster boundary past the header (header byte 48)`);
  }
  if (header.refcountTableOffset + header.refcountTableClusters * clusterSize > fileSize) {
    throw corrupt(`the refcount table at byte ${header.refcountTableOffset} runs past the end of the file (${fileSize} bytes); the image may be truncated`);
  }
  if (header.nbSnapshots > MAX_SNAPSHOTS) throw corrupt(`${header.nbSnapshots} snapshots; qemu allows at most ${MAX_SNAPSHOTS} (header byte 60)`);
  if (header.nbSnapshots > 0 && (!aligned(header.snapshotsOffset) || header.snapshotsOffset >= fileSize)) {
    throw corrupt(`the snapshot table offset ${header.snapshotsOffset} is not a cluster boundary inside the file (header byte 64)`);
  }
  return layout;
}
