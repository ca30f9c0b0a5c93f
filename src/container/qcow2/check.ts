/**
 * `platter check IMAGE` for qcow2: what `qemu-img check` finds, found the
 * same way (qemu's qcow2_check_refcounts): count the references to every
 * host cluster from the structure, compare with the stored refcounts
 * (more stored: a leak, wasted space; fewer: a corruption, clusters that
 * may be overwritten while in use), check the copied flags of the active
 * tables, and the tables themselves (alignment, the end of the file,
 * subcluster bitmaps). Beyond qemu, each problem says which guest bytes it
 * puts in doubt, so a caller can name the partition and file that own them.
 */
import type { BlockSource } from "../../io/block-source.js";
import { decodeL1Entry, decodeL2Entry } from "./entries.js";
import type { Qcow2Layout } from "./layout.js";
import { getRefcount } from "./refcount-block.js";
import { type Problem, type ReferenceKind, type ReferenceSink, walkReferences } from "./references.js";
import { countReferences, StoredRefcounts } from "./refcounts.js";
import { readQcow2Metadata } from "./tables.js";
import { CheckFindings } from "../check-findings.js";

/** Corrupt clusters whose users are looked up (a second walk). */
const MAX_EXPLAINED = 10_000;

export interface Qcow2CheckReport {
  format: "qcow2";
  /** Neither corruptions nor leaks: `qemu-img check` exits 0. */
  clean: boolean;
  /** Errors that put data at risk (qemu-img check's "corruptions"). */
  corruptions: number;
  /** Clusters with a refcount but no user: wasted space only (qemu's "leaks"). */
  leaks: number;
  imageEndOffset: number;
  totalClusters: number;
  allocatedClusters: number;
  compressedClusters: number;
  fragmentedClusters: number;
  /** The image says it was not closed cleanly: its refcounts are expected to be stale. */
  dirty: boolean;
  problems: Problem[];
  /** Problems beyond the first MAX_PROBLEMS, counted only. */
  problemsNotListed: number;
  /** Guest byte ranges [offset, length] some corruption puts in doubt, merged, in order. */
  damagedGuestRanges: Array<[number, number]>;
}

/** Check the qcow2 image `file` (its header must be readable; anything after is reported, not thrown). */
export async function checkQcow2(file: BlockSource): Promise<Qcow2CheckReport> {
  const { layout } = await readQcow2Metadata(file);
  const { clusterSize } = layout;
  const findings = new CheckFindings<Problem>();
  const stored = new StoredRefcounts(file, layout);
  const fileClusters = Math.ceil(file.size / clusterSize);

  // References past the end of the file cannot be counted in a window: each is an error of its own.
  const observer: ReferenceSink = {
    reference(kind, offset, length) {
      if (length <= 0 || offset + length <= fileClusters * clusterSize) return;
      const first = Math.max(fileClusters, Math.floor(offset / clusterSize));
      const last = Math.floor((offset + length - 1) / clusterSize);
      findings.add({ severity: "corruption", message: `ERROR ${kind} at byte ${offset} uses cluster(s) ${first}-${last}, past the end of the file (${file.size} bytes)`, hostOffset: offset }, last - first + 1);
    },
    problem: (p) => findings.add(p),
  };

  let highest = -1;
  let stats = { allocated: 0, compressed: 0, fragmented: 0 };
  const mismatched = new Map<number, { stored: number; reference: number }>();
  for await (const window of countReferences(file, layout, fileClusters, observer)) {
    if (window.counts.first === 0) stats = window.stats;
    await compareWindow(window.counts.first, window.counts.counts, layout, stored, findings, mismatched, (c) => {
      highest = Math.max(highest, c);
    });
    await refblockProblems(window.counts.first, window.counts.counts, layout, stored, findings);
  }
  if (mismatched.size > 0) await explain(file, layout, mismatched, findings);
  await checkCopiedFlags(file, layout, stored, findings);

  return {
    format: "qcow2",
    clean: findings.corruptions === 0 && findings.leaks === 0,
    corruptions: findings.corruptions,
    leaks: findings.leaks,
    imageEndOffset: (highest + 1) * clusterSize,
    totalClusters: Math.ceil(layout.header.size / clusterSize),
    allocatedClusters: stats.allocated,
    compressedClusters: stats.compressed,
    fragmentedClusters: stats.fragmented,
    dirty: layout.dirty,
    problems: findings.problems,
    problemsNotListed: findings.notListed,
    damagedGuestRanges: findings.damagedGuestRanges(),
  };
}

/** Stored against counted refcounts for one window (qemu's compare_refcounts). */
async function compareWindow(
  first: number,
  counts: Uint32Array,
  layout: Qcow2Layout,
  stored: StoredRefcounts,
  findings: CheckFindings<Problem>,
  mismatched: Map<number, { stored: number; reference: number }>,
  used: (cluster: number) => void,
): Promise<void> {
  const entries = layout.refcountBlockEntries;
  for (let i = 0; i < counts.length; ) {
    const cluster = first + i;
    const blockIndex = Math.floor(cluster / entries);
    const block = await stored.block(blockIndex);
    const blockEnd = Math.min(counts.length, (blockIndex + 1) * entries - first);
    for (; i < blockEnd; i++) {
      const c = first + i;
      const reference = counts[i] as number;
      const refcount = block ? getRefcount(block, c % entries, layout.header.refcountOrder) : 0;
      if (refcount > 0 || reference > 0) used(c);
      if (refcount === reference) continue;
      if (refcount < reference) {
        if (mismatched.size < MAX_EXPLAINED) mismatched.set(c, { stored: refcount, reference });
        else findings.add({ severity: "corruption", message: `ERROR cluster ${c} refcount=${refcount} reference=${reference}`, hostOffset: c * layout.clusterSize });
      } else {
        findings.add({ severity: "leak", message: `Leaked cluster ${c} refcount=${refcount} reference=${reference}`, hostOffset: c * layout.clusterSize });
      }
    }
  }
}

/** A refcount block must be used by nothing but the refcount table (qemu's check_refblocks). */
async function refblockProblems(first: number, counts: Uint32Array, layout: Qcow2Layout, stored: StoredRefcounts, findings: CheckFindings<Problem>): Promise<void> {
  for (let i = 0; i < layout.refcountTableEntries; i++) {
    const offset = await stored.blockOffset(i);
    if (offset === undefined) continue;
    const c = offset / layout.clusterSize;
    if (c < first || c >= first + counts.length) continue;
    if (counts[c - first] !== 1) {
      findings.add({ severity: "corruption", message: `ERROR refcount block ${i} refcount=${counts[c - first]} (it overlaps other data)`, hostOffset: offset });
    }
  }
}

/** Name what uses each cluster whose refcount is too low, and the guest bytes it holds. */
async function explain(file: BlockSource, layout: Qcow2Layout, mismatched: Map<number, { stored: number; reference: number }>, findings: CheckFindings<Problem>): Promise<void> {
  const users = new Map<number, { kinds: string[]; guest?: [number, number] }>();
  const { clusterSize } = layout;
  const sink: ReferenceSink = {
    reference(kind: ReferenceKind, offset: number, length: number, _weight: number, guest?: number) {
      if (length <= 0) return;
      for (let c = Math.floor(offset / clusterSize); c <= Math.floor((offset + length - 1) / clusterSize); c++) {
        if (!mismatched.has(c)) continue;
        const user = users.get(c) ?? { kinds: [] };
        user.kinds.push(guest === undefined ? kind : `${kind} of guest offset ${guest}`);
        if (guest !== undefined) user.guest ??= [guest, clusterSize];
        users.set(c, user);
        if (c - Math.floor(offset / clusterSize) > 2) break; // a long table: its first clusters say enough
      }
    },
  };
  await walkReferences(file, layout, sink);
  for (const [c, { stored, reference }] of [...mismatched].sort((a, b) => a[0] - b[0])) {
    const user = users.get(c);
    const usedBy = user ? ` (used by ${user.kinds.slice(0, 4).join(", ")}${user.kinds.length > 4 ? ", ..." : ""})` : "";
    findings.add({
      severity: "corruption",
      message: `ERROR cluster ${c} refcount=${stored} reference=${reference}${usedBy}`,
      hostOffset: c * clusterSize,
      ...(user?.guest ? { guest: user.guest } : {}),
    });
  }
}

/** The copied flag (bit 63) of active L1 and L2 entries says "refcount exactly 1" (qemu's check_oflag_copied). */
async function checkCopiedFlags(file: BlockSource, layout: Qcow2Layout, stored: StoredRefcounts, findings: CheckFindings<Problem>): Promise<void> {
  const { header, clusterSize } = layout;
  if (header.l1Size === 0) return;
  const l1 = await file.read(header.l1TableOffset, header.l1Size * 8);
  // A table several L1 entries point at (a crafted image) is checked once, not once per entry.
  const seen = new Set<number>();
  for (let i = 0; i < header.l1Size; i++) {
    const entry = decodeL1Entry(l1, i);
    const l2 = entry.l2Offset;
    if (l2 === 0 || l2 % clusterSize !== 0 || l2 + clusterSize > file.size) continue;
    const refcount = await stored.get(l2 / clusterSize);
    if ((refcount === 1) !== entry.copied) {
      findings.add({
        severity: "corruption",
        message: `ERROR OFLAG_COPIED L2 cluster: l1_index=${i} l1_entry=${l1.readBigUInt64BE(i * 8).toString(16)} refcount=${refcount}`,
        hostOffset: header.l1TableOffset + i * 8,
      });
    }
    if (seen.has(l2)) continue;
    seen.add(l2);
    const table = await file.read(l2, clusterSize);
    for (let j = 0; j < layout.l2Entries; j++) {
      const e = decodeL2Entry(table, j, layout);
      if (e.kind !== "normal" && !(e.kind === "zero" && e.hostOffset !== 0)) continue;
      const count = layout.hasDataFile ? 1 : await stored.get(Math.floor(e.hostOffset / clusterSize));
      if ((count === 1) !== e.copied) {
        const guest = (i * layout.l2Entries + j) * clusterSize;
        findings.add({
          severity: "corruption",
          message: `ERROR OFLAG_COPIED data cluster: l2_entry=${table.readBigUInt64BE(j * layout.l2EntryBytes).toString(16)} refcount=${count}`,
          hostOffset: l2 + j * layout.l2EntryBytes,
          guest: [guest, clusterSize],
        });
      }
    }
  }
}
