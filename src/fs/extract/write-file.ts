/**
 * The file-writing engine: one regular file's bytes, holes kept, then its
 * size, owner, mode and mtime, all through the descriptor it was created
 * with. A copy that fails or is interrupted removes every name it was given,
 * so no truncated file is left looking complete.
 */
import fsCallback, { constants, promises as fsp } from "node:fs";
import { promisify } from "node:util";
import { ioError } from "../../errors.js";
import type { FileSystem, FsNode, FsStat } from "../types.js";
import { shown } from "./disk-path.js";

const CHUNK = 1 << 20;
/** Bytes per in-kernel copy: large enough to be cheap, small enough for progress (and Ctrl-C) to move. */
const COPY_PIECE = 16 << 20;

export interface ExtractProgress {
  files: number;
  totalFiles: number;
  bytes: number;
  totalBytes: number;
}

/** Who new files belong to, and what the umask takes from their mode, unless told otherwise. */
const creator = {
  uid: process.getuid?.() ?? -1,
  gid: process.getgid?.() ?? -1,
  umask: process.umask(),
};

/** Node's utimes takes a negative number (before 1970) as "now"; a Date it takes as is. */
export function asDate(seconds: number): Date {
  return new Date(seconds * 1000);
}

/** Chunk buffers reused across files: allocating a fresh MiB per chunk costs more than the copy. */
export class BufferPool {
  private readonly free: Buffer[] = [];
  get(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(CHUNK);
  }
  put(b: Buffer): void {
    this.free.push(b);
  }
}

export interface WriteContext {
  /** Give files the image's owners. */
  owners: boolean;
  /** DEST is setgid: new files take its group, so owners must always be set. */
  inheritsGroup: boolean;
  buffers: BufferPool;
  progress: ExtractProgress;
  onProgress?: (p: ExtractProgress) => void;
  signal?: AbortSignal;
}

const fdOpen = promisify(fsCallback.open);
const fdWrite = promisify(fsCallback.write);
const fdClose = promisify(fsCallback.close);
const fdTruncate = promisify(fsCallback.ftruncate);
const fdChown = promisify(fsCallback.fchown);
const fdChmod = promisify(fsCallback.fchmod);
const fdUtimes = promisify(fsCallback.futimes);

/**
 * Create a new file, never following a link nor opening anything that exists
 * (EEXIST is left for the caller to resolve), with its final permission bits:
 * fchmod comes later only when the umask took some away or special bits are wanted.
 */
export function createFile(path: Buffer, stat: FsStat): Promise<number> {
  return fdOpen(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, stat.mode & 0o777);
}

/** A file being written: its descriptor and every name it has on disk so far. */
export class FileCopy {
  private state: "writing" | "done" | "failed" = "writing";
  private names: Buffer[];

  constructor(
    private readonly fd: number,
    path: Buffer,
  ) {
    this.names = [path];
  }

  /** A hard link just made to this file: removed with it if the copy fails. False if it already failed (the link is then gone). */
  async adopt(path: Buffer): Promise<boolean> {
    if (this.state === "writing") this.names.push(path);
    if (this.state !== "failed") return true;
    await fsp.unlink(path).catch(() => {});
    return false;
  }

  async write<N extends FsNode>(fs: FileSystem<N>, node: N, context: WriteContext): Promise<void> {
    try {
      await writeContents(fs, node, this.fd, context);
      await fdClose(this.fd);
      this.state = "done";
      this.names = [];
    } catch (err) {
      this.state = "failed";
      await fdClose(this.fd).catch(() => {});
      for (const name of this.names) await fsp.unlink(name).catch(() => {});
      if (context.signal?.aborted) throw err;
      throw ioError(err, shown(this.names[0]));
    }
  }
}

/** Copy a data range inside the kernel, in pieces; false if the filesystem or source cannot. */
async function copyRange<N extends FsNode>(fs: FileSystem<N>, node: N, start: number, length: number, fd: number, context: WriteContext): Promise<boolean> {
  const end = start + length;
  for (let pos = start; pos < end; pos += COPY_PIECE) {
    context.signal?.throwIfAborted();
    const n = Math.min(COPY_PIECE, end - pos);
    if (!(await fs.copyTo?.(node, pos, n, fd))) {
      if (pos === start) return false;
      throw new Error("the in-kernel copy stopped part-way"); // FileCopy.write names the file
    }
    context.progress.bytes += n;
    context.onProgress?.(context.progress);
  }
  return true;
}

/** Data ranges only (holes stay holes), then size, owner, mode, mtime. */
async function writeContents<N extends FsNode>(fs: FileSystem<N>, node: N, fd: number, context: WriteContext): Promise<void> {
  const st = node.stat;
  const { buffers, progress, signal } = context;
  const a = buffers.get();
  const b = buffers.get();
  let next: Promise<Buffer> | undefined;
  try {
    const ranges = fs.dataRanges ? await fs.dataRanges(node) : st.size > 0 ? [[0, st.size] as [number, number]] : [];
    let written = 0; // end of the last data written
    for (const [start, length] of ranges) {
      const end = start + length;
      if (fs.copyTo && (await copyRange(fs, node, start, length, fd, context))) {
        written = end;
        continue;
      }
      // Double buffering: the next chunk is read into one buffer while the other is written out.
      let [current, other] = [a, b];
      next = fs.read(node, start, Math.min(CHUNK, length), current);
      let pos = start;
      while (next) {
        const chunk: Buffer = await next;
        signal?.throwIfAborted();
        const after: number = pos + chunk.length;
        next = after < end ? fs.read(node, after, Math.min(CHUNK, end - after), other) : undefined;
        [current, other] = [other, current];
        next?.catch(() => {}); // awaited on the next turn; do not let it go unhandled meanwhile
        for (let done = 0; done < chunk.length; ) {
          done += (await fdWrite(fd, chunk, done, chunk.length - done, pos + done)).bytesWritten;
        }
        pos = after;
        written = after;
        progress.bytes += chunk.length;
        context.onProgress?.(progress);
      }
    }
    if (written !== st.size) await fdTruncate(fd, st.size); // the file ends in a hole
    progress.bytes += st.size - ranges.reduce((n, [, length]) => n + length, 0); // its holes
    if (context.owners && (context.inheritsGroup || st.uid !== creator.uid || st.gid !== creator.gid)) {
      await fdChown(fd, st.uid, st.gid).catch(() => {});
    }
    if (st.mode & ~0o777 || (st.mode & creator.umask) !== 0) await fdChmod(fd, st.mode);
    await fdUtimes(fd, asDate(st.mtime), asDate(st.mtime));
  } finally {
    // A read still landing in a buffer must end before another file gets it.
    await next?.catch(() => {});
    buffers.put(a);
    buffers.put(b);
  }
}
