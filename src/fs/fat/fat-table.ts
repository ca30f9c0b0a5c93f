/**
 * The file allocation table: cluster chains, read through a cache of FAT
 * sectors (a FAT32 table can be hundreds of MiB; only what is walked is read).
 * Chains are followed safely: every link is range-checked and a chain that
 * revisits a cluster is a loop.
 */
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { BlockCache } from "../block-cache.js";
import type { BootSector } from "./boot-sector.js";

/** A run of consecutive clusters of a chain. */
export interface ClusterRun {
  first: number;
  count: number;
}

export class FatTable {
  private readonly cache: BlockCache;
  private readonly endOfChain: number;
  private readonly maxCluster: number;

  constructor(
    source: BlockSource,
    private readonly boot: BootSector,
  ) {
    this.cache = new BlockCache(source, boot.bytesPerSector, 4 << 20);
    this.endOfChain = boot.fatBits === 12 ? 0xff8 : boot.fatBits === 16 ? 0xfff8 : 0x0ffffff8;
    this.maxCluster = boot.clusterCount + 1;
  }

  /** The FAT entry of `cluster`. */
  async entry(cluster: number): Promise<number> {
    const { fatBits, fatOffset } = this.boot;
    if (fatBits === 32) return (await this.cache.read(fatOffset + cluster * 4, 4)).readUInt32LE(0) & 0x0fffffff;
    if (fatBits === 16) return (await this.cache.read(fatOffset + cluster * 2, 2)).readUInt16LE(0);
    const pair = (await this.cache.read(fatOffset + cluster + (cluster >> 1), 2)).readUInt16LE(0);
    return cluster & 1 ? pair >> 4 : pair & 0x0fff;
  }

  isValidCluster(cluster: number): boolean {
    return cluster >= 2 && cluster <= this.maxCluster;
  }

  /**
   * The chain starting at `first`, as runs of consecutive clusters, stopping
   * after `limit` clusters (the file needs no more) or at end-of-chain.
   */
  async chain(first: number, limit: number, what: string): Promise<ClusterRun[]> {
    const runs: ClusterRun[] = [];
    const seen = new Set<number>();
    let cluster = first;
    for (let n = 0; n < limit; n++) {
      if (!this.isValidCluster(cluster)) {
        throw new CorruptImageError(`FAT: ${what}: cluster ${cluster} is outside 2..${this.maxCluster}`);
      }
      if (seen.has(cluster)) throw new CorruptImageError(`FAT: ${what}: cluster chain loops back to cluster ${cluster}`);
      seen.add(cluster);
      const last = runs[runs.length - 1];
      if (last && last.first + last.count === cluster) last.count++;
      else runs.push({ first: cluster, count: 1 });
      if (n + 1 === limit) break;
      const next = await this.entry(cluster);
      if (next >= this.endOfChain) break;
      if (next === 0) throw new CorruptImageError(`FAT: ${what}: cluster chain runs into free cluster after ${cluster}`);
      cluster = next;
    }
    return runs;
  }
}
