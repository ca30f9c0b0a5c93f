/**
 * The bytes an exFAT filesystem uses: everything before the cluster heap
 * (both boot regions, the FATs) in full, then the clusters its allocation
 * bitmap marks (the bitmap, up-case table and root directory are among
 * them). What `capture --used-only` reads. The bitmap is found through the
 * root directory's Allocation Bitmap entry and read 1 MiB at a time.
 */
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import type { ByteRange } from "../../used/range-list.js";
import { setBitRuns } from "../../used/bitmap-runs.js";
import { decodeBootSector, VOLUME_FLAG_ACTIVE_FAT } from "./boot-sector.js";
import { ENTRY_SIZE, EntryType } from "./dir-entry.js";
import { type ClusterRun, FatReader } from "./fat.js";

const CHUNK = 1 << 20;
/** Bit 0 of an Allocation Bitmap entry's flags: which FAT the bitmap goes with (TexFAT has two). */
const BITMAP_OF_SECOND_FAT = 0x1;

export async function* exfatUsedRanges(source: BlockSource): AsyncGenerator<ByteRange> {
  const boot = decodeBootSector(await source.read(0, 512));
  const bps = boot.bytesPerSector;
  const clusterSize = bps * boot.sectorsPerCluster;
  const heapStart = boot.clusterHeapOffset * bps;
  const activeFat = boot.fatCount === 2 && boot.volumeFlags & VOLUME_FLAG_ACTIVE_FAT ? 1 : 0;
  const fat = new FatReader(source, (boot.fatOffset + activeFat * boot.fatLength) * bps, boot.clusterCount);
  const clusterOffset = (n: number) => heapStart + (n - 2) * clusterSize;
  const bitmap = await findBitmap(source, fat, boot.rootCluster, clusterSize, clusterOffset, activeFat);
  const bitmapBytes = Math.ceil(boot.clusterCount / 8);
  if (bitmap.length < bitmapBytes) {
    throw new CorruptImageError(`exFAT allocation bitmap: ${bitmap.length} bytes are too few for ${boot.clusterCount} clusters`);
  }
  const runs = await fat.chain(bitmap.firstCluster, Math.ceil(bitmapBytes / clusterSize), "allocation bitmap");

  yield [0, heapStart];
  // Runs of the bitmap file, read in chunks; bit i is cluster i + 2.
  let bit = 0;
  for (const run of runs) {
    const runStart = clusterOffset(run.cluster);
    const runBytes = Math.min(run.count * clusterSize, bitmapBytes - bit / 8);
    for (let at = 0; at < runBytes; at += CHUNK) {
      const chunk = await source.read(runStart + at, Math.min(CHUNK, runBytes - at));
      const bits = Math.min(chunk.length * 8, boot.clusterCount - bit);
      for (const [a, b] of setBitRuns(chunk, bits)) yield [clusterOffset(bit + a + 2), clusterOffset(bit + b + 2)];
      bit += chunk.length * 8;
    }
  }
}

/** The Allocation Bitmap entry of the root directory that goes with the active FAT. */
async function findBitmap(
  source: BlockSource,
  fat: FatReader,
  rootCluster: number,
  clusterSize: number,
  clusterOffset: (n: number) => number,
  activeFat: number,
): Promise<{ firstCluster: number; length: number }> {
  const root: ClusterRun[] = await fat.chain(rootCluster, undefined, "root directory");
  for (const run of root) {
    for (let c = 0; c < run.count; c++) {
      const cluster = await source.read(clusterOffset(run.cluster + c), clusterSize);
      for (let at = 0; at < cluster.length; at += ENTRY_SIZE) {
        const type = cluster[at] as number;
        if (type === 0) throw new CorruptImageError("exFAT root directory: no Allocation Bitmap entry");
        if (type !== EntryType.allocationBitmap) continue;
        if (((cluster[at + 1] as number) & BITMAP_OF_SECOND_FAT) !== activeFat) continue;
        return { firstCluster: cluster.readUInt32LE(at + 20), length: Number(cluster.readBigUInt64LE(at + 24)) };
      }
    }
  }
  throw new CorruptImageError("exFAT root directory: no Allocation Bitmap entry");
}
