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
 * resume() reads exactly what the last flush() made durable (and maybe
 * more). qemu itself repairs such a dirty image when it opens it
 * read-write.
 *
 * A write resolves once its data is in the file (the caller may reuse its
 * buffer); the L2 entries pointing at new clusters follow a table at a
 * time (table-writer.ts), compressed clusters once compressed
 * (compressed-writer.ts). flush() writes everything and fdatasyncs: a
 * capture saves its mapfile only after it.
 */
import { availableParallelism } from "node:os";
import { UsageError } from "../../errors.js";
import { FileSource } from "../../io/file-source.js";
import { isAllZero, ZEROS } from "../../io/zeros.js";
import type { ContainerSink, ContainerWriter, WriterOptions } from "../format.js";
import { Allocator } from "./allocator.js";
import { CompressedWriter } from "./compressed-writer.js";
import { decodeL2Entry, type L2EntryInit } from "./entries.js";
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
import { ImageFile, WriteBatch } from "./image-file.js";
import { MAX_L1_BYTES, qcow2Layout, type Qcow2Layout } from "./layout.js";
import { writeRefcounts } from "./refcount-writer.js";
import { TableWriter } from "./table-writer.js";
import { readQcow2Metadata } from "./tables.js";

export interface Qcow2WriterOptions extends WriterOptions {
  /** Write compressed clusters: true or "zlib" (qemu's default), or "zstd". */
  compress?: boolean | CompressionType;
  /** Bytes per cluster, a power of two from 512 to 2 MiB; 64 KiB by default (qemu's). */
  clusterSize?: number;
}

const DEFAULT_CLUSTER_SIZE = 65536;
const DIRTY_BIT = 1n << BigInt(Incompatible.dirty);
/** qemu's defaults: Z_DEFAULT_COMPRESSION and ZSTD_CLEVEL_DEFAULT. */
const DEFAULT_LEVEL: Record<CompressionType, number> = { zlib: 6, zstd: 3 };
const LEVELS: Record<CompressionType, [number, number]> = { zlib: [0, 9], zstd: [1, 19] };

function levelOf(options: Qcow2WriterOptions, compression: CompressionType): number {
  const level = options.level ?? DEFAULT_LEVEL[compression];
  const [min, max] = LEVELS[compression];
  if (!Number.isInteger(level) || level < min || level > max) throw new UsageError(`qcow2 ${compression} compression level must be ${min} to ${max}, not ${level}`);
  return level;
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
  /** Plain clusters are in the file and compressed ones copied into the pool's slots when write() resolves. */
  readonly releasesWrites = true;
  readonly name: string;
  private readonly allocator: Allocator;
  private readonly tables: TableWriter;
  private readonly compressed: CompressedWriter | undefined;
  private state: "open" | "failed" | "closed" = "open";

  private constructor(
    private readonly file: ImageFile,
    private readonly layout: Qcow2Layout,
    l1: Buffer,
    private readonly reftable: Buffer,
    end: number,
    compression: CompressionType | undefined,
    options: Qcow2WriterOptions,
  ) {
    this.name = file.name;
    this.allocator = new Allocator(layout.clusterSize, end);
    this.tables = new TableWriter(file, layout, l1, this.allocator);
    if (compression) {
      const level = levelOf(options, compression);
      this.compressed = new CompressedWriter(file, layout, this.tables, this.allocator, compression, level, options.threads ?? availableParallelism());
    }
  }

  /** Create (or replace) the regular file `path` as an empty qcow2 image of `options.size` bytes. */
  static async create(path: string, options: Qcow2WriterOptions): Promise<Qcow2Sink> {
    const size = virtualSize(options);
    const compression = compressionOf(options);
    if (compression) levelOf(options, compression);
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
    const file = await ImageFile.open(path, true);
    try {
      await file.truncate(0);
      await file.truncate(end);
      await file.writeAt(0, Buffer.concat([encodeQcow2Header(header), encodeHeaderExtensions([])]));
    } catch (err) {
      await file.close();
      throw err;
    }
    return new Qcow2Sink(file, layout, Buffer.alloc(l1Size * 8), Buffer.alloc(clusterSize), end, compression, options);
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
      if (compression) levelOf(options, compression);
      l1 = await source.read(header.l1TableOffset, header.l1Size * 8);
      reftable = await source.read(header.refcountTableOffset, layout.refcountTableEntries * 8);
    } finally {
      await source.close();
    }
    const file = await ImageFile.open(path, false);
    const sink = new Qcow2Sink(file, layout, l1, reftable, await file.size(), compressionOf(options) && layout.compression, options);
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
      this.tables.l1.copy(l1);
      const offset = this.allocator.clusters(Math.ceil(l1.length / this.layout.clusterSize));
      await this.file.writeAt(offset, l1);
      this.tables.l1 = l1;
      header.l1Size = needed;
      header.l1TableOffset = offset;
    }
    header.size = rounded;
    // size, crypt_method, l1_size and l1_table_offset are one run of the header: one write switches them together.
    await this.file.writeAt(24, encodeQcow2Header(header).subarray(24, 48));
  }

  async flush(): Promise<void> {
    try {
      await this.idle();
      await this.file.datasync();
    } catch (err) {
      throw this.fail(err);
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
        await writeRefcounts(this.file, this.layout, this.reftable, this.allocator);
        await this.file.datasync();
        await this.writeFeatures(this.layout.header.incompatibleFeatures & ~DIRTY_BIT);
        await this.file.datasync();
      }
    } catch (err) {
      throw this.fail(err);
    } finally {
      this.state = "closed";
      await this.compressed?.close();
      await this.file.close();
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
    const { l1Span } = this.layout;
    // Zeros change only what holds data: a table, or clusters waiting to be compressed. A sparse
    // disk's gigabytes of zeros are skipped a table's span at a time.
    const pending = this.compressed?.pendingTables();
    const jobs: Array<Promise<void>> = [];
    for (let pos = offset; pos < offset + length; ) {
      const index = Math.floor(pos / l1Span);
      const spanEnd = Math.min(offset + length, (index + 1) * l1Span);
      const piece = data?.subarray(pos - offset, spanEnd - offset) ?? null;
      const untouched = piece === null && !this.tables.inUse(index) && !pending?.has(index);
      if (!untouched) jobs.push(this.compressed ? this.compressed.write(index, pos, spanEnd - pos, piece) : this.writeSpan(index, pos, spanEnd - pos, piece));
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
    return this.tables.withTable(index, !zero, async (table) => {
      if (!table) return; // zeros where nothing is allocated: nothing to do
      const { clusterSize, l2Entries } = this.layout;
      const writes = new WriteBatch(this.file);
      // Entry changes, made once the data they point at is written.
      const entries: Array<[number, L2EntryInit]> = [];
      let fresh: Array<{ entry: number; bytes: Buffer }> = [];
      const allocateFresh = () => {
        if (fresh.length === 0) return;
        const host = this.allocator.clusters(fresh.length);
        fresh.forEach(({ entry, bytes }, k) => {
          writes.add(host + k * clusterSize, bytes);
          entries.push([entry, { kind: "normal", hostOffset: host + k * clusterSize }]);
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
          // Zeros over a compressed cluster (a resumed compressed image): gone when whole, merged when in part.
          if (entry.kind === "compressed" && n === clusterSize) entries.push([entryIndex, { kind: "unallocated" }]);
          else if (entry.kind === "compressed") fresh.push({ entry: entryIndex, bytes: (await this.file.readCluster(entry, this.layout)).fill(0, within, within + n) });
        } else if (n === clusterSize) {
          fresh.push({ entry: entryIndex, bytes: piece });
        } else {
          // Part of a cluster: over what it holds (zeros, unless compressed).
          const base = entry.kind === "compressed" ? await this.file.readCluster(entry, this.layout) : Buffer.alloc(clusterSize);
          piece.copy(base, within);
          fresh.push({ entry: entryIndex, bytes: base });
        }
        at += n;
      }
      allocateFresh();
      await writes.done();
      for (const [entryIndex, entry] of entries) this.tables.setEntry(index, table, entryIndex, entry);
    });
  }

  /** Wait until no write is in flight and nothing waits to be compressed. */
  private async idle(): Promise<void> {
    await this.compressed?.flush();
    await this.tables.idle();
  }

  /** Clear or set the dirty bit (the header's 8 bytes of incompatible features). */
  private async writeFeatures(features: bigint): Promise<void> {
    this.layout.header.incompatibleFeatures = features;
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64BE(features);
    await this.file.writeAt(72, buf);
  }

  private fail(err: unknown): unknown {
    if (this.state === "open") this.state = "failed";
    return err;
  }
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
