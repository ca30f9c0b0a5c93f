/**
 * The 64-bit big-endian table entries of qcow2 (docs/interop/qcow2.txt,
 * "Cluster mapping", "Extended L2 Entries", "Host cluster management"):
 * L1 entries point at L2 tables, L2 entries describe one guest cluster,
 * refcount table entries point at refcount blocks. Read as two 32-bit halves:
 * these are read for every cluster, and a BigInt each would cost more than
 * the rest of the lookup. Pure codecs.
 */
import type { Qcow2Layout } from "./layout.js";

const TWO_32 = 2 ** 32;
/** Bits 9-55: where an L2 table or a standard cluster lies (hi: bits 32-55, lo: bits 9-31). */
const OFFSET_HI = 0x00ffffff;
const OFFSET_LO = 0xfffffe00;
const COPIED = 0x80000000; // bit 63, in hi
const COMPRESSED = 0x40000000; // bit 62, in hi
const ZERO = 1; // bit 0, in lo
/** L1: bits 0-8 and 56-62. L2 standard: bits 1-8 and 56-61. */
const L1_RESERVED_HI = 0x7f000000;
const L1_RESERVED_LO = 0x1ff;
const L2_RESERVED_HI = 0x3f000000;
const L2_RESERVED_LO = 0x1fe;

export interface L1Entry {
  /** The L2 table's offset; 0: none (every cluster it would map is unallocated). */
  l2Offset: number;
  /** Refcount exactly 1 (bit 63). */
  copied: boolean;
  reserved: boolean;
}

export function decodeL1Entry(table: Buffer, index: number): L1Entry {
  const hi = table.readUInt32BE(index * 8);
  const lo = table.readUInt32BE(index * 8 + 4);
  return {
    l2Offset: (hi & OFFSET_HI) * TWO_32 + ((lo & OFFSET_LO) >>> 0),
    copied: (hi & COPIED) !== 0,
    reserved: (hi & L1_RESERVED_HI) !== 0 || (lo & L1_RESERVED_LO) !== 0,
  };
}

export function encodeL1Entry(table: Buffer, index: number, l2Offset: number, copied = true): void {
  table.writeUInt32BE(((l2Offset === 0 ? 0 : copied ? COPIED : 0) | Math.floor(l2Offset / TWO_32)) >>> 0, index * 8);
  table.writeUInt32BE(l2Offset % TWO_32 >>> 0, index * 8 + 4);
}

/**
 * What an L2 entry says of its guest cluster (qemu's qcow2_get_cluster_type):
 * unallocated (read the backing file, or zeros), normal (at hostOffset),
 * zero (reads as zeros; hostOffset may keep a preallocated cluster), or
 * compressed (compressedLength bytes from hostOffset, any alignment).
 */
export type ClusterKind = "unallocated" | "normal" | "zero" | "compressed";

export interface L2Entry {
  kind: ClusterKind;
  hostOffset: number;
  /** Compressed clusters: bytes from hostOffset to the end of the last 512-byte sector the descriptor names. */
  compressedLength: number;
  copied: boolean;
  /** Reserved bits of a standard descriptor are set. */
  reserved: boolean;
  /** Extended L2 entries: subcluster allocation bits (bit i: subcluster i)... */
  allocBits: number;
  /** ...and reads-as-zero bits. */
  zeroBits: number;
}

export function decodeL2Entry(table: Buffer, index: number, layout: Qcow2Layout): L2Entry {
  const at = index * layout.l2EntryBytes;
  const hi = table.readUInt32BE(at);
  const lo = table.readUInt32BE(at + 4);
  const copied = (hi & COPIED) !== 0;
  const entry: L2Entry = {
    kind: "normal",
    hostOffset: 0,
    compressedLength: 0,
    copied,
    reserved: false,
    allocBits: layout.extendedL2 ? table.readUInt32BE(at + 12) : 0,
    zeroBits: layout.extendedL2 ? table.readUInt32BE(at + 8) : 0,
  };
  if (hi & COMPRESSED) {
    const hiOffsetBits = layout.csizeShift - 32;
    entry.kind = "compressed";
    entry.hostOffset = (hi & ((1 << hiOffsetBits) - 1)) * TWO_32 + lo;
    const extraSectors = (hi >>> hiOffsetBits) & ((1 << layout.csizeBits) - 1);
    entry.compressedLength = (Math.floor(entry.hostOffset / 512) + extraSectors + 1) * 512 - entry.hostOffset;
    return entry;
  }
  entry.hostOffset = (hi & OFFSET_HI) * TWO_32 + ((lo & OFFSET_LO) >>> 0);
  entry.reserved = (hi & L2_RESERVED_HI) !== 0 || (lo & L2_RESERVED_LO) !== 0;
  if (lo & ZERO && !layout.extendedL2) entry.kind = "zero";
  // Offset 0 is a real place only in an external data file, told apart by the copied flag.
  else if (entry.hostOffset === 0 && !(layout.hasDataFile && copied)) entry.kind = "unallocated";
  return entry;
}

/** What the writer stores: an unallocated cluster, a standard one (refcount 1), or a compressed one. */
export type L2EntryInit =
  | { kind: "unallocated" }
  | { kind: "normal"; hostOffset: number }
  | { kind: "compressed"; hostOffset: number; length: number };

export function encodeL2Entry(table: Buffer, index: number, entry: L2EntryInit, layout: Qcow2Layout): void {
  const at = index * layout.l2EntryBytes;
  let hi = 0;
  let lo = 0;
  if (entry.kind === "normal") {
    hi = (COPIED | Math.floor(entry.hostOffset / TWO_32)) >>> 0;
    lo = entry.hostOffset % TWO_32 >>> 0;
  } else if (entry.kind === "compressed") {
    const hiOffsetBits = layout.csizeShift - 32;
    const extraSectors = Math.floor((entry.hostOffset + entry.length - 1) / 512) - Math.floor(entry.hostOffset / 512);
    hi = (COMPRESSED | (extraSectors << hiOffsetBits) | Math.floor(entry.hostOffset / TWO_32)) >>> 0;
    lo = entry.hostOffset % TWO_32 >>> 0;
  }
  table.writeUInt32BE(hi, at);
  table.writeUInt32BE(lo, at + 4);
  if (layout.extendedL2) {
    // Extended entries: a standard cluster is allocated as a whole.
    table.writeUInt32BE(0, at + 8);
    table.writeUInt32BE(entry.kind === "normal" ? 0xffffffff : 0, at + 12);
  }
}

/**
 * How a subcluster of a decoded entry reads (qemu's qcow2_get_subcluster_type):
 * "data" from the host, "zero", "backing" (the backing file, or zeros), or
 * "invalid" when the bitmaps contradict the entry. Without extended L2
 * entries the cluster is its only subcluster.
 */
export type SubclusterState = "data" | "compressed" | "zero" | "backing" | "invalid";

export function subclusterState(entry: L2Entry, subcluster: number, layout: Qcow2Layout): SubclusterState {
  if (!layout.extendedL2) {
    return entry.kind === "normal" ? "data" : entry.kind === "compressed" ? "compressed" : entry.kind === "zero" ? "zero" : "backing";
  }
  const bit = 2 ** subcluster;
  const alloc = (entry.allocBits & bit) !== 0;
  const zero = (entry.zeroBits & bit) !== 0;
  switch (entry.kind) {
    case "compressed":
      return entry.allocBits !== 0 || entry.zeroBits !== 0 ? "invalid" : "compressed";
    case "normal":
      if ((entry.allocBits & entry.zeroBits) !== 0) return "invalid";
      return alloc ? "data" : zero ? "zero" : "backing";
    default:
      if (entry.allocBits !== 0) return "invalid";
      return zero ? "zero" : "backing";
  }
}

/** A refcount table entry: the refcount block's offset (bits 9-63), 0 when the block is absent. */
export function decodeRefcountTableEntry(table: Buffer, index: number): { offset: number; reserved: boolean } {
  const hi = table.readUInt32BE(index * 8);
  const lo = table.readUInt32BE(index * 8 + 4);
  return { offset: hi * TWO_32 + ((lo & OFFSET_LO) >>> 0), reserved: (lo & 0x1ff) !== 0 };
}

export function encodeRefcountTableEntry(table: Buffer, index: number, offset: number): void {
  table.writeUInt32BE(Math.floor(offset / TWO_32), index * 8);
  table.writeUInt32BE(offset % TWO_32 >>> 0, index * 8 + 4);
}
