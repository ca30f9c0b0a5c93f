/**
 * The writer's compressed mode: whole clusters go to the compression pool
 * a batch at a time through an OrderedWindow (compressed on every core,
 * stored in the order they were written, memory bounded by the window);
 * clusters written in part are held whole in memory until they are
 * complete, evicted, or flushed, since a compressed cluster is rewritten
 * whole. A cluster's newest content is always findable (held, queued, or in
 * the file), so a partial write merges into the right bytes.
 */
import { isAllZero } from "../../io/zeros.js";
import { OrderedWindow } from "../../util/ordered-window.js";
import type { Allocator } from "./allocator.js";
import { CompressPool, type Slot } from "./compress-pool.js";
import { decodeL2Entry, type L2EntryInit } from "./entries.js";
import type { CompressionType } from "./header.js";
import { type ImageFile, WriteBatch } from "./image-file.js";
import type { Qcow2Layout } from "./layout.js";
import type { TableWriter } from "./table-writer.js";

/** Clusters written in part, held whole until complete or evicted. */
const MAX_PARTIAL = 64;
/** Bytes of clusters handed to a worker at once. */
const BATCH_BYTES = 512 << 10;

/** A cluster's new content (a view of its slot), or null: it reads as zeros. */
interface ClusterUpdate {
  cluster: number;
  content: Buffer | null;
}

/** A job of the window: new contents of clusters of one L2 table, and what compressing them gave (null: stored plain). */
interface CompressedUpdates {
  updates: ClusterUpdate[];
  slot: Slot;
  /** One per non-null content, in order. */
  compressed: Array<Buffer | null>;
}

export class CompressedWriter {
  private readonly pool: CompressPool;
  private readonly window: OrderedWindow<CompressedUpdates>;
  /** The newest content handed to the window per cluster, until it is in the file. */
  private readonly queued = new Map<number, Buffer | null>();
  /** Whole contents of clusters written in part, oldest first. */
  private readonly partial = new Map<number, Buffer>();
  private readonly partialLoads = new Map<number, Promise<Buffer>>();

  constructor(
    private readonly file: ImageFile,
    private readonly layout: Qcow2Layout,
    private readonly tables: TableWriter,
    private readonly allocator: Allocator,
    compression: CompressionType,
    level: number,
    threads: number,
  ) {
    const width = threads + 1;
    const batch = Math.max(1, Math.floor(BATCH_BYTES / layout.clusterSize));
    // A slot per batch in the window, one being stored, one being filled.
    this.pool = new CompressPool(compression, level, threads, layout.clusterSize, batch, width + 2);
    this.window = new OrderedWindow(width, (job) => this.store(job));
  }

  /** L1 indexes with clusters held or queued: zeros written there must reach them. */
  pendingTables(): Set<number> {
    const { clusterSize, l1Span } = this.layout;
    return new Set([...this.queued.keys(), ...this.partial.keys()].map((c) => Math.floor((c * clusterSize) / l1Span)));
  }

  /** `data` (null: zeros) at `pos`, all inside the span of L1 entry `index`. */
  async write(index: number, pos: number, length: number, data: Buffer | null): Promise<void> {
    const { clusterSize, header, l2Entries } = this.layout;
    // Zeros where a cluster holds nothing already are no work at all.
    const stored =
      data === null
        ? await this.tables.withTable(index, false, async (table) => (entry: number) => table !== undefined && decodeL2Entry(table, entry, this.layout).kind !== "unallocated")
        : () => true;
    let batch: Array<{ cluster: number; data: Buffer | null }> = [];
    for (let at = pos; at < pos + length; ) {
      const cluster = Math.floor(at / clusterSize);
      const within = at - cluster * clusterSize;
      const n = Math.min(clusterSize - within, pos + length - at);
      const piece = data?.subarray(at - pos, at - pos + n) ?? null;
      at += n;
      if (piece === null && !stored(cluster % l2Entries) && !this.queued.has(cluster) && !this.partial.has(cluster) && !this.partialLoads.has(cluster)) continue;
      // The last cluster of a disk that ends inside it is whole at the disk's end.
      if (within === 0 && (n === clusterSize || at === header.size)) {
        this.partial.delete(cluster);
        batch.push({ cluster, data: piece === null || isAllZero(piece) ? null : piece });
        if (batch.length === this.pool.batch) {
          await this.submit(batch);
          batch = [];
        }
        continue;
      }
      let content = this.partial.get(cluster);
      // Loading it may take a while; by then another write may have handed it to the window: load again.
      while (!content) {
        const loaded = await this.load(cluster);
        if (this.partial.get(cluster) === loaded) content = loaded;
      }
      if (piece) piece.copy(content, within);
      else content.fill(0, within, within + n);
      // Most recently written last: the oldest is the one evicted.
      this.partial.delete(cluster);
      this.partial.set(cluster, content);
      if (this.partial.size > MAX_PARTIAL) {
        const [oldest, buf] = this.partial.entries().next().value as [number, Buffer];
        this.partial.delete(oldest);
        await this.submit([{ cluster: oldest, data: isAllZero(buf) ? null : buf }]);
      }
    }
    if (batch.length > 0) await this.submit(batch);
  }

  /** Everything held and queued written to the file. */
  async flush(): Promise<void> {
    for (const [cluster, content] of [...this.partial]) {
      this.partial.delete(cluster);
      await this.submit([{ cluster, data: isAllZero(content) ? null : content }]);
    }
    await this.window.drain();
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  /** The whole current content of `cluster`, to be written in part (one load shared by concurrent partial writes). */
  private load(cluster: number): Promise<Buffer> {
    let load = this.partialLoads.get(cluster);
    if (!load) {
      load = this.content(cluster).then((content) => {
        this.partial.set(cluster, content);
        return content;
      });
      load.finally(() => this.partialLoads.delete(cluster)).catch(() => {});
      this.partialLoads.set(cluster, load);
    }
    return load;
  }

  /** A copy of what `cluster` holds now: queued content first, then the file. */
  private async content(cluster: number): Promise<Buffer> {
    const { clusterSize, l2Entries, l1Span } = this.layout;
    if (this.queued.has(cluster)) {
      const content = this.queued.get(cluster);
      return content ? Buffer.from(content) : Buffer.alloc(clusterSize);
    }
    return this.tables.withTable(Math.floor((cluster * clusterSize) / l1Span), false, async (table) =>
      table ? this.file.readCluster(decodeL2Entry(table, cluster % l2Entries, this.layout), this.layout) : Buffer.alloc(clusterSize),
    );
  }

  /**
   * Hand new contents of clusters (of one L2 table; null: zeros) to the
   * window: copied into a slot (the caller may reuse `data` once this
   * resolves), compressed there by the pool, stored in order.
   */
  private async submit(items: Array<{ cluster: number; data: Buffer | null }>): Promise<void> {
    const { clusterSize } = this.layout;
    const slot = await this.pool.acquire();
    let count = 0;
    const updates = items.map(({ cluster, data }): ClusterUpdate => {
      if (data === null) return { cluster, content: null };
      const content = slot.input.subarray(count * clusterSize, ++count * clusterSize);
      data.copy(content);
      content.fill(0, data.length);
      return { cluster, content };
    });
    for (const { cluster, content } of updates) this.queued.set(cluster, content);
    await this.window.push(async () => {
      try {
        return { updates, slot, compressed: count > 0 ? await this.pool.compress(slot, count) : [] };
      } catch (err) {
        this.pool.release(slot); // a failed job is never stored
        throw err;
      }
    });
  }

  /**
   * The window's consumer, in submission order: put the clusters' new
   * contents in place (compressed ones packed side by side, written at
   * once), then point their entries at them; the slot is free again after.
   */
  private async store({ updates, slot, compressed }: CompressedUpdates): Promise<void> {
    const { clusterSize, l1Span, l2Entries } = this.layout;
    const index = Math.floor(((updates[0] as ClusterUpdate).cluster * clusterSize) / l1Span);
    try {
      await this.tables.withTable(index, updates.some((u) => u.content !== null), async (table) => {
        if (!table) return;
        const writes = new WriteBatch(this.file);
        // Entry changes, made once the data they point at is written.
        const entries: Array<[number, L2EntryInit]> = [];
        let k = 0;
        for (const { cluster, content } of updates) {
          const entryIndex = cluster % l2Entries;
          const entry = decodeL2Entry(table, entryIndex, this.layout);
          const packed = content === null ? null : compressed[k++];
          if (content === null) {
            if (entry.kind !== "unallocated") entries.push([entryIndex, { kind: "unallocated" }]);
          } else if (packed) {
            const host = this.allocator.bytes(packed.length);
            writes.add(host, packed);
            entries.push([entryIndex, { kind: "compressed", hostOffset: host, length: packed.length }]);
          } else if (entry.kind === "normal") {
            writes.add(entry.hostOffset, content);
          } else {
            const host = this.allocator.clusters(1);
            writes.add(host, content);
            entries.push([entryIndex, { kind: "normal", hostOffset: host }]);
          }
        }
        await writes.done();
        for (const [entryIndex, entry] of entries) this.tables.setEntry(index, table, entryIndex, entry);
      });
    } finally {
      for (const { cluster, content } of updates) if (this.queued.get(cluster) === content) this.queued.delete(cluster);
      this.pool.release(slot);
    }
  }
}
