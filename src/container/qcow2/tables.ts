/**
 * Reading a qcow2 file's metadata: the header cluster, the L1 table (in
 * pages: a huge virtual disk has a large L1, and most lookups touch one
 * page) and L2 tables, each cached in an LRU so memory stays bounded
 * whatever the image's size. Shared by the reader, the writer's refcount
 * rebuild and check.
 */
import { CorruptImageError } from "../../errors.js";
import type { BlockSource } from "../../io/block-source.js";
import { LruCache } from "../../util/lru.js";
import { decodeL1Entry, type L1Entry } from "./entries.js";
import { decodeHeaderExtensions, interpretExtensions } from "./header-extensions.js";
import { decodeQcow2Header, MAX_CLUSTER_BITS, MIN_CLUSTER_BITS } from "./header.js";
import { qcow2Layout, type Qcow2Layout } from "./layout.js";

/** L1 entries per cached page: 64 KiB, which maps 4 TiB of a disk with 64 KiB clusters. */
const L1_PAGE_ENTRIES = 8192;
const L1_PAGES_CACHED = 16;
/** Bytes of L2 tables kept: 8 MiB of 64 KiB tables map 64 GiB (qemu keeps 1 MiB by default). */
const L2_CACHE_BYTES = 8 * 1024 * 1024;

export interface Qcow2Metadata {
  layout: Qcow2Layout;
  /** The backing file's name as stored, if any. */
  backingFile?: string;
}

/** Read and check the header cluster of `file` (first cluster: header, extensions, backing file name). */
export async function readQcow2Metadata(file: BlockSource): Promise<Qcow2Metadata> {
  // The header's own length is known once the cluster size is: read cluster 0 and decode it there.
  const peek = await file.read(0, Math.min(file.size, 24));
  const bits = peek.length === 24 ? peek.readUInt32BE(20) : 0;
  const clusterSize = bits >= MIN_CLUSTER_BITS && bits <= MAX_CLUSTER_BITS ? 2 ** bits : 2 ** MIN_CLUSTER_BITS;
  const cluster0 = await file.read(0, Math.min(file.size, clusterSize));
  const full = decodeQcow2Header(cluster0);
  const extEnd = full.backingFileOffset !== 0 ? full.backingFileOffset : clusterSize;
  const extensions = interpretExtensions(decodeHeaderExtensions(cluster0, full.headerLength, extEnd));
  const layout = qcow2Layout(full, extensions, file.size);
  const metadata: Qcow2Metadata = { layout };
  if (full.backingFileOffset !== 0) {
    if (full.backingFileOffset + full.backingFileSize > cluster0.length) {
      throw new CorruptImageError(`qcow2: the backing file name at byte ${full.backingFileOffset} runs past the end of the file`);
    }
    metadata.backingFile = cluster0.toString("utf8", full.backingFileOffset, full.backingFileOffset + full.backingFileSize);
  }
  return metadata;
}

/** The L1 and L2 tables of one image, read on demand and cached. */
export class Qcow2Tables {
  private readonly l1Pages = new LruCache<number, Promise<Buffer>>(L1_PAGES_CACHED);
  private readonly l2Cache: LruCache<number, Promise<Buffer>>;

  private readonly l1Offset: number;
  private readonly l1Size: number;

  constructor(
    readonly file: BlockSource,
    readonly layout: Qcow2Layout,
  ) {
    this.l1Offset = layout.header.l1TableOffset;
    this.l1Size = layout.header.l1Size;
    this.l2Cache = new LruCache(Math.max(4, Math.floor(L2_CACHE_BYTES / layout.clusterSize)));
  }

  async l1Entry(index: number): Promise<L1Entry> {
    if (index >= this.l1Size) return { l2Offset: 0, copied: false, reserved: false };
    const buf = await this.l1Page(Math.floor(index / L1_PAGE_ENTRIES));
    return decodeL1Entry(buf, index % L1_PAGE_ENTRIES);
  }

  private l1Page(page: number): Promise<Buffer> {
    return cached(this.l1Pages, page, () => {
      const first = page * L1_PAGE_ENTRIES;
      const count = Math.min(L1_PAGE_ENTRIES, this.l1Size - first);
      return this.file.read(this.l1Offset + first * 8, count * 8);
    });
  }

  /** The first index in [index, limit) whose L1 entry names an L2 table, or `limit`: skips unallocated gigabytes a page at a time. */
  async nextL1WithTable(index: number, limit: number): Promise<number> {
    let i = index;
    const stop = Math.min(limit, this.l1Size);
    while (i < stop) {
      const page = Math.floor(i / L1_PAGE_ENTRIES);
      const buf = await this.l1Page(page);
      const pageEnd = Math.min(stop, (page + 1) * L1_PAGE_ENTRIES);
      for (; i < pageEnd; i++) if (decodeL1Entry(buf, i % L1_PAGE_ENTRIES).l2Offset !== 0) return i;
    }
    return limit;
  }

  /**
   * Two L1 entries pointing at one L2 table, if any: never in an image qemu
   * wrote (each part of the disk has its own table), and a crafted one could
   * make a small file map petabytes of "data" that every lookup walks again.
   */
  async sharedTable(): Promise<{ first: number; second: number; offset: number } | undefined> {
    const offsets = new Float64Array(this.l1Size);
    let count = 0;
    for (let page = 0; page * L1_PAGE_ENTRIES < this.l1Size; page++) {
      const buf = await this.l1Page(page);
      for (let k = 0; k < buf.length / 8; k++) {
        const { l2Offset } = decodeL1Entry(buf, k);
        if (l2Offset !== 0) offsets[count++] = l2Offset;
      }
    }
    const sorted = offsets.subarray(0, count).sort();
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i] !== sorted[i - 1]) continue;
      const offset = sorted[i] as number;
      const users: number[] = [];
      for (let index = 0; users.length < 2; index++) if ((await this.l1Entry(index)).l2Offset === offset) users.push(index);
      return { first: users[0] as number, second: users[1] as number, offset };
    }
    return undefined;
  }

  /** The L2 table at `offset` (already checked to be a cluster inside the file). */
  l2Table(offset: number): Promise<Buffer> {
    return cached(this.l2Cache, offset, () => this.file.read(offset, this.layout.clusterSize));
  }
}

/** A cache of promises: concurrent readers of one table share its read; a failed read is not kept. */
export function cached<V>(cache: LruCache<number, Promise<V>>, key: number, load: () => Promise<V>): Promise<V> {
  let value = cache.get(key);
  if (!value) {
    value = load();
    cache.set(key, value);
    value.catch(() => cache.delete(key));
  }
  return value;
}
