/**
 * Writing qcow2 (version 3, 64 KiB clusters by default), for convert and
 * capture: a random-access sink that takes writes in any order, as
 * ddrescue's passes make them, and keeps the file readable at every moment.
 *
 * Crash safety, the way qemu's lazy refcounts do it: while the sink is
 * open the header carries the dirty bit, and refcounts are not maintained;
 * close() rebuilds them from the tables (references.ts) and clears the
 * bit. Everything else is written in an order that never lets a table
 * point at bytes not yet written: a data cluster, then its L2 entry; a new
 * L2 table (zeros), then its L1 entry. A kill -9 can only leave clusters
 * nothing points at, which the rebuild counts as free; reopening with
 * resume() reads exactly what earlier writes put there. qemu itself
 * repairs such a dirty image when it opens it read-write.
 *
 * Allocation only appends: uncompressed clusters at the next cluster
 * boundary, compressed ones byte-packed after each other (a cluster may
 * span two host clusters, as qemu allows).
 *
 * Writes resolve once their bytes and entries are in the file (the page
 * cache); flush() also drains compression and fdatasyncs, so a capture's
 * mapfile never claims more than the image holds.
 */
import { constants, promises as fsp } from "node:fs";
import { availableParallelism } from "node:os";
import { CorruptImageError, ioError, UsageError } from "../../errors.js";
import { FileSource } from "../../io/file-source.js";
import { isAllZero, ZEROS } from "../../io/zeros.js";
import { LruCache } from "../../util/lru.js";
import { OrderedWindow } from "../../util/ordered-window.js";
import type { ContainerSink, ContainerWriter, WriterOptions } from "../format.js";
import { CompressPool, type Slot } from "./compress-pool.js";
import { decompressCluster } from "./compressed-cluster.js";
import { decodeL1Entry, decodeL2Entry, decodeRefcountTableEntry, encodeL1Entry, encodeL2Entry, encodeRefcountTableEntry, type L2EntryInit } from "./entries.js";
import { encodeHeaderExtensions } from "./header-extensions.js";
import {
  type CompressionType,
  COMPRESSION_TYPES,
  encodeQcow2Header,
  Incompatible,
  MAX_CLUSTER_BITS,
  MIN_CLUSTER_BITS,
  type Qcow2Header,
  V3_HEADER_LENGTH,
} from "./header.js";
import { MAX_L1_BYTES, qcow2Layout, type Qcow2Layout } from "./layout.js";
import { setRefcount } from "./refcount-block.js";
import { countReferences } from "./refcounts.js";
import { readQcow2Metadata } from "./tables.js";

export interface Qcow2WriterOptions extends WriterOptions {
  /** Write compressed clusters: true or "zlib" (qemu's default), or "zstd". */
  compress?: boolean | CompressionType;
  /** Bytes per cluster, a power of two from 512 to 2 MiB; 64 KiB by default (qemu's). */
  clusterSize?: number;
}

const DEFAULT_CLUSTER_SIZE = 65536;
/** Compressed mode: clusters written in part, held whole until complete or evicted. */
const MAX_PARTIAL = 64;
/** Compressed mode: bytes of clusters handed to a worker at once. */
const BATCH_BYTES = 1 << 20;
/** L2 tables kept in memory (they are also always on disk). */
const TABLES_CACHED = 64;
const DIRTY_BIT = 1n << BigInt(Incompatible.dirty);
/** qemu's defaults: Z_DEFAULT_COMPRESSION and ZSTD_CLEVEL_DEFAULT. */
const DEFAULT_LEVEL: Record<CompressionType, number> = { zlib: 6, zstd: 3 };

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

function compressionOf(options: Qcow2WriterOptions): CompressionType | undefined {
  const { compress } = options;
  if (compress === undefined || compress === false) return undefined;
  if (compress === true) return "zlib";
  if (!COMPRESSION_TYPES.includes(compress)) throw new UsageError(`qcow2 compression must be zlib or zstd, not ${JSON.stringify(compress)}`);
  return compress;
}

/** qemu rounds a virtual size up to whole 512-byte sectors; so does platter. */
function virtualSize(options: Qcow2WriterOptions): number {
  const { size } = options;
  if (size === undefined) throw new UsageError("a qcow2 image needs its virtual size up front");
  if (!Number.isSafeInteger(size) || size < 0) throw new UsageError(`invalid qcow2 virtual size ${size}`);
  return Math.ceil(size / 512) * 512;
}

export class Qcow2Sink implements ContainerSink {
  readonly format = "qcow2";
  readonly sequential = false;
  /** Where the next cluster is allocated (the end of the image). */
  private end: number;
  /**
   * Compressed clusters are packed byte after byte into clusters taken for
   * them: [packFrom, packEnd) is what is left of those, so plain clusters
   * allocated in between do not break the packing (qemu's free_byte_offset).
   */
  private packFrom = 0;
  private packEnd = 0;
  private readonly tables = new LruCache<number, Buffer>(TABLES_CACHED);
  /** Work on one L2 table (and the clusters it maps) happens one job at a time. */
  private readonly tableTurns = new Map<number, Promise<void>>();
  private readonly compressor: CompressPool | undefined;
  private readonly window: OrderedWindow<CompressedUpdates> | undefined;
  /** Compressed mode: the newest content handed to the window per cluster, until it is in the file. */
  private readonly queued = new Map<number, Buffer | null>();
  /** Compressed mode: whole contents of clusters written in part, oldest first. */
  private readonly partial = new Map<number, Buffer>();
  private readonly partialLoads = new Map<number, Promise<Buffer>>();
  private state: "open" | "failed" | "closed" = "open";

  private constructor(
    readonly name: string,
    private readonly handle: fsp.FileHandle,
    private readonly layout: Qcow2Layout,
    private l1: Buffer,
    private reftable: Buffer,
    end: number,
    compression: CompressionType | undefined,
    options: Qcow2WriterOptions,
  ) {
    this.end = Math.ceil(end / layout.clusterSize) * layout.clusterSize;
    if (compression) {
      const threads = options.threads ?? availableParallelism();
      const width = threads + 1;
      const batch = Math.max(1, Math.floor(BATCH_BYTES / layout.clusterSize));
      // A slot per batch in the window, one being stored, one being filled.
      this.compressor = new CompressPool(compression, options.level ?? DEFAULT_LEVEL[compression], threads, layout.clusterSize, batch, width + 2);
      this.window = new OrderedWindow(width, (job) => this.store(job));
    }
  }

  /** Create (or replace) the regular file `path` as an empty qcow2 image of `options.size` bytes. */
  static async create(path: string, options: Qcow2WriterOptions): Promise<Qcow2Sink> {
    const size = virtualSize(options);
    const compression = compressionOf(options);
    const clusterSize = options.clusterSize ?? DEFAULT_CLUSTER_SIZE;
    const clusterBits = Math.log2(clusterSize);
    if (!Number.isInteger(clusterBits) || clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
      throw new UsageError(`qcow2 cluster size must be a power of two from 512 bytes to 2 MiB, not ${clusterSize}`);
    }
    const l1Span = (clusterSize / 8) * clusterSize;
    const l1Size = Math.max(1, Math.ceil(size / l1Span));
    if (l1Size * 8 > MAX_L1_BYTES) throw new UsageError(`a ${size}-byte disk is too large for qcow2 with ${clusterSize}-byte clusters`);
    const l1Clusters = Math.ceil((l1Size * 8) / clusterSize);
    const header: Qcow2Header = {
      version: 3,
      backingFileOffset: 0,
      backingFileSize: 0,
      clusterBits,
      size,
      cryptMethod: 0,
      l1Size,
      l1TableOffset: 2 * clusterSize,
      refcountTableOffset: clusterSize,
      refcountTableClusters: 1,
      nbSnapshots: 0,
      snapshotsOffset: 0,
      incompatibleFeatures: DIRTY_BIT | (compression === "zstd" ? 1n << BigInt(Incompatible.compressionType) : 0n),
      compatibleFeatures: 0n,
      autoclearFeatures: 0n,
      refcountOrder: 4,
      headerLength: V3_HEADER_LENGTH,
      compressionType: compression === "zstd" ? 1 : 0,
    };
    const end = (2 + l1Clusters) * clusterSize;
    const layout = qcow2Layout(header, { featureNames: new Map() }, end);
    const handle = await openFile(path, true);
    try {
      await handle.truncate(0);
      await handle.truncate(end);
      await handle.write(Buffer.concat([encodeQcow2Header(header), encodeHeaderExtensions([])]), 0, undefined, 0);
    } catch (err) {
      await handle.close();
      throw ioError(err, path);
    }
    return new Qcow2Sink(path, handle, layout, Buffer.alloc(l1Size * 8), Buffer.alloc(clusterSize), end, compression, options);
  }

  /**
   * Reopen an image this writer made, after an interruption (kill -9
   * included): its tables are whole by construction, so writing goes on
   * where it stopped; refcounts are rebuilt at close as always.
   */
  static async reopen(path: string, options: Qcow2WriterOptions): Promise<Qcow2Sink> {
    const source = await FileSource.open(path);
    // Killed before its header was written: nothing was in it yet.
    if (source.size < 4 || (await source.read(0, 4)).readUInt32BE(0) === 0) {
      await source.close();
      return Qcow2Sink.create(path, options);
    }
    let layout: Qcow2Layout;
    let l1: Buffer;
    let reftable: Buffer;
    try {
      ({ layout } = await readQcow2Metadata(source));
      const { header } = layout;
      const refuse = (why: string) => new UsageError(`${path}: cannot resume writing this qcow2 image: ${why}`);
      if (header.version !== 3) throw refuse("it is version 2");
      if (header.backingFileOffset !== 0) throw refuse("it has a backing file");
      if (layout.hasDataFile) throw refuse("it keeps its data in an external file");
      if (layout.extendedL2) throw refuse("it has extended L2 entries");
      if (header.nbSnapshots !== 0 || layout.extensions.bitmaps) throw refuse("it has snapshots or bitmaps");
      if (header.cryptMethod !== 0) throw refuse("it is encrypted");
      if (layout.corrupt) throw refuse("qemu marked it corrupt");
      if (header.refcountOrder !== 4) throw refuse(`its refcounts are ${layout.refcountBits} bits wide (platter writes 16)`);
      const size = virtualSize(options);
      if (size !== header.size) throw new UsageError(`${path} holds a ${header.size}-byte disk, not ${size} bytes: not the image this capture was writing`);
      const compression = compressionOf(options);
      if (compression && compression !== layout.compression) throw refuse(`it uses ${layout.compression} compression, not ${compression}`);
      l1 = await source.read(header.l1TableOffset, header.l1Size * 8);
      reftable = await source.read(header.refcountTableOffset, layout.refcountTableEntries * 8);
    } finally {
      await source.close();
    }
    const handle = await openFile(path, false);
    const { size: end } = await handle.stat();
    const sink = new Qcow2Sink(path, handle, layout, l1, reftable, end, compressionOf(options) && layout.compression, options);
    await sink.writeFeatures(layout.header.incompatibleFeatures | DIRTY_BIT);
    return sink;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.checkWrite(offset, data.length);
    await this.eachCluster(offset, data.length, data);
  }

  async writeZeros(offset: number, length: number): Promise<void> {
    this.checkWrite(offset, length);
    await this.eachCluster(offset, length, null);
  }

  /** Grow (or shrink) the virtual disk; growing past what the L1 table maps moves it to a larger one. */
  async setSize(size: number): Promise<void> {
    const { header } = this.layout;
    const rounded = virtualSize({ size });
    if (rounded === header.size) return;
    await this.idle();
    const needed = Math.ceil(rounded / this.layout.l1Span);
    if (needed * 8 > MAX_L1_BYTES) throw new UsageError(`a ${rounded}-byte disk is too large for qcow2 with ${this.layout.clusterSize}-byte clusters`);
    if (needed > header.l1Size) {
      const l1 = Buffer.alloc(needed * 8);
      this.l1.copy(l1);
      const offset = this.allocClusters(Math.ceil(l1.length / this.layout.clusterSize));
      await this.writeAt(offset, l1);
      this.l1 = l1;
      header.l1Size = needed;
      header.l1TableOffset = offset;
    }
    header.size = rounded;
    // size, crypt_method, l1_size and l1_table_offset are one run of the header: one write switches them together.
    await this.writeAt(24, encodeQcow2Header(header).subarray(24, 48));
  }

  async flush(): Promise<void> {
    await this.idle();
    try {
      await this.handle.datasync();
    } catch (err) {
      throw this.fail(ioError(err, this.name));
    }
  }

  /**
   * Finish the image: pending clusters written, refcounts rebuilt, the
   * dirty bit cleared. After a failed write the image is left dirty (qemu
   * and resume() know what that means) and only the file is closed.
   */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    const failed = this.state === "failed";
    try {
      if (!failed) {
        await this.flush();
        await this.writeRefcounts();
        await this.handle.datasync();
        await this.writeFeatures(this.layout.header.incompatibleFeatures & ~DIRTY_BIT);
        await this.handle.datasync();
      }
    } catch (err) {
      throw this.fail(ioError(err, this.name));
    } finally {
      this.state = "closed";
      await this.compressor?.close();
      await this.handle.close();
    }
  }

  // ---- writing clusters ------------------------------------------------------

  private checkWrite(offset: number, length: number): void {
    if (this.state !== "open") throw new UsageError(`${this.name}: the qcow2 image is ${this.state === "closed" ? "closed" : "unusable after a failed write"}`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.layout.header.size) {
      throw new UsageError(`${this.name}: write of ${length} bytes at ${offset} is outside the ${this.layout.header.size}-byte virtual disk`);
    }
  }

  /** `data` (null: zeros) at `offset`, one L2 table's worth at a time, side by side. */
  private async eachCluster(offset: number, length: number, data: Buffer | null): Promise<void> {
    const { l1Span, clusterSize } = this.layout;
    // Zeros change only what holds data: a table, or clusters waiting to be compressed. A sparse
    // disk's gigabytes of zeros are skipped a table's span at a time.
    const waiting = new Set([...this.queued.keys(), ...this.partial.keys()].map((c) => Math.floor((c * clusterSize) / l1Span)));
    const jobs: Array<Promise<void>> = [];
    for (let pos = offset; pos < offset + length; ) {
      const index = Math.floor(pos / l1Span);
      const spanEnd = Math.min(offset + length, (index + 1) * l1Span);
      const piece = data?.subarray(pos - offset, spanEnd - offset) ?? null;
      const untouched = piece === null && decodeL1Entry(this.l1, index).l2Offset === 0 && !this.tableTurns.has(index) && !waiting.has(index);
      if (!untouched) jobs.push(this.compressor ? this.writeCompressed(index, pos, spanEnd - pos, piece) : this.writeSpan(index, pos, spanEnd - pos, piece));
      pos = spanEnd;
    }
    try {
      await Promise.all(jobs);
    } catch (err) {
      throw this.fail(err);
    }
  }

  /** Uncompressed: in place where a cluster is allocated, new clusters (appended, contiguous) where not. */
  private writeSpan(index: number, pos: number, length: number, data: Buffer | null): Promise<void> {
    const zero = data === null || isAllZero(data);
    return this.withTable(index, !zero, async (table, tableOffset) => {
      if (!table) return; // zeros where nothing is allocated: nothing to do
      const { clusterSize, l2Entries } = this.layout;
      const writes = new WriteBatch(this);
      const changed: number[] = [];
      let fresh: Array<{ entry: number; bytes: Buffer }> = [];
      const allocateFresh = () => {
        if (fresh.length === 0) return;
        const host = this.allocClusters(fresh.length);
        fresh.forEach(({ entry, bytes }, k) => {
          writes.add(host + k * clusterSize, bytes);
          encodeL2Entry(table, entry, { kind: "normal", hostOffset: host + k * clusterSize }, this.layout);
          changed.push(entry);
        });
        fresh = [];
      };
      for (let at = pos; at < pos + length; ) {
        const cluster = Math.floor(at / clusterSize);
        const within = at - cluster * clusterSize;
        const n = Math.min(clusterSize - within, pos + length - at);
        const piece = data?.subarray(at - pos, at - pos + n) ?? null;
        const entryIndex = cluster % l2Entries;
        const entry = decodeL2Entry(table, entryIndex, this.layout);
        if (entry.kind === "normal") {
          allocateFresh();
          writes.add(entry.hostOffset + within, piece ?? ZEROS.subarray(0, n));
        } else if (piece === null || isAllZero(piece)) {
          allocateFresh();
          if (entry.kind === "compressed") {
            // Zeros over part of a compressed cluster: the rest must stay.
            if (n === clusterSize) this.setEntry(table, entryIndex, { kind: "unallocated" }, changed);
            else fresh.push({ entry: entryIndex, bytes: await this.merged(entry.hostOffset, entry.compressedLength, within, null, n) });
          }
        } else if (n === clusterSize) {
          fresh.push({ entry: entryIndex, bytes: piece });
        } else {
          const base = entry.kind === "compressed" ? await this.merged(entry.hostOffset, entry.compressedLength, within, piece, n) : placed(clusterSize, within, piece);
          fresh.push({ entry: entryIndex, bytes: base });
        }
        at += n;
      }
      allocateFresh();
      await writes.done();
      await this.writeEntries(table, tableOffset, changed);
    });
  }

  /** Compressed: whole clusters to the window, a batch per call; parts of clusters held until the cluster is whole. */
  private async writeCompressed(index: number, pos: number, length: number, data: Buffer | null): Promise<void> {
    const { clusterSize, header, l2Entries } = this.layout;
    // Zeros where a cluster holds nothing already are no work at all.
    const stored =
      data === null
        ? await this.withTable(index, false, async (table) => (entry: number) => table !== undefined && decodeL2Entry(table, entry, this.layout).kind !== "unallocated")
        : () => true;
    const batchSize = (this.compressor as CompressPool).batch;
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
        if (batch.length === batchSize) {
          await this.submit(batch);
          batch = [];
        }
        continue;
      }
      let content = this.partial.get(cluster);
      // Loading it may take a while; by then another write may have handed it to the window: load again.
      while (!content) {
        const loaded = await this.partialCluster(cluster);
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

  /** The whole current content of `cluster`, to be written in part (shared by concurrent partial writes). */
  private partialCluster(cluster: number): Promise<Buffer> {
    let load = this.partialLoads.get(cluster);
    if (!load) {
      load = this.clusterContent(cluster).then((content) => {
        this.partial.set(cluster, content);
        return content;
      });
      load.finally(() => this.partialLoads.delete(cluster)).catch(() => {});
      this.partialLoads.set(cluster, load);
    }
    return load;
  }

  /** A copy of what `cluster` holds now: queued content first, then the file. */
  private async clusterContent(cluster: number): Promise<Buffer> {
    const { clusterSize, l2Entries, l1Span } = this.layout;
    if (this.queued.has(cluster)) {
      const content = this.queued.get(cluster);
      return content ? Buffer.from(content) : Buffer.alloc(clusterSize);
    }
    return this.withTable(Math.floor((cluster * clusterSize) / l1Span), false, async (table) => {
      const entry = table && decodeL2Entry(table, cluster % l2Entries, this.layout);
      if (entry?.kind === "normal") return this.readAt(entry.hostOffset, clusterSize);
      if (entry?.kind === "compressed") return this.merged(entry.hostOffset, entry.compressedLength, 0, null, 0);
      return Buffer.alloc(clusterSize);
    });
  }

  /**
   * Hand new contents of clusters (of one L2 table; null: zeros) to the
   * window: copied into a slot (the caller may reuse `data` once this
   * resolves), compressed there by the pool, stored in order.
   */
  private async submit(items: Array<{ cluster: number; data: Buffer | null }>): Promise<void> {
    const pool = this.compressor as CompressPool;
    const { clusterSize } = this.layout;
    const slot = await pool.acquire();
    let count = 0;
    const updates = items.map(({ cluster, data }): ClusterUpdate => {
      if (data === null) return { cluster, content: null };
      const content = slot.input.subarray(count * clusterSize, ++count * clusterSize);
      data.copy(content);
      content.fill(0, data.length);
      return { cluster, content };
    });
    for (const { cluster, content } of updates) this.queued.set(cluster, content);
    await (this.window as OrderedWindow<CompressedUpdates>).push(async () => {
      try {
        return { updates, slot, compressed: count > 0 ? await pool.compress(slot, count) : [] };
      } catch (err) {
        pool.release(slot); // a failed job is never stored
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
    const { clusterSize, l1Span } = this.layout;
    const index = Math.floor(((updates[0] as ClusterUpdate).cluster * clusterSize) / l1Span);
    try {
      await this.storeInTable(index, updates, compressed);
    } finally {
      for (const { cluster, content } of updates) if (this.queued.get(cluster) === content) this.queued.delete(cluster);
      (this.compressor as CompressPool).release(slot);
    }
  }

  private async storeInTable(index: number, updates: ClusterUpdate[], compressed: Array<Buffer | null>): Promise<void> {
    const { l2Entries } = this.layout;
    await this.withTable(index, updates.some((u) => u.content !== null), async (table, tableOffset) => {
      if (!table) return;
      const writes = new WriteBatch(this);
      const changed: number[] = [];
      let k = 0;
      for (const { cluster, content } of updates) {
        const entryIndex = cluster % l2Entries;
        const entry = decodeL2Entry(table, entryIndex, this.layout);
        const packed = content === null ? null : compressed[k++];
        if (content === null) {
          if (entry.kind !== "unallocated") this.setEntry(table, entryIndex, { kind: "unallocated" }, changed);
        } else if (packed) {
          const host = this.allocBytes(packed.length);
          writes.add(host, packed);
          this.setEntry(table, entryIndex, { kind: "compressed", hostOffset: host, length: packed.length }, changed);
        } else if (entry.kind === "normal") {
          writes.add(entry.hostOffset, content);
        } else {
          const host = this.allocClusters(1);
          writes.add(host, content);
          this.setEntry(table, entryIndex, { kind: "normal", hostOffset: host }, changed);
        }
      }
      await writes.done();
      await this.writeEntries(table, tableOffset, changed);
    });
  }

  /** A compressed cluster's content with `piece` (null: `length` zeros) put at `within`. */
  private async merged(host: number, compressedLength: number, within: number, piece: Buffer | null, length: number): Promise<Buffer> {
    const { clusterSize, compression } = this.layout;
    const stored = await this.readAt(host, compressedLength, true);
    const content = await decompressCluster(stored, compression, clusterSize, `at byte ${host} of ${this.name}`);
    if (piece) piece.copy(content, within);
    else content.fill(0, within, within + length);
    return content;
  }

  // ---- tables ------------------------------------------------------------------

  /**
   * Run `job` on the L2 table of L1 entry `index` once every earlier job on
   * it is done; `create`: make the table if it is missing (else the job gets
   * undefined). One table's entries are thus never read while a write of
   * them is under way.
   */
  private async withTable<T>(index: number, create: boolean, job: (table: Buffer | undefined, offset: number) => Promise<T>): Promise<T> {
    const previous = this.tableTurns.get(index) ?? Promise.resolve();
    let release = () => {};
    const turn = previous.then(() => new Promise<void>((resolve) => (release = resolve)));
    this.tableTurns.set(index, turn);
    await previous;
    try {
      let offset = decodeL1Entry(this.l1, index).l2Offset;
      let table = this.tables.get(index);
      if (!table && offset !== 0) table = this.tables.set(index, await this.readAt(offset, this.layout.clusterSize));
      if (!table && create) {
        // The table (zeros) is in the file before the L1 entry points at it.
        offset = this.allocClusters(1);
        table = Buffer.alloc(this.layout.clusterSize);
        await this.writeAt(offset, table);
        encodeL1Entry(this.l1, index, offset);
        await this.writeAt(this.layout.header.l1TableOffset + index * 8, Buffer.from(this.l1.subarray(index * 8, index * 8 + 8)));
        this.tables.set(index, table);
      }
      return await job(table, offset);
    } finally {
      release();
      await turn;
      if (this.tableTurns.get(index) === turn) this.tableTurns.delete(index);
    }
  }

  private setEntry(table: Buffer, entryIndex: number, entry: L2EntryInit, changed: number[]): void {
    encodeL2Entry(table, entryIndex, entry, this.layout);
    changed.push(entryIndex);
  }

  /** Write the changed entries of a table, a contiguous run at a time. */
  private async writeEntries(table: Buffer, tableOffset: number, changed: number[]): Promise<void> {
    const bytes = this.layout.l2EntryBytes;
    changed.sort((a, b) => a - b);
    for (let i = 0; i < changed.length; ) {
      let j = i + 1;
      while (j < changed.length && (changed[j] as number) <= (changed[j - 1] as number) + 1) j++;
      const first = changed[i] as number;
      const last = changed[j - 1] as number;
      await this.writeAt(tableOffset + first * bytes, Buffer.from(table.subarray(first * bytes, (last + 1) * bytes)));
      i = j;
    }
  }

  /** Wait until no write is in flight and nothing waits to be compressed. */
  private async idle(): Promise<void> {
    if (this.window) {
      for (const [cluster, content] of [...this.partial]) {
        this.partial.delete(cluster);
        await this.submit([{ cluster, data: isAllZero(content) ? null : content }]);
      }
      try {
        await this.window.drain();
      } catch (err) {
        throw this.fail(err);
      }
    }
    while (this.tableTurns.size > 0) await Promise.all(this.tableTurns.values());
  }

  // ---- refcounts -----------------------------------------------------------------

  /**
   * Give every cluster in use its refcount: plan the refcount blocks (and a
   * larger refcount table, when the file outgrew it) at the end of the
   * file, then count references from the tables a window at a time and
   * write each block whole.
   */
  private async writeRefcounts(): Promise<void> {
    const { layout } = this;
    const { header, clusterSize, refcountBlockEntries } = layout;
    for (let grew = true; grew; ) {
      grew = false;
      const blocks = Math.ceil(Math.ceil(this.end / clusterSize) / refcountBlockEntries);
      if (blocks > layout.refcountTableEntries) {
        // Room for the file to double before the table must move again.
        const clusters = Math.ceil((blocks * 2 * 8) / clusterSize);
        const table = Buffer.alloc(clusters * clusterSize);
        this.reftable.copy(table);
        this.reftable = table;
        header.refcountTableOffset = this.allocClusters(clusters);
        header.refcountTableClusters = clusters;
        layout.refcountTableEntries = (clusters * clusterSize) / 8;
        grew = true;
        continue;
      }
      for (let i = 0; i < blocks; i++) {
        if (decodeRefcountTableEntry(this.reftable, i).offset !== 0) continue;
        encodeRefcountTableEntry(this.reftable, i, this.allocClusters(1));
        grew = true;
      }
    }
    const clusters = Math.ceil(this.end / clusterSize);
    await this.handle.truncate(Math.max(this.end, clusters * clusterSize));
    await this.writeAt(header.refcountTableOffset, this.reftable);
    await this.writeAt(48, encodeQcow2Header(header).subarray(48, 60));
    await this.handle.datasync();

    const source = await FileSource.open(this.name);
    try {
      for await (const { counts } of countReferences(source, layout, clusters)) {
        const firstBlock = Math.floor(counts.first / refcountBlockEntries);
        const lastBlock = Math.floor((counts.first + counts.counts.length - 1) / refcountBlockEntries);
        for (let b = firstBlock; b <= lastBlock; b++) {
          const block = Buffer.alloc(clusterSize);
          for (let k = 0; k < refcountBlockEntries; k++) {
            const i = b * refcountBlockEntries + k - counts.first;
            if (i >= 0 && i < counts.counts.length) setRefcount(block, k, header.refcountOrder, Math.min(0xffff, counts.counts[i] as number));
          }
          await this.writeAt(decodeRefcountTableEntry(this.reftable, b).offset, block);
        }
      }
    } finally {
      await source.close();
    }
  }

  // ---- file ------------------------------------------------------------------------

  private allocClusters(count: number): number {
    const start = this.end;
    this.end += count * this.layout.clusterSize;
    return start;
  }

  /** Room for `length` bytes of compressed data, right after the last (a cluster may span two host clusters). */
  private allocBytes(length: number): number {
    const { clusterSize } = this.layout;
    const missing = length - (this.packEnd - this.packFrom);
    if (missing > 0) {
      if (this.packEnd === this.end) {
        // The packing area ends the image: it grows in place, and the data spans into the next cluster.
        const count = Math.ceil(missing / clusterSize);
        this.allocClusters(count);
        this.packEnd += count * clusterSize;
      } else {
        const count = Math.ceil(length / clusterSize);
        this.packFrom = this.allocClusters(count);
        this.packEnd = this.packFrom + count * clusterSize;
      }
    }
    const start = this.packFrom;
    this.packFrom += length;
    return start;
  }

  /** Clear or set the dirty bit (the header's 8 bytes of incompatible features). */
  private async writeFeatures(features: bigint): Promise<void> {
    this.layout.header.incompatibleFeatures = features;
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64BE(features);
    await this.writeAt(72, buf);
  }

  async writeAt(offset: number, data: Buffer): Promise<void> {
    try {
      for (let done = 0; done < data.length; ) {
        done += (await this.handle.write(data, done, data.length - done, offset + done)).bytesWritten;
      }
    } catch (err) {
      throw ioError(err, `${this.name}: write at offset ${offset}`);
    }
  }

  async writevAt(offset: number, buffers: Buffer[]): Promise<void> {
    let written: number;
    try {
      written = (await this.handle.writev(buffers, offset)).bytesWritten;
    } catch (err) {
      throw ioError(err, `${this.name}: write at offset ${offset}`);
    }
    // A short vectored write: the rest one buffer at a time.
    for (const buf of buffers) {
      if (written >= buf.length) {
        written -= buf.length;
        offset += buf.length;
        continue;
      }
      await this.writeAt(offset + written, buf.subarray(written));
      offset += buf.length;
      written = 0;
    }
  }

  /** Read `length` bytes at `offset`; `short`: the file may end first (a compressed cluster's last sector). */
  private async readAt(offset: number, length: number, short = false): Promise<Buffer> {
    const buf = Buffer.alloc(length);
    let done = 0;
    try {
      while (done < length) {
        const { bytesRead } = await this.handle.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } catch (err) {
      throw ioError(err, `${this.name}: read at offset ${offset}`);
    }
    if (done < length && !short) throw new CorruptImageError(`${this.name}: qcow2 cluster at byte ${offset} is past the end of the file`);
    return buf.subarray(0, done);
  }

  private fail(err: unknown): unknown {
    if (this.state === "open") this.state = "failed";
    return err;
  }
}

/** `piece` at `within` of a fresh zero-filled cluster (the piece itself when it is the whole cluster). */
function placed(clusterSize: number, within: number, piece: Buffer): Buffer {
  if (within === 0 && piece.length === clusterSize) return Buffer.from(piece);
  const out = Buffer.alloc(clusterSize);
  piece.copy(out, within);
  return out;
}

/** Writes gathered and issued as one vectored write per contiguous run of host bytes. */
class WriteBatch {
  private runs: Array<{ offset: number; length: number; buffers: Buffer[] }> = [];

  constructor(private readonly sink: Qcow2Sink) {}

  add(offset: number, data: Buffer): void {
    const last = this.runs[this.runs.length - 1];
    if (last && last.offset + last.length === offset) {
      last.buffers.push(data);
      last.length += data.length;
    } else {
      this.runs.push({ offset, length: data.length, buffers: [data] });
    }
  }

  async done(): Promise<void> {
    await Promise.all(this.runs.map((run) => (run.buffers.length === 1 ? this.sink.writeAt(run.offset, run.buffers[0] as Buffer) : this.sink.writevAt(run.offset, run.buffers))));
    this.runs = [];
  }
}

/** Open DEST for reading and writing; a regular file only (a qcow2 on a device would need its own allocation rules). */
async function openFile(path: string, create: boolean): Promise<fsp.FileHandle> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(path, constants.O_RDWR | (create ? constants.O_CREAT : 0), 0o644);
  } catch (err) {
    throw ioError(err, path);
  }
  const stat = await handle.stat();
  if (!stat.isFile()) {
    await handle.close();
    throw new UsageError(`${path}: a qcow2 image is written to a regular file, not ${stat.isBlockDevice() ? "a block device" : "this"}`);
  }
  return handle;
}

export const qcow2Writer: ContainerWriter = {
  name: "qcow2",
  extensions: [".qcow2"],
  create: (path, options) => Qcow2Sink.create(path, options as Qcow2WriterOptions),
  /** A random-access image: the capture's mapfile says what it holds, so nothing is counted as committed here. */
  async resume(path, options) {
    return { sink: await Qcow2Sink.reopen(path, options as Qcow2WriterOptions), committed: 0 };
  },
};
