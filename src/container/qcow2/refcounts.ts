/**
 * Refcounts two ways: as stored (the refcount table and its blocks) and as
 * they should be (references counted from the structure, references.ts).
 * Counting is done a window of host clusters at a time, so memory stays
 * bounded for any file size: a window is 16 MiB of counters (4M clusters,
 * 256 GiB of host file with 64 KiB clusters); a larger file takes another
 * walk per window.
 */
import type { BlockSource } from "../../io/block-source.js";
import { LruCache } from "../../util/lru.js";
import { decodeRefcountTableEntry } from "./entries.js";
import type { Qcow2Layout } from "./layout.js";
import { getRefcount } from "./refcount-block.js";
import { type ClusterStats, type ReferenceKind, type ReferenceSink, walkReferences } from "./references.js";
import { cached } from "./tables.js";

export const WINDOW_CLUSTERS = 4 * 1024 * 1024;
const MAX_COUNT = 0xffffffff;

/** References to the host clusters [first, first + counts.length), from one walk of the structure. */
export class ReferenceCounts implements ReferenceSink {
  readonly counts: Uint32Array;
  readonly problem: ReferenceSink["problem"];

  constructor(
    readonly clusterSize: number,
    readonly first: number,
    length: number,
    /** Also told of each reference (for problems, statistics...). */
    private readonly observer?: ReferenceSink,
  ) {
    this.counts = new Uint32Array(length);
    this.problem = observer?.problem?.bind(observer);
  }

  reference(kind: ReferenceKind, offset: number, length: number, weight: number, guest?: number): void {
    this.observer?.reference(kind, offset, length, weight, guest);
    if (length <= 0) return;
    const from = Math.max(this.first, Math.floor(offset / this.clusterSize));
    const to = Math.min(this.first + this.counts.length, Math.floor((offset + length - 1) / this.clusterSize) + 1);
    for (let c = from; c < to; c++) {
      const i = c - this.first;
      this.counts[i] = Math.min(MAX_COUNT, (this.counts[i] as number) + weight);
    }
  }
}

/** Count the references to each window of host clusters in turn, [0, clusters). */
export async function* countReferences(
  file: BlockSource,
  layout: Qcow2Layout,
  clusters: number,
  observer?: ReferenceSink,
): AsyncGenerator<{ counts: ReferenceCounts; stats: ClusterStats }> {
  // Whole refcount blocks per window, so a writer can fill each block from one window.
  const entries = layout.refcountBlockEntries;
  const window = Math.max(entries, Math.floor(WINDOW_CLUSTERS / entries) * entries);
  for (let first = 0; first < clusters || first === 0; first += window) {
    const counts = new ReferenceCounts(layout.clusterSize, first, Math.min(window, clusters - first), first === 0 ? observer : undefined);
    const stats = await walkReferences(file, layout, counts);
    yield { counts, stats };
  }
}

/** The refcounts the image stores, read through its refcount table, blocks cached. */
export class StoredRefcounts {
  private readonly blocks = new LruCache<number, Promise<Buffer | undefined>>(16);
  private reftable: Buffer | undefined;

  constructor(
    readonly file: BlockSource,
    readonly layout: Qcow2Layout,
  ) {}

  /**
   * The refcount block covering block index `index`, or undefined when the
   * table has none there (all its refcounts are 0) or points somewhere it
   * cannot be read (walkReferences reports that).
   */
  async block(index: number): Promise<Buffer | undefined> {
    const offset = await this.blockOffset(index);
    if (offset === undefined) return undefined;
    return cached(this.blocks, index, () => this.file.read(offset, this.layout.clusterSize));
  }

  /** Where refcount block `index` lies, when the table names a readable one. */
  async blockOffset(index: number): Promise<number | undefined> {
    const { layout, file } = this;
    if (index >= layout.refcountTableEntries) return undefined;
    this.reftable ??= await file.read(layout.header.refcountTableOffset, layout.refcountTableEntries * 8);
    const { offset } = decodeRefcountTableEntry(this.reftable, index);
    if (offset === 0 || offset % layout.clusterSize !== 0 || offset + layout.clusterSize > file.size) return undefined;
    return offset;
  }

  async get(cluster: number): Promise<number> {
    const entries = this.layout.refcountBlockEntries;
    const block = await this.block(Math.floor(cluster / entries));
    return block ? getRefcount(block, cluster % entries, this.layout.header.refcountOrder) : 0;
  }
}
