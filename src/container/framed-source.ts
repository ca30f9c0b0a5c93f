/**
 * A compressed stream made of frames that decode on their own (zstd frames,
 * xz blocks), read as a BlockSource through its frame index: a read decodes
 * only the frames it touches.
 *
 * - Frames up to WHOLE_FRAME_MAX are decoded whole, on the native thread
 *   pool, several at once. A frame a read covers whole is decoded straight
 *   into the caller's buffer (no copy through the cache: a reader going
 *   through the image in large reads keeps every core busy by itself); the
 *   others are kept in an LRU, and a sequential reader whose reads cover
 *   fewer frames than there are decoders gets the next frames decoded ahead
 *   of it into that LRU, so a whole-image read uses every core either way.
 * - Larger frames (a single-frame file, an xz -T0 block of 24 MiB) cannot be
 *   held: they are decoded as a stream, PAGE bytes at a time, each page kept
 *   in an LRU. Reading forward continues the stream; reading before its
 *   position starts the frame again from its first byte. Such a source is
 *   not `seekable`. A random read into a frame of several pages takes this
 *   path too, and stops decoding once it has its bytes.
 *
 * Memory stays bounded whatever the image: at most MAX_IN_FLIGHT_BYTES of
 * frames being decoded, CACHE_BYTES of decoded frames, PAGE_CACHE_BYTES of
 * pages, POOL_BYTES of memory kept for reuse, and each codec's own window.
 */
import { CorruptImageError } from "../errors.js";
import type { BlockSource } from "../io/block-source.js";
import { checkRange, targetBuffer } from "../io/bounds.js";
import { BufferPool } from "../util/buffer-pool.js";
import { InTurn } from "../util/in-turn.js";
import { Limiter } from "../util/limiter.js";
import { LruCache } from "../util/lru.js";
import type { ContainerName, ContainerSource } from "./format.js";
import type { Frame, FrameTable } from "./frame-table.js";

export type { Frame } from "./frame-table.js";

export interface FrameCodec {
  /** Decode `frame` from all of its compressed bytes into `out` (exactly frame.size bytes); a frame that is not exactly that is corrupt. */
  decodeWhole(frame: Frame, input: Buffer, out: Buffer): Promise<void>;
  /** A stream over `frame`, reading its compressed bytes from `input`. */
  openStream(frame: Frame, input: CompressedInput): FrameStream;
}

export interface FrameStream {
  /**
   * Decode the frame's next bytes into `out`, filling it unless the frame
   * ends first; resolves with how many bytes. 0 means the frame has ended
   * and its checks passed.
   */
  read(out: Buffer): Promise<number>;
  close(): void;
}

/** Decoded frames up to this size are decoded in one call and cached whole. */
export const WHOLE_FRAME_MAX = 16 << 20;
const CACHE_BYTES = 24 << 20;
const MAX_IN_FLIGHT_BYTES = 32 << 20;
/** Decoded frames' memory kept for the next ones (fresh memory costs a page fault per 4 KiB). */
const POOL_BYTES = 16 << 20;
/** Larger frames are read as a stream, in pages of this size. */
export const PAGE = 1 << 20;
const PAGE_CACHE_BYTES = 16 << 20;
/** Compressed bytes read at once by a stream. */
const INPUT_CHUNK = 1 << 20;

/** A frame's compressed bytes, read front to back in chunks, into one buffer used again for each. */
export class CompressedInput {
  private position = 0;
  private buffer: Buffer | undefined;

  constructor(
    private readonly source: BlockSource,
    /** Where the frame's compressed bytes start and how many there are. */
    readonly offset: number,
    readonly length: number,
  ) {}

  /** Offset in the container of the next byte next() returns. */
  get at(): number {
    return this.offset + this.position;
  }

  /** The next chunk (valid until the next call), or undefined once all `length` bytes have been read. */
  async next(): Promise<Buffer | undefined> {
    if (this.position >= this.length) return undefined;
    const n = Math.min(INPUT_CHUNK, this.length - this.position);
    this.buffer ??= Buffer.allocUnsafeSlow(Math.min(INPUT_CHUNK, this.length));
    const chunk = await this.source.read(this.offset + this.position, n, this.buffer.subarray(0, n));
    this.position += n;
    return chunk;
  }
}

export interface FramedSourceOptions {
  format: ContainerName;
  /** The container's bytes. */
  below: BlockSource;
  /** In decoded order. */
  frames: FrameTable;
  codec: FrameCodec;
  /** Frames decoded at once (default 1). */
  threads: number;
  /** What the format adds to describe(). */
  details: Record<string, unknown>;
  /** What a frame is called in this format: "frame", "block". */
  unit: string;
}

interface Cursor {
  frame: number;
  stream: FrameStream;
  /** Decoded bytes of the frame produced so far. */
  produced: number;
}

export class FramedSource implements ContainerSource {
  readonly format: ContainerName;
  readonly name: string;
  readonly size: number;
  readonly sectorSize = 512;
  readonly seekable: boolean;
  private readonly below: BlockSource;
  private readonly frames: FrameTable;
  private readonly codec: FrameCodec;
  private readonly details: Record<string, unknown>;
  private readonly unit: string;
  private readonly wholeFrames: LruCache<number, Buffer>;
  private readonly decoding = new Map<number, Promise<Buffer>>();
  /** Frames being decoded straight into a reader's buffer. */
  private readonly directFrames = new Set<number>();
  private readonly limiter: Limiter;
  private readonly aheadCount: number;
  private readonly pool = new BufferPool(POOL_BYTES);
  private readonly pages = new LruCache<number, Buffer>(PAGE_CACHE_BYTES / PAGE, (_, page) => this.pool.give(page));
  private readonly streamTurn = new InTurn();
  private cursor: Cursor | undefined;
  private nextSequential = 0;
  private closed = false;

  constructor(options: FramedSourceOptions) {
    this.format = options.format;
    this.below = options.below;
    this.name = options.below.name;
    this.frames = options.frames;
    this.codec = options.codec;
    this.details = options.details;
    this.unit = options.unit;
    this.size = this.frames.decodedSize;
    let largestWhole = 1;
    let allWhole = true;
    for (let i = 0; i < this.frames.length; i++) {
      if (this.isWhole(i)) largestWhole = Math.max(largestWhole, this.frames.size(i));
      else if (this.frames.size(i) > 0) allWhole = false;
    }
    this.seekable = allWhole;
    const inFlight = Math.max(1, Math.min(options.threads, Math.floor(MAX_IN_FLIGHT_BYTES / largestWhole)));
    this.limiter = new Limiter(inFlight);
    this.aheadCount = inFlight;
    this.wholeFrames = new LruCache(Math.max(2, Math.floor(CACHE_BYTES / largestWhole)), (_, bytes) => this.pool.give(bytes));
  }

  describe(): Record<string, unknown> {
    let count = 0;
    let largest = 0;
    for (let i = 0; i < this.frames.length; i++) {
      if (this.frames.size(i) > 0) count++;
      largest = Math.max(largest, this.frames.size(i));
    }
    return {
      ...this.details,
      [`${this.unit}s`]: count,
      [`largest${this.unit[0]?.toUpperCase()}${this.unit.slice(1)}`]: largest,
      seekable: this.seekable,
      ...(this.seekable
        ? {}
        : {
            note: `${this.unit}s larger than ${WHOLE_FRAME_MAX >> 20} MiB are read from their start: random access is slow; \`platter convert\` makes a seekable copy`,
          }),
    };
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (this.closed) throw new Error(`${this.name}: read after close`);
    checkRange(`${this.name} (decompressed)`, this.size, offset, length);
    const out = targetBuffer(length, into);
    if (length === 0) return out;
    const sequential = offset === this.nextSequential;
    this.nextSequential = offset + length;
    const work: Array<Promise<void>> = [];
    let direct = 0;
    let index = this.frameAt(offset);
    let pos = offset;
    while (pos < offset + length) {
      const from = pos - this.frames.start(index);
      const n = Math.min(this.frames.size(index) - from, offset + length - pos);
      if (n > 0 && n === this.frames.size(index) && this.decodesInto(index)) {
        work.push(this.decodeInto(index, out.subarray(pos - offset, pos - offset + n)));
        direct++;
      } else if (n > 0) work.push(this.copyFrom(index, from, n, out, pos - offset, sequential));
      pos += n;
      index++;
    }
    // A read covering as many frames as there are decoders keeps them busy itself; frames decoded ahead
    // would reach the next read through the cache, a copy each. So would frames that reads the reader
    // has in flight decode into their buffers: decodeAhead looks once those reads have started.
    if (sequential && direct < this.aheadCount) setImmediate(() => this.decodeAhead(index));
    // Nothing may still be writing into `out` when the read settles, even when it fails: the first failure in order.
    for (const done of await Promise.allSettled(work)) if (done.status === "rejected") throw done.reason;
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.streamTurn.idle();
    this.cursor?.stream.close();
    this.cursor = undefined;
    await Promise.allSettled(this.decoding.values());
    this.wholeFrames.clear();
    this.pages.clear();
    this.pool.clear();
  }

  /** The first frame with bytes at `pos` (skippable, empty frames are passed over). */
  private frameAt(pos: number): number {
    let lo = 0;
    let hi = this.frames.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.frames.start(mid) <= pos) lo = mid;
      else hi = mid - 1;
    }
    while (lo > 0 && this.frames.size(lo) === 0) lo--;
    while (this.frames.start(lo) + this.frames.size(lo) <= pos) lo++;
    return lo;
  }

  /**
   * Copy bytes [from, from+n) of frame `index` to out[at...]. A frame is
   * decoded whole for a sequential reader (and kept); a random read of a
   * frame of several pages decodes it as a stream only as far as the read
   * needs: half the frame, on average.
   */
  private async copyFrom(index: number, from: number, n: number, out: Buffer, at: number, sequential: boolean): Promise<void> {
    const whole = this.isWhole(index) && (sequential || this.frames.size(index) <= PAGE || this.wholeFrames.has(index) || this.decoding.has(index));
    if (whole) {
      const bytes = await this.whole(index);
      bytes.copy(out, at, from, from + n);
      return;
    }
    const frameStart = this.frames.start(index);
    for (let pos = from; pos < from + n; ) {
      const pageStart = pos - (pos % PAGE);
      const page = this.pages.get(frameStart + pageStart) ?? (await this.inTurn(() => this.decodePage(index, pageStart)));
      const take = Math.min(from + n, pageStart + page.length) - pos;
      page.copy(out, at + pos - from, pos - pageStart, pos - pageStart + take);
      pos += take;
    }
  }

  /**
   * Start decoding the next frames a sequential reader will want, so they
   * are ready (or under way) when asked for, while fewer frames than there
   * are decoders are being decoded. A reader with reads in flight that cover
   * frames whole keeps them busy itself: decoding ahead of it took the
   * frames its next reads would have decoded in place, each then copied out
   * of the cache (reading a 1 GiB .xz, 90-125 MiB of buffers).
   */
  private decodeAhead(first: number): void {
    if (this.closed) return;
    let started = 0;
    let busy = this.directFrames.size + this.decoding.size;
    for (let i = first; i < this.frames.length && started < this.aheadCount && busy < this.aheadCount; i++) {
      if (this.frames.size(i) === 0) continue;
      if (!this.isWhole(i)) break;
      started++;
      if (this.wholeFrames.has(i) || this.decoding.has(i) || this.directFrames.has(i)) continue;
      busy++;
      this.whole(i).catch(() => {}); // a failure is met again when the frame is read
    }
  }

  /** Is frame `index`, read whole, decoded straight into the reader's memory: neither cached nor under way? */
  private decodesInto(index: number): boolean {
    return this.isWhole(index) && !this.wholeFrames.has(index) && !this.decoding.has(index);
  }

  /** Decode all of frame `index` into `target` (exactly its size), one decoder among `threads`. */
  private async decodeInto(index: number, target: Buffer): Promise<void> {
    this.directFrames.add(index);
    try {
      await this.limiter.run(() => this.decodeFrame(this.frames.get(index), target));
    } finally {
      this.directFrames.delete(index);
    }
  }

  private async decodeFrame(frame: Frame, target: Buffer): Promise<void> {
    const input = this.pool.take(frame.compressedSize);
    try {
      await this.below.read(frame.offset, frame.compressedSize, input);
      await this.codec.decodeWhole(frame, input, target);
    } finally {
      this.pool.give(input);
    }
  }

  private whole(index: number): Promise<Buffer> {
    const cached = this.wholeFrames.get(index);
    if (cached) return Promise.resolve(cached);
    let pending = this.decoding.get(index);
    if (!pending) {
      const frame = this.frames.get(index);
      pending = this.limiter.run(async () => {
        const out = this.pool.take(frame.size);
        try {
          await this.decodeFrame(frame, out);
        } catch (err) {
          this.pool.give(out);
          throw err;
        }
        return out;
      });
      this.decoding.set(index, pending);
      pending.then(
        (bytes) => {
          this.decoding.delete(index);
          if (!this.closed) this.wholeFrames.set(index, bytes);
        },
        () => this.decoding.delete(index),
      );
    }
    return pending;
  }

  /** Streams are decoded one call at a time, in call order. */
  private inTurn<T>(job: () => Promise<T>): Promise<T> {
    let result: T;
    return this.streamTurn.run(async () => {
      result = await job();
    }).then(() => result);
  }

  /** Decode `index`'s stream up to and including the page at `pageStart`, keeping every page it passes; that page. */
  private async decodePage(index: number, pageStart: number): Promise<Buffer> {
    const frame = this.frames.get(index);
    const cached = this.pages.get(frame.start + pageStart);
    if (cached) return cached;
    let cursor = this.cursor;
    if (!cursor || cursor.frame !== index || cursor.produced > pageStart) {
      cursor?.stream.close();
      cursor = {
        frame: index,
        stream: this.codec.openStream(frame, new CompressedInput(this.below, frame.offset, frame.compressedSize)),
        produced: 0,
      };
      this.cursor = cursor;
    }
    try {
      for (;;) {
        const start = cursor.produced;
        const page = this.pool.take(Math.min(PAGE, frame.size - start));
        for (let filled = 0; filled < page.length; ) {
          const n = await cursor.stream.read(page.subarray(filled));
          if (n === 0) throw this.sizeMismatch(frame, `ends after ${start + filled} bytes`);
          filled += n;
        }
        cursor.produced += page.length;
        if (cursor.produced === frame.size) {
          // The frame must end exactly here: one more byte means the index lied.
          if ((await cursor.stream.read(Buffer.allocUnsafe(1))) !== 0) throw this.sizeMismatch(frame, "holds more");
          cursor.stream.close();
          this.cursor = undefined;
        }
        this.pages.set(frame.start + start, page);
        if (start === pageStart) return page;
      }
    } catch (err) {
      cursor.stream.close();
      if (this.cursor === cursor) this.cursor = undefined;
      throw err;
    }
  }

  /** Is frame `i` decoded in one call and cached whole (rather than streamed)? */
  private isWhole(i: number): boolean {
    return this.frames.size(i) <= WHOLE_FRAME_MAX && this.frames.compressedSize(i) <= 2 * WHOLE_FRAME_MAX;
  }

  private sizeMismatch(frame: Frame, what: string): CorruptImageError {
    return new CorruptImageError(
      `${this.name}: corrupt ${this.format} ${this.unit} at offset ${frame.offset}: it ${what}, but the index says it holds ${frame.size} bytes`,
    );
  }
}
