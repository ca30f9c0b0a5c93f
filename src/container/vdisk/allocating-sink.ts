/**
 * The writing half dynamic VHD and VHDX share: the disk in fixed-size
 * blocks, each block placed at the end of the file on its first write that
 * is not all zeros, so zero blocks stay unallocated. Writes come in any
 * order (a random-access sink); a block's place is chosen synchronously,
 * so concurrent writes never allocate it twice. The tables and footers are
 * written by flush() (and close()), which leave a complete image.
 */
import { UsageError } from "../../errors.js";
import { FileSink } from "../../io/file-sink.js";
import { isAllZero } from "../../io/zeros.js";
import type { ContainerName, ContainerSink } from "../format.js";

export const UNPLACED = -1;

/** Open `path` as a new regular file (replacing one), never a device: what every virtual disk writer writes to. */
export async function createImageFile(path: string): Promise<FileSink> {
  const file = await FileSink.open(path, { create: true, truncate: true, sparse: true });
  if (!file.isRegularFile) {
    await file.close();
    throw new UsageError(`${path}: not a regular file; a virtual disk is written to a file`);
  }
  return file;
}

/** Where a block's bytes go, and what must be written in front of them (a VHD sector bitmap). */
export interface BlockPlace {
  data: number;
  prefix?: { at: number; bytes: Buffer };
}

export abstract class AllocatingSink implements ContainerSink {
  abstract readonly format: ContainerName;
  readonly sequential = false;
  /** write() resolves once its bytes are in the file. */
  readonly releasesWrites = true;
  /** Zeros written into a placed block take room there; writeZeros() leaves what was never written a hole. */
  readonly keepsHoles = true;
  readonly name: string;
  /** Host offset of each block's data; UNPLACED (-1) while unallocated. */
  protected readonly hosts: Float64Array;
  /**
   * The span of each block written so far (offsets in the block). A placed
   * block starts as a hole at the end of the file, so zeros outside its span
   * need nothing; convert sends the zeros between data that way, thousands
   * of times.
   */
  private readonly writtenFrom: Float64Array;
  private readonly writtenTo: Float64Array;
  private state: "open" | "failed" | "closed" = "open";
  /** Written to since the last flush(): close() must finish the image again. */
  private changed = true;

  protected constructor(
    protected readonly file: FileSink,
    /** The virtual disk's size in bytes. */
    readonly size: number,
    readonly blockSize: number,
  ) {
    this.name = file.name;
    const blocks = Math.ceil(size / blockSize);
    this.hosts = new Float64Array(blocks).fill(UNPLACED);
    this.writtenFrom = new Float64Array(blocks).fill(blockSize);
    this.writtenTo = new Float64Array(blocks);
  }

  /** Choose block `index`'s place (synchronously, at the end of the file). */
  protected abstract place(index: number): BlockPlace;
  /** Write the tables, headers and footers that make the file a complete image. */
  protected abstract finish(): Promise<void>;

  /** A new image made valid at once (`prepare`, then its tables and footer); closed again if that fails. */
  protected async start(prepare?: () => Promise<void>): Promise<this> {
    try {
      await prepare?.();
      await this.finish();
    } catch (err) {
      await this.close();
      throw err;
    }
    return this;
  }

  write(offset: number, data: Buffer): Promise<void> {
    return this.guard(async () => {
      this.checkRange(offset, data.length);
      this.changed = true;
      const writes: Array<Promise<void>> = [];
      for (let pos = offset; pos < offset + data.length; ) {
        const index = Math.floor(pos / this.blockSize);
        const stop = Math.min(offset + data.length, (index + 1) * this.blockSize);
        const piece = data.subarray(pos - offset, stop - offset);
        if (this.hosts[index] !== UNPLACED || !isAllZero(piece)) {
          const host = this.hostOf(index, writes);
          const within = pos - index * this.blockSize;
          writes.push(this.file.write(host + within, piece));
          this.writtenFrom[index] = Math.min(this.writtenFrom[index], within);
          this.writtenTo[index] = Math.max(this.writtenTo[index], within + piece.length);
        }
        pos = stop;
      }
      await Promise.all(writes);
    });
  }

  /** Zeros cost nothing in an unallocated block or where a block was never written, and become a hole over what was. */
  writeZeros(offset: number, length: number): Promise<void> {
    return this.guard(async () => {
      this.checkRange(offset, length);
      this.changed = true;
      for (let pos = offset; pos < offset + length; ) {
        const index = Math.floor(pos / this.blockSize);
        const stop = Math.min(offset + length, (index + 1) * this.blockSize);
        const within = pos - index * this.blockSize;
        const overWritten = within < this.writtenTo[index] && within + (stop - pos) > this.writtenFrom[index];
        if (this.hosts[index] !== UNPLACED && overWritten) await this.file.writeZeros(this.hosts[index] + within, stop - pos);
        pos = stop;
      }
    });
  }

  /** The size was fixed at create(); convert's final setSize() has nothing to do. */
  async setSize(size: number): Promise<void> {
    if (size > this.size) throw new UsageError(`${this.name}: a ${this.format} image of ${this.size} bytes cannot grow to ${size}`);
  }

  flush(): Promise<void> {
    return this.guard(async () => {
      this.changed = false;
      await this.finish();
      await this.file.flush();
    });
  }

  /** Finish the image unless a write failed (the caller then removes it) or flush() already did, and close the file. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    try {
      if (this.state === "open" && this.changed) await this.flush();
    } finally {
      this.state = "closed";
      await this.file.close();
    }
  }

  private hostOf(index: number, writes: Array<Promise<void>>): number {
    if (this.hosts[index] === UNPLACED) {
      const { data, prefix } = this.place(index);
      this.hosts[index] = data;
      if (prefix) writes.push(this.file.write(prefix.at, prefix.bytes));
    }
    return this.hosts[index];
  }

  private checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.size) {
      throw new UsageError(`${this.name}: write of ${length} bytes at offset ${offset} is outside the ${this.size}-byte disk`);
    }
  }

  private async guard(work: () => Promise<void>): Promise<void> {
    if (this.state !== "open") throw new UsageError(`${this.name}: the ${this.format} image is ${this.state === "closed" ? "closed" : "unusable after a failed write"}`);
    try {
      await work();
    } catch (err) {
      this.state = "failed";
      throw err;
    }
  }
}
