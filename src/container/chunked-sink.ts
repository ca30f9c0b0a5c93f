/**
 * A compressed file written as independent pieces (gzip members, bzip2
 * streams), one per `chunkSize` image bytes: chunks compress on every core
 * (OrderedWindow: up to twice `threads` at once) and reach the file in
 * order. A chunk of zeros is compressed once and its encoding reused, so zero
 * runs cost a memcmp. Memory: the window's chunks and their encodings.
 *
 * Writes must come in order (sequential sink, like a pipe), and may overlap:
 * each is accepted at call time and handled in turn.
 *
 * flush() makes every complete chunk durable; the chunk being filled stays in
 * memory until it is full or the sink closes (a short piece in the middle
 * would cost the format its fixed chunk size). close() writes what is left,
 * then the format's end marker if the image is complete: setSize() was
 * called, or WriterOptions.size bytes were written. A file without one reads
 * as cut short, which an interrupted capture's is.
 */
import { availableParallelism } from "node:os";
import { promises as fsp } from "node:fs";
import { ioError, UsageError } from "../errors.js";
import { isAllZero } from "../io/zeros.js";
import { InTurn } from "../util/in-turn.js";
import { OrderedWindow } from "../util/ordered-window.js";
import type { ContainerName, ContainerSink } from "./format.js";

export interface ChunkEncoder {
  readonly format: ContainerName;
  /** Image bytes per piece; every piece but the last holds exactly this many. */
  readonly chunkSize: number;
  /** One chunk as a self-contained piece of the file. */
  encode(chunk: Buffer): Promise<Buffer>;
  /** What ends a complete file of `imageSize` bytes. */
  end(imageSize: number): Buffer;
}

export interface ChunkedSinkOptions {
  threads?: number;
  /** The image's size, when known up front: reaching it completes the image. */
  size?: number;
}

export class ChunkedSink implements ContainerSink {
  readonly sequential = true;
  readonly format: ContainerName;
  /** Image bytes accepted so far (where the next write must start). */
  private position: number;
  /** Image bytes in whole chunks written to the file (see ContainerSink.committed). */
  committed: number;
  private chunk: Buffer | undefined;
  private filled = 0;
  private zeroPiece: Promise<Buffer> | undefined;
  private declaredSize: number | undefined;
  private readonly turns = new InTurn();
  private readonly window: OrderedWindow<Buffer>;
  private closed = false;

  private constructor(
    private readonly handle: fsp.FileHandle,
    readonly name: string,
    private readonly encoder: ChunkEncoder,
    /** Where the next piece goes in the file. */
    private fileOffset: number,
    position: number,
    private readonly options: ChunkedSinkOptions,
  ) {
    this.format = encoder.format;
    this.position = position;
    this.committed = position;
    const threads = options.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) throw new UsageError(`threads must be a whole number of at least 1, not ${threads}`);
    this.window = new OrderedWindow(2 * threads, async (piece) => {
      await this.writePiece(piece);
      this.committed = Math.min(this.committed + encoder.chunkSize, this.position); // the last chunk may be short
    });
  }

  /** A new file at `path` (replacing one). */
  static async create(path: string, encoder: ChunkEncoder, options: ChunkedSinkOptions): Promise<ChunkedSink> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(path, "w", 0o644);
    } catch (err) {
      throw ioError(err, path);
    }
    return new ChunkedSink(handle, path, encoder, 0, 0, options);
  }

  /** Go on writing `path` after its first `fileOffset` bytes, which hold the image's first `position` bytes. */
  static async reopen(path: string, encoder: ChunkEncoder, options: ChunkedSinkOptions, fileOffset: number, position: number): Promise<ChunkedSink> {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(path, "r+");
      await handle.truncate(fileOffset);
    } catch (err) {
      throw ioError(err, path);
    }
    return new ChunkedSink(handle, path, encoder, fileOffset, position, options);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.accept(offset, data.length);
    await this.turns.run(() => this.take(data));
  }

  async writeZeros(offset: number, length: number): Promise<void> {
    this.accept(offset, length);
    await this.turns.run(() => this.takeZeros(length));
  }

  /** The image ends at `size`: zeros up to it, and the end marker at close(). */
  async setSize(size: number): Promise<void> {
    if (size < this.position) throw new UsageError(`${this.name}: cannot shrink a compressed image to ${size} bytes once ${this.position} are written`);
    if (size > this.position) await this.writeZeros(this.position, size - this.position);
    this.declaredSize = size;
  }

  async flush(): Promise<void> {
    await this.turns.idle();
    await this.window.drain();
    try {
      await this.handle.datasync();
    } catch (err) {
      throw ioError(err, this.name);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.turns.idle();
      if (this.filled > 0) await this.emit((this.chunk as Buffer).subarray(0, this.filled));
      await this.window.drain();
      const complete = this.position === (this.declaredSize ?? this.options.size);
      if (complete) await this.writePiece(this.encoder.end(this.position));
    } finally {
      await this.handle.close();
    }
  }

  private accept(offset: number, length: number): void {
    if (this.closed) throw new UsageError(`${this.name}: written after close`);
    if (offset !== this.position) {
      throw new UsageError(`${this.name}: a compressed image is written in order (write at ${offset}, next byte ${this.position})`);
    }
    this.position += length;
    this.declaredSize = undefined;
  }

  private async take(data: Buffer): Promise<void> {
    const size = this.encoder.chunkSize;
    for (let at = 0; at < data.length; ) {
      this.chunk ??= Buffer.allocUnsafe(size);
      const n = data.copy(this.chunk, this.filled, at, Math.min(data.length, at + size - this.filled));
      this.filled += n;
      at += n;
      if (this.filled === size) await this.emitFull();
    }
  }

  private async takeZeros(length: number): Promise<void> {
    const size = this.encoder.chunkSize;
    for (let left = length; left > 0; ) {
      if (this.filled === 0 && left >= size) {
        await this.window.push(() => this.zeroEncoding());
        left -= size;
        continue;
      }
      this.chunk ??= Buffer.allocUnsafe(size);
      const n = Math.min(left, size - this.filled);
      this.chunk.fill(0, this.filled, this.filled + n);
      this.filled += n;
      left -= n;
      if (this.filled === size) await this.emitFull();
    }
  }

  private async emitFull(): Promise<void> {
    const chunk = this.chunk as Buffer;
    this.chunk = undefined;
    this.filled = 0;
    if (isAllZero(chunk)) await this.window.push(() => this.zeroEncoding());
    else await this.emit(chunk);
  }

  private async emit(chunk: Buffer): Promise<void> {
    this.chunk = undefined;
    this.filled = 0;
    await this.window.push(() => this.encoder.encode(chunk));
  }

  private zeroEncoding(): Promise<Buffer> {
    this.zeroPiece ??= this.encoder.encode(Buffer.alloc(this.encoder.chunkSize));
    return this.zeroPiece;
  }

  private async writePiece(piece: Buffer): Promise<void> {
    let done = 0;
    while (done < piece.length) {
      try {
        const { bytesWritten } = await this.handle.write(piece, done, piece.length - done, this.fileOffset + done);
        done += bytesWritten;
      } catch (err) {
        throw ioError(err, `${this.name}: write at offset ${this.fileOffset + done}`);
      }
    }
    this.fileOffset += piece.length;
  }
}
