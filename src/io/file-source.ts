import { constants } from "node:fs";
import { type BlockSource, readEach } from "./block-source.js";
import { AlignedBuffer, alignedMemoryAvailable, isAligned } from "./aligned.js";
import { checkRange, targetBuffer } from "./bounds.js";
import { DeviceError, errnoCode, ioError, PartialCopyError } from "../errors.js";
import { needsRandomAccess, streamKind } from "./stream-source.js";
import { blockDeviceGeometry } from "./block-device.js";
import { cachedBytes, copyFileRange, dropCached, seekData, seekHole } from "./syscalls.js";
import { Fd, statPath } from "./fd.js";

export interface OpenSourceOptions {
  /**
   * Bypass the page cache (O_DIRECT), as `ddrescue -d` does: through the
   * cache, one bad 512-byte sector takes its whole 4 KiB page with it.
   * Ignored, with `direct` left false, where the file system refuses it or
   * aligned memory cannot be had (see alignedMemoryAvailable).
   * "cold": a block device, or a file the page cache mostly does not hold
   * (cachestat): read cold, the cache is the slow part of a long read (every
   * page allocated, filled and copied again) and the read would evict
   * everything else; a file mostly in the cache is read from there. Its
   * in-kernel copies (copyTo) still go through the cache, as fast as a read
   * with the kernel's read-ahead, and drop what they brought into it.
   */
  direct?: boolean | "cold";
  /** Override the logical sector size (a file has none of its own). */
  sectorSize?: number;
}

/** An O_DIRECT handle, or undefined where the file system refuses it (tmpfs, some FUSE) or aligned memory cannot be had. */
async function openDirect(path: string): Promise<Fd | undefined> {
  if (!alignedMemoryAvailable()) return undefined;
  try {
    return await Fd.open(path, constants.O_RDONLY | constants.O_DIRECT);
  } catch {
    return undefined; // read through the cache; a real error (missing, no permission) comes from the buffered open
  }
}

function mostlyUncached(fd: number, size: number): boolean {
  const cached = cachedBytes(fd, 0, size);
  return cached !== undefined && cached < size / 2;
}

/** O_DIRECT alignment assumed for regular files (see FileSource.open). */
const FILE_DIRECT_ALIGN = 4096;

/** What copy_file_range fails with when it cannot copy between two files at all; anything else is an I/O error. */
const COPY_REFUSALS = new Set(["EXDEV", "EINVAL", "EOPNOTSUPP", "ENOTSUP", "ENOSYS", "EBADF", "EPERM", "ETXTBSY", "EISDIR", "EOVERFLOW"]);

/** A regular file or a block device; pipes, character devices and sockets are refused (see stream-source.ts). */
export class FileSource implements BlockSource {
  /** Aligned buffers for direct reads, one per read in flight (reads may overlap). */
  private readonly scratch: AlignedBuffer[] = [];
  /** Cleared after the first refusal, so a target that cannot take copy_file_range is not asked again. */
  private canCopy = true;

  private constructor(
    readonly name: string,
    private readonly handle: Fd,
    readonly size: number,
    readonly sectorSize: number,
    readonly isBlockDevice: boolean,
    readonly direct: boolean,
    /** What O_DIRECT needs offsets, lengths and memory aligned to: the device's real logical sector (not an override). */
    private readonly directAlign: number,
    /** A handle through the page cache for copyTo: `handle` itself, or, for a file read cold with O_DIRECT, one more. */
    private readonly cachedHandle: Fd | undefined,
    /** Bytes the file system has allocated to the file (st_blocks) when it was opened. */
    private readonly allocated: number,
  ) {}

  static async open(path: string, options: OpenSourceOptions = {}): Promise<FileSource> {
    let stat;
    try {
      stat = await statPath(path);
    } catch (err) {
      throw ioError(err, path);
    }
    if (stat.isDirectory()) throw new DeviceError(`${path}: is a directory, not an image or device`, "EISDIR");
    // Before any open: a FIFO's would wait for a writer, and a stream has no size to report.
    const kind = streamKind(stat);
    if (kind) throw needsRandomAccess(path, kind);
    const isBlockDevice = stat.isBlockDevice();
    // Where stat alone decides, only the direct handle is opened; a "cold" file asks the page cache first.
    let handle = options.direct === true || (options.direct === "cold" && isBlockDevice) ? await openDirect(path) : undefined;
    let direct = handle !== undefined;
    try {
      handle ??= await Fd.open(path, constants.O_RDONLY);
    } catch (err) {
      throw ioError(err, path);
    }
    let cachedHandle = direct ? undefined : handle;
    if (!direct && options.direct === "cold" && !isBlockDevice && mostlyUncached(handle.fd, stat.size)) {
      const directHandle = await openDirect(path);
      if (directHandle) {
        handle = directHandle;
        direct = true;
      }
    }
    let size = stat.size;
    let sectorSize = options.sectorSize ?? 512;
    // A file's direct reads answer to the device under its file system, unknown here: 4 KiB suits every usual one.
    let directAlign = FILE_DIRECT_ALIGN;
    if (isBlockDevice) {
      const geometry = await blockDeviceGeometry(handle.fd, stat.rdev);
      if (geometry === undefined) {
        await handle.close();
        throw new DeviceError(`${path}: cannot read the size of this block device`);
      }
      size = geometry.size;
      directAlign = geometry.logicalSectorSize;
      sectorSize = options.sectorSize ?? directAlign;
    }
    return new FileSource(path, handle, size, sectorSize, isBlockDevice, direct, directAlign, cachedHandle, stat.blocks * 512);
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

  /** One preadv per run of buffers; a direct read takes them so only when each is aligned memory of whole sectors. */
  async readv(offset: number, buffers: Buffer[]): Promise<void> {
    const length = buffers.reduce((sum, buf) => sum + buf.length, 0);
    checkRange(this.name, this.size, offset, length);
    const align = this.directAlign;
    if (this.direct && (offset % align !== 0 || !buffers.every((buf) => buf.length % align === 0 && isAligned(buf, align)))) {
      return readEach(this, offset, buffers);
    }
    const left = [...buffers];
    for (let done = 0; done < length; ) {
      let n: number;
      try {
        ({ bytesRead: n } = await this.handle.readv(left, offset + done));
      } catch (err) {
        throw ioError(err, `${this.name}: read at offset ${offset + done}`);
      }
      if (n === 0) throw new DeviceError(`${this.name}: unexpected end of file at offset ${offset + done} (did it shrink?)`, "EIO");
      done += n;
      // A short read (the end of the file, IOV_MAX buffers at most): the rest from where it stopped.
      while (left.length > 0 && n >= (left[0] as Buffer).length) n -= (left.shift() as Buffer).length;
      if (n > 0) left[0] = (left[0] as Buffer).subarray(n);
    }
  }

  /**
   * O_DIRECT needs aligned offsets, lengths and memory. A buffer from
   * allocAligned takes the read as it is (the bulk of a capture); anything
   * else is read as its aligned cover into scratch memory and copied out.
   */
  private async readDirect(offset: number, out: Buffer): Promise<void> {
    const align = this.directAlign;
    if (offset % align === 0 && out.length % align === 0 && isAligned(out, align)) {
      await this.readFully(offset, out);
      return;
    }
    await this.withCover(offset, out.length, async (cover, skew) => {
      // The cover may run past the end of a file, whose last sector is then short.
      await this.readFully(offset - skew, cover, skew + out.length);
      cover.copy(out, 0, skew, skew + out.length);
    });
  }

  /** Scratch memory covering [offset, offset+length) rounded out to directAlign; `skew` is where `offset` falls in it. */
  private async withCover<T>(offset: number, length: number, use: (cover: Buffer, skew: number) => Promise<T>): Promise<T> {
    const align = this.directAlign;
    const start = Math.floor(offset / align) * align;
    const end = Math.ceil((offset + length) / align) * align;
    const scratch = this.scratch.pop() ?? new AlignedBuffer();
    try {
      return await use(scratch.get(end - start), offset - start);
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
      return await this.withCover(offset, length, async (cover, skew) => {
        const { bytesRead } = await this.handle.read(cover, 0, cover.length, offset - skew);
        const usable = Math.max(0, Math.min(length, bytesRead - skew));
        cover.copy(into, 0, skew, skew + usable);
        return usable;
      });
    } catch (err) {
      throw ioError(err, `${this.name}: read at offset ${offset}`);
    }
  }

  /** Fill `out` from `offset`; reaching the end of the file is an error only before `needed` bytes. */
  private async readFully(offset: number, out: Buffer, needed = out.length): Promise<void> {
    let done = 0;
    while (done < needed) {
      let n: number;
      try {
        ({ bytesRead: n } = await this.handle.read(out, done, out.length - done, offset + done));
      } catch (err) {
        throw ioError(err, `${this.name}: read at offset ${offset + done}`);
      }
      if (n === 0) {
        throw new DeviceError(`${this.name}: unexpected end of file at offset ${offset + done} (did it shrink?)`, "EIO");
      }
      done += n;
    }
  }

  /**
   * Copy through the page cache, in the kernel (a block device cannot be:
   * copy_file_range takes regular files only). False, having copied
   * nothing, when these two files cannot be copied between; a failure
   * part-way, or a read or write error, is a DeviceError with its errno
   * name (EIO for a bad sector). A file read cold leaves the cache as it was.
   */
  async copyTo(offset: number, length: number, fd: number, fdOffset: number): Promise<boolean> {
    checkRange(this.name, this.size, offset, length);
    const from = this.cachedHandle;
    if (!this.canCopy || !from || this.isBlockDevice) return false;
    let done = 0;
    try {
      while (done < length) {
        const n = await copyFileRange(from.fd, offset + done, fd, fdOffset + done, length - done);
        if (n === undefined && done === 0) {
          this.canCopy = false;
          return false;
        }
        if (!n) throw new DeviceError(`${this.name}: copy at offset ${offset + done} stopped short (did the file shrink?)`, "EIO");
        done += n;
      }
    } catch (err) {
      if (done === 0 && COPY_REFUSALS.has(errnoCode(err) ?? "")) {
        this.canCopy = false;
        return false;
      }
      const failure = ioError(err, `${this.name}: copy at offset ${offset + done}`);
      if (done === 0 || !(failure instanceof DeviceError)) throw failure;
      throw new PartialCopyError(failure.message, failure.code, done, { cause: err });
    } finally {
      if (this.direct && done > 0) dropCached(from.fd, offset, done);
    }
    return true;
  }

  async dataRanges(offset: number, length: number): Promise<Array<[number, number]>> {
    checkRange(this.name, this.size, offset, length);
    // A file with as many bytes allocated as it is long has no hole worth looking for (metadata or
    // preallocation past the end may hide a small one: it is then read as the zeros it holds). That
    // spares a dense image the FFI's loading, 10 ms of a short command.
    if (this.isBlockDevice || this.allocated >= this.size) return [[offset, length]];
    return fileDataRanges(this.handle.fd, offset, length);
  }

  /** Bytes of [offset, offset+length) held by the page cache; undefined where the kernel cannot tell. */
  cachedBytes(offset = 0, length = this.size): number | undefined {
    return cachedBytes(this.handle.fd, offset, length);
  }

  async close(): Promise<void> {
    await this.handle.close();
    await this.cachedHandle?.close();
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
