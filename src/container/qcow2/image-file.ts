/**
 * The qcow2 file the writer works on: positioned reads and writes that say
 * where they failed, vectored writes for runs of clusters, and a cluster's
 * content read back whatever way it is stored.
 */
import { constants, promises as fsp } from "node:fs";
import { CorruptImageError, ioError, UsageError } from "../../errors.js";
import { decompressCluster } from "./compressed-cluster.js";
import type { L2Entry } from "./entries.js";
import type { Qcow2Layout } from "./layout.js";

export class ImageFile {
  private constructor(
    readonly name: string,
    private readonly handle: fsp.FileHandle,
  ) {}

  /** Open `path` for reading and writing; a regular file only (a qcow2 on a device would need its own allocation rules). */
  static async open(path: string, create: boolean): Promise<ImageFile> {
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
    return new ImageFile(path, handle);
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
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
      if (written < buf.length) await this.writeAt(offset + written, buf.subarray(written));
      written = Math.max(0, written - buf.length);
      offset += buf.length;
    }
  }

  /** `length` bytes at `offset`; `short`: the file may end first (a compressed cluster's last sector). */
  async readAt(offset: number, length: number, short = false): Promise<Buffer> {
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

  /** What the cluster an L2 entry describes holds now (a fresh buffer: the caller may change it). */
  async readCluster(entry: L2Entry, layout: Qcow2Layout): Promise<Buffer> {
    const { clusterSize, compression } = layout;
    if (entry.kind === "normal") return this.readAt(entry.hostOffset, clusterSize);
    if (entry.kind !== "compressed") return Buffer.alloc(clusterSize);
    const stored = await this.readAt(entry.hostOffset, entry.compressedLength, true);
    return decompressCluster(stored, compression, clusterSize, `at byte ${entry.hostOffset} of ${this.name}`);
  }

  async truncate(length: number): Promise<void> {
    try {
      await this.handle.truncate(length);
    } catch (err) {
      throw ioError(err, this.name);
    }
  }

  async datasync(): Promise<void> {
    try {
      await this.handle.datasync();
    } catch (err) {
      throw ioError(err, this.name);
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** Writes gathered, then issued as one vectored write per contiguous run of host bytes. */
export class WriteBatch {
  private runs: Array<{ offset: number; length: number; buffers: Buffer[] }> = [];

  constructor(private readonly file: ImageFile) {}

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
    await Promise.all(this.runs.map((run) => (run.buffers.length === 1 ? this.file.writeAt(run.offset, run.buffers[0] as Buffer) : this.file.writevAt(run.offset, run.buffers))));
    this.runs = [];
  }
}
