/**
 * Where the passes put what they rescue. Positions are SOURCE offsets; the
 * writer shifts them to DEST (a capture with --skip starts DEST at 0).
 *
 * Hashing rides along: digests need the bytes in order, but the passes
 * deliver them out of order once a read fails (the bad area is skipped and
 * finished later). So the hasher only follows a frontier: bytes that arrive
 * exactly at it are hashed on the spot; whatever arrives past a gap is not,
 * and the capture hashes the rest of the finished image from DEST at the end
 * (never from SOURCE: a failing drive is read as little as possible).
 * Bytes the kernel copied (copy()) never pass through here: where DEST can
 * be read back (a plain file), each copied span at the frontier is hashed
 * from DEST right after its copy, while its pages are in the page cache,
 * and the next copy goes on meanwhile.
 */
import { DeviceError } from "../errors.js";
import { allocHuge } from "../io/aligned.js";
import type { BlockSink, BlockSource } from "../io/block-source.js";
import { isAllZero } from "../io/zeros.js";
import type { StreamHasher } from "./parallel-hasher.js";

export interface ImageTarget {
  /** Rescued bytes at source offset `pos`. */
  data(pos: number, buf: Buffer): Promise<void>;
  /** A range that reads as zeros (a hole of the source, or bad sectors). */
  zeros(pos: number, length: number): Promise<void>;
  /**
   * Optional: [pos, pos+length) of `source` copied in the kernel, never read
   * into memory. False, with nothing written, when it cannot be; a read
   * error rejects as a read of the same bytes would.
   */
  copy?(source: BlockSource, pos: number, length: number): Promise<boolean>;
}

/** Holes are punched at file-system block granularity. */
const SPARSE_GRANULE = 4096;

/** Feeds a hasher the bytes that arrive exactly at its frontier. */
export class InOrderHasher {
  constructor(
    readonly hasher: StreamHasher,
    /** Source offset of the first byte to hash. */
    public frontier: number,
  ) {}

  /** Await it before reusing `buf` (the hasher copies it, and may make the caller wait). */
  offer(pos: number, buf: Buffer): void | Promise<void> {
    if (pos !== this.frontier || buf.length === 0) return;
    this.frontier += buf.length;
    return this.hasher.update(buf);
  }

  offerZeros(pos: number, length: number): void | Promise<void> {
    if (pos !== this.frontier || length <= 0) return;
    this.frontier += length;
    return this.hasher.updateZeros(length);
  }
}

export interface ImageWriterOptions {
  /** Source offset that lands at DEST offset 0 (--skip). */
  origin: number;
  /** All-zero blocks become holes instead of written zeros. */
  sparse: boolean;
  /**
   * DEST already reads as zeros wherever nothing was written (a regular file
   * this capture created or truncated): zero ranges then cost nothing.
   */
  zeroFilled: boolean;
  hasher?: InOrderHasher;
  /** DEST to read back, for hashing what the kernel copied (a plain file DEST); without it, a hashed capture does not copy in the kernel. */
  readBack?: () => Promise<BlockSource>;
}

/** Copied bytes are read back from DEST in pieces this big to be hashed. */
const READ_BACK_CHUNK = 4 << 20;

export class ImageWriter implements ImageTarget {
  constructor(
    private readonly sink: BlockSink,
    private readonly options: ImageWriterOptions,
  ) {}

  data(pos: number, buf: Buffer): Promise<void> {
    // Hashing and writing both only read `buf`: they run side by side.
    return sideBySide(this.options.hasher?.offer(pos, buf), this.write(pos - this.options.origin, buf));
  }

  private async write(at: number, buf: Buffer): Promise<void> {
    if (!this.options.sparse || this.sink.sequential) return this.sink.write(at, buf);
    // Write the non-zero runs; leave (or punch) holes for the zero ones.
    let i = 0;
    while (i < buf.length) {
      const zero = isZero(buf, i, Math.min(buf.length, i + SPARSE_GRANULE));
      let j = i + SPARSE_GRANULE;
      while (j < buf.length && isZero(buf, j, Math.min(buf.length, j + SPARSE_GRANULE)) === zero) j += SPARSE_GRANULE;
      j = Math.min(j, buf.length);
      if (!zero) await this.sink.write(at + i, buf.subarray(i, j));
      else if (!this.options.zeroFilled) await this.sink.writeZeros(at + i, j - i);
      i = j;
    }
  }

  /** Not while making holes (they must see the bytes), nor while hashing unless DEST can be read back. */
  async copy(source: BlockSource, pos: number, length: number): Promise<boolean> {
    const { hasher, readBack, origin } = this.options;
    if (this.options.sparse || !this.sink.copyFrom || (hasher && !readBack)) return false;
    // This span is copied while the last one is hashed; the one before must be done (at most two spans
    // wait in the page cache to be read back), and a failure to read DEST back stops the capture here.
    await this.hashingBeforeLast;
    const copied = await this.sink.copyFrom(source, pos, length, pos - origin);
    // Hashed from DEST if it follows on from what is hashed, or from what the hashing under way will have hashed.
    if (copied && hasher && (hasher.frontier === pos || this.queuedEnd === pos)) {
      // Copies may overlap (small blocks): this span's hashing goes after any still running, so settle() waits for all.
      this.hashingBeforeLast = this.hashing;
      this.hashing = this.hashing.then(() => this.hashCopied(hasher, pos, length));
      this.hashing.catch(() => {}); // awaited by the copy after next, or by settle()
      this.queuedEnd = pos + length;
    }
    return copied;
  }

  /** The hashing of every copied span queued, and of all but the last. */
  private hashing: Promise<void> = Promise.resolve();
  private hashingBeforeLast: Promise<void> = Promise.resolve();
  /** Where the last span queued for hashing ends. */
  private queuedEnd = -1;
  private readBackBuffer: Buffer | undefined;

  /** DEST is opened again for each span: it grows as the capture goes, and a source's size is fixed when it opens. */
  private async hashCopied(hasher: InOrderHasher, pos: number, length: number): Promise<void> {
    // Bytes that reached the hasher another way meanwhile (a failed copy read instead): the hash from DEST at the end takes this span.
    if (hasher.frontier !== pos) return;
    try {
      const dest = await (this.options.readBack as NonNullable<ImageWriterOptions["readBack"]>)();
      try {
        const buf = (this.readBackBuffer ??= allocHuge(READ_BACK_CHUNK));
        for (let at = pos; at < pos + length; at += READ_BACK_CHUNK) {
          const n = Math.min(READ_BACK_CHUNK, pos + length - at);
          await hasher.offer(at, await dest.read(at - this.options.origin, n, buf.subarray(0, n)));
        }
      } finally {
        await dest.close();
      }
    } catch (err) {
      // DEST's failure, not SOURCE's: without an errno a copier does not take it for a bad area to skip, and stops.
      throw new DeviceError(`reading DEST back to hash what was copied: ${(err as Error).message}`, undefined, { cause: err });
    }
  }

  /** Wait for the hashing of copied spans; rejects with its failure. */
  settle(): Promise<void> {
    return this.hashing;
  }

  zeros(pos: number, length: number): Promise<void> {
    const skip = this.options.zeroFilled && !this.sink.sequential;
    return sideBySide(this.options.hasher?.offerZeros(pos, length), skip ? undefined : this.sink.writeZeros(pos - this.options.origin, length));
  }
}

/**
 * Waits for a write and the hashing of the same bytes, both already started.
 * The sink is called before anything is awaited: a stream takes writes in call order.
 */
async function sideBySide(hashed: void | Promise<void>, written: Promise<void> | undefined): Promise<void> {
  hashed?.catch(() => {}); // a failure while the write is pending is reported below, not as unhandled
  try {
    await written;
  } finally {
    await hashed;
  }
}

function isZero(buf: Buffer, start: number, end: number): boolean {
  return isAllZero(buf.subarray(start, end));
}

/**
 * A block held in memory while its failing sectors are worked out, so a
 * pipe DEST still receives bytes in order: the block starts as zeros (what
 * unreadable sectors become) and rescued sectors are copied in.
 */
export class BufferTarget implements ImageTarget {
  constructor(
    readonly start: number,
    readonly buffer: Buffer,
  ) {
    buffer.fill(0);
  }

  async data(pos: number, buf: Buffer): Promise<void> {
    buf.copy(this.buffer, pos - this.start);
  }

  async zeros(pos: number, length: number): Promise<void> {
    this.buffer.fill(0, pos - this.start, pos - this.start + length);
  }
}
