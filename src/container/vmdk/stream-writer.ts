/**
 * Writing a streamOptimized VMDK (convert --to vmdk), the subformat VMware
 * and every OVA importer take, laid out as "Virtual Disk Format 5.0" gives
 * it for a stream: the header (grain directory "at the end"), the embedded
 * descriptor, then each grain that is not all zeros as a grain marker and
 * its deflate (zlib) stream, in disk order; after the grains of each grain
 * table's span (32 MiB) that table behind its marker; at the end the grain
 * directory, the footer (the header with the directory's offset) and the
 * end-of-stream marker. Nothing is ever written twice or out of order, so
 * the sink is sequential and the file could go down a pipe.
 *
 * Grains are compressed on the threadpool (zlib's async deflate), several at
 * once in an OrderedWindow, and written in order as they come back.
 */
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { basename } from "node:path";
import { promisify } from "node:util";
import { deflate as deflateCallback } from "node:zlib";
import { UsageError } from "../../errors.js";
import type { FileSink } from "../../io/file-sink.js";
import { isAllZero } from "../../io/zeros.js";
import { OrderedWindow } from "../../util/ordered-window.js";
import type { ContainerSink, ContainerWriter, WriterOptions } from "../format.js";
import { createImageFile } from "../vdisk/allocating-sink.js";
import { encodeDescriptor } from "./descriptor.js";
import { encodeGrainMarker, encodeMetadataMarker, GRAIN_MARKER_BYTES, MarkerType } from "./marker.js";
import { COMPRESSION_DEFLATE, encodeSparseHeader, Flags, SECTOR, type SparseHeader } from "./sparse-header.js";

const deflate = promisify(deflateCallback);

/** 64 KiB grains and 512-entry grain tables, as VMware and qemu-img make them. */
const GRAIN_SECTORS = 128;
const GRAIN_BYTES = GRAIN_SECTORS * SECTOR;
const GTES_PER_GT = 512;
const GT_SECTORS = (GTES_PER_GT * 4) / SECTOR;
const DESCRIPTOR_AT = 1;
const DESCRIPTOR_SECTORS = 20;
/** Grains start at 64 KiB, as in the streams VMware's tools write. */
const OVERHEAD_SECTORS = 128;
/** zlib's default level, which qemu-img uses too. */
const DEFAULT_LEVEL = 6;
/** The largest disk a 32-bit grain table entry (a sector number) can address in the file, with room to spare. */
const MAX_SIZE = 2 * 1024 ** 4 - GRAIN_BYTES;

interface CompressedGrain {
  grain: number;
  bytes: Buffer;
}

export class StreamVmdkSink implements ContainerSink {
  readonly format = "vmdk";
  readonly sequential = true;
  readonly name: string;
  private readonly capacity: number;
  private readonly gd: Buffer;
  /** The grain table being filled: the one covering the grains written last. */
  private readonly gt = Buffer.alloc(GTES_PER_GT * 4);
  private gtIndex = 0;
  private readonly window: OrderedWindow<CompressedGrain>;
  /** The grain being gathered from writes, and how many of its bytes have come. */
  private readonly pending = Buffer.alloc(GRAIN_BYTES);
  private pendingBytes = 0;
  /** The next disk offset a write must start at. */
  private next = 0;
  /** Where the next thing goes in the file, in bytes (always whole sectors). */
  private end = OVERHEAD_SECTORS * SECTOR;
  private state: "open" | "failed" | "finished" | "closed" = "open";

  private constructor(
    private readonly file: FileSink,
    readonly size: number,
    private readonly level: number,
    threads: number,
  ) {
    this.name = file.name;
    this.capacity = Math.ceil(size / SECTOR);
    const grains = Math.ceil(this.capacity / GRAIN_SECTORS);
    this.gd = Buffer.alloc(Math.ceil(grains / GTES_PER_GT) * 4);
    this.window = new OrderedWindow(threads * 4, (grain) => this.writeGrain(grain));
  }

  static async create(path: string, options: WriterOptions): Promise<StreamVmdkSink> {
    const { size } = options;
    if (size === undefined) throw new UsageError("a VMDK image needs its virtual size up front");
    if (!Number.isSafeInteger(size) || size < 0) throw new UsageError(`invalid VMDK virtual size ${size}`);
    if (size > MAX_SIZE) throw new UsageError(`a streamOptimized VMDK holds at most 2 TiB; this disk is ${size} bytes`);
    const level = options.level ?? DEFAULT_LEVEL;
    if (!Number.isInteger(level) || level < 1 || level > 9) throw new UsageError(`VMDK compression level must be 1 to 9, not ${options.level}`);
    const threads = options.threads ?? availableParallelism();
    const file = await createImageFile(path);
    const sink = new StreamVmdkSink(file, size, level, threads);
    try {
      await file.write(0, encodeSparseHeader(sink.header("end")));
      await file.write(DESCRIPTOR_AT * SECTOR, sink.descriptor(options.destName ?? basename(path)));
    } catch (err) {
      await file.close();
      throw err;
    }
    return sink;
  }

  write(offset: number, data: Buffer): Promise<void> {
    return this.guard(async () => {
      this.checkNext(offset, data.length);
      for (let pos = 0; pos < data.length; ) {
        const take = Math.min(GRAIN_BYTES - this.pendingBytes, data.length - pos);
        data.copy(this.pending, this.pendingBytes, pos, pos + take);
        this.pendingBytes += take;
        pos += take;
        this.next += take;
        if (this.pendingBytes === GRAIN_BYTES) await this.submitPending();
      }
    });
  }

  /** Zeros finish the grain being gathered; whole grains of them are skipped, costing nothing. */
  writeZeros(offset: number, length: number): Promise<void> {
    return this.guard(async () => {
      this.checkNext(offset, length);
      const stop = offset + length;
      if (this.pendingBytes > 0) {
        const take = Math.min(GRAIN_BYTES - this.pendingBytes, length);
        this.pending.fill(0, this.pendingBytes, this.pendingBytes + take);
        this.pendingBytes += take;
        this.next += take;
        if (this.pendingBytes === GRAIN_BYTES) await this.submitPending();
      }
      // Past whole zero grains: their entries stay 0 (unallocated).
      const wholeGrainsEnd = Math.floor(stop / GRAIN_BYTES) * GRAIN_BYTES;
      if (this.next < wholeGrainsEnd) this.next = wholeGrainsEnd;
      if (this.next < stop) {
        this.pending.fill(0, 0, stop - this.next);
        this.pendingBytes = stop - this.next;
        this.next = stop;
      }
    });
  }

  /** The size was fixed at create(); convert's final setSize() has nothing to do. */
  async setSize(size: number): Promise<void> {
    if (size !== this.size) throw new UsageError(`${this.name}: a ${this.size}-byte VMDK stream cannot become ${size} bytes`);
  }

  /**
   * Write what follows the grains. Once: the stream then ends, so the disk
   * must have come whole (a short last grain is padded with zeros).
   */
  flush(): Promise<void> {
    if (this.state === "finished") return this.file.flush();
    return this.guard(async () => {
      if (this.next < this.size) throw new UsageError(`${this.name}: the VMDK stream ends at byte ${this.next} of ${this.size}`);
      if (this.pendingBytes > 0) {
        this.pending.fill(0, this.pendingBytes);
        await this.submitPending();
      }
      await this.window.drain();
      await this.writeGrainTable();
      await this.writeTrailer();
      this.state = "finished";
      await this.file.flush();
    });
  }

  /** Finish the stream unless a write failed (the caller then removes the file), and close it. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    try {
      if (this.state === "open") await this.flush();
    } finally {
      if (this.state !== "failed") await this.window.drain().catch(() => {});
      this.state = "closed";
      await this.file.close();
    }
  }

  private async submitPending(): Promise<void> {
    const grain = Math.floor((this.next - 1) / GRAIN_BYTES);
    this.pendingBytes = 0;
    if (isAllZero(this.pending)) return;
    const bytes = Buffer.from(this.pending);
    await this.window.push(async () => ({ grain, bytes: await deflate(bytes, { level: this.level }) }));
  }

  /** Called in disk order: the grain's marker and stream, padded to a sector; its table first if it starts a new one. */
  private async writeGrain({ grain, bytes }: CompressedGrain): Promise<void> {
    const table = Math.floor(grain / GTES_PER_GT);
    if (table !== this.gtIndex) {
      await this.writeGrainTable();
      this.gtIndex = table;
    }
    const at = this.end;
    const length = roundToSector(GRAIN_MARKER_BYTES + bytes.length);
    const framed = Buffer.alloc(length);
    encodeGrainMarker({ lba: grain * GRAIN_SECTORS, size: bytes.length }).copy(framed);
    bytes.copy(framed, GRAIN_MARKER_BYTES);
    await this.file.write(at, framed);
    this.gt.writeUInt32LE(at / SECTOR, (grain % GTES_PER_GT) * 4);
    this.end += length;
  }

  /** The table being filled, behind its marker, unless none of its grains held data. */
  private async writeGrainTable(): Promise<void> {
    if (isAllZero(this.gt)) return;
    const at = this.end;
    await this.file.write(at, Buffer.concat([encodeMetadataMarker({ sectors: GT_SECTORS, type: MarkerType.grainTable }), this.gt]));
    this.gd.writeUInt32LE(at / SECTOR + 1, this.gtIndex * 4);
    this.end += SECTOR + this.gt.length;
    this.gt.fill(0);
  }

  /** The grain directory, the footer and the end-of-stream marker. */
  private async writeTrailer(): Promise<void> {
    const gdSectors = roundToSector(this.gd.length) / SECTOR;
    const gdAt = this.end + SECTOR;
    const gd = Buffer.alloc(gdSectors * SECTOR);
    this.gd.copy(gd);
    const trailer = Buffer.concat([
      encodeMetadataMarker({ sectors: gdSectors, type: MarkerType.grainDirectory }),
      gd,
      encodeMetadataMarker({ sectors: 1, type: MarkerType.footer }),
      encodeSparseHeader(this.header(gdAt / SECTOR)),
      encodeMetadataMarker({ sectors: 0, type: MarkerType.endOfStream }),
    ]);
    await this.file.write(this.end, trailer);
    this.end += trailer.length;
    await this.file.setSize(this.end);
  }

  private header(gdOffset: number | "end"): SparseHeader {
    return {
      version: 3,
      flags: Flags.newlineTest | Flags.compressed | Flags.markers,
      capacity: this.capacity,
      grainSize: GRAIN_SECTORS,
      descriptorOffset: DESCRIPTOR_AT,
      descriptorSize: DESCRIPTOR_SECTORS,
      gtesPerGt: GTES_PER_GT,
      rgdOffset: 0,
      gdOffset,
      overhead: OVERHEAD_SECTORS,
      uncleanShutdown: false,
      compressAlgorithm: COMPRESSION_DEFLATE,
    };
  }

  /** The embedded descriptor, with the IDE geometry VMware's tools give a disk this size. */
  private descriptor(extentName: string): Buffer {
    const cylinders = Math.min(16383, Math.max(1, Math.floor(this.capacity / (16 * 63))));
    const text = encodeDescriptor({
      createType: "streamOptimized",
      cid: randomBytes(4).toString("hex"),
      parentCid: "ffffffff",
      extents: [{ access: "RW", sectors: this.capacity, type: "SPARSE", file: extentName, offset: 0 }],
      ddb: {
        virtualHWVersion: "4",
        "geometry.cylinders": String(cylinders),
        "geometry.heads": "16",
        "geometry.sectors": "63",
        adapterType: "ide",
      },
    });
    const bytes = Buffer.alloc(DESCRIPTOR_SECTORS * SECTOR);
    if (Buffer.byteLength(text) > bytes.length) throw new UsageError(`VMDK extent name too long for the descriptor: ${extentName}`);
    bytes.write(text);
    return bytes;
  }

  private checkNext(offset: number, length: number): void {
    if (offset !== this.next) throw new UsageError(`${this.name}: a VMDK stream is written in order; got byte ${offset}, expected ${this.next}`);
    if (offset + length > this.size) throw new UsageError(`${this.name}: write of ${length} bytes at offset ${offset} is outside the ${this.size}-byte disk`);
  }

  private async guard(work: () => Promise<void>): Promise<void> {
    if (this.state !== "open") throw new UsageError(`${this.name}: the VMDK stream is ${this.state === "failed" ? "unusable after a failed write" : this.state}`);
    try {
      await work();
    } catch (err) {
      this.state = "failed";
      throw err;
    }
  }
}

function roundToSector(bytes: number): number {
  return Math.ceil(bytes / SECTOR) * SECTOR;
}

export const vmdkWriter: ContainerWriter = {
  name: "vmdk",
  extensions: [".vmdk"],
  create: (path: string, options: WriterOptions): Promise<ContainerSink> => StreamVmdkSink.create(path, options),
};
