/**
 * Refcounts for an image the writer made: planned at the end of the file
 * (refcount blocks for every cluster, a larger refcount table when the file
 * outgrew it), then counted from the tables (references.ts) a window of
 * clusters at a time, each block written whole. The image carries the dirty
 * bit until this is done: until then a crash leaves refcounts qemu and
 * resume() know to rebuild.
 */
import { FileSource } from "../../io/file-source.js";
import type { Allocator } from "./allocator.js";
import { decodeRefcountTableEntry, encodeRefcountTableEntry } from "./entries.js";
import { encodeQcow2Header } from "./header.js";
import type { ImageFile } from "./image-file.js";
import type { Qcow2Layout } from "./layout.js";
import { maxRefcount, setRefcount } from "./refcount-block.js";
import { countReferences } from "./refcounts.js";

/** Write the refcounts of `file`; `reftable` is the refcount table as it stands (refcount blocks already placed are kept). */
export async function writeRefcounts(file: ImageFile, layout: Qcow2Layout, reftable: Buffer, allocator: Allocator): Promise<void> {
  const { header, clusterSize, refcountBlockEntries } = layout;
  let table = reftable;
  for (let grew = true; grew; ) {
    grew = false;
    const blocks = Math.ceil(allocator.end / clusterSize / refcountBlockEntries);
    if (blocks > layout.refcountTableEntries) {
      // Room for the file to double before the table must move again.
      const clusters = Math.ceil((blocks * 2 * 8) / clusterSize);
      const larger = Buffer.alloc(clusters * clusterSize);
      table.copy(larger);
      table = larger;
      header.refcountTableOffset = allocator.clusters(clusters);
      header.refcountTableClusters = clusters;
      layout.refcountTableEntries = (clusters * clusterSize) / 8;
      grew = true;
      continue;
    }
    for (let i = 0; i < blocks; i++) {
      if (decodeRefcountTableEntry(table, i).offset !== 0) continue;
      encodeRefcountTableEntry(table, i, allocator.clusters(1));
      grew = true;
    }
  }
  const clusters = allocator.end / clusterSize;
  await file.truncate(allocator.end);
  await file.writeAt(header.refcountTableOffset, table);
  await file.writeAt(48, encodeQcow2Header(header).subarray(48, 60));
  await file.datasync();

  const max = maxRefcount(header.refcountOrder);
  const source = await FileSource.open(file.name);
  try {
    for await (const { counts } of countReferences(source, layout, clusters)) {
      const firstBlock = Math.floor(counts.first / refcountBlockEntries);
      const lastBlock = Math.floor((counts.first + counts.counts.length - 1) / refcountBlockEntries);
      for (let b = firstBlock; b <= lastBlock; b++) {
        const block = Buffer.alloc(clusterSize);
        for (let k = 0; k < refcountBlockEntries; k++) {
          const i = b * refcountBlockEntries + k - counts.first;
          if (i >= 0 && i < counts.counts.length) setRefcount(block, k, header.refcountOrder, Math.min(max, counts.counts[i] as number));
        }
        await file.writeAt(decodeRefcountTableEntry(table, b).offset, block);
      }
    }
  } finally {
    await source.close();
  }
}
