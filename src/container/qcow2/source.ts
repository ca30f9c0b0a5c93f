/**
 * A qcow2 image as the virtual disk it holds: every guest byte comes from a
 * host cluster (in the file, or in an external data file), a compressed
 * cluster, zeros, or the backing file. Reads are mapped to extents first,
 * merged where the host bytes are contiguous, then read side by side (host
 * bytes that follow on in the file in one vectored read: vdisk/host-reads.ts).
 */
import { CorruptImageError, UnsupportedError } from "../../errors.js";
import { type BlockSource, dataRangesOf } from "../../io/block-source.js";
import { checkRange, targetBuffer } from "../../io/bounds.js";
import { LruCache } from "../../util/lru.js";
import { appendRange } from "../../util/ranges.js";
import type { ContainerContext, ContainerSource } from "../format.js";
import { HostReads } from "../vdisk/host-reads.js";
import { decompressCluster } from "./compressed-cluster.js";
import { decodeL2Entry, type L2Entry, subclusterState } from "./entries.js";
import { Autoclear, Compatible, CRYPT_METHODS, featureBit } from "./header.js";
import type { Qcow2Layout } from "./layout.js";
import { Qcow2Tables, cached, readQcow2Metadata } from "./tables.js";

/** Bytes of decompressed clusters kept: a filesystem reads a compressed cluster a block at a time. */
const CLUSTER_CACHE_BYTES = 8 * 1024 * 1024;

/**
 * Where a run of guest bytes comes from. "host": `host` in the image file
 * (or the data file); "compressed": bytes `within` of the cluster compressed
 * at `host`; "zero"; "backing": the same guest offsets of the backing file.
 */
type Extent =
  | { kind: "host"; guest: number; length: number; host: number }
  | { kind: "compressed"; guest: number; length: number; host: number; compressedLength: number; within: number }
  | { kind: "zero" | "backing"; guest: number; length: number };

export class Qcow2Source implements ContainerSource {
  readonly format = "qcow2";
  readonly seekable = true;
  readonly sectorSize = 512;
  readonly size: number;
  private readonly clusters: LruCache<number, Promise<Buffer>>;
  /** Metadata a data cluster must not overlap: [start, end, what]. */
  private readonly fixedMetadata: Array<[number, number, string]>;

  private constructor(
    readonly file: BlockSource,
    readonly layout: Qcow2Layout,
    private readonly tables: Qcow2Tables,
    readonly name: string,
    private readonly backingFile: string | undefined,
    /** The backing image, unless there is none or it was not asked for (noBacking). */
    private readonly backing: BlockSource | undefined,
    private readonly dataFile: BlockSource | undefined,
  ) {
    this.size = layout.header.size;
    this.clusters = new LruCache(Math.max(4, Math.floor(CLUSTER_CACHE_BYTES / layout.clusterSize)));
    const { header, clusterSize } = layout;
    const roundUp = (n: number) => Math.ceil(n / clusterSize) * clusterSize;
    this.fixedMetadata = [
      [0, clusterSize, "the header"],
      [header.l1TableOffset, header.l1TableOffset + roundUp(header.l1Size * 8), "the L1 table"],
      [header.refcountTableOffset, header.refcountTableOffset + header.refcountTableClusters * clusterSize, "the refcount table"],
    ];
  }

  /**
   * Open `file` (a qcow2 image) with its backing chain and data file, both
   * opened through `context.openRelated`. The source does not own `file`:
   * close() closes only what it opened.
   */
  static async open(file: BlockSource, context: ContainerContext): Promise<Qcow2Source> {
    const { layout, backingFile } = await readQcow2Metadata(file);
    if (layout.header.cryptMethod !== 0) {
      const method = CRYPT_METHODS[layout.header.cryptMethod] ?? `method ${layout.header.cryptMethod}`;
      throw new UnsupportedError(
        `${file.name}: the qcow2 image is encrypted (${method}); platter cannot decrypt it: make a plain copy first with qemu-img convert --object secret,... --image-opts ... -O qcow2`,
      );
    }
    if (layout.corrupt) {
      throw new CorruptImageError(
        `${file.name}: qemu marked this qcow2 image corrupt; see what is wrong with \`qemu-img check ${file.name}\`, repair a copy with \`qemu-img check -r all\``,
      );
    }
    if (layout.dirty) {
      context.onWarning?.(
        `${file.name}: this qcow2 image was not closed cleanly (dirty flag): its data is read as it is, but its refcounts may be wrong; \`qemu-img check -r all ${file.name}\` repairs them`,
      );
    }
    const tables = new Qcow2Tables(file, layout);
    const shared = await tables.sharedTable();
    if (shared) {
      throw new CorruptImageError(
        `${file.name}: qcow2 L1 entries ${shared.first} and ${shared.second} both point at the L2 table at byte ${shared.offset}; the image is corrupt`,
      );
    }
    let dataFile: BlockSource | undefined;
    let backing: BlockSource | undefined;
    try {
      if (layout.hasDataFile) {
        const name = layout.extensions.dataFile;
        if (!name) throw new CorruptImageError(`${file.name}: the qcow2 image keeps its data in an external file but does not name it`);
        dataFile = await context.openRelated(name, { raw: true });
      }
      if (backingFile !== undefined && !context.noBacking) {
        backing = await context.openRelated(backingFile, { raw: layout.extensions.backingFormat === "raw" });
      }
    } catch (err) {
      await dataFile?.close();
      throw err;
    }
    return new Qcow2Source(file, layout, tables, file.name, backingFile, backing, dataFile);
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    const out = targetBuffer(length, into);
    const reads: Array<Promise<unknown>> = [];
    const hostReads = new HostReads();
    for await (const extent of this.extents(offset, length)) {
      const dest = out.subarray(extent.guest - offset, extent.guest - offset + extent.length);
      switch (extent.kind) {
        case "zero":
          dest.fill(0);
          break;
        case "host":
          hostReads.add(this.dataFile ?? this.file, extent.host, dest);
          break;
        case "backing":
          reads.push(this.readBacking(extent.guest, dest));
          break;
        case "compressed":
          reads.push(this.compressedCluster(extent).then((cluster) => cluster.copy(dest, 0, extent.within, extent.within + extent.length)));
          break;
      }
    }
    reads.push(hostReads.done());
    await Promise.all(reads);
    return out;
  }

  /** Guest ranges that may hold data: host and compressed clusters, and the backing file's own data ranges. */
  async dataRanges(offset: number, length: number): Promise<Array<[number, number]>> {
    checkRange(this.name, this.size, offset, length);
    const ranges: Array<[number, number]> = [];
    const add = (start: number, len: number) => appendRange(ranges, start, len);
    for await (const extent of this.extents(offset, length)) {
      if (extent.kind === "host" || extent.kind === "compressed") add(extent.guest, extent.length);
      else if (extent.kind === "backing" && this.backing) {
        const inside = Math.max(0, Math.min(extent.length, this.backing.size - extent.guest));
        if (inside === 0) continue;
        const backingRanges = await dataRangesOf(this.backing, extent.guest, inside);
        for (const [start, len] of backingRanges) add(start, len);
      }
    }
    return ranges;
  }

  /** What `qemu-img info` says of this layer. */
  describe(): Record<string, unknown> {
    const { header, extensions } = this.layout;
    return {
      format: "qcow2",
      version: header.version,
      compat: header.version === 2 ? "0.10" : "1.1",
      virtualSize: header.size,
      clusterSize: this.layout.clusterSize,
      fileSize: this.file.size,
      compressionType: this.layout.compression,
      refcountBits: this.layout.refcountBits,
      extendedL2: this.layout.extendedL2,
      lazyRefcounts: featureBit(header.compatibleFeatures, Compatible.lazyRefcounts),
      dirty: this.layout.dirty,
      corrupt: this.layout.corrupt,
      snapshots: header.nbSnapshots,
      ...(this.backingFile !== undefined ? { backingFile: this.backingFile, backingFormat: extensions.backingFormat ?? null } : {}),
      ...(this.layout.hasDataFile
        ? { dataFile: extensions.dataFile ?? null, dataFileRaw: featureBit(header.autoclearFeatures, Autoclear.rawData) }
        : {}),
    };
  }

  /** What `qemu-img info` calls the disk size: the bytes the file holds (its data ranges), walked for `info` alone. */
  async measure(): Promise<Record<string, unknown>> {
    if (!this.file.dataRanges) return {};
    return { actualSize: (await this.file.dataRanges(0, this.file.size)).reduce((sum, [, length]) => sum + length, 0) };
  }

  async close(): Promise<void> {
    await this.backing?.close();
    await this.dataFile?.close();
  }

  /**
   * The extents of [offset, offset+length), in order, adjacent ones merged
   * (zeros with zeros, backing with backing, host bytes that follow on in
   * the file). Every table entry is checked before it is trusted.
   */
  private async *extents(offset: number, length: number): AsyncGenerator<Extent> {
    const { l1Span, clusterSize, l2Entries, subclusterSize } = this.layout;
    const end = offset + length;
    let pending: Extent | undefined;
    const merge = (next: Extent): Extent | undefined => {
      const done = pending;
      if (done && done.kind === next.kind && done.guest + done.length === next.guest) {
        if (done.kind === "zero" || done.kind === "backing" || (done.kind === "host" && next.kind === "host" && done.host + done.length === next.host)) {
          done.length += next.length;
          return undefined;
        }
      }
      pending = next;
      return done;
    };
    let pos = offset;
    while (pos < end) {
      const l1Index = Math.floor(pos / l1Span);
      const withTable = await this.tables.nextL1WithTable(l1Index, Math.ceil(end / l1Span));
      if (withTable > l1Index) {
        const unmapped = Math.min(end, withTable * l1Span);
        const done = merge({ kind: "backing", guest: pos, length: unmapped - pos });
        if (done) yield done;
        pos = unmapped;
        continue;
      }
      const spanEnd = Math.min(end, (l1Index + 1) * l1Span);
      const table = await this.tables.l2Table(await this.l2TableOffset(l1Index));
      while (pos < spanEnd) {
        const cluster = Math.floor(pos / clusterSize);
        const clusterStart = cluster * clusterSize;
        const unallocated = unallocatedRun(table, cluster % l2Entries, Math.ceil(spanEnd / clusterSize) - cluster, this.layout.l2EntryBytes);
        if (unallocated > 0) {
          const runEnd = Math.min(spanEnd, clusterStart + unallocated * clusterSize);
          const done = merge({ kind: "backing", guest: pos, length: runEnd - pos });
          if (done) yield done;
          pos = runEnd;
          continue;
        }
        const clusterEnd = Math.min(spanEnd, clusterStart + clusterSize);
        const entry = decodeL2Entry(table, cluster % l2Entries, this.layout);
        this.checkEntry(entry, clusterStart);
        if (entry.kind === "compressed") {
          const done = merge({
            kind: "compressed",
            guest: pos,
            length: clusterEnd - pos,
            host: entry.hostOffset,
            compressedLength: entry.compressedLength,
            within: pos - clusterStart,
          });
          if (done) yield done;
          pos = clusterEnd;
          continue;
        }
        while (pos < clusterEnd) {
          const sub = Math.floor((pos - clusterStart) / subclusterSize);
          const subEnd = Math.min(clusterEnd, clusterStart + (sub + 1) * subclusterSize);
          const state = subclusterState(entry, sub, this.layout);
          if (state === "invalid") {
            throw new CorruptImageError(
              `${this.name}: qcow2 L2 entry for guest offset ${clusterStart} has contradictory subcluster bitmaps (allocated 0x${entry.allocBits.toString(16)}, zero 0x${entry.zeroBits.toString(16)})`,
            );
          }
          let extent: Extent;
          if (state === "data") {
            extent = { kind: "host", guest: pos, length: subEnd - pos, host: entry.hostOffset + (pos - clusterStart) };
            this.checkHostRange(extent, clusterStart);
          } else {
            extent = { kind: state === "zero" ? "zero" : "backing", guest: pos, length: subEnd - pos };
          }
          const done = merge(extent);
          if (done) yield done;
          pos = subEnd;
        }
      }
    }
    if (pending) yield pending;
  }

  /** The L2 table of L1 entry `index` (which has one), checked. */
  private async l2TableOffset(index: number): Promise<number> {
    const { l2Offset } = await this.tables.l1Entry(index);
    const { clusterSize } = this.layout;
    const where = `${this.name}: qcow2 L1 entry ${index} (guest offset ${index * this.layout.l1Span})`;
    if (l2Offset % clusterSize !== 0) throw new CorruptImageError(`${where} points at byte ${l2Offset}, not a cluster boundary`);
    if (l2Offset + clusterSize > this.file.size) {
      throw new CorruptImageError(`${where} points at byte ${l2Offset}, past the end of the file (${this.file.size} bytes)`);
    }
    this.checkNotMetadata(l2Offset, clusterSize, where);
    return l2Offset;
  }

  /** An entry pointing at the file's metadata, past its end or off alignment is corrupt. */
  private checkEntry(entry: L2Entry, guest: number): void {
    const where = `${this.name}: qcow2 L2 entry for guest offset ${guest}`;
    const { clusterSize, header } = this.layout;
    if (entry.kind === "zero" && header.version < 3) throw new CorruptImageError(`${where} is a zero cluster, which version 2 images cannot have`);
    if (entry.kind === "compressed") {
      if (this.layout.hasDataFile) throw new CorruptImageError(`${where} is compressed, which images with an external data file cannot have`);
      if (entry.hostOffset >= this.file.size) {
        throw new CorruptImageError(`${where} points at byte ${entry.hostOffset}, past the end of the file (${this.file.size} bytes)`);
      }
      this.checkNotMetadata(entry.hostOffset, 1, where);
      return;
    }
    if (entry.kind !== "normal") return;
    if (entry.hostOffset % clusterSize !== 0) throw new CorruptImageError(`${where} points at byte ${entry.hostOffset}, not a cluster boundary`);
    if (!this.dataFile) this.checkNotMetadata(entry.hostOffset, clusterSize, where);
  }

  /**
   * The host bytes an extent reads must exist. Only those: a file may end
   * inside a cluster whose later subclusters are unallocated, and a data
   * file ends with the virtual disk.
   */
  private checkHostRange(extent: Extent & { kind: "host" }, clusterStart: number): void {
    const target = this.dataFile ?? this.file;
    if (extent.host + extent.length > target.size) {
      throw new CorruptImageError(
        `${this.name}: qcow2 L2 entry for guest offset ${clusterStart} points at byte ${extent.host - (extent.guest - clusterStart)}, past the end of ${this.dataFile ? "the data file" : "the file"} (${target.size} bytes); the image may be truncated`,
      );
    }
  }

  private checkNotMetadata(offset: number, length: number, where: string): void {
    for (const [start, end, what] of this.fixedMetadata) {
      if (offset < end && offset + length > start) throw new CorruptImageError(`${where} points at byte ${offset}, inside ${what}`);
    }
  }

  private async readBacking(guest: number, dest: Buffer): Promise<void> {
    const inside = this.backing ? Math.max(0, Math.min(dest.length, this.backing.size - guest)) : 0;
    if (inside > 0) await (this.backing as BlockSource).read(guest, inside, dest.subarray(0, inside));
    dest.fill(0, inside);
  }

  private compressedCluster(extent: Extent & { kind: "compressed" }): Promise<Buffer> {
    return cached(this.clusters, extent.host, async () => {
      // The descriptor counts whole sectors; the file may end inside the last one.
      const length = Math.min(extent.compressedLength, this.file.size - extent.host);
      const input = await this.file.read(extent.host, length);
      const clusterStart = extent.guest - extent.within;
      return decompressCluster(input, this.layout.compression, this.layout.clusterSize, `at byte ${extent.host} (guest offset ${clusterStart}) of ${this.name}`);
    });
  }
}

/**
 * How many entries from `index` on (at most `limit`) are all-zero: plainly
 * unallocated, and skipped without decoding (a sparse disk is mostly them).
 */
function unallocatedRun(table: Buffer, index: number, limit: number, entryBytes: number): number {
  let n = 0;
  for (let at = index * entryBytes; n < limit && at < table.length; at += entryBytes, n++) {
    if (table.readUInt32BE(at) !== 0 || table.readUInt32BE(at + 4) !== 0) break;
    if (entryBytes === 16 && (table.readUInt32BE(at + 8) !== 0 || table.readUInt32BE(at + 12) !== 0)) break;
  }
  return n;
}
