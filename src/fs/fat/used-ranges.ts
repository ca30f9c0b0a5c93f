/**
 * The bytes a FAT12/16/32 filesystem uses: the reserved area, every FAT and
 * the FAT12/16 root directory in full, then each cluster whose FAT entry is
 * not 0 (free). What `capture --used-only` reads, as partclone.fat does.
 * The active FAT is read in 1 MiB chunks: a FAT32 table can be hundreds of MiB.
 */
import type { BlockSource } from "../../io/block-source.js";
import type { ByteRange } from "../../used/range-list.js";
import { decodeBootSector } from "./boot-sector.js";

const CHUNK = 1 << 20;

export async function* fatUsedRanges(source: BlockSource): AsyncGenerator<ByteRange> {
  const boot = decodeBootSector(await source.read(0, 512));
  const { dataOffset, clusterSize, clusterCount, fatBits, fatOffset } = boot;
  yield [0, dataOffset];
  const clusterStart = (n: number) => dataOffset + (n - 2) * clusterSize;
  let runStart = -1;
  const lastCluster = clusterCount + 1;
  for await (const [cluster, used] of fatEntries(source, fatOffset, fatBits, lastCluster)) {
    if (used && runStart < 0) runStart = cluster;
    else if (!used && runStart >= 0) {
      yield [clusterStart(runStart), clusterStart(cluster)];
      runStart = -1;
    }
  }
  if (runStart >= 0) yield [clusterStart(runStart), clusterStart(lastCluster + 1)];
}

/**
 * [cluster, in use] for clusters 2..last, only where the state changes
 * (the first cluster, then each cluster that differs from the one before).
 */
async function* fatEntries(source: BlockSource, fatOffset: number, bits: 12 | 16 | 32, last: number): AsyncGenerator<[number, boolean]> {
  let previous: boolean | undefined;
  if (bits === 12) {
    // At most 4085 entries (6 KiB): read whole, no entry straddles a chunk.
    const fat = await source.read(fatOffset, Math.ceil(((last + 1) * 3) / 2));
    for (let n = 2; n <= last; n++) {
      const pair = fat.readUInt16LE(n + (n >> 1));
      const used = (n & 1 ? pair >> 4 : pair & 0x0fff) !== 0;
      if (used !== previous) yield [n, (previous = used)];
    }
    return;
  }
  const size = bits / 8;
  const perChunk = CHUNK / size;
  for (let first = 0; first <= last; first += perChunk) {
    const n = Math.min(perChunk, last + 1 - first);
    const chunk = await source.read(fatOffset + first * size, n * size);
    for (let i = Math.max(0, 2 - first); i < n; i++) {
      const used = (bits === 16 ? chunk.readUInt16LE(i * 2) : chunk.readUInt32LE(i * 4) & 0x0fffffff) !== 0;
      if (used !== previous) yield [first + i, (previous = used)];
    }
  }
}
