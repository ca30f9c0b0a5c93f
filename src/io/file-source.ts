import { constants, promises as fsp } from "node:fs";
import type { BlockSource } from "./block-source.js";
import { AlignedBuffer } from "./aligned.js";
import { checkRange, targetBuffer } from "./bounds.js";
import { DeviceError, ioError } from "../errors.js";
import { blockDeviceSectorSize, blockDeviceSize, copyFileRange, seekData, seekHole } from "./syscalls.js";

export interface OpenSourceOptions {
  /**
   * Bypass the page cache (O_DIRECT), as `ddrescue -d` does: through the
   * cache, one bad 512-byte sector takes its whole 4 KiB page with it.
   * Ignored, with `direct` left false, where the file system refuses it.
   */
  direct?: boolean;
  /** Override the logical sector size (a file has none of its own). */
  sectorSize?: number;
}

/** A regular file or a block device. */
export class FileSource implements BlockSource {
  /** Aligned buffers for direct reads, one per read in flight (reads may overlap). */
  private readonly scratch: AlignedBuffer[] = [];
  /** Cleared after the first refusal, so a target that cannot take copy_file_range is not asked again. */
  private canCopy = true;

  private constructor(
    readonly name: string,
    private readonly handle: fsp.FileHandle,
    readonly size: number,
    readonly sectorSize: number,
    readonly isBlockDevice: boolean,
    readonly direct: boolean,
  ) {}

  static async open(path: string, options: OpenSourceOptions = {}): Promise<FileSource> {
    let stat;
    try {
      stat = await fsp.stat(path);
    } catch (err) {
      throw ioError(err, path);
    }
    if (stat.isDirectory()) throw new DeviceError(`${path}: is a directory, not an image or device`, "EISDIR");
    const isBlockDevice = stat.isBlockDevice();
    let handle: fsp.FileHandle | undefined;
    let direct = false;
    if (options.direct) {
      try {
        handle = await fsp.open(path, constants.O_RDONLY | constants.O_DIRECT);
        direct = true;
      } catch {
        // tmpfs and some FUSE file systems refuse O_DIRECT: read through the cache.
      }
    }
    try {
      handle ??= await fsp.open(path, constants.O_RDONLY);
    } catch (err) {
      throw ioError(err, path);
    }
    let size = stat.size;
    let sectorSize = options.sectorSize ?? 512;
    if (isBlockDevice) {
      const devSize = blockDeviceSize(handle.fd);
      if (devSize === undefined) {
        await handle.close();
        throw new DeviceError(`${path}: cannot read the size of this block device`);
      }
      size = devSize;
      sectorSize = options.sectorSize ?? blockDeviceSectorSize(handle.fd) ?? 512;
    }
    return new FileSource(path, handle, size, sectorSize, isBlockDevice, direct);
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    checkRange(this.name, this.size, offset, length);
    const out = targetBuffer(length, into);
    if (length === 0) return out;
    if (this.direct) {
      await this.readDirect(offset, out);
    } else {
      await this.readFully(offset, out);
    }
    return out;
  }

  /** O_DIRECT needs sector-aligned offsets, lengths and memory: read the aligned cover, copy out. */
  private async readDirect(offset: number, out: Buffer): Promise<void> {
    const align = this.sectorSize;
    const start = Math.floor(offset / align) * align;
    const end = Math.min(Math.ceil((offset + out.length) / align) * align, this.size);
    const scratch = this.scratch.pop() ?? new AlignedBuffer();
    try {
      const buf = scratch.get(Math.ceil((end - start) / align) * align).subarray(0, end - start);
      await this.readFully(start, buf);
      buf.copy(out, 0, offset - start, offset - start + out.length);
    } finally {
      this.scratch.push(scratch);
    }
  }

  /**
   * One read(2) at `offset`, as dd does it: it may return fewer bytes than
   * asked (the end of the source, or a buffered read that stops before a bad
   * page). Returns the number of bytes placed in `into`.
   */
  async readOnce(offset: number, length: number, into: Buffer): Promise<number> {
    checkRange(this.name, this.size, offset, length);
    if (length === 0) return 0;
    try {
      if (!this.direct) return (await this.handle.read(into, 0, length, offset)).bytesRead;
      const align = this.sectorSize;
      const start = Math.floor(offset / align) * align;
      const end = Math.min(Math.ceil((offset + length) / align) * align, this.size);
      const scratch = this.scratch.pop() ?? new AlignedBuffer();
      try {
        const buf = scratch.get(Math.ceil((end - start) / align) * align).subarray(0, end - start);
        const { bytesRead } = await this.handle.read(buf, 0, buf.length, start);
        const usable = Math.max(0, Math.min(length, bytesRead - (offset - start)));
        buf.copy(into, 0, offset - start, offset - start + usable);
        return usable;
      } finally {
        this.scratch.push(scratch);
      }
    } catch (err) {
      throw ioError(err, `${this.name}: read at offset ${offset}`);
    }
  }

  private async readFully(offset: number, out: Buffer): Promise<void> {
    let done = 0;
    while (done < out.length) {
      let n: number;
      try {
        ({ bytesRead: n } = await this.handle.read(out, done, out.length - done, offset + done));
      } catch (err) {
        const e = ioError(err, `${this.name}: read at offset ${offset + done}`);
        throw e;
      }
      if (n === 0) {
        throw new DeviceError(`${this.name}: unexpected end of file at offset ${offset + done} (did it shrink?)`, "EIO");
      }
      done += n;
    }
  }

  async copyTo(offset: number, length: number, fd: number, fdOffset: number): Promise<boolean> {
    checkRange(this.name, this.size, offset, length);
    if (!this.canCopy || this.direct || this.isBlockDevice) return false;
    let done = 0;
    while (done < length) {
      const n = await copyFileRange(this.handle.fd, offset + done, fd, fdOffset + done, length - done);
      if (!n) {
        if (done === 0) {
          this.canCopy = false;
          return false;
        }
        throw new DeviceError(`${this.name}: copy at offset ${offset + done} stopped short (did the file shrink?)`, "EIO");
      }
      done += n;
    }
    return true;
  }

  async dataRanges(offset: number, length: number): Promise<Array<[number, number]>> {
    checkRange(this.name, this.size, offset, length);
    if (this.isBlockDevice) return [[offset, length]];
    return fileDataRanges(this.handle.fd, offset, length);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/**
 * The ranges of [offset, offset+length) of an open regular file that may
 * hold data (SEEK_DATA / SEEK_HOLE); the whole range where the system
 * cannot tell.
 */
export function fileDataRanges(fd: number, offset: number, length: number): Array<[number, number]> {
  const end = offset + length;
  const ranges: Array<[number, number]> = [];
  let pos = offset;
  while (pos < end) {
    const data = seekData(fd, pos);
    if (data === undefined) return [[offset, length]];
    if (data === null || data >= end) break;
    const hole = seekHole(fd, data);
    if (hole === undefined) return [[offset, length]];
    const stop = Math.min(hole ?? end, end);
    ranges.push([data, stop - data]);
    pos = stop;
  }
  return ranges;
}

/** Open a path as a block source. */
export function openSource(path: string, options?: OpenSourceOptions): Promise<BlockSource & FileSource> {
  return FileSource.open(path, options);
}
