import { constants, fstatSync, open as openCallback, promises as fsp } from "node:fs";
import { Socket } from "node:net";
import { promisify } from "node:util";
import type { BlockSink, BlockSource } from "./block-source.js";
import { DeviceError, errnoCode, ioError, UsageError } from "../errors.js";
import { AlignedBuffer, alignedMemoryAvailable, isAligned } from "./aligned.js";
import { blockDeviceGeometry } from "./block-device.js";
import { copyFileRangeSync, discardRange, dropCached, punchHole, zeroOutRange } from "./syscalls.js";
import { zeroChunks } from "./zeros.js";
import { InTurn } from "../util/in-turn.js";
import { unlessAborted } from "./stream-source.js";

const openFd = promisify(openCallback);

export interface OpenSinkOptions {
  /** Create the file if missing (never applies to devices). */
  create?: boolean;
  /** Truncate an existing regular file to 0 first. */
  truncate?: boolean;
  /** Turn zero ranges into holes (regular files only). */
  sparse?: boolean;
  /**
   * Open a block device exclusively (O_EXCL): the kernel then refuses with
   * EBUSY while it, or a partition of it, is mounted or otherwise claimed.
   */
  exclusive?: boolean;
  /**
   * Write through O_DIRECT (dd's oflag=direct) where the offset and length
   * are sector-aligned; other writes, and file systems that refuse it, go
   * through the page cache.
   */
  direct?: boolean;
  /**
   * Write through the page cache, and drop the file's pages from it once
   * flush() has them on the disk: a large image written does not push out
   * what the user had cached.
   */
  dropCacheOnFlush?: boolean;
}


/** A regular file or a block device, written at explicit offsets. */
export class FileSink implements BlockSink {
  readonly sequential = false;
  readonly releasesWrites = true;

  private directHandle: fsp.FileHandle | undefined;
  private directAlign = 512;
  private readonly scratch = new AlignedBuffer();

  private constructor(
    readonly name: string,
    private readonly handle: fsp.FileHandle,
    readonly isRegularFile: boolean,
    private readonly sparse: boolean,
    private readonly dropCacheOnFlush: boolean,
  ) {}

  /** Aligned writes go through O_DIRECT. */
  get writesDirect(): boolean {
    return this.directHandle !== undefined;
  }

  /** Zero runs become holes (a sparse regular file). */
  get keepsHoles(): boolean {
    return this.sparse;
  }

  static async open(path: string, options: OpenSinkOptions = {}): Promise<FileSink> {
    let flags = constants.O_WRONLY;
    if (options.exclusive && (await isBlockDevice(path))) flags |= constants.O_EXCL;
    else if (options.create) flags |= constants.O_CREAT;
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(path, flags, 0o644);
    } catch (err) {
      if (errnoCode(err) === "EBUSY") throw new DeviceError(`${path}: device is in use (mounted, or claimed by another program)`, "EBUSY");
      throw ioError(err, path);
    }
    const stat = await handle.stat();
    if (stat.isDirectory()) {
      await handle.close();
      throw new UsageError(`${path}: is a directory`);
    }
    const isRegularFile = stat.isFile();
    // Only when there is something to cut: ext4 flushes a file truncated to 0 when it is closed.
    if (isRegularFile && options.truncate && stat.size > 0) await handle.truncate(0);
    const sink = new FileSink(path, handle, isRegularFile, Boolean(options.sparse) && isRegularFile, Boolean(options.dropCacheOnFlush) && isRegularFile);
    if (options.direct && alignedMemoryAvailable()) {
      try {
        sink.directHandle = await fsp.open(path, constants.O_WRONLY | constants.O_DIRECT);
        if (stat.isBlockDevice()) sink.directAlign = (await blockDeviceGeometry(sink.directHandle.fd, stat.rdev))?.logicalSectorSize ?? 512;
      } catch {
        // tmpfs and some FUSE file systems refuse O_DIRECT: write through the cache.
      }
    }
    return sink;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (this.directHandle && offset % this.directAlign === 0 && data.length % this.directAlign === 0) {
      if (await this.writeDirect(offset, data)) return;
    }
    let done = 0;
    while (done < data.length) {
      try {
        const { bytesWritten } = await this.handle.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      } catch (err) {
        throw ioError(err, `${this.name}: write at offset ${offset + done}`);
      }
    }
  }

  /** False when the kernel refused the alignment even at 4 KiB; the caller writes through the cache. */
  private async writeDirect(offset: number, data: Buffer): Promise<boolean> {
    const handle = this.directHandle as fsp.FileHandle;
    // Aligned memory (allocAligned) goes as it is; anything else through the scratch buffer.
    let buf = data;
    if (!isAligned(data, this.directAlign)) {
      buf = this.scratch.get(data.length);
      data.copy(buf);
    }
    let done = 0;
    while (done < buf.length) {
      try {
        const { bytesWritten } = await handle.write(buf, done, buf.length - done, offset + done);
        done += bytesWritten;
      } catch (err) {
        if (errnoCode(err) !== "EINVAL" || done > 0) throw ioError(err, `${this.name}: write at offset ${offset + done}`);
        if (this.directAlign < 4096) {
          this.directAlign = 4096;
          if (offset % 4096 === 0 && data.length % 4096 === 0) return this.writeDirect(offset, data);
          return false;
        }
        await this.directHandle?.close();
        this.directHandle = undefined;
        return false;
      }
    }
    return true;
  }

  /** Only into a regular file, written as it comes: --sparse must see the zeros, oflag=direct the writes. */
  async copyFrom(source: BlockSource, sourceOffset: number, length: number, offset: number): Promise<boolean> {
    if (!source.copyTo || !this.isRegularFile || this.sparse || this.directHandle) return false;
    return source.copyTo(sourceOffset, length, this.handle.fd, offset);
  }

  async writeZeros(offset: number, length: number): Promise<void> {
    if (length <= 0) return;
    if (this.sparse) {
      // fstat answers from memory: on the calling thread it costs a system call, through the
      // thread pool two thread switches (a third of convert's pool work from a sparse qcow2).
      const { size } = fstatSync(this.handle.fd);
      // Past the end of the file a hole needs nothing but the final setSize().
      if (offset >= size) return;
      if (punchHole(this.handle.fd, offset, length)) return;
    }
    if (!this.isRegularFile && offset % 512 === 0 && length % 512 === 0 && (await zeroOutRange(this.handle.fd, offset, length))) return;
    await writeZeroChunks(this, offset, length);
  }

  /**
   * copy_file_range on the calling thread (the caller keeps its pieces
   * small): a writer of many small files pays no thread hand-off per file.
   * O_DIRECT writes and devices take the caller's read and write instead.
   */
  async copyFromFile(fd: number, fdOffset: number, length: number, offset: number): Promise<number> {
    if (!this.isRegularFile || this.directHandle) return 0;
    let done = 0;
    while (done < length) {
      const n = copyFileRangeSync(fd, fdOffset + done, this.handle.fd, offset + done, length - done);
      if (!n) break;
      done += n;
    }
    return done;
  }

  /** BLKDISCARD a range of a block device; false where it cannot (a file, a device without discard). */
  async discard(offset: number, length: number): Promise<boolean> {
    return !this.isRegularFile && discardRange(this.handle.fd, offset, length);
  }

  async setSize(size: number): Promise<void> {
    if (!this.isRegularFile) return;
    try {
      await this.handle.truncate(size);
    } catch (err) {
      throw ioError(err, this.name);
    }
  }

  /** The data on the disk (fdatasync). */
  async flush(): Promise<void> {
    try {
      await this.handle.datasync();
    } catch (err) {
      throw ioError(err, this.name);
    }
    if (this.dropCacheOnFlush) dropCached(this.handle.fd, 0, fstatSync(this.handle.fd).size);
  }

  /** The data and the metadata (size, times) on the disk (fsync). */
  async sync(): Promise<void> {
    try {
      await this.handle.sync();
    } catch (err) {
      throw ioError(err, this.name);
    }
  }

  async close(): Promise<void> {
    await this.directHandle?.close();
    await this.handle.close();
  }
}

async function isBlockDevice(path: string): Promise<boolean> {
  try {
    return (await fsp.stat(path)).isBlockDevice();
  } catch {
    return false;
  }
}

/** Whether a DEST path is written as a stream, in order: a FIFO or a socket (pwrite there fails with ESPIPE). */
export async function isStreamOutput(path: string): Promise<boolean> {
  try {
    const st = await fsp.stat(path);
    return st.isFIFO() || st.isSocket();
  } catch {
    return false;
  }
}

/**
 * A FIFO DEST, written through the event loop as standard output is, so a
 * reader that stops reading holds no thread. Its open waits for a reader;
 * `signal` gives that wait up.
 */
export async function openStreamSink(path: string, signal?: AbortSignal): Promise<StreamSink> {
  if ((await fsp.stat(path)).isSocket()) throw new UsageError(`${path} is a socket: platter writes to a socket only as standard output (-)`);
  let fd: number;
  try {
    fd = await unlessAborted(openFd(path, constants.O_WRONLY), signal);
  } catch (err) {
    throw signal?.aborted ? err : ioError(err, path);
  }
  return new StreamSink(new Socket({ fd, readable: false, writable: true }), path, true);
}

/** Standard output (or any stream): writes must come in order, zeros are written out. */
export class StreamSink implements BlockSink {
  readonly sequential = true;
  /** Where the next write must start: the end of everything accepted so far. */
  private position = 0;
  /** Accepted writes, reaching the stream one after another. */
  private readonly writes = new InTurn();

  private readonly overFd: boolean;

  constructor(
    private readonly stream: NodeJS.WritableStream = process.stdout,
    readonly name = "stdout",
    /** Opened for this sink (a FIFO): ended by close(). Standard output is left open. */
    private readonly owned = false,
  ) {
    this.overFd = typeof (stream as { fd?: unknown }).fd === "number" || stream instanceof Socket;
  }

  /**
   * Writes are accepted in call order and reach the stream in that order,
   * even when the caller does not wait for one before the next (the copier
   * does not) and a long run of zeros goes out a megabyte at a time.
   */
  async write(offset: number, data: Buffer): Promise<void> {
    this.accept(offset, data.length);
    // Callers reuse their buffer once this resolves. A stream over a file
    // descriptor (stdout) is done with it at the write callback; a JS stream
    // (a PassThrough) may hand the very buffer on to its reader, so it gets a
    // copy. Copying always cost more than the whole transfer to a pipe.
    const chunk = this.overFd ? data : Buffer.from(data);
    return this.writes.run(() => this.put(chunk));
  }

  async writeZeros(offset: number, length: number): Promise<void> {
    this.accept(offset, length);
    return this.writes.run(async () => {
      for (const chunk of zeroChunks(length)) await this.put(chunk);
    });
  }

  async setSize(size: number): Promise<void> {
    if (size > this.position) await this.writeZeros(this.position, size - this.position);
  }

  async flush(): Promise<void> {
    await this.writes.idle();
  }

  async close(): Promise<void> {
    await this.writes.idle();
    if (this.owned) await new Promise<void>((resolve) => this.stream.end(resolve));
  }

  private accept(offset: number, length: number): void {
    if (offset !== this.position) {
      throw new UsageError(`${this.name}: cannot seek (write at ${offset}, position ${this.position})`);
    }
    this.position += length;
  }

  private put(chunk: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.stream.write(chunk, (err?: Error | null) => (err ? reject(ioError(err, this.name)) : resolve()));
    });
  }
}

/** Zeros written out, a megabyte at a time, where a hole cannot stand in for them. */
async function writeZeroChunks(sink: BlockSink, offset: number, length: number): Promise<void> {
  let pos = offset;
  for (const chunk of zeroChunks(length)) {
    await sink.write(pos, chunk);
    pos += chunk.length;
  }
}
