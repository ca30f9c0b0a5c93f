/**
 * Writing a compressed stream as independent frames (zstd frames, xz
 * blocks) with an index at the end, so platter can read it back with random
 * access. Bytes arrive in order (a sequential BlockSink); every full frame is
 * compressed on the native thread pool while the next one fills, up to
 * `threads` at once (OrderedWindow), and written in order. A frame of zeros
 * is compressed once per length and its bytes reused: zero runs cost a
 * comparison, not the compressor. close() writes the last, short frame and
 * the index; an interrupted file holds whole frames that resume() finds.
 */
import { promises as fsp } from "node:fs";
import { ioError, UsageError } from "../errors.js";
import { isAllZero } from "../io/zeros.js";
import { BufferPool } from "../util/buffer-pool.js";
import { Limiter } from "../util/limiter.js";
import { OrderedWindow } from "../util/ordered-window.js";
import type { ContainerName, ContainerSink } from "./format.js";
import { FrameTable } from "./frame-table.js";

export interface FrameEncoder {
  readonly format: ContainerName;
  /** Bytes of the image per frame. */
  readonly frameSize: number;
  /** The most bytes a frame of frameSize bytes can take in the file. */
  readonly maxEncodedSize: number;
  /** What starts the file (the xz stream header; nothing for zstd). */
  header(): Buffer;
  /**
   * Compress one frame (up to frameSize bytes) into `out` (maxEncodedSize
   * bytes): how many bytes it took, and the detail its index entry needs
   * (the zstd checksum, the xz unpadded size).
   * Both buffers are the caller's again once the promise settles.
   */
  encode(data: Buffer, out: Buffer): Promise<{ length: number; detail: number }>;
  /** What ends the file: the index of every frame (a seek table, an xz index and footer). */
  trailer(frames: FrameTable): Buffer;
  /** Let go of what encoding kept (compressor memory). */
  release?(): void;
}

/** A compressed frame on its way to the file. */
interface EncodedFrame {
  bytes: Buffer;
  detail: number;
  size: number;
  /** The bytes are the pool's, to be given back once written (not a cached zero frame's). */
  pooled: boolean;
}

export interface FramedSinkState {
  /** Frames already in the file (resume). */
  frames: FrameTable;
  /** Where the next frame goes in the file. */
  fileOffset: number;
}

export class FramedSink implements ContainerSink {
  readonly sequential = true;
  readonly format: ContainerName;
  private readonly window: OrderedWindow<EncodedFrame>;
  private readonly pool: BufferPool;
  /** Compressions running at once: one per thread (an xz -6 encoder alone takes 40 MiB). */
  private readonly encoders: Limiter;
  private readonly zeroFrames = new Map<number, Promise<EncodedFrame>>();
  private readonly frameSize: number;
  private staging: Buffer;
  private staged = 0;
  /** Image bytes handed in so far. */
  private position: number;
  private fileOffset: number;
  private failed: unknown;
  private closed = false;

  private constructor(
    readonly name: string,
    private readonly handle: fsp.FileHandle,
    private readonly encoder: FrameEncoder,
    threads: number,
    private readonly frames: FrameTable,
    fileOffset: number,
  ) {
    this.format = encoder.format;
    this.fileOffset = fileOffset;
    this.position = frames.decodedSize;
    this.frameSize = encoder.frameSize;
    // A frame per thread, compressed or being written; the next fills meanwhile. Memory: (threads + 1) frames in, threads out.
    const width = threads;
    this.pool = new BufferPool((width + 1) * (encoder.frameSize + encoder.maxEncodedSize));
    this.staging = this.pool.take(this.frameSize);
    this.window = new OrderedWindow(width, (frame) => this.append(frame));
    this.encoders = new Limiter(threads);
  }

  /** A new file at `path` (an existing one is replaced), starting with the encoder's header. */
  static async create(path: string, encoder: FrameEncoder, threads: number): Promise<FramedSink> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(path, "w", 0o644);
    } catch (err) {
      throw ioError(err, path);
    }
    const sink = new FramedSink(path, handle, encoder, threads, new FrameTable(`${path}: ${encoder.format} frames`), 0);
    await sink.writeFile(encoder.header());
    return sink;
  }

  /**
   * Go on writing a file whose first `state.fileOffset` bytes are its header
   * and `state.frames`; anything after them is cut (0: start it again).
   */
  static async reopen(path: string, encoder: FrameEncoder, threads: number, state: FramedSinkState): Promise<FramedSink> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(path, "r+");
    } catch (err) {
      throw ioError(err, path);
    }
    try {
      await handle.truncate(state.fileOffset);
    } catch (err) {
      await handle.close();
      throw ioError(err, path);
    }
    const sink = new FramedSink(path, handle, encoder, threads, state.frames, state.fileOffset);
    if (state.fileOffset === 0) await sink.writeFile(encoder.header());
    return sink;
  }

  /** Image bytes in whole frames written to the file (see ContainerSink.committed). */
  get committed(): number {
    return this.frames.decodedSize;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.checkOrder(offset);
    for (let at = 0; at < data.length; ) {
      const n = Math.min(data.length - at, this.staging.length - this.staged);
      data.copy(this.staging, this.staged, at, at + n);
      this.staged += n;
      this.position += n;
      at += n;
      if (this.staged === this.staging.length) await this.submit();
    }
  }

  async writeZeros(offset: number, length: number): Promise<void> {
    this.checkOrder(offset);
    let left = length;
    while (left > 0) {
      if (this.staged === 0 && left >= this.frameSize) {
        // A whole frame of zeros: the one compressed before.
        const frame = this.zeroFrame(this.frameSize);
        this.position += this.frameSize;
        left -= this.frameSize;
        await this.push(() => frame);
        continue;
      }
      const n = Math.min(left, this.staging.length - this.staged);
      this.staging.fill(0, this.staged, this.staged + n);
      this.staged += n;
      this.position += n;
      left -= n;
      if (this.staged === this.staging.length) await this.submit();
    }
  }

  async setSize(size: number): Promise<void> {
    if (size > this.position) await this.writeZeros(this.position, size - this.position);
    else if (size < this.position) throw new UsageError(`${this.name}: a ${this.format} stream cannot be cut back to ${size} bytes once ${this.position} are written`);
  }

  /** Every full frame written and on disk; the frame still filling stays in memory (resume() finds what is on disk). */
  async flush(): Promise<void> {
    await this.drain();
    try {
      await this.handle.datasync();
    } catch (err) {
      throw ioError(err, this.name);
    }
  }

  /** Write the last frame and the index, and close. After a failure, only close: the file is not a complete stream. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.failed === undefined) {
        if (this.staged > 0) await this.submit();
        await this.drain();
        await this.writeFile(this.encoder.trailer(this.frames));
      }
    } finally {
      this.pool.clear();
      this.encoder.release?.();
      await this.handle.close();
    }
  }

  private async drain(): Promise<void> {
    try {
      await this.window.drain();
    } catch (err) {
      this.failed ??= err;
      throw err;
    }
  }

  private checkOrder(offset: number): void {
    if (this.closed) throw new Error(`${this.name}: write after close`);
    if (offset !== this.position) {
      throw new UsageError(`${this.name}: a ${this.format} stream is written in order: a write at offset ${offset}, the stream is at ${this.position}`);
    }
  }

  /** Hand the staged bytes to a compressor and start filling a fresh buffer. */
  private async submit(): Promise<void> {
    const data = this.staging.subarray(0, this.staged);
    this.staging = this.pool.take(this.frameSize);
    this.staged = 0;
    await this.push(async () => {
      try {
        if (isAllZero(data)) return await this.zeroFrame(data.length);
        const out = this.pool.take(this.encoder.maxEncodedSize);
        try {
          const { length, detail } = await this.encoders.run(() => this.encoder.encode(data, out));
          return { bytes: out.subarray(0, length), detail, size: data.length, pooled: true };
        } catch (err) {
          this.pool.give(out);
          throw err;
        }
      } finally {
        this.pool.give(data);
      }
    });
  }

  private async push(job: () => Promise<EncodedFrame>): Promise<void> {
    try {
      await this.window.push(job);
    } catch (err) {
      this.failed ??= err;
      throw err;
    }
  }

  private zeroFrame(length: number): Promise<EncodedFrame> {
    let frame = this.zeroFrames.get(length);
    if (!frame) {
      const out = Buffer.allocUnsafe(this.encoder.maxEncodedSize);
      frame = this.encoders
        .run(() => this.encoder.encode(Buffer.alloc(length), out))
        .then(({ length: n, detail }) => ({ bytes: out.subarray(0, n), detail, size: length, pooled: false }));
      this.zeroFrames.set(length, frame);
    }
    return frame;
  }

  private async append(frame: EncodedFrame): Promise<void> {
    const at = this.fileOffset;
    try {
      await this.writeFile(frame.bytes);
    } finally {
      if (frame.pooled) this.pool.give(frame.bytes);
    }
    this.frames.add(at, frame.bytes.length, frame.size, frame.detail);
  }

  private async writeFile(bytes: Buffer): Promise<void> {
    let done = 0;
    try {
      while (done < bytes.length) {
        const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, this.fileOffset + done);
        done += bytesWritten;
      }
    } catch (err) {
      this.failed ??= err;
      throw ioError(err, `${this.name}: write at offset ${this.fileOffset + done}`);
    }
    this.fileOffset += bytes.length;
  }
}
