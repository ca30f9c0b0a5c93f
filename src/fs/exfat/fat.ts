import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { LruCache } from "../../util/lru.js";

/** A run of consecutive clusters holding consecutive bytes of a file. */
export interface ClusterRun {
  /** Index of the run's first cluster within the file. */
  fileCluster: number;
  cluster: number;
  count: number;
}

const END_OF_CHAIN = 0xffffffff;
const BAD_CLUSTER = 0xfffffff7;
const CHUNK = 64 * 1024;
const CACHED_CHUNKS = 16;

/** Reads FAT entries (32-bit) in 64 KiB chunks, and follows chains safely. */
export class FatReader {
  private readonly chunks = new LruCache<number, Buffer>(CACHED_CHUNKS);

  constructor(
    private readonly source: BlockSource,
    /** Byte offset of the active FAT. */
    private readonly fatStart: number,
    private readonly clusterCount: number,
  ) {}

  private isCluster(n: number): boolean {
    return n >= 2 && n <= this.clusterCount + 1;
  }

  async entry(cluster: number): Promise<number> {
    const at = cluster * 4;
    const chunkStart = at - (at % CHUNK);
    let chunk = this.chunks.get(chunkStart);
    if (!chunk) {
      const fatBytes = (this.clusterCount + 2) * 4;
      chunk = this.chunks.set(chunkStart, await this.source.read(this.fatStart + chunkStart, Math.min(CHUNK, fatBytes - chunkStart)));
    }
    return chunk.readUInt32LE(at - chunkStart);
  }

  /**
   * The runs of a chain from `first`. With `clusters` given, exactly that
   * many (a file's size says how many; a chain that ends early is corrupt);
   * without, until the end-of-chain mark (the root directory). A chain that
   * comes back to a cluster it has passed loops, and is corrupt: it is caught
   * as it happens (Brent's cycle finding, in constant memory, so a loop in a
   * chain without a length cannot grow the run list for the whole volume),
   * and a file's chain is checked whole at the end, runs against runs.
   */
  async chain(first: number, clusters: number | undefined, where: string): Promise<ClusterRun[]> {
    const runs: ClusterRun[] = [];
    if (clusters === 0) return runs;
    if (!this.isCluster(first)) throw new CorruptImageError(`exFAT ${where}: first cluster ${first} is not in the cluster heap`);
    const limit = clusters ?? this.clusterCount;
    const loops = () => new CorruptImageError(`exFAT ${where}: FAT chain loops (it comes back to a cluster it has passed)`);
    let cluster = first;
    let marker = first; // Brent: the cluster the chain is compared against, moved at each power of two
    let power = 1;
    for (let n = 0; ; ) {
      const last = runs[runs.length - 1];
      if (last && last.cluster + last.count === cluster) last.count++;
      else runs.push({ fileCluster: n, cluster, count: 1 });
      n++;
      if (clusters !== undefined && n === clusters) {
        checkNoOverlap(runs, loops);
        return runs;
      }
      const next = await this.entry(cluster);
      if (next === END_OF_CHAIN) {
        if (clusters === undefined) return runs;
        throw new CorruptImageError(`exFAT ${where}: FAT chain ends after ${n} of ${clusters} clusters`);
      }
      if (next === BAD_CLUSTER) throw new CorruptImageError(`exFAT ${where}: FAT chain reaches a cluster marked bad`);
      if (!this.isCluster(next)) throw new CorruptImageError(`exFAT ${where}: FAT entry of cluster ${cluster} points to ${next}, not a cluster`);
      if (n >= limit) throw new CorruptImageError(`exFAT ${where}: FAT chain loops (longer than the ${this.clusterCount} clusters of the volume)`);
      if (next === marker) throw loops();
      if (n === power) {
        marker = next;
        power *= 2;
      }
      cluster = next;
    }
  }

  /** The run of a NoFatChain file: `clusters` consecutive clusters from `first`, range-checked. */
  contiguous(first: number, clusters: number, where: string): ClusterRun[] {
    if (clusters === 0) return [];
    if (!this.isCluster(first) || !this.isCluster(first + clusters - 1)) {
      throw new CorruptImageError(`exFAT ${where}: clusters ${first}..${first + clusters - 1} are not all in the cluster heap`);
    }
    return [{ fileCluster: 0, cluster: first, count: clusters }];
  }
}

/** A chain whose runs share a cluster passes it twice. */
function checkNoOverlap(runs: ClusterRun[], loops: () => CorruptImageError): void {
  if (runs.length < 2) return;
  const byCluster = runs.map((r) => [r.cluster, r.count] as const).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < byCluster.length; i++) {
    const [start, count] = byCluster[i - 1] as readonly [number, number];
    if ((byCluster[i] as readonly [number, number])[0] < start + count) throw loops();
  }
}
