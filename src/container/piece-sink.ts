/**
 * Writing a compressed file as independent pieces (zstd frames, xz blocks,
 * gzip members, bzip2 streams) of `pieceSize` image bytes each, so a reader
 * finds any byte by decoding one piece. One sink for the four formats; each
 * brings a PieceEncoder: what starts the file, one piece, what ends it.
 *
 * Writes come in order (a sequential sink, like a pipe) and may overlap:
 * each is accepted at call time and handled in turn. Every full piece is
 * compressed while the next one fills, `threads` at once (Limiter), and the
 * pieces reach the file in order (OrderedWindow). A write's whole pieces are
 * compressed from the caller's memory (write() resolves once they are);
 * only the bytes around them are copied into a piece being filled. A piece
 * of zeros is compressed once per length and its bytes reused: zero runs
 * cost a comparison, not the compressor. Memory: threads + 1 pieces in
 * flight, their input and output buffers taken from a pool.
 *
 * flush() makes every full piece durable; the piece being filled stays in
 * memory until it is full or the sink closes (a short piece in the middle
 * would cost the format its fixed piece size). close() writes what is left
 * and the encoder's trailer, told whether the image is complete (setSize()
 * was called, or WriterOptions.size bytes were written): an interrupted
 * capture's is not. resume() in each writer finds the whole pieces a cut file
 * holds and reopen() goes on after them.
 */
import { promises as fsp } from "node:fs";
import { DeviceError, ioError, UsageError } from "../errors.js";
import { FileSource } from "../io/file-source.js";
import { isAllZero } from "../io/zeros.js";
import { BufferPool } from "../util/buffer-pool.js";
import { InTurn } from "../util/in-turn.js";
import { Limiter } from "../util/limiter.js";
import { OrderedWindow } from "../util/ordered-window.js";
import type { ContainerName, ContainerSink, WriterOptions } from "./format.js";
import { FrameTable } from "./frame-table.js";
import { defaultThreads } from "./native-library.js";

export interface PieceEncoder {
  readonly format: ContainerName;
  /** Image bytes per piece; every piece but the last holds exactly this many. */
  readonly pieceSize: number;
  /** The most bytes a piece of pieceSize bytes can take in the file. */
  readonly maxEncodedSize: number;
  /**
   * Whether trailer() needs the table of every piece (a zstd seek table, an
   * xz index). Formats that end without one keep no table, so no image is
   * too large for them.
   */
  readonly indexed: boolean;
  /**
   * Pieces compressed at once beyond one per thread. A piece done hands its
   * thread the next only once the main thread has taken it; where pieces are
   * quick and their compressor small (gzip's 256 KiB members), one more keeps
   * every core busy meanwhile. Default 0 (an xz encoder holds 94 MiB).
   */
  readonly extraInFlight?: number;
  /** What starts the file (the xz stream header; nothing for the others). */
  header(): Buffer;
  /**
   * Compress one piece (up to pieceSize bytes) into `out` (maxEncodedSize
   * bytes): how many bytes it took, and the detail its table entry keeps
   * (the zstd checksum, the xz unpadded size). Both buffers are the caller's
   * again once the promise settles.
   */
  encode(data: Buffer, out: Buffer): Promise<EncodedPiece>;
  /** What ends the file, if anything. */
  trailer(end: FileEnd): Buffer | undefined;
  /** Let go of what encoding kept (compressor memory). */
  release?(): void;
}

export interface EncodedPiece {
  length: number;
  detail?: number;
}

export interface FileEnd {
  /** Image bytes in the file. */
  imageSize: number;
  /** The image reached its size (setSize(), WriterOptions.size); an interrupted capture's has not. */
  complete: boolean;
  /** Every piece in the file, for an `indexed` encoder. */
  pieces?: FrameTable;
}

/** Where a file being resumed goes on. */
export interface ResumePoint {
  /** Where the next piece goes in the file: the bytes before it are kept, those after cut (0: start again). */
  fileOffset: number;
  /** Image bytes the kept pieces hold. */
  committed: number;
  /** The kept pieces, for an `indexed` encoder. */
  pieces?: FrameTable;
}

/** A compressed piece on its way to the file. */
interface Piece {
  bytes: Buffer;
  detail: number;
  size: number;
  /** The bytes are the pool's, to be given back once written (not a cached zero piece's). */
  pooled: boolean;
}

/** WriterOptions.threads, checked; the number of cores by default. */
export function writerThreads(options: WriterOptions): number {
  const threads = options.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) throw new UsageError(`--threads ${String(threads)}: give a whole number of at least 1`);
  return threads;
}

/**
 * A writer's resume(): `find` reads the file an interrupted capture left
 * and says where to go on; the file is reopened there. Without a file, a
 * new one is started when `ifMissing` is "create" (else it is an error).
 */
export async function resumePieces(
  path: string,
  encoder: PieceEncoder,
  options: WriterOptions,
  find: (file: FileSource) => Promise<ResumePoint>,
  ifMissing?: "create",
): Promise<{ sink: ContainerSink; committed: number }> {
  let file: FileSource;
  try {
    file = await FileSource.open(path);
  } catch (err) {
    if (ifMissing === "create" && err instanceof DeviceError && err.code === "ENOENT") return { sink: await PieceSink.create(path, encoder, options), committed: 0 };
    throw err;
  }
  let point: ResumePoint;
  try {
    point = await find(file);
  } finally {
    await file.close();
  }
  return { sink: await PieceSink.reopen(path, encoder, options, point), committed: point.committed };
}

export class PieceSink implements ContainerSink {
  readonly sequential = true;
  readonly overlapsWrites = true;
  /** A write's bytes are compressed, or copied into the piece being filled, before write() resolves. */
  readonly releasesWrites = true;
  readonly format: ContainerName;
  private readonly pieceSize: number;
  private readonly turns = new InTurn();
  private readonly window: OrderedWindow<Piece>;
  private readonly pool: BufferPool;
  /** Compressions running at once: one per thread (an xz -6 encoder alone takes 40 MiB). */
  private readonly encoders: Limiter;
  private readonly zeroPieces = new Map<number, Promise<Piece>>();
  private staging: Buffer | undefined;
  private staged = 0;
  /** Image bytes accepted so far (where the next write must start). */
  private position: number;
  /** Image bytes in the pieces written. */
  private written: number;
  private declaredSize: number | undefined;
  private failed = false;
  private closed = false;

  /** Image bytes in whole pieces written to the file (see ContainerSink.committed). */
  get committed(): number {
    return this.written;
  }

  private constructor(
    readonly name: string,
    private readonly handle: fsp.FileHandle,
    private readonly encoder: PieceEncoder,
    private readonly options: WriterOptions,
    threads: number,
    /** Where the next piece goes in the file. */
    private fileOffset: number,
    committed: number,
    private readonly pieces: FrameTable | undefined,
  ) {
    this.format = encoder.format;
    this.pieceSize = encoder.pieceSize;
    this.position = this.written = committed;
    // A piece per thread compressing (and the encoder's extra), one written meanwhile, and room for the extra to queue.
    const extra = encoder.extraInFlight ?? 0;
    const width = threads + 1 + 2 * extra;
    this.pool = new BufferPool((width + 1) * (encoder.pieceSize + encoder.maxEncodedSize));
    this.window = new OrderedWindow(width, (piece) => this.append(piece));
    this.encoders = new Limiter(threads + extra);
  }

  /** A new file at `path` (an existing one is replaced), starting with the encoder's header. */
  static async create(path: string, encoder: PieceEncoder, options: WriterOptions): Promise<PieceSink> {
    return PieceSink.open(path, "w", encoder, options, { fileOffset: 0, committed: 0 });
  }

  /** Go on writing `path` at `point`, which a writer's resume() found. */
  static async reopen(path: string, encoder: PieceEncoder, options: WriterOptions, point: ResumePoint): Promise<PieceSink> {
    return PieceSink.open(path, "r+", encoder, options, point);
  }

  private static async open(path: string, mode: "w" | "r+", encoder: PieceEncoder, options: WriterOptions, point: ResumePoint): Promise<PieceSink> {
    const threads = writerThreads(options);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(path, mode, 0o644);
    } catch (err) {
      throw ioError(err, path);
    }
    try {
      await handle.truncate(point.fileOffset);
    } catch (err) {
      await handle.close();
      throw ioError(err, path);
    }
    const pieces = encoder.indexed ? (point.pieces ?? new FrameTable(`${path}: ${encoder.format} pieces`)) : undefined;
    const sink = new PieceSink(path, handle, encoder, options, threads, point.fileOffset, point.committed, pieces);
    if (point.fileOffset === 0) {
      try {
        await sink.writeFile(encoder.header());
      } catch (err) {
        await handle.close();
        throw err;
      }
    }
    return sink;
  }

  /**
   * Resolves once no compressor reads `data` any more. The next write may
   * begin before then: its pieces queue behind this one's, so the cores are
   * not left idle while a write's last pieces compress.
   */
  async write(offset: number, data: Buffer): Promise<void> {
    this.accept(offset, data.length);
    const borrowed: Array<Promise<unknown>> = [];
    try {
      await this.turns.run(() => this.take(data, borrowed));
    } finally {
      // The caller's memory is its own again once no compressor reads it (a failure surfaces at the next push or drain).
      await Promise.allSettled(borrowed);
    }
  }

  async writeZeros(offset: number, length: number): Promise<void> {
    this.accept(offset, length);
    await this.turns.run(() => this.takeZeros(length));
  }

  /** The image ends at `size`: zeros up to it, and a complete file at close(). */
  async setSize(size: number): Promise<void> {
    if (size < this.position) throw new UsageError(`${this.name}: a ${this.format} file cannot be cut back to ${size} bytes once ${this.position} are written`);
    if (size > this.position) await this.writeZeros(this.position, size - this.position);
    this.declaredSize = size;
  }

  /** Every full piece written and on disk; the piece still filling stays in memory. */
  async flush(): Promise<void> {
    await this.turns.idle();
    await this.drain();
    try {
      await this.handle.datasync();
    } catch (err) {
      throw ioError(err, this.name);
    }
  }

  /** Write the last piece and the trailer, and close. After a failure, only close: the file is not a complete one. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.turns.idle();
      if (this.failed) return;
      if (this.staged > 0) await this.submitStaged();
      await this.drain();
      const complete = this.written === (this.declaredSize ?? this.options.size);
      const trailer = this.encoder.trailer({ imageSize: this.written, complete, pieces: this.pieces });
      if (trailer) await this.writeFile(trailer);
    } finally {
      this.pool.clear();
      this.encoder.release?.();
      await this.handle.close();
    }
  }

  private accept(offset: number, length: number): void {
    if (this.closed) throw new UsageError(`${this.name}: written after close`);
    if (offset !== this.position) {
      throw new UsageError(`${this.name}: a ${this.format} file is written in order: a write at offset ${offset}, the next byte is ${this.position}`);
    }
    this.position += length;
    this.declaredSize = undefined;
  }

  /** Pieces of `data` compressed from the caller's memory are added to `borrowed` as they are handed over. */
  private async take(data: Buffer, borrowed: Array<Promise<unknown>>): Promise<void> {
    for (let at = 0; at < data.length; ) {
      if (this.staged === 0 && data.length - at >= this.pieceSize) {
        borrowed.push((await this.submit(data.subarray(at, at + this.pieceSize), false)).piece);
        at += this.pieceSize;
        continue;
      }
      const staging = (this.staging ??= this.pool.take(this.pieceSize));
      const n = data.copy(staging, this.staged, at, Math.min(data.length, at + this.pieceSize - this.staged));
      this.staged += n;
      at += n;
      if (this.staged === this.pieceSize) await this.submitStaged();
    }
  }

  private async takeZeros(length: number): Promise<void> {
    for (let left = length; left > 0; ) {
      if (this.staged === 0 && left >= this.pieceSize) {
        // A whole piece of zeros: the one compressed before.
        const piece = this.zeroPiece(this.pieceSize);
        left -= this.pieceSize;
        await this.push(() => piece);
        continue;
      }
      const staging = (this.staging ??= this.pool.take(this.pieceSize));
      const n = Math.min(left, this.pieceSize - this.staged);
      staging.fill(0, this.staged, this.staged + n);
      this.staged += n;
      left -= n;
      if (this.staged === this.pieceSize) await this.submitStaged();
    }
  }

  /** Hand the staged bytes to a compressor; the next write fills a fresh buffer. */
  private async submitStaged(): Promise<void> {
    const data = (this.staging as Buffer).subarray(0, this.staged);
    this.staging = undefined;
    this.staged = 0;
    await this.submit(data, true);
  }

  /**
   * Hand `data` to a compressor, once the window has room: the piece's
   * promise (wrapped, or awaiting would wait for it), settled once nothing
   * reads `data` any more. Pooled data goes back to the pool then; a
   * caller's whole piece is compressed from the caller's memory (no copy),
   * which write() holds until then.
   */
  private async submit(data: Buffer, pooled: boolean): Promise<{ piece: Promise<Piece> }> {
    let piece: Promise<Piece> | undefined;
    await this.push(() => (piece = this.compress(data, pooled)));
    return { piece: piece as Promise<Piece> };
  }

  private async compress(data: Buffer, pooled: boolean): Promise<Piece> {
    try {
      if (isAllZero(data)) return await this.zeroPiece(data.length);
      const out = this.pool.take(this.encoder.maxEncodedSize);
      try {
        const { length, detail } = await this.encoders.run(() => this.encoder.encode(data, out));
        return { bytes: out.subarray(0, length), detail: detail ?? Number.NaN, size: data.length, pooled: true };
      } catch (err) {
        this.pool.give(out);
        throw err;
      }
    } finally {
      if (pooled) this.pool.give(data);
    }
  }

  private zeroPiece(length: number): Promise<Piece> {
    let piece = this.zeroPieces.get(length);
    if (!piece) {
      const out = Buffer.allocUnsafe(this.encoder.maxEncodedSize);
      piece = this.encoders
        .run(() => this.encoder.encode(Buffer.alloc(length), out))
        .then(({ length: n, detail }) => ({ bytes: out.subarray(0, n), detail: detail ?? Number.NaN, size: length, pooled: false }));
      this.zeroPieces.set(length, piece);
    }
    return piece;
  }

  private async push(job: () => Promise<Piece>): Promise<void> {
    try {
      await this.window.push(job);
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }

  private async drain(): Promise<void> {
    try {
      await this.window.drain();
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }

  private async append(piece: Piece): Promise<void> {
    const at = this.fileOffset;
    try {
      await this.writeFile(piece.bytes);
    } finally {
      if (piece.pooled) this.pool.give(piece.bytes);
    }
    this.pieces?.add(at, piece.bytes.length, piece.size, piece.detail);
    this.written += piece.size;
  }

  private async writeFile(bytes: Buffer): Promise<void> {
    let done = 0;
    try {
      while (done < bytes.length) {
        const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, this.fileOffset + done);
        done += bytesWritten;
      }
    } catch (err) {
      this.failed = true;
      throw ioError(err, `${this.name}: write at offset ${this.fileOffset + done}`);
    }
    this.fileOffset += bytes.length;
  }
}
