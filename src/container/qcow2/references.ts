/**
 * Every host cluster a qcow2 image uses, found from its structure alone
 * (qemu's calculate_refcounts): the header, the active and snapshot L1
 * tables, their L2 tables and data clusters, the snapshot table, the
 * refcount table and blocks, the encryption header, the bitmaps. What the
 * refcounts should be is the number of these references; check compares,
 * and the writer rebuilds its refcounts from them.
 *
 * An L2 table referenced several times (by snapshots) is read once, its
 * references weighted: a crafted L1 pointing a million times at one table
 * costs one table, not a million.
 */
import { escapeName } from "../../fs/names.js";
import type { BlockSource } from "../../io/block-source.js";
import { decodeBitmapDirectory } from "./bitmap-directory.js";
import { decodeL1Entry, decodeL2Entry, decodeRefcountTableEntry } from "./entries.js";
import { MAX_L1_BYTES, type Qcow2Layout } from "./layout.js";
import { decodeSnapshotTable } from "./snapshot-table.js";

export type ReferenceKind =
  | "header"
  | "L1 table"
  | "L2 table"
  | "data"
  | "compressed data"
  | "snapshot table"
  | "snapshot L1 table"
  | "refcount table"
  | "refcount block"
  | "encryption header"
  | "bitmap directory"
  | "bitmap table"
  | "bitmap data";

export interface Problem {
  severity: "corruption" | "leak";
  message: string;
  /** The host byte (a cluster, an entry) the problem is about. */
  hostOffset?: number;
  /** Guest bytes whose content the problem puts in doubt. */
  guest?: [number, number];
}

export interface ReferenceSink {
  /** `weight` references to each host cluster of [offset, offset+length). `guest`: the guest cluster a data cluster holds. */
  reference(kind: ReferenceKind, offset: number, length: number, weight: number, guest?: number): void;
  /** A structural problem (reported on the walk whose sink has this method). */
  problem?(problem: Problem): void;
}

/** qemu's allocation statistics for the active L1 table (BlockFragInfo). */
export interface ClusterStats {
  allocated: number;
  compressed: number;
  fragmented: number;
}

/** Bytes read at once from big tables (L1 tables, bitmap tables). */
const CHUNK = 1 << 20;
/** qemu's QCOW_MAX_SNAPSHOTS_SIZE and QCOW2_MAX_BITMAP_DIRECTORY_SIZE. */
const MAX_SNAPSHOT_TABLE = 64 * 1024 * 1024;
const MAX_BITMAP_DIRECTORY = 64 * 1024 * 1024;

interface L2Use {
  weight: number;
  /** Index in the active L1 table, for guest offsets; -1 when only snapshots use it. */
  activeIndex: number;
}

export async function walkReferences(file: BlockSource, layout: Qcow2Layout, sink: ReferenceSink): Promise<ClusterStats> {
  const { header, clusterSize, extensions } = layout;
  const problem = (p: Problem) => sink.problem?.(p);
  const stats: ClusterStats = { allocated: 0, compressed: 0, fragmented: 0 };
  /** [offset, offset+length) lies in the file; what does not was reported as a problem. */
  const readable = (what: string, offset: number, length: number): boolean => {
    if (offset % clusterSize === 0 && offset + length <= file.size) return true;
    problem({
      severity: "corruption",
      message:
        offset % clusterSize !== 0
          ? `${what} at byte ${offset} is not cluster aligned`
          : `${what} at byte ${offset} (${length} bytes) runs past the end of the file (${file.size} bytes)`,
      hostOffset: offset,
    });
    return false;
  };

  sink.reference("header", 0, clusterSize, 1);

  const l2Uses = new Map<number, L2Use>();
  const collectL1 = async (offset: number, size: number, active: boolean, what: string) => {
    sink.reference(active ? "L1 table" : "snapshot L1 table", offset, size * 8, 1);
    if (size === 0 || !readable(what, offset, size * 8)) return;
    for (let first = 0; first < size; first += CHUNK / 8) {
      const count = Math.min(CHUNK / 8, size - first);
      const chunk = await file.read(offset + first * 8, count * 8);
      for (let k = 0; k < count; k++) {
        if (chunk.readUInt32BE(k * 8) === 0 && chunk.readUInt32BE(k * 8 + 4) === 0) continue;
        const index = first + k;
        const entry = decodeL1Entry(chunk, k);
        if (entry.reserved) {
          problem({ severity: "corruption", message: `${what} entry ${index} has reserved bits set`, hostOffset: offset + index * 8, guest: [index * layout.l1Span, layout.l1Span] });
        }
        if (entry.l2Offset === 0) continue;
        sink.reference("L2 table", entry.l2Offset, clusterSize, 1);
        const use = l2Uses.get(entry.l2Offset) ?? { weight: 0, activeIndex: -1 };
        use.weight++;
        if (active && use.activeIndex < 0) use.activeIndex = index;
        l2Uses.set(entry.l2Offset, use);
      }
    }
  };

  await collectL1(header.l1TableOffset, header.l1Size, true, "the L1 table");

  if (header.nbSnapshots > 0) {
    const length = Math.min(file.size - header.snapshotsOffset, MAX_SNAPSHOT_TABLE);
    const { snapshots, length: used } = decodeSnapshotTable(await file.read(header.snapshotsOffset, length), header.nbSnapshots, header.snapshotsOffset);
    sink.reference("snapshot table", header.snapshotsOffset, used, 1);
    for (const [i, snapshot] of snapshots.entries()) {
      const what = `the L1 table of snapshot ${i} ("${escapeName(snapshot.name)}")`;
      if (snapshot.l1Size * 8 > MAX_L1_BYTES) {
        problem({ severity: "corruption", message: `${what} has ${snapshot.l1Size} entries, more than qemu allows`, hostOffset: snapshot.l1TableOffset });
        continue;
      }
      await collectL1(snapshot.l1TableOffset, snapshot.l1Size, false, what);
    }
  }

  // L2 tables in file order: one read each, whatever references them.
  for (const l2Offset of [...l2Uses.keys()].sort((a, b) => a - b)) {
    const use = l2Uses.get(l2Offset) as L2Use;
    const guestBase = use.activeIndex * layout.l1Span;
    const tableGuest: [number, number] | undefined = use.activeIndex >= 0 ? [guestBase, layout.l1Span] : undefined;
    if (!readable("an L2 table", l2Offset, clusterSize)) {
      if (tableGuest) problem({ severity: "corruption", message: `the L2 table for guest offset ${guestBase} cannot be read`, hostOffset: l2Offset, guest: tableGuest });
      continue;
    }
    const table = await file.read(l2Offset, clusterSize);
    let nextContiguous = 0;
    for (let j = 0; j < layout.l2Entries; j++) {
      const at = j * layout.l2EntryBytes;
      if (table.readUInt32BE(at) === 0 && table.readUInt32BE(at + 4) === 0 && (!layout.extendedL2 || table.readBigUInt64BE(at + 8) === 0n)) continue;
      const entry = decodeL2Entry(table, j, layout);
      const guest = use.activeIndex >= 0 ? guestBase + j * clusterSize : undefined;
      const where = { hostOffset: l2Offset + at, ...(guest !== undefined ? { guest: [guest, clusterSize] as [number, number] } : {}) };
      switch (entry.kind) {
        case "compressed":
          if (entry.copied) problem({ severity: "corruption", message: `compressed cluster at byte ${entry.hostOffset} has the copied flag, which compressed clusters never have`, ...where });
          if (layout.hasDataFile) {
            problem({ severity: "corruption", message: `compressed cluster in an image with an external data file (L2 entry at byte ${l2Offset + at})`, ...where });
            break;
          }
          if (entry.allocBits !== 0 || entry.zeroBits !== 0) {
            problem({ severity: "corruption", message: `compressed cluster with a subcluster bitmap (L2 entry at byte ${l2Offset + at})`, ...where });
            break;
          }
          if (guest !== undefined) {
            stats.allocated++;
            stats.compressed++;
            stats.fragmented++;
          }
          sink.reference("compressed data", entry.hostOffset, entry.compressedLength, use.weight, guest);
          break;
        case "normal":
        case "zero":
          if (entry.hostOffset === 0 && entry.kind === "zero") break; // reads as zeros, nothing allocated
          if ((entry.allocBits & entry.zeroBits) !== 0) {
            problem({ severity: "corruption", message: `cluster at byte ${entry.hostOffset} has a corrupted subcluster allocation bitmap`, ...where });
          }
          if (entry.hostOffset % clusterSize !== 0) {
            problem({ severity: "corruption", message: `cluster at byte ${entry.hostOffset} is not cluster aligned; L2 entry corrupted`, ...where });
          }
          if (guest !== undefined) {
            stats.allocated++;
            if (nextContiguous !== 0 && entry.hostOffset !== nextContiguous) stats.fragmented++;
            nextContiguous = entry.hostOffset + clusterSize;
          }
          if (!layout.hasDataFile) sink.reference("data", entry.hostOffset, clusterSize, use.weight, guest);
          break;
        default:
          if (entry.allocBits !== 0) problem({ severity: "corruption", message: `unallocated cluster with a non-zero subcluster allocation bitmap (L2 entry at byte ${l2Offset + at})`, ...where });
      }
    }
  }

  sink.reference("refcount table", header.refcountTableOffset, header.refcountTableClusters * clusterSize, 1);
  if (extensions.cryptoHeader) sink.reference("encryption header", extensions.cryptoHeader.offset, extensions.cryptoHeader.length, 1);
  if (extensions.bitmaps) await walkBitmaps(file, layout, sink, readable);

  const reftable = await file.read(header.refcountTableOffset, layout.refcountTableEntries * 8);
  for (let i = 0; i < layout.refcountTableEntries; i++) {
    const { offset } = decodeRefcountTableEntry(reftable, i);
    if (offset !== 0 && readable(`refcount block ${i}`, offset, clusterSize)) sink.reference("refcount block", offset, clusterSize, 1);
  }
  return stats;
}

async function walkBitmaps(
  file: BlockSource,
  layout: Qcow2Layout,
  sink: ReferenceSink,
  readable: (what: string, offset: number, length: number) => boolean,
): Promise<void> {
  const { count, directoryOffset, directorySize } = layout.extensions.bitmaps as NonNullable<Qcow2Layout["extensions"]["bitmaps"]>;
  sink.reference("bitmap directory", directoryOffset, directorySize, 1);
  if (directorySize > MAX_BITMAP_DIRECTORY || !readable("the bitmap directory", directoryOffset, directorySize)) return;
  const entries = decodeBitmapDirectory(await file.read(directoryOffset, directorySize), count, directoryOffset);
  for (const bitmap of entries) {
    const what = `the table of bitmap "${escapeName(bitmap.name)}"`;
    sink.reference("bitmap table", bitmap.tableOffset, bitmap.tableSize * 8, 1);
    if (!readable(what, bitmap.tableOffset, bitmap.tableSize * 8)) continue;
    for (let first = 0; first < bitmap.tableSize; first += CHUNK / 8) {
      const count = Math.min(CHUNK / 8, bitmap.tableSize - first);
      const chunk = await file.read(bitmap.tableOffset + first * 8, count * 8);
      for (let k = 0; k < count; k++) {
        // Bits 9-55 are the data cluster; 0 means all zeros or all ones, nothing stored.
        const { l2Offset: offset } = decodeL1Entry(chunk, k);
        if (offset !== 0) sink.reference("bitmap data", offset, layout.clusterSize, 1);
      }
    }
  }
}
