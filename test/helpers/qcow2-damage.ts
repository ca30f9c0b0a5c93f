/**
 * Damage a qcow2 image the way `qemu-img check` finds it: an L2 entry, or
 * the refcount of the host cluster that holds a guest offset.
 */
import assert from "node:assert/strict";
import { decodeL1Entry, decodeL2Entry } from "../../src/container/qcow2/entries.js";
import { readQcow2Metadata } from "../../src/container/qcow2/tables.js";
import { MemorySource } from "../../src/io/memory-source.js";

/** File offset of the L2 entry mapping guest offset `guest` (a normal, allocated cluster), and the host cluster it names. */
export async function l2EntryOf(image: Buffer, guest: number): Promise<{ at: number; host: number; clusterSize: number }> {
  const { layout } = await readQcow2Metadata(new MemorySource(image));
  const cluster = Math.floor(guest / layout.clusterSize);
  const { l2Offset } = decodeL1Entry(image.subarray(layout.header.l1TableOffset), Math.floor(cluster / layout.l2Entries));
  const index = cluster % layout.l2Entries;
  const entry = decodeL2Entry(image.subarray(l2Offset, l2Offset + layout.clusterSize), index, layout);
  assert.equal(entry.kind, "normal");
  return { at: l2Offset + index * layout.l2EntryBytes, host: entry.hostOffset, clusterSize: layout.clusterSize };
}

/** Where the 16-bit refcount of host cluster `cluster` is (the first refcount block covers a small image). */
export const refcountAt = (image: Buffer, cluster: number) => Number(image.readBigUInt64BE(Number(image.readBigUInt64BE(48)))) + cluster * 2;

/** Set to 0 the refcount of the cluster holding guest offset `guest`: qemu-img check calls it a corruption of that guest cluster. */
export async function zeroRefcountOf(image: Buffer, guest: number): Promise<void> {
  const { host, clusterSize } = await l2EntryOf(image, guest);
  image.writeUInt16BE(0, refcountAt(image, host / clusterSize));
}
